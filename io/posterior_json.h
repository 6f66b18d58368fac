#ifndef VFE_IO_POSTERIOR_JSON_H_
#define VFE_IO_POSTERIOR_JSON_H_

// One element's posterior as JSON, as results and stream lines write it: its family and
// parameters ({"family": "Gaussian", "mean": 1.2, "variance": 0.3}). Private to the library.

#include "io/json_reader.h"
#include "vfe/graph/factor_graph.h"

namespace vfe {

Json PosteriorJson(const FactorGraph& graph, const Variable& element);

}  // namespace vfe

#endif  // VFE_IO_POSTERIOR_JSON_H_
