#ifndef VFE_NODES_GATE_H_
#define VFE_NODES_GATE_H_

// Gates (Minka & Winn, "Gates", NIPS 2008): a mixture of any conjugate node. Private to the
// library; FactorGraph::AddGatedFactor builds them.

#include <memory>
#include <string>
#include <vector>

#include "vfe/nodes/node.h"

namespace vfe {

/// The slots of a gated factor: the component nodes' slots, those that every component shares
/// (the same argument) once. slot_of[k][j] is the gate node's slot of component k's slot j;
/// names[s] names gate slot s. Slot 0 is the shared "out" and slot 1 the selector "gate".
struct GateLayout {
  std::vector<std::vector<int>> slot_of;
  std::vector<std::string> names;
};

/// p(out, ... | z) = Π_k f_k(out, θ_k)^[z = k] for a Categorical selector z over the K
/// component nodes f_k (each a conjugate node with its own arguments θ_k). Under mean field,
/// with r_k = E[z = k]:
///   message to z:                      log m(z = k) = −U_k   (U_k = E[−log f_k])
///   message to a slot of component k:  r_k · (f_k's message)
///   message to a shared slot:          Σ_k r_k · (f_k's message)
///   U = Σ_k r_k U_k,   log f = log f_z (for Monte Carlo checks).
/// Components are evaluated one factor at a time (no summed statistics).
std::unique_ptr<Node> MakeGateNode(std::vector<std::unique_ptr<Node>> components, GateLayout layout,
                                   std::string type_name);

}  // namespace vfe

#endif  // VFE_NODES_GATE_H_
