#include <algorithm>
#include <cmath>
#include <type_traits>

#include "nodes/node_checks.h"
#include "vfe/core/special.h"
#include "vfe/distributions/mv_gaussian.h"
#include "vfe/distributions/point_values.h"
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
    shared_components_ = true;
    for (int k = 0; k < k_; ++k) {
      shared_components_ = shared_components_ && slots[Mean(k)].shared && slots[Precision(k)].shared;
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
      ForEachLogLikelihood(begin, end, q, [&](size_t, int k, double log_likelihood) {
        eta[k] += log_likelihood;
      });
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
    if (end == begin) return;
    double r_sum = 0.0, ry[kMaxDim] = {}, ryy[kMaxDim * kMaxDim] = {};
    WithFixedDim([&](auto fixed) {  // fixed sizes keep the sums in registers
      SumStatistics<decltype(fixed)::value>(begin, end, q, k, !to_mean, &r_sum, ry, ryy);
    });
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

  void AccumulateMessages(int slot, size_t begin, size_t end, const SlotView* q, double* eta,
                          size_t stride, Workspace& ws) const override {
    if (slot != kSwitch) return Node::AccumulateMessages(slot, begin, end, q, eta, stride, ws);
    // The labels of a plate: each component's terms once per block of factors.
    ForEachLogLikelihood(begin, end, q, [&](size_t n, int k, double log_likelihood) {
      eta[(n - begin) * stride + k] += log_likelihood;
    });
  }

  double AverageEnergy(size_t begin, size_t end, const SlotView* q, Workspace&) const override {
    double energy = 0.0;
    ForEachLogLikelihood(begin, end, q, [&](size_t n, int k, double log_likelihood) {
      const double r = q[kSwitch].At(n)[k];
      if (r != 0.0) energy -= r * log_likelihood;
    });
    return energy;
  }

  /// The component's density N(out | μ_k, Λ_k⁻¹) at the switch's outcome k (a scalar is the
  /// D = 1 case: its statistics start with x and τ).
  double LogFactor(size_t n, const SlotView* q, Workspace&) const override {
    const int k = point_values::Outcome(k_, q[kSwitch].At(n));
    return MvGaussian(point_values::Vec(dim_, q[Mean(k)].At(n)),
                      point_values::Mat(dim_, q[Precision(k)].At(n)))
        .LogDensity(point_values::Vec(dim_, q[kOut].At(n)));
  }

 private:
  enum { kOut = 0, kSwitch = 1 };
  static constexpr int kMaxDim = 16;
  int Mean(int k) const { return 2 + k; }
  int Precision(int k) const { return 2 + k_ + k; }

  /// Calls f(std::integral_constant<int, D>) with D = dim_ for D = 1, 2, 3 and D = 0 (the
  /// size read at run time) otherwise: the one place the fixed-size loops are chosen.
  template <class F>
  void WithFixedDim(F f) const {
    switch (dim_) {
      case 1: return f(std::integral_constant<int, 1>());
      case 2: return f(std::integral_constant<int, 2>());
      case 3: return f(std::integral_constant<int, 3>());
      default: return f(std::integral_constant<int, 0>());
    }
  }

  /// Σ_n r_nk, Σ_n r_nk E[out_n] and (with `second`) Σ_n r_nk E[out_n out_nᵀ] over
  /// [begin, end): dimension D, or dim_ when D = 0.
  template <int D>
  void SumStatistics(size_t begin, size_t end, const SlotView* q, int k, bool second,
                     double* r_sum, double* ry, double* ryy) const {
    const int d = D > 0 ? D : dim_;
    double sum = 0.0, first_sum[D > 0 ? D : kMaxDim] = {};
    double second_sum[D > 0 ? D * D : kMaxDim * kMaxDim] = {};
    for (size_t n = begin; n < end; ++n) {
      const double r = q[kSwitch].At(n)[k];
      const double* y = q[kOut].At(n);
      sum += r;
      for (int i = 0; i < d; ++i) first_sum[i] += r * y[i];
      if (second)
        for (int i = 0; i < d * d; ++i) second_sum[i] += r * y[d + i];
    }
    *r_sum = sum;
    std::copy_n(first_sum, d, ry);
    if (second) std::copy_n(second_sum, d * d, ryy);
  }

  /// What E[log N(out | μ_k, Λ_k⁻¹)] needs of component k, with Λ = E[Λ_k], b = Λ E[μ_k]:
  ///   E[log N] = c − ½ tr(Λ E[out outᵀ]) + E[out]ᵀ b,
  ///   c = ½ E[log|Λ_k|] − (D/2) log 2π − ½ tr(Λ E[μ_k μ_kᵀ])   (Λ symmetric).
  struct Component {
    const double* lambda;
    double b[kMaxDim];
    double c;
  };
  /// Component k's terms at factor n; dimension D, or dim_ when D = 0 (as in SumStatistics).
  template <int D>
  Component ComponentAt(const SlotView* q, size_t n, int k) const {
    const int d = D > 0 ? D : dim_;
    const double* m = q[Mean(k)].At(n);
    Component component;
    component.lambda = q[Precision(k)].At(n);
    double trace = 0.0;
    for (int i = 0; i < d; ++i) {
      component.b[i] = 0.0;
      for (int j = 0; j < d; ++j) {
        component.b[i] += component.lambda[i + j * d] * m[j];
        trace += component.lambda[j + i * d] * m[d + i + j * d];
      }
    }
    component.c = 0.5 * component.lambda[d * d] - 0.5 * d * kLog2Pi - 0.5 * trace;
    return component;
  }
  template <int D>
  double LogLikelihood(const Component& component, const double* out) const {
    const int d = D > 0 ? D : dim_;
    double quadratic = 0.0, linear = 0.0;
    for (int i = 0; i < d; ++i) {
      linear += out[i] * component.b[i];
      for (int j = 0; j < d; ++j) quadratic += component.lambda[j + i * d] * out[d + i + j * d];
    }
    return component.c - 0.5 * quadratic + linear;
  }
  /// Calls visit(n, k, E[log N(out_n | μ_k, Λ_k⁻¹)]) for n in [begin, end), k = 0..K−1. With
  /// shared components (one μ_k, Λ_k for the plate) their terms are computed once per block
  /// of factors, not once per factor.
  template <class Visit>
  void ForEachLogLikelihood(size_t begin, size_t end, const SlotView* q, Visit visit) const {
    WithFixedDim([&](auto fixed) {  // fixed sizes let the compiler unroll the D × D loops
      ForEachLogLikelihoodOf<decltype(fixed)::value>(begin, end, q, visit);
    });
  }
  template <int D, class Visit>
  void ForEachLogLikelihoodOf(size_t begin, size_t end, const SlotView* q, Visit& visit) const {
    constexpr size_t kBlock = 64;
    for (size_t first = begin; first < end; first += kBlock) {
      const size_t last = std::min(end, first + kBlock);
      for (int k = 0; k < k_; ++k) {
        if (shared_components_) {
          const Component component = ComponentAt<D>(q, first, k);
          for (size_t n = first; n < last; ++n)
            visit(n, k, LogLikelihood<D>(component, q[kOut].At(n)));
        } else {
          for (size_t n = first; n < last; ++n)
            visit(n, k, LogLikelihood<D>(ComponentAt<D>(q, n, k), q[kOut].At(n)));
        }
      }
    }
  }

  int k_;
  int dim_ = 1;
  bool shared_components_ = false;  // every mean and precision slot is shared by the plate
};

}  // namespace

std::unique_ptr<Node> MakeGaussianMixtureNode(int num_components) {
  return std::make_unique<GaussianMixtureNode>(num_components);
}

}  // namespace vfe
