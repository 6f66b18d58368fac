#include "nodes/gate.h"

#include <algorithm>

#include "nodes/node_checks.h"
#include "vfe/core/error.h"

namespace vfe {
namespace {

constexpr int kOut = 0;
constexpr int kGate = 1;
/// Bounds of the per-call buffers, which live on the stack (no allocation per message).
constexpr int kMaxComponentSlots = 16;
constexpr int kMaxStat = 1024;

class GateNode final : public Node {
 public:
  GateNode(std::vector<std::unique_ptr<Node>> components, GateLayout layout, std::string type)
      : components_(std::move(components)), layout_(std::move(layout)), type_(std::move(type)) {}

  const char* type() const override { return type_.c_str(); }
  std::vector<std::string> slot_names() const override { return layout_.names; }

  Family ObservedFamily(int slot, const PointMass& value) const override {
    if (slot == kGate) return Family::kCategorical;
    for (size_t k = 0; k < components_.size(); ++k)
      for (size_t j = 0; j < layout_.slot_of[k].size(); ++j)
        if (layout_.slot_of[k][j] == slot)
          return components_[k]->ObservedFamily(static_cast<int>(j), value);
    return Family::kGaussian;
  }

  void Bind(const std::vector<SlotInfo>& slots, size_t num_factors,
            const std::string& where) override {
    const int k = static_cast<int>(components_.size());
    if (slots[kGate].family != Family::kCategorical)
      throw GraphError(where + ": 'gate' expects a Categorical variable, got " +
                       slots[kGate].variable + " (" + FamilyName(slots[kGate].family) + ")");
    if (slots[kGate].dim != k)
      throw GraphError(where + ": 'gate' expects a Categorical of " + std::to_string(k) +
                       " outcomes (one per component), got " + slots[kGate].variable + " of " +
                       std::to_string(slots[kGate].dim));
    stat_.assign(slots.size(), 0);
    for (size_t s = 0; s < slots.size(); ++s) {
      stat_[s] = StatSize(slots[s].family, slots[s].dim);
      if (stat_[s] > kMaxStat)
        throw GraphError(where + ": '" + slots[s].name + "' is too large for a gate (" +
                         std::to_string(stat_[s]) + " statistics, at most " +
                         std::to_string(kMaxStat) + ")");
    }
    for (int c = 0; c < k; ++c) {
      const std::vector<int>& map = layout_.slot_of[static_cast<size_t>(c)];
      if (map.size() > static_cast<size_t>(kMaxComponentSlots))
        throw GraphError(where + ": a gated node has at most " +
                         std::to_string(kMaxComponentSlots) + " slots");
      std::vector<SlotInfo> inner;
      for (size_t j = 0; j < map.size(); ++j) {
        SlotInfo info = slots[static_cast<size_t>(map[j])];
        info.name = components_[static_cast<size_t>(c)]->slot_names()[j];
        inner.push_back(std::move(info));
      }
      Node& node = *components_[static_cast<size_t>(c)];
      node.Bind(inner, num_factors, where + " component " + std::to_string(c));
      if (node.KeepsMessages())
        throw GraphError(where + ": a " + node.type() +
                         " node keeps messages between sweeps and cannot be gated");
    }
  }

  bool IsDirected() const override { return components_[0]->IsDirected(); }
  bool IsOutput(int slot) const override {
    for (size_t k = 0; k < components_.size(); ++k)
      for (size_t j = 0; j < layout_.slot_of[k].size(); ++j)
        if (layout_.slot_of[k][j] == slot && components_[k]->IsOutput(static_cast<int>(j)))
          return true;
    return false;
  }

  void Prepare(const SlotView* q, size_t num_factors) override {
    SlotView views[kMaxComponentSlots];
    for (size_t k = 0; k < components_.size(); ++k)
      components_[k]->Prepare(ComponentViews(k, q, views), num_factors);
  }

  void AccumulateMessage(int slot, size_t begin, size_t end, const SlotView* q, double* eta,
                         Workspace& ws) const override {
    SlotView views[kMaxComponentSlots];
    if (slot == kGate) {
      for (size_t n = begin; n < end; ++n)
        for (size_t k = 0; k < components_.size(); ++k)
          eta[k] -= components_[k]->AverageEnergy(n, n + 1, ComponentViews(k, q, views), ws);
      return;
    }
    const int stat = stat_[static_cast<size_t>(slot)];
    double message[kMaxStat];
    for (size_t k = 0; k < components_.size(); ++k) {
      const std::vector<int>& map = layout_.slot_of[k];
      const auto at = std::find(map.begin(), map.end(), slot);
      if (at == map.end()) continue;
      const int inner_slot = static_cast<int>(at - map.begin());
      const SlotView* inner = ComponentViews(k, q, views);
      for (size_t n = begin; n < end; ++n) {
        const double r = q[kGate].At(n)[k];
        if (r == 0) continue;
        std::fill_n(message, stat, 0.0);
        components_[k]->AccumulateMessage(inner_slot, n, n + 1, inner, message, ws);
        for (int i = 0; i < stat; ++i) eta[i] += r * message[i];
      }
    }
  }

  double AverageEnergy(size_t begin, size_t end, const SlotView* q, Workspace& ws) const override {
    SlotView views[kMaxComponentSlots];
    double energy = 0.0;
    for (size_t n = begin; n < end; ++n)
      for (size_t k = 0; k < components_.size(); ++k) {
        const double r = q[kGate].At(n)[k];
        // A component the selector rules out contributes nothing, even where its energy is
        // infinite.
        if (r != 0)
          energy += r * components_[k]->AverageEnergy(n, n + 1, ComponentViews(k, q, views), ws);
      }
    return energy;
  }

  double LogFactor(size_t n, const SlotView* q, Workspace& ws) const override {
    const double* z = q[kGate].At(n);
    size_t chosen = 0;
    for (size_t k = 1; k < components_.size(); ++k)
      if (z[k] > z[chosen]) chosen = k;
    SlotView views[kMaxComponentSlots];
    return components_[chosen]->LogFactor(n, ComponentViews(chosen, q, views), ws);
  }

  std::vector<std::vector<int>> ComponentSlots() const override {
    // Each component's own slots, in the order of its node's slots.
    std::vector<std::vector<int>> own(components_.size());
    for (size_t k = 0; k < components_.size(); ++k)
      for (int slot : layout_.slot_of[k]) {
        bool shared = false;
        for (size_t l = 0; l < components_.size() && !shared; ++l)
          shared = l != k && std::find(layout_.slot_of[l].begin(), layout_.slot_of[l].end(),
                                       slot) != layout_.slot_of[l].end();
        if (!shared) own[k].push_back(slot);
      }
    return own;
  }

 private:
  /// Component k's views, gathered from the gate's into `views`.
  const SlotView* ComponentViews(size_t k, const SlotView* q, SlotView* views) const {
    const std::vector<int>& map = layout_.slot_of[k];
    for (size_t j = 0; j < map.size(); ++j) views[j] = q[map[j]];
    return views;
  }

  std::vector<std::unique_ptr<Node>> components_;
  GateLayout layout_;
  std::string type_;
  std::vector<int> stat_;  ///< by slot: the size of its statistics
};

}  // namespace

std::unique_ptr<Node> MakeGateNode(std::vector<std::unique_ptr<Node>> components, GateLayout layout,
                                   std::string type_name) {
  return std::make_unique<GateNode>(std::move(components), std::move(layout), std::move(type_name));
}

}  // namespace vfe
