#ifndef VFE_DISTRIBUTIONS_DISTRIBUTIONS_H_
#define VFE_DISTRIBUTIONS_DISTRIBUTIONS_H_

// All exponential families of vfe (header-only).
#include "vfe/distributions/bernoulli.h"
#include "vfe/distributions/beta.h"
#include "vfe/distributions/categorical.h"
#include "vfe/distributions/dirichlet.h"
#include "vfe/distributions/family.h"
#include "vfe/distributions/gamma.h"
#include "vfe/distributions/gaussian.h"
#include "vfe/distributions/matrix_dirichlet.h"
#include "vfe/distributions/mv_gaussian.h"
#include "vfe/distributions/point_mass.h"
#include "vfe/distributions/wishart.h"

#endif  // VFE_DISTRIBUTIONS_DISTRIBUTIONS_H_
