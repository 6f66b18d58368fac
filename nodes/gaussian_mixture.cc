#include <cmath>

#include "nodes/node_checks.h"
#include "vfe/core/special.h"
#include "vfe/nodes/nodes.h"

namespace vfe {
namespace {

/// GaussianMixture(out | switch, means[K], precisions[K]) = Π_k N(out | μ_k, Λ_k⁻¹)^{z_k}:
///   log f = Σ_k z_k (½ log|Λ_k| − (D/2) log 2π − ½ tr(Λ_k (out − μ_k)(out − μ_k)ᵀ)).
/// Vectors (MvGaussian out and means, Wishart precisions) or scalars (Gaussian, Gamma): the
/// scalar families' statistics (x, x²) and (τ, log τ) are the D = 1 case of (x, xxᵀ) and
/// (Λ, log|Λ|), so one code serves both. Slots: out, switch, mean 0..K−1, precision 0..K−1.
/// With r = E[z] and S_k = E[(out − μ_k)(out − μ_k)ᵀ]:
///   to switch:       η_k = ½ E[log|Λ_k|] − (D/2) log 2π − ½ tr(E[Λ_k] S_k)
///   to mean k:       (r_k E[Λ_k] E[out], −½ r_k E[Λ_k])
///   to precision k:  (−½ r_k S_k, ½ r_k)
///   to out:          (Σ_k r_k E[Λ_k] E[μ_k], −½ Σ_k r_k E[Λ_k])
///   U = −Σ_k r_k η_k.
class GaussianMixtureNode final : public Node {
 public:
  explicit GaussianMixtureNode(int num_components) : k_(num_components) {}
  const char* type() const override { return "GaussianMixture"; }
  std::vector<std::string> slot_names() const override {
    std::vector<std::string> names = {"out", "switch"};
    for (int k = 0; k < k_; ++k) names.push_back("mean " + std::to_string(k));
    for (int k = 0; k < k_; ++k) names.push_back("precision " + std::to_string(k));
    return names;
  }
  Family ObservedFamily(int slot, const PointMass& value) const override {
    if (slot == kSwitch) return Family::kCategorical;
    if (slot >= 2 + k_) return value.is_scalar() ? Family::kGamma : Family::kWishart;
    return value.is_scalar() ? Family::kGaussian : Family::kMvGaussian;
  }

  void Bind(const std::vector<SlotInfo>& slots, size_t, const std::string& where) override {
    if (k_ < 1) throw GraphError(where + ": a mixture needs at least one component, got " +
                                 std::to_string(k_));
    RequireFamily(slots[kOut], {Family::kGaussian, Family::kMvGaussian}, where);
    const bool scalar = slots[kOut].family == Family::kGaussian;
    dim_ = slots[kOut].dim;
    if (dim_ > kMaxDim)
      throw GraphError(where + ": components of dimension at most " + std::to_string(kMaxDim) +
                       " are supported, got " + std::to_string(dim_));
    RequireFamily(slots[kSwitch], {Family::kCategorical}, where);
    RequireDim(slots[kSwitch], k_, where);
    for (int k = 0; k < k_; ++k) {
      RequireFamily(slots[Mean(k)], {scalar ? Family::kGaussian : Family::kMvGaussian}, where);
      RequireDim(slots[Mean(k)], dim_, where);
      RequireFamily(slots[Precision(k)], {scalar ? Family::kGamma : Family::kWishart}, where);
      RequireDim(slots[Precision(k)], dim_, where);
    }
  }

  void AccumulateMessage(int slot, size_t begin, size_t end, const SlotView* q, double* eta,
                         Workspace&) const override {
    const int d = dim_;
    if (slot == kSwitch) {
      for (size_t n = begin; n < end; ++n)
        for (int k = 0; k < k_; ++k) eta[k] += LogLikelihood(q, n, k);
      return;
    }
    if (slot == kOut) {
      for (size_t n = begin; n < end; ++n) {
        const double* r = q[kSwitch].At(n);
        for (int k = 0; k < k_; ++k) {
          const double* m = q[Mean(k)].At(n);
          const double* lambda = q[Precision(k)].At(n);
          for (int i = 0; i < d; ++i)
            for (int j = 0; j < d; ++j) {
              eta[i] += r[k] * lambda[i + j * d] * m[j];
              eta[d + i + j * d] -= 0.5 * r[k] * lambda[i + j * d];
            }
        }
      }
      return;
    }
    // To a component's mean or precision: sums of r, r·E[out] and r·E[out outᵀ] over factors.
    const bool to_mean = slot < 2 + k_;
    const int k = to_mean ? slot - 2 : slot - 2 - k_;
    double r_sum = 0.0, ry[kMaxDim] = {}, ryy[kMaxDim * kMaxDim] = {};
    for (size_t n = begin; n < end; ++n) {
      const double r = q[kSwitch].At(n)[k];
      const double* y = q[kOut].At(n);
      r_sum += r;
      for (int i = 0; i < d; ++i) ry[i] += r * y[i];
      if (!to_mean)
        for (int i = 0; i < d * d; ++i) ryy[i] += r * y[d + i];
    }
    if (end == begin) return;
    if (to_mean) {
      const double* lambda = q[Precision(k)].At(begin);
      for (int i = 0; i < d; ++i)
        for (int j = 0; j < d; ++j) {
          eta[i] += lambda[i + j * d] * ry[j];
          eta[d + i + j * d] -= 0.5 * r_sum * lambda[i + j * d];
        }
    } else {
      const double* m = q[Mean(k)].At(begin);
      for (int i = 0; i < d; ++i)
        for (int j = 0; j < d; ++j)
          eta[i + j * d] -= 0.5 * (ryy[i + j * d] - ry[i] * m[j] - m[i] * ry[j] +
                                   r_sum * m[d + i + j * d]);
      eta[d * d] += 0.5 * r_sum;
    }
  }

  double AverageEnergy(size_t begin, size_t end, const SlotView* q, Workspace&) const override {
    double energy = 0.0;
    for (size_t n = begin; n < end; ++n) {
      const double* r = q[kSwitch].At(n);
      for (int k = 0; k < k_; ++k)
        if (r[k] != 0.0) energy -= r[k] * LogLikelihood(q, n, k);
    }
    return energy;
  }

 private:
  enum { kOut = 0, kSwitch = 1 };
  static constexpr int kMaxDim = 16;
  int Mean(int k) const { return 2 + k; }
  int Precision(int k) const { return 2 + k_ + k; }

  /// E[log N(out_n | μ_k, Λ_k⁻¹)] = ½ E[log|Λ|] − (D/2) log 2π − ½ tr(E[Λ] S).
  double LogLikelihood(const SlotView* q, size_t n, int k) const {
    const int d = dim_;
    const double* y = q[kOut].At(n);
    const double* m = q[Mean(k)].At(n);
    const double* lambda = q[Precision(k)].At(n);
    double trace = 0.0;
    for (int i = 0; i < d; ++i)
      for (int j = 0; j < d; ++j) {
        const double s = y[d + i + j * d] - y[i] * m[j] - m[i] * y[j] + m[d + i + j * d];
        trace += lambda[j + i * d] * s;
      }
    return 0.5 * lambda[d * d] - 0.5 * d * kLog2Pi - 0.5 * trace;
  }

  int k_;
  int dim_ = 1;
};

}  // namespace

std::unique_ptr<Node> MakeGaussianMixtureNode(int num_components) {
  return std::make_unique<GaussianMixtureNode>(num_components);
}

}  // namespace vfe
