#ifndef VFE_NODES_DECLARE_H_
#define VFE_NODES_DECLARE_H_

// Short forms for the parameters of node type declarations (nodes/registry.h). Private to
// nodes/.

#include <string>
#include <vector>

#include "vfe/nodes/registry.h"

namespace vfe::declare {

/// A variable of one of `families` (an element, or one per factor); no constant.
inline Parameter Variable(std::string name, std::string help, std::vector<Family> families) {
  Parameter p;
  p.name = std::move(name);
  p.help = std::move(help);
  p.connection = Connection::kElement;
  p.families = std::move(families);
  return p;
}

/// A variable of one of `families`, or a constant of `kind` that the node reads in the slot
/// as a point mass (a known mean or precision).
inline Parameter VariableOrConstant(std::string name, std::string help,
                                    std::vector<Family> families, ConstantKind kind) {
  Parameter p = Variable(std::move(name), std::move(help), std::move(families));
  p.constant = kind;
  p.constant_in_slot = true;
  return p;
}

/// A constant of `kind` for the factory (a prior's parameters, a known matrix).
inline Parameter Constant(std::string name, std::string help, ConstantKind kind) {
  Parameter p;
  p.name = std::move(name);
  p.help = std::move(help);
  p.connection = Connection::kNone;
  p.constant = kind;
  return p;
}

/// A whole array of variables of `families`, one slot per element (mixture components).
inline Parameter WholeArray(std::string name, std::string help, std::vector<Family> families) {
  Parameter p = Variable(std::move(name), std::move(help), std::move(families));
  p.connection = Connection::kWhole;
  return p;
}

/// `p`, optional: `default_text` is the value it takes when not given ("" for none).
inline Parameter Optional(Parameter p, std::string default_text = "") {
  p.required = false;
  p.default_text = std::move(default_text);
  return p;
}

/// `p` with messages that are not the gradient of the node's energy (not conjugate).
inline Parameter NotConjugate(Parameter p) {
  p.conjugate = false;
  return p;
}

}  // namespace vfe::declare

#endif  // VFE_NODES_DECLARE_H_
