#ifndef VFE_SCHEDULERS_SWEEPS_H_
#define VFE_SCHEDULERS_SWEEPS_H_

// The loop every sweep scheduler shares: order checks, the free-energy trace, the stopping
// rule, the callback and the result's words. A scheduler supplies how a variable is updated
// and how F is evaluated.

#include <functional>
#include <vector>

#include "vfe/graph/factor_graph.h"
#include "vfe/schedulers/options.h"

namespace vfe {

/// The hidden variables a sweep updates: options.order, or every hidden variable. Throws
/// OptionsError for an order entry that is observed or not of this graph.
std::vector<Variable> SweepOrder(const FactorGraph& graph, const SchedulerOptions& options);

/// Runs sweeps until convergence, the cap, the callback or a numerical failure.
/// `update(v)` updates every element of v (elements v.begin() .. v.begin() + v.size() − 1 of
/// its variable) and returns the index of the first that failed, or v.begin() + v.size();
/// `free_energy()` evaluates F.
Result RunSweeps(const FactorGraph& graph, const SchedulerOptions& options,
                 const std::vector<Variable>& order,
                 const std::function<size_t(const Variable&)>& update,
                 const std::function<double()>& free_energy);

}  // namespace vfe

#endif  // VFE_SCHEDULERS_SWEEPS_H_
