// The registry of node types from Python: the declaration every node type makes once (name,
// summary, formula, arguments, example model), read as the CLI and the docs read it.

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>

#include "bindings/python/common.h"
#include "vfe/core/format.h"
#include "vfe/nodes/registry.h"

namespace vfe {
namespace python {
namespace {

const NodeType& Find(const std::string& type) {
  const NodeType* t = FindNodeType(type);
  if (!t)
    throw GraphError("unknown node type \"" + type + "\"" + DidYouMean(type, NodeTypeNames()) +
                     "; expected one of " + JoinQuoted(NodeTypeNames()));
  return *t;
}

}  // namespace

void BindNodeTypes(py::module_& m) {
  m.def("node_types", [] { return NodeTypeNames(); }, "The names of every registered node type.");
  m.def(
      "describe_node", [](const std::string& type) { return DescribeNodeType(Find(type)); },
      py::arg("type"), "A node type in words: summary, formula, arguments and an example.");
  m.def(
      "node_type",
      [](const std::string& type) {
        const NodeType& t = Find(type);
        py::list parameters;
        for (const Parameter& p : t.parameters) {
          py::dict d;
          d["name"] = p.name;
          d["help"] = p.help;
          d["accepts"] = AcceptedText(p);
          d["required"] = p.required;
          if (!p.default_text.empty()) d["default"] = p.default_text;
          parameters.append(d);
        }
        py::dict d;
        d["name"] = t.name;
        d["summary"] = t.summary;
        d["formula"] = t.formula;
        d["parameters"] = parameters;
        d["example"] = t.example;
        d["predictive_means"] = t.predictive_means != nullptr;
        return d;
      },
      py::arg("type"),
      "A node type's declaration as a dict: name, summary, formula, parameters (name, help, "
      "accepts, required, default), example (a vfe-model/1 document that uses it) and whether "
      "it has posterior predictive means.");
}

}  // namespace python
}  // namespace vfe
