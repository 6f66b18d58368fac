// vfe nodes: the node types a model may use, from the registry.

#include <algorithm>
#include <iostream>
#include <string>
#include <vector>

#include "tools/cli.h"
#include "vfe/core/format.h"
#include "vfe/nodes/registry.h"

namespace vfe::cli {
namespace {

const char* const kNodesUsage =
    "usage: vfe nodes [TYPE] [--markdown]\n"
    "\n"
    "Lists the node types a model's factors may use, one line each. With TYPE, prints that\n"
    "type: its density, its average energy, every argument (what it accepts, whether it is\n"
    "optional) and an example model. --markdown prints the table of docs/json-format.md.\n";

}  // namespace

int NodesCommand(const std::vector<std::string>& args) {
  bool markdown = false;
  std::string name;
  for (const std::string& a : args) {
    if (a == "--help" || a == "-h") {
      std::cout << kNodesUsage << "\n" << kExitCodes;
      return 0;
    } else if (a == "--markdown") {
      markdown = true;
    } else if (!a.empty() && a[0] == '-') {
      throw UnknownOption("nodes", a, kNodesUsage);
    } else if (!name.empty()) {
      throw UsageError{"nodes: expected one node type, found a second: " + a, kNodesUsage};
    } else {
      name = a;
    }
  }
  if (markdown) {
    std::cout << NodeTypesMarkdown();
    return 0;
  }
  if (!name.empty()) {
    const NodeType* type = FindNodeType(name);
    if (!type)
      throw UsageError{"nodes: unknown node type '" + name + "'" +
                           DidYouMean(name, NodeTypeNames()) + "; expected one of " +
                           JoinQuoted(NodeTypeNames()),
                       kNodesUsage};
    std::cout << DescribeNodeType(*type);
    return 0;
  }
  size_t width = 0;
  for (const NodeType* type : NodeTypes()) width = std::max(width, type->name.size());
  for (const NodeType* type : NodeTypes())
    std::cout << type->name << std::string(width + 2 - type->name.size(), ' ') << type->summary
              << "\n";
  return 0;
}

}  // namespace vfe::cli
