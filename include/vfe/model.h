#ifndef VFE_MODEL_H_
#define VFE_MODEL_H_

// The public API of vfe in one include: distributions, factor graphs, node types,
// schedulers, model files and agents.
#include "vfe/agents/agent.h"
#include "vfe/core/error.h"
#include "vfe/core/splitmix.h"
#include "vfe/core/types.h"
#include "vfe/distributions/distributions.h"
#include "vfe/graph/factor_graph.h"
#include "vfe/io/csv_minibatches.h"
#include "vfe/io/model_json.h"
#include "vfe/nodes/node.h"
#include "vfe/nodes/nodes.h"
#include "vfe/schedulers/async.h"
#include "vfe/schedulers/belief_propagation.h"
#include "vfe/schedulers/options.h"
#include "vfe/schedulers/parallel.h"
#include "vfe/schedulers/sequential.h"
#include "vfe/schedulers/svi.h"

#endif  // VFE_MODEL_H_
