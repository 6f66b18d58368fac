#include <algorithm>

#include "nodes/chunk_cache.h"
#include "nodes/declare.h"
#include "nodes/node_checks.h"
#include "vfe/distributions/categorical.h"
#include "vfe/distributions/point_values.h"
#include "vfe/nodes/nodes.h"

namespace vfe {

const NodeType& CategoricalNodeType();

namespace {

enum Slot { kOut = 0, kP = 1 };

/// Categorical(out | p) over K outcomes, p a Dirichlet variable or constant probabilities:
///   log f = Σ_k x_k log p_k.
/// Messages: to out, E[log p]; to p, E[x] (Dirichlet's statistic is log p).
/// With one p for the plate, the message to p and U = −Σ_k E[log p_k] Σ_n x_nk need the same
/// sums Σ_n x_n, kept per chunk of factors (ChunkCache) until out changes.
class CategoricalNode final : public Node {
 public:
  const char* type() const override { return CategoricalNodeType().name.c_str(); }
  std::vector<std::string> slot_names() const override {
    return CategoricalNodeType().SlotNames();
  }
  Family ObservedFamily(int slot, const PointMass&) const override {
    return slot == kOut ? Family::kCategorical : Family::kDirichlet;
  }
  void Bind(const std::vector<SlotInfo>& slots, size_t, const std::string& where) override {
    RequireDeclaredFamilies(CategoricalNodeType(), slots, where);
    RequireDim(slots[kP], slots[kOut].dim, where, DimensionOf(slots[kOut]));
    dim_ = slots[kOut].dim;
    p_constant_ = slots[kP].observed;
    p_shared_ = slots[kP].shared;
  }

  bool TracksChanges(int slot) const override { return slot == kOut && p_shared_; }
  void Prepare(const SlotView*, size_t num_factors) override {
    if (p_shared_) cache_.Reset(num_factors, dim_);
  }

  void AccumulateMessage(int slot, size_t begin, size_t end, const SlotView* q, double* eta,
                         Workspace&) const override {
    if (slot == kP && p_shared_) return SumOutcomes(begin, end, q, eta);
    const SlotView from = slot == kOut ? q[kP] : q[kOut];
    for (size_t n = begin; n < end; ++n) {
      const double* m = from.At(n);
      for (int k = 0; k < dim_; ++k) eta[k] += m[k];
    }
  }

  /// One message per factor (a block of labels): the same additions as AccumulateMessage,
  /// without a call per factor.
  void AccumulateMessages(int slot, size_t begin, size_t end, size_t step, const SlotView* q,
                          double* eta, size_t stride, Workspace&) const override {
    const SlotView from = slot == kOut ? q[kP] : q[kOut];
    for (size_t n = begin; n < end; n += step, eta += stride) {
      const double* m = from.At(n);
      for (int k = 0; k < dim_; ++k) eta[k] += m[k];
    }
  }

  double AverageEnergy(size_t begin, size_t end, const SlotView* q, Workspace&) const override {
    const SlotView out = q[kOut], p = q[kP];
    double energy = 0.0;
    if (p_shared_) {  // −Σ_k log p_k Σ_n x_nk, terms with no x_nk > 0 counting 0
      double counts[kMaxCachedDim];
      if (dim_ <= kMaxCachedDim) {
        std::fill_n(counts, dim_, 0.0);
        SumOutcomes(begin, end, q, counts);
        const double* log_p = p.At(begin);
        for (int k = 0; k < dim_; ++k)
          if (counts[k] != 0.0) energy -= counts[k] * log_p[k];
        return energy;
      }
    }
    SumFactors<1>(begin, end, [&](size_t n, double* sum) {
      const double* x = out.At(n);
      const double* log_p = p.At(n);
      for (int k = 0; k < dim_; ++k)
        if (x[k] != 0.0) sum[0] -= x[k] * log_p[k];
    }, &energy);
    return energy;
  }

  /// With constant probabilities, the table log p over out (a Dirichlet point mass's
  /// statistic); with a Dirichlet variable p, none.
  const double* LogTable(size_t n, const SlotView* q) const override {
    return p_constant_ ? q[kP].At(n) : nullptr;
  }

  /// log p_k at the outcome k, p read back from its statistics log p (normalised again, so
  /// that a sampled p's rounding does not count).
  double LogFactor(size_t n, const SlotView* q, Workspace&) const override {
    return Categorical::FromNatural(ConstVectorMap(q[kP].At(n), dim_))
        .LogDensity(point_values::Outcome(dim_, q[kOut].At(n)));
  }

 private:
  static constexpr int kMaxCachedDim = 64;  ///< U from the sums up to this many outcomes

  /// Adds Σ_{n ∈ [begin, end)} E[x_n] to `sums`, whole chunks from the cache.
  void SumOutcomes(size_t begin, size_t end, const SlotView* q, double* sums) const {
    auto part = [&](size_t b, size_t e) {
      for (size_t n = b; n < e; ++n) {
        const double* x = q[kOut].At(n);
        for (int k = 0; k < dim_; ++k) sums[k] += x[k];
      }
    };
    if (!cache_.Usable(q[kOut], q[kOut])) return part(begin, end);
    cache_.Visit(
        begin, end, q[kOut], q[kOut],
        [&](size_t b, size_t e, double* chunk) {
          // One outcome at a time, even and odd factors in sums of their own (in registers).
          for (int k = 0; k < dim_; ++k) {
            double even = 0.0, odd = 0.0;
            size_t n = b;
            for (; n + 2 <= e; n += 2) {
              even += q[kOut].At(n)[k];
              odd += q[kOut].At(n + 1)[k];
            }
            if (n < e) even += q[kOut].At(n)[k];
            chunk[k] += even + odd;
          }
        },
        [&](const double* chunk) {
          for (int k = 0; k < dim_; ++k) sums[k] += chunk[k];
        },
        part);
  }

  int dim_ = 1;
  bool p_constant_ = false;
  bool p_shared_ = false;  // one p for every factor of the plate
  ChunkCache cache_;       // Σ_n E[x_n] by chunk of factors, when p_shared_
};

}  // namespace

std::unique_ptr<Node> MakeCategoricalNode() { return std::make_unique<CategoricalNode>(); }


const NodeType& CategoricalNodeType() {
  static const NodeType type = [] {
    using namespace declare;
    NodeType t;
    t.name = "Categorical";
    t.summary = "out ~ Categorical(p): one of K outcomes (data: integers 0..K−1)";
    t.formula = "U = −Σ_k E[x_k] E[log p_k]";
    t.parameters = {Variable("out", "the outcome", {Family::kCategorical}),
                    VariableOrConstant("p", "the probabilities of the K outcomes",
                                       {Family::kDirichlet}, ConstantKind::kProbabilities)};
    t.make = [](const NodeArguments&) { return MakeCategoricalNode(); };
    t.example = R"json({
  "format": "vfe-model/1",
  "variables": [
    {"name": "pi", "family": "Dirichlet", "dim": 3},
    {"name": "z", "family": "Categorical", "dim": 3, "shape": [2]},
    {"name": "c", "family": "Categorical", "dim": 3, "observed": [0, 2, 2, 1, 2]}
  ],
  "factors": [
    {"node": "Dirichlet", "out": "pi", "alpha": [1.0, 2.0, 1.5]},
    {"node": "Categorical", "for": {"i": [0, 2]}, "out": "z[i]", "p": "pi"},
    {"node": "Categorical", "for": {"i": [0, 5]}, "out": "c[i]", "p": "pi"}
  ]
})json";
    return t;
  }();
  return type;
}

}  // namespace vfe
