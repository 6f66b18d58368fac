#include "nodes/declare.h"
#include "nodes/node_checks.h"
#include "vfe/distributions/bernoulli.h"
#include "vfe/distributions/point_values.h"
#include "vfe/nodes/nodes.h"

namespace vfe {

const NodeType& BernoulliNodeType();

namespace {

enum Slot { kOut = 0, kP = 1 };

/// Bernoulli(out | p) with p a Beta variable or a constant:
///   log f = x log p + (1 − x) log(1 − p).
/// Messages: to out, the log-odds E[log p] − E[log(1 − p)]; to p, (E[x], 1 − E[x]) in Beta's
/// statistics (log p, log(1 − p)).
class BernoulliNode final : public Node {
 public:
  const char* type() const override { return BernoulliNodeType().name.c_str(); }
  std::vector<std::string> slot_names() const override { return BernoulliNodeType().SlotNames(); }
  Family ObservedFamily(int slot, const PointMass&) const override {
    return slot == kOut ? Family::kBernoulli : Family::kBeta;
  }
  void Bind(const std::vector<SlotInfo>& slots, size_t, const std::string& where) override {
    RequireDeclaredFamilies(BernoulliNodeType(), slots, where);
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


const NodeType& BernoulliNodeType() {
  static const NodeType type = [] {
    using namespace declare;
    NodeType t;
    t.name = "Bernoulli";
    t.summary = "out ~ Bernoulli(p): 0 or 1, 1 with probability p";
    t.formula = "U = −E[x] E[log p] − (1 − E[x]) E[log(1 − p)]";
    t.parameters = {Variable("out", "the binary variable (data: 0 or 1)", {Family::kBernoulli}),
                    VariableOrConstant("p", "the probability of 1", {Family::kBeta},
                                       ConstantKind::kProbability)};
    t.make = [](const NodeArguments&) { return MakeBernoulliNode(); };
    t.example = R"json({
  "format": "vfe-model/1",
  "variables": [
    {"name": "p", "family": "Beta"},
    {"name": "b", "family": "Bernoulli"},
    {"name": "x", "observed": [1, 0, 1, 1, 0, 1]}
  ],
  "factors": [
    {"node": "Beta", "out": "p", "a": 2.0, "b": 3.0},
    {"node": "Bernoulli", "out": "b", "p": "p"},
    {"node": "Bernoulli", "for": {"i": [0, 6]}, "out": "x[i]", "p": "p"}
  ]
})json";
    return t;
  }();
  return type;
}

}  // namespace vfe
