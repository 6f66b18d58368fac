#ifndef VFE_AGENTS_TENSOR_OPS_H_
#define VFE_AGENTS_TENSOR_OPS_H_

// Small kernels over the row-major tensors of the agents: joint weights of factor
// configurations, normalisation, and pymdp's floored logarithm. Internal to the library.

#include <cmath>
#include <string>
#include <vector>

#include "vfe/agents/agent.h"

namespace vfe {
namespace agents {

/// pymdp's EPS_VAL: ln(x + 1e-16) keeps zero probabilities finite (maths.spm_log_single).
constexpr double kLogFloor = 1e-16;
/// pymdp's floor inside spm_MDP_G (ln(A + e^−16)) and its threshold on state configurations.
inline double PymdpEntropyFloor() { return std::exp(-16.0); }

inline double LogStable(double x) { return std::log(x + kLogFloor); }

/// w[c] = Π_k q_k(c_k) over the configurations c of factors with `dims` (row-major, the last
/// factor fastest); q[k] points at factor k's marginal. `w` holds Π dims entries.
inline void ConfigWeights(int count, const int* dims, const double* const* q, double* w) {
  size_t size = 1;
  w[0] = 1.0;
  for (int k = 0; k < count; ++k) {
    const int d = dims[k];
    const double* qk = q[k];
    // Expand in place from the back: entry i moves to i·d + s, which is never below i.
    for (size_t i = size; i-- > 0;) {
      const double base = w[i];
      for (int s = d - 1; s >= 0; --s) w[i * d + s] = base * qk[s];
    }
    size *= static_cast<size_t>(d);
  }
}

/// Softmax of `x` in place (pymdp's: subtract the maximum, exponentiate, divide by the sum).
inline void SoftmaxInPlace(double* x, int n) {
  double top = x[0];
  for (int i = 1; i < n; ++i) top = std::max(top, x[i]);
  double total = 0.0;
  for (int i = 0; i < n; ++i) total += x[i] = std::exp(x[i] - top);
  for (int i = 0; i < n; ++i) x[i] /= total;
}

/// Product of the dimensions from `begin` to the end.
inline size_t Product(const std::vector<int>& dims, size_t begin = 0) {
  size_t p = 1;
  for (size_t i = begin; i < dims.size(); ++i) p *= static_cast<size_t>(dims[i]);
  return p;
}

/// "[:, 2, 1]": column `column` of a tensor whose first axis is summed over, for messages.
std::string ColumnName(const std::vector<int>& shape, size_t column);

/// "[2, 1, 0]": the multi-index of flat entry `flat`.
std::string EntryName(const std::vector<int>& shape, size_t flat);

/// Divides every column (first axis) of `counts` by its sum into `out`; returns false if a
/// column sums to 0 (its index in *bad_column).
bool NormaliseColumns(const Tensor& counts, Tensor& out, size_t* bad_column);

}  // namespace agents
}  // namespace vfe

#endif  // VFE_AGENTS_TENSOR_OPS_H_
