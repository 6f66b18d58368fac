// The prior a streaming run carries from step to step (nodes/carried_prior.h).

#include "nodes/carried_prior.h"

#include "nodes/node_checks.h"
#include "vfe/distributions/dispatch.h"

namespace vfe {

namespace {

/// η·m over the entries where neither is zero: 0·(−∞) counts 0 (an impossible category, the
/// log-probability moment of a point on the simplex's edge).
double Dot(const std::vector<double>& eta, const double* moments) {
  double dot = 0.0;
  for (size_t k = 0; k < eta.size(); ++k)
    if (eta[k] != 0.0 && moments[k] != 0.0) dot += eta[k] * moments[k];
  return dot;
}

class CarriedPriorNode final : public Node {
 public:
  explicit CarriedPriorNode(const CarriedDensity* density) : density_(density) {}
  const char* type() const override { return "CarriedPrior"; }
  std::vector<std::string> slot_names() const override { return {"out"}; }
  Family ObservedFamily(int, const PointMass&) const override { return density_->family(); }

  void Bind(const std::vector<SlotInfo>& slots, size_t, const std::string& where) override {
    RequireFamily(slots[0], {density_->family()}, where);
    if (HasDimension(density_->family()))
      RequireDim(slots[0], density_->dim(), where, "the dimension of the carried posterior");
  }

  void AccumulateMessage(int, size_t begin, size_t end, const SlotView*, double* eta,
                         Workspace&) const override {
    const double count = static_cast<double>(end - begin);
    const std::vector<double>& natural = density_->natural();
    for (size_t k = 0; k < natural.size(); ++k) eta[k] += count * natural[k];
  }

  double AverageEnergy(size_t begin, size_t end, const SlotView* q, Workspace&) const override {
    double energy = 0.0;
    for (size_t n = begin; n < end; ++n)
      energy += density_->log_partition() - Dot(density_->natural(), q[0].At(n));
    return energy;
  }

  double LogFactor(size_t n, const SlotView* q, Workspace&) const override {
    return Dot(density_->natural(), q[0].At(n)) - density_->log_partition();
  }

 private:
  const CarriedDensity* density_;
};

}  // namespace

CarriedDensity::CarriedDensity(Family family, int dim)
    : family_(family),
      dim_(dim),
      natural_(static_cast<size_t>(StatSize(family, dim))),
      moments_(natural_.size()),
      workspace_(IsMultivariate(family) ? dim : 0) {}

bool CarriedDensity::Set(const double* eta) {
  if (!MomentsFromNatural(family_, dim_, eta, moments_.data(), workspace_)) return false;
  natural_.assign(eta, eta + natural_.size());
  log_partition_ =
      EntropyOf(family_, dim_, eta, moments_.data(), workspace_) + Dot(natural_, moments_.data());
  return true;
}

std::unique_ptr<Node> MakeCarriedPriorNode(const CarriedDensity* density) {
  return std::make_unique<CarriedPriorNode>(density);
}

}  // namespace vfe
