#include "nodes/node_checks.h"
#include "vfe/distributions/bernoulli.h"
#include "vfe/distributions/point_values.h"
#include "vfe/nodes/nodes.h"

namespace vfe {
namespace {

enum Slot { kOut = 0, kP = 1 };

/// Bernoulli(out | p) with p a Beta variable or a constant:
///   log f = x log p + (1 − x) log(1 − p).
/// Messages: to out, the log-odds E[log p] − E[log(1 − p)]; to p, (E[x], 1 − E[x]) in Beta's
/// statistics (log p, log(1 − p)).
class BernoulliNode final : public Node {
 public:
  const char* type() const override { return "Bernoulli"; }
  std::vector<std::string> slot_names() const override { return {"out", "p"}; }
  Family ObservedFamily(int slot, const PointMass&) const override {
    return slot == kOut ? Family::kBernoulli : Family::kBeta;
  }
  void Bind(const std::vector<SlotInfo>& slots, size_t, const std::string& where) override {
    RequireFamily(slots[kOut], {Family::kBernoulli}, where);
    RequireFamily(slots[kP], {Family::kBeta}, where);
  }

  void AccumulateMessage(int slot, size_t begin, size_t end, const SlotView* q, double* eta,
                         Workspace&) const override {
    const SlotView out = q[kOut], p = q[kP];
    if (slot == kOut) {
      SumFactors<1>(begin, end, [=](size_t n, double* sum) {
        const double* log_p = p.At(n);
        sum[0] += log_p[0] - log_p[1];
      }, eta);
    } else {
      SumFactors<2>(begin, end, [=](size_t n, double* sum) {
        const double x = out.At(n)[0];
        sum[0] += x;
        sum[1] += 1.0 - x;
      }, eta);
    }
  }

  double AverageEnergy(size_t begin, size_t end, const SlotView* q, Workspace&) const override {
    const SlotView out = q[kOut], p = q[kP];
    double energy = 0.0;
    SumFactors<1>(begin, end, [=](size_t n, double* sum) {
      const double x = out.At(n)[0];
      const double* log_p = p.At(n);
      // A certain outcome does not read the log of the impossible one (0·(−∞) counts 0).
      if (x != 0.0) sum[0] -= x * log_p[0];
      if (x != 1.0) sum[0] -= (1.0 - x) * log_p[1];
    }, &energy);
    return energy;
  }

  double LogFactor(size_t n, const SlotView* q, Workspace&) const override {
    return Bernoulli(point_values::Probability(q[kP].At(n)))
        .LogDensity(point_values::Scalar(q[kOut].At(n)));
  }
};

}  // namespace

std::unique_ptr<Node> MakeBernoulliNode() { return std::make_unique<BernoulliNode>(); }

}  // namespace vfe
