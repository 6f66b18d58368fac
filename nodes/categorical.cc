#include "nodes/node_checks.h"
#include "vfe/distributions/categorical.h"
#include "vfe/distributions/point_values.h"
#include "vfe/nodes/nodes.h"

namespace vfe {
namespace {

enum Slot { kOut = 0, kP = 1 };

/// Categorical(out | p) over K outcomes, p a Dirichlet variable or constant probabilities:
///   log f = Σ_k x_k log p_k.
/// Messages: to out, E[log p]; to p, E[x] (Dirichlet's statistic is log p).
class CategoricalNode final : public Node {
 public:
  const char* type() const override { return "Categorical"; }
  std::vector<std::string> slot_names() const override { return {"out", "p"}; }
  Family ObservedFamily(int slot, const PointMass&) const override {
    return slot == kOut ? Family::kCategorical : Family::kDirichlet;
  }
  void Bind(const std::vector<SlotInfo>& slots, size_t, const std::string& where) override {
    RequireFamily(slots[kOut], {Family::kCategorical}, where);
    RequireFamily(slots[kP], {Family::kDirichlet}, where);
    RequireDim(slots[kP], slots[kOut].dim, where);
    dim_ = slots[kOut].dim;
    p_constant_ = slots[kP].observed;
  }

  void AccumulateMessage(int slot, size_t begin, size_t end, const SlotView* q, double* eta,
                         Workspace&) const override {
    const SlotView from = slot == kOut ? q[kP] : q[kOut];
    for (size_t n = begin; n < end; ++n) {
      const double* m = from.At(n);
      for (int k = 0; k < dim_; ++k) eta[k] += m[k];
    }
  }

  double AverageEnergy(size_t begin, size_t end, const SlotView* q, Workspace&) const override {
    const SlotView out = q[kOut], p = q[kP];
    double energy = 0.0;
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
  int dim_ = 1;
  bool p_constant_ = false;
};

}  // namespace

std::unique_ptr<Node> MakeCategoricalNode() { return std::make_unique<CategoricalNode>(); }

}  // namespace vfe
