#include <algorithm>
#include <cmath>
#include <type_traits>

#include "nodes/chunk_cache.h"
#include "nodes/declare.h"
#include "nodes/node_checks.h"
#include "vfe/core/special.h"
#include "vfe/distributions/mv_gaussian.h"
#include "vfe/distributions/point_values.h"
#include "vfe/nodes/nodes.h"

namespace vfe {

const NodeType& GaussianMixtureNodeType();

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
/// The messages to a shared mean or precision need Σ_n r_nk, Σ_n r_nk E[out_n] and
/// Σ_n r_nk E[out_n out_nᵀ], and so does U when every component is shared (η_k is affine in
/// E[out], E[out outᵀ]): the node keeps these sums per chunk of factors (ChunkCache) for all
/// components at once, computed in one pass and reused until the out or switch variable
/// changes (TracksChanges), so that the K means, the K precisions and F share one pass.
class GaussianMixtureNode final : public Node {
 public:
  explicit GaussianMixtureNode(int num_components) : k_(num_components) {}
  const char* type() const override { return GaussianMixtureNodeType().name.c_str(); }
  std::vector<std::string> slot_names() const override {
    const size_t k = static_cast<size_t>(std::max(k_, 0));
    return GaussianMixtureNodeType().SlotNames({{"means", k}, {"precisions", k}});
  }
  Family ObservedFamily(int slot, const PointMass& value) const override {
    if (slot == kSwitch) return Family::kCategorical;
    if (slot >= 2 + k_) return value.is_scalar() ? Family::kGamma : Family::kWishart;
    return value.is_scalar() ? Family::kGaussian : Family::kMvGaussian;
  }

  void Bind(const std::vector<SlotInfo>& slots, size_t, const std::string& where) override {
    if (k_ < 1) throw GraphError(where + ": a mixture needs at least one component, got " +
                                 std::to_string(k_));
    RequireDeclaredFamilies(GaussianMixtureNodeType(), slots, where);
    const bool scalar = slots[kOut].family == Family::kGaussian;
    dim_ = slots[kOut].dim;
    if (dim_ > kMaxDim)
      throw GraphError(where + ": components of dimension at most " + std::to_string(kMaxDim) +
                       " are supported, got " + std::to_string(dim_));
    RequireDim(slots[kSwitch], k_, where, "one outcome per component");
    shared_components_ = true;
    for (int k = 0; k < k_; ++k) {
      shared_components_ = shared_components_ && slots[Mean(k)].shared && slots[Precision(k)].shared;
      RequireFamily(slots[Mean(k)], {scalar ? Family::kGaussian : Family::kMvGaussian}, where);
      RequireDim(slots[Mean(k)], dim_, where, DimensionOf(slots[kOut]));
      RequireFamily(slots[Precision(k)], {scalar ? Family::kGamma : Family::kWishart}, where);
      RequireDim(slots[Precision(k)], dim_, where, DimensionOf(slots[kOut]));
    }
  }

  bool TracksChanges(int slot) const override { return slot == kOut || slot == kSwitch; }

  std::vector<std::vector<int>> ComponentSlots() const override {
    std::vector<std::vector<int>> components;
    for (int k = 0; k < k_; ++k) components.push_back({Mean(k), Precision(k)});
    return components;
  }

  void Prepare(const SlotView*, size_t num_factors) override {
    per_component_ = 1 + dim_ + dim_ * dim_;
    cache_.Reset(num_factors, k_ * per_component_);
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
    double sums[kMaxSums];
    ComponentSums(k, begin, end, q, sums);
    const double r_sum = sums[0];
    const double* ry = sums + 1;
    const double* ryy = sums + 1 + d;
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

  void AccumulateMessages(int slot, size_t begin, size_t end, size_t step, const SlotView* q,
                          double* eta, size_t stride, Workspace& ws) const override {
    if (slot != kSwitch || step != 1)
      return Node::AccumulateMessages(slot, begin, end, step, q, eta, stride, ws);
    // The labels of a plate: each component's terms once per block of factors.
    ForEachLogLikelihood(begin, end, q, [&](size_t n, int k, double log_likelihood) {
      eta[(n - begin) * stride + k] += log_likelihood;
    });
  }

  double AverageEnergy(size_t begin, size_t end, const SlotView* q, Workspace&) const override {
    double energy = 0.0;
    if (shared_components_ && end > begin) {
      // U = −Σ_k (c_k Σ_n r_nk − ½ tr(Λ_k Σ_n r_nk E[out_n out_nᵀ]) + b_kᵀ Σ_n r_nk E[out_n]).
      WithFixedDim([&](auto fixed) {
        constexpr int D = decltype(fixed)::value;
        for (int k = 0; k < k_; ++k) {
          double sums[kMaxSums];
          ComponentSums(k, begin, end, q, sums);
          const Component component = ComponentAt<D>(q, begin, k);
          energy -= component.c * sums[0] + DataTerm<D>(component, sums + 1);
        }
      });
      return energy;
    }
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

  /// The most numbers of one component's sums: Σ r, Σ r E[out] (D), Σ r E[out outᵀ] (D²).
  static constexpr int kMaxSums = 1 + kMaxDim + kMaxDim * kMaxDim;

  /// Component k's sums over factors [begin, end) into sums[0, per_component_): Σ_n r_nk,
  /// then Σ_n r_nk E[out_n], then Σ_n r_nk E[out_n out_nᵀ] (out's layout). Whole chunks come
  /// from the cache, which sums every component of a chunk in one pass.
  void ComponentSums(int k, size_t begin, size_t end, const SlotView* q, double* sums) const {
    std::fill_n(sums, per_component_, 0.0);
    WithFixedDim([&](auto fixed) {
      constexpr int D = decltype(fixed)::value;
      auto part = [&](size_t b, size_t e) { SumComponent<D>(k, b, e, q, sums); };
      if (!cache_.Usable(q[kOut], q[kSwitch])) return part(begin, end);
      cache_.Visit(
          begin, end, q[kOut], q[kSwitch],
          [&](size_t b, size_t e, double* all) { SumAllComponents<D>(b, e, q, all); },
          [&](const double* all) {
            const double* component = all + k * per_component_;
            for (size_t i = 0; i < per_component_; ++i) sums[i] += component[i];
          },
          part);
    });
  }
  /// Adds component k's sums over [begin, end) to `sums`; dimension D, or dim_ when D = 0.
  template <int D>
  void SumComponent(int k, size_t begin, size_t end, const SlotView* q, double* sums) const {
    const int d = D > 0 ? D : dim_;
    double sum = 0.0, first_sum[D > 0 ? D : kMaxDim] = {};
    double second_sum[D > 0 ? D * D : kMaxDim * kMaxDim] = {};
    for (size_t n = begin; n < end; ++n) {
      const double r = q[kSwitch].At(n)[k];
      const double* y = q[kOut].At(n);
      sum += r;
      for (int i = 0; i < d; ++i) first_sum[i] += r * y[i];
      for (int i = 0; i < d * d; ++i) second_sum[i] += r * y[d + i];
    }
    sums[0] += sum;
    for (int i = 0; i < d; ++i) sums[1 + i] += first_sum[i];
    for (int i = 0; i < d * d; ++i) sums[1 + d + i] += second_sum[i];
  }
  /// Adds every component's sums over [begin, end) to sums (component k's at
  /// k · per_component_). One component at a time, with the sums of even and odd factors in
  /// registers of their own (fixed D), so that no sum waits on its last store or addition.
  template <int D>
  void SumAllComponents(size_t begin, size_t end, const SlotView* q, double* sums) const {
    if (D == 0) {
      for (int k = 0; k < k_; ++k) SumComponent<D>(k, begin, end, q, sums + k * per_component_);
      return;
    }
    constexpr int kPer = 1 + (D > 0 ? D + D * D : 0);
    for (int k = 0; k < k_; ++k) {
      double even[kPer] = {}, odd[kPer] = {};
      size_t n = begin;
      for (; n + 2 <= end; n += 2) {
        const double r0 = q[kSwitch].At(n)[k], r1 = q[kSwitch].At(n + 1)[k];
        const double* y0 = q[kOut].At(n);
        const double* y1 = q[kOut].At(n + 1);
        even[0] += r0;
        odd[0] += r1;
        for (int i = 0; i + 1 < kPer; ++i) {
          even[1 + i] += r0 * y0[i];
          odd[1 + i] += r1 * y1[i];
        }
      }
      if (n < end) {
        const double r0 = q[kSwitch].At(n)[k];
        const double* y0 = q[kOut].At(n);
        even[0] += r0;
        for (int i = 0; i + 1 < kPer; ++i) even[1 + i] += r0 * y0[i];
      }
      double* sum = sums + k * per_component_;
      for (int i = 0; i < kPer; ++i) sum[i] += even[i] + odd[i];
    }
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
    return component.c + DataTerm<D>(component, out);
  }
  /// −½ tr(Λ T₂) + T₁ᵀ b for statistics T = (T₁, T₂) in out's layout: the part of
  /// E[log N] that depends on out, and, for sums of r·T, the same part of Σ r E[log N].
  template <int D>
  double DataTerm(const Component& component, const double* out) const {
    const int d = D > 0 ? D : dim_;
    double quadratic = 0.0, linear = 0.0;
    for (int i = 0; i < d; ++i) {
      linear += out[i] * component.b[i];
      for (int j = 0; j < d; ++j) quadratic += component.lambda[j + i * d] * out[d + i + j * d];
    }
    return linear - 0.5 * quadratic;
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
  // The sums of ComponentSums by chunk of factors: every component's, one after another.
  size_t per_component_ = 0;
  ChunkCache cache_;
};

}  // namespace

std::unique_ptr<Node> MakeGaussianMixtureNode(int num_components) {
  return std::make_unique<GaussianMixtureNode>(num_components);
}


const NodeType& GaussianMixtureNodeType() {
  static const NodeType type = [] {
    using namespace declare;
    NodeType t;
    t.name = "GaussianMixture";
    t.summary = "out ~ N(means[k], precisions[k]⁻¹) with k ~ switch: a mixture of K Gaussians";
    t.formula = "U = −Σ_k E[z_k] (½ E[log|Λ_k|] − (D/2) log 2π − ½ tr(E[Λ_k] E[(out − μ_k)(out − "
                "μ_k)ᵀ]))";
    t.parameters = {
        Variable("out", "the data point (scalar or D-vector)",
                 {Family::kGaussian, Family::kMvGaussian}),
        Variable("switch", "the component, Categorical with K outcomes", {Family::kCategorical}),
        WholeArray("means", "the K component means (an array variable, all of it)",
                   {Family::kGaussian, Family::kMvGaussian}),
        WholeArray("precisions", "the K component precisions (an array variable, all of it)",
                   {Family::kGamma, Family::kWishart})};
    t.make = [](const NodeArguments& a) {
      const size_t k = a.count("means");
      if (a.count("precisions") != k)
        a.Fail("precisions", "expected " + std::to_string(k) + " precisions (one per mean), found " +
                                 std::to_string(a.count("precisions")));
      return MakeGaussianMixtureNode(static_cast<int>(k));
    };
    t.example = R"json({
  "format": "vfe-model/1",
  "variables": [
    {"name": "pi", "family": "Dirichlet", "dim": 2},
    {"name": "mu", "family": "Gaussian", "shape": [2]},
    {"name": "tau", "family": "Gamma", "shape": [2]},
    {"name": "z", "family": "Categorical", "dim": 2, "shape": [6]},
    {"name": "y", "observed": [-2.1, -1.8, -2.4, 1.9, 2.3, 2.0]}
  ],
  "factors": [
    {"node": "Dirichlet", "out": "pi", "alpha": [1.0, 1.0]},
    {"node": "Gaussian", "for": {"k": [0, 2]}, "out": "mu[k]", "mean": 0.0, "precision": 0.1},
    {"node": "Gamma", "for": {"k": [0, 2]}, "out": "tau[k]", "shape": 2.0, "rate": 1.0},
    {"node": "Categorical", "for": {"n": [0, 6]}, "out": "z[n]", "p": "pi"},
    {"node": "GaussianMixture", "for": {"n": [0, 6]}, "out": "y[n]", "switch": "z[n]",
     "means": "mu", "precisions": "tau"}
  ],
  "inference": {"initial": {"z": [{"p": [0.9, 0.1]}, {"p": [0.8, 0.2]}, {"p": [0.7, 0.3]},
                                  {"p": [0.3, 0.7]}, {"p": [0.2, 0.8]}, {"p": [0.1, 0.9]}]}}
})json";
    return t;
  }();
  return type;
}

}  // namespace vfe
