// Poisson(out | rate): counts with a Gamma-distributed rate (conjugate), or with a log-linear
// rate exp(r·in + offset) of a Gaussian in (count regression, by CVI steps in closed form).

#include <cmath>

#include "nodes/declare.h"
#include "nodes/linear_predictor.h"
#include "nodes/node_checks.h"
#include "vfe/core/format.h"
#include "vfe/core/special.h"
#include "vfe/distributions/point_values.h"

namespace vfe {

const NodeType& PoissonNodeType();

namespace {

enum Slot { kOut = 0, kRate = 1, kIn = 1 };  // slot 1 is the rate or, with the log link, in

/// Factor n's observed count; throws ModelError unless it is an integer >= 0. Both forms of
/// the node check their data here, in Prepare, where they first see them.
double CheckedCount(const SlotView* q, size_t n) {
  const double y = q[kOut].At(n)[0];
  if (!(y >= 0) || y != std::floor(y))
    throw ModelError("'out' expects counts (integers >= 0), got " + FormatNumber(y) +
                     " at factor " + std::to_string(n));
  return y;
}

/// Poisson(y | λ) = λ^y e^−λ / y! for observed counts y, the rate λ a Gamma variable or a
/// constant. With Gamma's statistics T(λ) = (λ, log λ):
///   log f = y E[log λ] − E[λ] − log y!
///   message to λ: (−1, y) per factor: a Gamma(shape + y, rate + 1) update
///   U = E[λ] − y E[log λ] + log Γ(y + 1).
/// When the counts vary over the plate and the rate is shared, Prepare sums y and log y! once,
/// so that messages and U cost O(1) per sweep.
class PoissonNode final : public Node {
 public:
  const char* type() const override { return PoissonNodeType().name.c_str(); }
  std::vector<std::string> slot_names() const override {
    return PoissonNodeType().SlotNames({{"in", 0}});
  }
  // Counts are read as Gaussian data, whose statistics start with the value itself.
  Family ObservedFamily(int slot, const PointMass&) const override {
    return slot == kOut ? Family::kGaussian : Family::kGamma;
  }

  void Bind(const std::vector<SlotInfo>& slots, size_t, const std::string& where) override {
    if (!slots[kOut].observed)
      throw GraphError(where + ": 'out' expects observed counts, got " + slots[kOut].variable +
                       " (" + FamilyName(slots[kOut].family) + ")");
    RequireDeclaredFamilies(PoissonNodeType(), slots, where);
    cached_ = !slots[kOut].shared && slots[kRate].shared;
  }

  void Prepare(const SlotView* q, size_t num_factors) override {
    sum_y_ = sum_log_factorial_ = 0.0;
    for (size_t n = 0; n < num_factors; ++n) {
      const double y = CheckedCount(q, n);
      sum_y_ += y;
      sum_log_factorial_ += LogGamma(y + 1);
    }
    count_ = num_factors;
  }
  bool SumsCached() const override { return cached_; }

  void AccumulateMessage(int slot, size_t begin, size_t end, const SlotView* q, double* eta,
                         Workspace&) const override {
    if (slot != kRate) return;  // counts are observed: nothing is sent to them
    if (UseSums(begin, end)) {
      eta[0] -= static_cast<double>(count_);
      eta[1] += sum_y_;
      return;
    }
    for (size_t n = begin; n < end; ++n) {
      eta[0] -= 1.0;
      eta[1] += q[kOut].At(n)[0];
    }
  }

  double AverageEnergy(size_t begin, size_t end, const SlotView* q, Workspace&) const override {
    if (UseSums(begin, end)) {
      const double* rate = q[kRate].At(0);
      return static_cast<double>(count_) * rate[0] - sum_y_ * rate[1] + sum_log_factorial_;
    }
    double energy = 0.0;
    for (size_t n = begin; n < end; ++n) {
      const double y = q[kOut].At(n)[0];
      const double* rate = q[kRate].At(n);
      energy += rate[0] - y * rate[1] + LogGamma(y + 1);
    }
    return energy;
  }

  double LogFactor(size_t n, const SlotView* q, Workspace&) const override {
    const double y = point_values::Scalar(q[kOut].At(n));
    const double rate = point_values::Scalar(q[kRate].At(n));
    return y * std::log(rate) - rate - LogGamma(y + 1);
  }

 private:
  bool UseSums(size_t begin, size_t end) const { return cached_ && begin == 0 && end == count_; }
  bool cached_ = false;
  double sum_y_ = 0.0, sum_log_factorial_ = 0.0;
  size_t count_ = 0;
};

/// Poisson(y | eᵃ) with the predictor a = rₙᵀ·w + oₙ (nodes/linear_predictor.h):
///   g(a) = log f = y a − eᵃ − log y!,  g' = y − eᵃ,  g'' = −eᵃ.
/// Under q the predictor is N(aₘ, aᵥ) and E[eᵃ] = exp(aₘ + aᵥ/2) (the log-normal mean), so
/// U = E[eᵃ] − y aₘ + log Γ(y + 1) and the CVI message to w (E[g'] = y − E[eᵃ],
/// E[g''] = −E[eᵃ]) are closed forms: the free energy is exact. The message depends on q(w):
/// the engine takes natural-gradient steps and backtracks on F (Node::StepsOnFreeEnergy).
class PoissonLogNode final : public Node {
 public:
  explicit PoissonLogNode(LinearPredictor predictor) : predictor_(std::move(predictor)) {}
  const char* type() const override { return PoissonNodeType().name.c_str(); }
  std::vector<std::string> slot_names() const override {
    return PoissonNodeType().SlotNames({{"rate", 0}});
  }
  Family ObservedFamily(int slot, const PointMass& value) const override {
    return slot == kOut || value.is_scalar() ? Family::kGaussian : Family::kMvGaussian;
  }

  void Bind(const std::vector<SlotInfo>& slots, size_t num_factors,
            const std::string& where) override {
    if (!slots[kOut].observed)
      throw GraphError(where + ": 'out' expects observed counts, got " + slots[kOut].variable +
                       " (" + FamilyName(slots[kOut].family) + ")");
    RequireDeclaredFamilies(PoissonNodeType(), slots, where);
    predictor_.Bind(slots[kIn], num_factors, where);
  }

  void Prepare(const SlotView* q, size_t num_factors) override {
    log_factorials_.resize(num_factors);
    for (size_t n = 0; n < num_factors; ++n)
      log_factorials_[n] = LogGamma(CheckedCount(q, n) + 1);
  }

  bool StepsOnFreeEnergy(int slot) const override { return slot == kIn; }

  void AccumulateMessage(int slot, size_t begin, size_t end, const SlotView* q, double* eta,
                         Workspace& ws) const override {
    if (slot != kIn) return;  // counts are observed: nothing is sent to them
    const LinearPredictor::Shared shared = predictor_.SharedMoments(q[kIn], ws);
    for (size_t n = begin; n < end; ++n) {
      const LinearPredictor::Moments a = predictor_.Predict(n, q[kIn], shared);
      const double rate = std::exp(a.mean + 0.5 * a.variance);
      predictor_.AddMessage(n, a, q[kOut].At(n)[0] - rate, -rate, eta);
    }
  }

  double AverageEnergy(size_t begin, size_t end, const SlotView* q,
                       Workspace& ws) const override {
    const LinearPredictor::Shared shared = predictor_.SharedMoments(q[kIn], ws);
    double energy = 0.0;
    for (size_t n = begin; n < end; ++n) {
      const LinearPredictor::Moments a = predictor_.Predict(n, q[kIn], shared);
      energy += std::exp(a.mean + 0.5 * a.variance) - q[kOut].At(n)[0] * a.mean +
                log_factorials_[n];
    }
    return energy;
  }

  double LogFactor(size_t n, const SlotView* q, Workspace&) const override {
    const double y = point_values::Scalar(q[kOut].At(n));
    const double a = predictor_.At(n, q[kIn].At(n));
    return y * a - std::exp(a) - LogGamma(y + 1);
  }

 private:
  LinearPredictor predictor_;
  std::vector<double> log_factorials_;
};

/// The predictive mean count E[y] = E[exp(a)] = exp(m + v/2) (the log-normal mean).
void PoissonPredictiveMeans(const double* mean, const double* variance, size_t count,
                            double* out) {
  for (size_t k = 0; k < count; ++k) out[k] = std::exp(mean[k] + 0.5 * variance[k]);
}

}  // namespace

const NodeType& PoissonNodeType() {
  static const NodeType type = [] {
    using namespace declare;
    NodeType t;
    t.name = "Poisson";
    t.summary = "out ~ Poisson(rate): observed counts, the rate a Gamma variable or a constant, "
                "or exp(matrix·in + offset) for a Gaussian in (count regression)";
    t.formula = "U = E[λ] − y E[log λ] + log Γ(y + 1); log link: U = exp(E[a] + Var[a]/2) − "
                "y E[a] + log Γ(y + 1), a = r·in + offset";
    Parameter offset = Optional(Constant("offset", "o added to the log-rate (a log exposure): a "
                                                   "number or one per factor (log link)",
                                         ConstantKind::kNumber));
    offset.rows_per_factor = true;
    t.parameters = {
        Variable("out", "the observed count y (an integer >= 0)", {}),
        Optional(VariableOrConstant("rate", "the rate λ > 0", {Family::kGamma},
                                    ConstantKind::kPositiveNumber)),
        Optional(NotConjugate(Variable("in", "the log-rate, or the K weights the row multiplies",
                                       {Family::kGaussian, Family::kMvGaussian}))),
        PredictorMatrixParameter("log-rate (log link)"), offset};
    t.exactly_one_of = {{"rate", "in"}};
    t.predictive_means = PoissonPredictiveMeans;
    t.predictive_formula = "E[out] = E_q[exp(a)] = exp(E[a] + Var[a]/2) (log link)";
    t.make = [](const NodeArguments& a) -> std::unique_ptr<Node> {
      if (a.given("rate")) {
        for (const char* log_link_only : {"matrix", "offset"})
          if (a.given(log_link_only))
            a.Fail(log_link_only, "applies to the log link only ('in'), not with 'rate'");
        return std::make_unique<PoissonNode>();
      }
      return std::make_unique<PoissonLogNode>(LinearPredictor(a));
    };
    t.example = R"json({
  "format": "vfe-model/1",
  "variables": [
    {"name": "rate", "family": "Gamma"},
    {"name": "y", "observed": [3, 1, 4, 1, 5, 9, 2]},
    {"name": "w", "family": "MvGaussian", "dim": 2},
    {"name": "X", "shape": [5], "dim": 2, "observed": [[1, 0], [1, 0.5], [1, 1], [1, 1.5], [1, 2]]},
    {"name": "log_exposure", "observed": [0, 0, 0.7, 0, 0.7]},
    {"name": "counts", "observed": [1, 2, 6, 4, 12]}
  ],
  "factors": [
    {"node": "Gamma", "out": "rate", "shape": 2.0, "rate": 0.5},
    {"node": "Poisson", "for": {"i": [0, 7]}, "out": "y[i]", "rate": "rate"},
    {"node": "MvGaussian", "out": "w", "mean": [0, 0], "precision": [[1, 0], [0, 1]]},
    {"node": "Poisson", "for": {"n": [0, 5]}, "out": "counts[n]", "in": "w", "matrix": "X[n]",
     "offset": "log_exposure[n]"}
  ]
})json";
    return t;
  }();
  return type;
}

}  // namespace vfe
