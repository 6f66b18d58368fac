// The properties every registered node type must have, checked on the example model its
// declaration carries (nodes/registry.h): driven by the registry, so a new node type gets them
// without a test of its own.
//   - its example loads, runs, and has a factor of the type;
//   - its messages are the gradient of its average energy, m = −∂U/∂E[T(x)], for the slots it
//     declares conjugate (central differences; U is linear in each slot's moments there);
//   - its average energy agrees with a Monte Carlo estimate from Node::LogFactor;
//   - a mean-field coordinate update never raises F;
//   - a wrong argument is refused at the JSON pointer of the factor and the parameter.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iterator>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/testing/expect.h"
#include "vfe/model.h"

namespace vfe {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
using Json = nlohmann::ordered_json;

class NodeProperties : public ::testing::TestWithParam<const NodeType*> {
 protected:
  const NodeType& type() const { return *GetParam(); }
  /// The example, loaded and run to convergence.
  Model Example() const {
    Model model = ParseModel(type().example);
    model.inference.options.max_iterations = 200;
    Infer(model);
    return model;
  }
  /// The plates of this node type in `graph`.
  std::vector<PlateId> Plates(const FactorGraph& graph) const {
    std::vector<PlateId> plates;
    for (PlateId p = 0; p < graph.num_plates(); ++p)
      if (graph.node(p).type() == type().name) plates.push_back(p);
    return plates;
  }
};

/// The declared parameter a slot belongs to ("means[2]" is "means"), in the declaration of
/// the node type called `type_name`; null for a node that is not registered.
const Parameter* ParameterOfSlot(const std::string& type_name, const std::string& slot) {
  const NodeType* type = FindNodeType(type_name);
  return type ? type->Find(slot.substr(0, slot.find('['))) : nullptr;
}

TEST_P(NodeProperties, ExampleLoadsRunsAndUsesTheNode) {
  Model model = ParseModel(type().example);
  EXPECT_FALSE(Plates(model.graph).empty())
      << "the example of " << type().name << " has no factor of that type";
  const Result result = Infer(model);
  EXPECT_NE(result.termination, Termination::kNumericalFailure) << result.message;
  EXPECT_TRUE(std::isfinite(result.evidence_lower_bound()));
}

TEST_P(NodeProperties, MessagesAreTheGradientOfTheAverageEnergy) {
  const Model model = Example();
  const FactorGraph& graph = model.graph;
  Scratch scratch = graph.MakeScratch();
  int checked = 0;
  for (PlateId p : Plates(graph)) {
    const Node& node = graph.node(p);
    const std::vector<std::string> slots = node.slot_names();
    for (size_t n : {size_t{0}, graph.plate_size(p) - 1}) {
      // Each slot's moments, copied so that one can be moved.
      std::vector<std::vector<double>> moments(slots.size());
      std::vector<SlotView> views(slots.size() + 1);  // + the pair view, unused here
      for (size_t s = 0; s < slots.size(); ++s) {
        const Variable element = graph.FactorArgument(p, n, s);
        const int size = StatSize(graph.family(element), graph.dim(element));
        moments[s].assign(graph.Moments(element), graph.Moments(element) + size);
        views[s].data = moments[s].data();
      }
      auto energy = [&] { return node.AverageEnergy(n, n + 1, views.data(), scratch.node); };
      for (size_t s = 0; s < slots.size(); ++s) {
        const Variable element = graph.FactorArgument(p, n, s);
        const Parameter* parameter = ParameterOfSlot(type().name, slots[s]);
        if (graph.observed(element) || !parameter || !parameter->conjugate) continue;
        const Family family = graph.family(element);
        const int dim = graph.dim(element), size = StatSize(family, dim);
        std::vector<double> message(static_cast<size_t>(size), 0.0);
        node.AccumulateMessage(static_cast<int>(s), n, n + 1, views.data(), message.data(),
                               scratch.node);
        // −∂U/∂μ_k by central differences; U is linear in μ, so the only error is rounding:
        // a few ulps of U over the step.
        std::vector<double> gradient(static_cast<size_t>(size));
        double scale = 1.0;
        for (int k = 0; k < size; ++k) {
          double& m = moments[s][static_cast<size_t>(k)];
          const double saved = m, h = 1e-3 * std::max(1.0, std::abs(saved));
          m = saved + h;
          const double up = energy();
          m = saved - h;
          const double down = energy();
          m = saved;
          gradient[static_cast<size_t>(k)] = -(up - down) / (2 * h);
          scale = std::max({scale, std::abs(up), std::abs(down)});
          EXPECT_TRUE(std::isfinite(up) && std::isfinite(down)) << slots[s] << " entry " << k;
        }
        // Matrix blocks are symmetric: only m_ij + m_ji is defined by the energy.
        auto symmetrise = [&](std::vector<double>& v, int offset, int d) {
          for (int i = 0; i < d; ++i)
            for (int j = 0; j < i; ++j) {
              double& a = v[static_cast<size_t>(offset + i + j * d)];
              double& b = v[static_cast<size_t>(offset + j + i * d)];
              a = b = a + b;
            }
        };
        if (family == Family::kMvGaussian) {
          symmetrise(message, dim, dim);
          symmetrise(gradient, dim, dim);
        } else if (family == Family::kWishart) {
          symmetrise(message, 0, dim);
          symmetrise(gradient, 0, dim);
        } else if (family == Family::kCategorical) {
          // η = log p up to a constant: compare differences from the first outcome.
          for (int k = size - 1; k >= 0; --k) {
            message[static_cast<size_t>(k)] -= message[0];
            gradient[static_cast<size_t>(k)] -= gradient[0];
          }
        }
        const double step = 1e-3;
        const double tolerance = 1e-7 + 64 * std::numeric_limits<double>::epsilon() * scale / step;
        for (int k = 0; k < size; ++k)
          EXPECT_NEAR(message[static_cast<size_t>(k)], gradient[static_cast<size_t>(k)],
                      tolerance * std::max(1.0, std::abs(gradient[static_cast<size_t>(k)])))
              << type().name << " plate " << p << " factor " << n << " slot '" << slots[s]
              << "' entry " << k;
        ++checked;
      }
    }
  }
  const bool any_conjugate = std::any_of(
      type().parameters.begin(), type().parameters.end(),
      [](const Parameter& p) { return p.connection != Connection::kNone && p.conjugate; });
  if (any_conjugate) {
    EXPECT_GT(checked, 0) << "no hidden conjugate slot in the example";
  }
}

TEST_P(NodeProperties, AverageEnergyAgreesWithMonteCarlo) {
  if (!type().pointwise_density || !type().exact_energy) {
    // The node has no pointwise density or approximates its energy: the estimator refuses
    // or differs by design (its own tests check it against other answers).
    const Model model = Example();
    if (!type().pointwise_density) {
      EXPECT_THROW(model.graph.MonteCarloFreeEnergy(10), ModelError);
    }
    return;
  }
  const Model model = Example();
  Scratch scratch = model.graph.MakeScratch();
  const FactorGraph::FreeEnergyTerms terms = model.graph.FreeEnergyParts(scratch);
  const FactorGraph::MonteCarloEstimate estimate = model.graph.MonteCarloFreeEnergy(20000, 7);
  for (PlateId p : Plates(model.graph)) {
    const double u = terms.plate_energy[p], mc = estimate.plate_energy[p];
    // Four standard errors, and rounding when q is a point mass at every slot.
    EXPECT_NEAR(u, mc, 4 * estimate.plate_energy_error[p] + 1e-9 * (1 + std::abs(u)))
        << type().name << " plate " << p;
  }
}

TEST_P(NodeProperties, CoordinateUpdatesNeverRaiseTheFreeEnergy) {
  Model model = ParseModel(type().example);
  FactorGraph& graph = model.graph;
  // The variables whose every factor sends them variational messages, or natural-gradient
  // messages whose steps the engine checks on F (Node::StepsOnFreeEnergy).
  std::vector<bool> conjugate(graph.num_variables(), true);
  for (PlateId p = 0; p < graph.num_plates(); ++p) {
    const std::vector<std::string> slots = graph.node(p).slot_names();
    for (size_t s = 0; s < slots.size(); ++s) {
      const Parameter* parameter = ParameterOfSlot(graph.node(p).type(), slots[s]);
      if (parameter &&
          (parameter->conjugate || graph.node(p).StepsOnFreeEnergy(static_cast<int>(s))))
        continue;
      for (size_t n = 0; n < graph.plate_size(p); ++n)
        conjugate[graph.FactorArgument(p, n, s).id()] = false;
    }
  }
  // A node with no conjugate slot (a deterministic node) promises nothing here.
  const bool any_conjugate =
      std::any_of(type().parameters.begin(), type().parameters.end(), [](const Parameter& p) {
        return p.connection != Connection::kNone && p.conjugate;
      });
  if (!any_conjugate) return;
  Scratch scratch = graph.MakeScratch();
  double previous = graph.FreeEnergy(scratch);
  int updates = 0;
  for (int sweep = 0; sweep < 5; ++sweep)
    for (const Variable& v : graph.HiddenVariables()) {
      if (!conjugate[v.id()] || graph.clustered(v)) continue;
      for (size_t i = 0; i < v.size(); ++i) {
        ASSERT_TRUE(graph.UpdateElement(v.id(), v.begin() + i, scratch)) << graph.ElementName(v[i]);
        const double f = graph.FreeEnergy(scratch);
        EXPECT_LE(f, previous + 1e-10 * (1 + std::abs(previous)))
            << type().name << ": the update of " << graph.ElementName(v[i]) << " in sweep "
            << sweep + 1;
        previous = f;
        ++updates;
      }
    }
  EXPECT_GT(updates, 0);
}

/// The first factor of `type` in the document, and its index.
size_t FirstFactorOf(const Json& document, const std::string& type) {
  for (size_t i = 0; i < document["factors"].size(); ++i)
    if (document["factors"][i]["node"] == type) return i;
  ADD_FAILURE() << "no factor of type " << type;
  return 0;
}

TEST_P(NodeProperties, WrongArgumentsAreRefusedAtTheFactorAndParameter) {
  const Json example = Json::parse(type().example);
  const size_t f = FirstFactorOf(example, type().name);
  const std::string pointer = "/factors/" + std::to_string(f) + "/";
  auto expect_refused = [&](const Json& document, const std::string& parameter,
                            const std::string& what) {
    EXPECT_THAT(testing::LoadError(document.dump()), StartsWith(pointer + parameter))
        << type().name << "." << parameter << ": " << what;
  };
  // A variable of `family` shaped like the one `value` names, and `value` naming it instead,
  // with the same indices ("z[i]" becomes "wrong_family[i]"), so that the factor keeps its
  // loop.
  auto replace_variable = [&](Json& document, Json& value, Family family) {
    std::string text = value.is_string() ? value.get<std::string>() : "";
    const std::string name = text.substr(0, text.find('['));
    Json variable = {{"name", "wrong_family"}, {"family", FamilyName(family)}};
    for (const Json& v : document["variables"]) {
      if (v["name"] != name) continue;
      if (v.contains("shape")) {
        variable["shape"] = v["shape"];
      } else if (v.contains("observed") && v["observed"].is_array()) {
        variable["shape"] = {v["observed"].size()};
      }
    }
    if (family == Family::kCategorical) variable["dim"] = 2;
    document["variables"].push_back(variable);
    value = "wrong_family" + (text.find('[') == std::string::npos ? "" : text.substr(text.find('[')));
  };
  for (const Parameter& p : type().parameters) {
    if (p.connection != Connection::kNone && !p.families.empty()) {
      // A hidden variable of a family the parameter does not take.
      Family wrong = Family::kCategorical;
      for (Family candidate : {Family::kCategorical, Family::kGaussian, Family::kGamma})
        if (std::find(p.families.begin(), p.families.end(), candidate) == p.families.end()) {
          wrong = candidate;
          break;
        }
      Json document = example;
      Json& factor = document["factors"][f];
      if (!factor.contains(p.name)) continue;  // an optional parameter the example leaves out
      Json& value = p.connection == Connection::kList ? factor[p.name][0] : factor[p.name];
      if (p.connection == Connection::kWhole) {
        document["variables"].push_back(
            {{"name", "wrong_family"}, {"family", FamilyName(wrong)}, {"shape", {2}}});
        if (wrong == Family::kCategorical) document["variables"].back()["dim"] = 2;
        value = "wrong_family";
      } else {
        replace_variable(document, value, wrong);
      }
      expect_refused(document, p.name, std::string("a ") + FamilyName(wrong) + " variable");
    }
    if (p.constant != ConstantKind::kNone) {
      Json document = example;
      Json& factor = document["factors"][f];
      // The other members of its exactly-one-of group make way.
      for (const auto& group : type().exactly_one_of)
        if (std::find(group.begin(), group.end(), p.name) != group.end())
          for (const std::string& other : group)
            if (other != p.name) factor.erase(other);
      factor[p.name] =
          p.constant == ConstantKind::kName ? Json("no_such_choice") : Json::object({{"x", 1}});
      expect_refused(document, p.name, "a constant of the wrong kind");
    }
  }
  // And an argument the type does not have.
  Json document = example;
  document["factors"][f]["no_such_argument"] = 1;
  expect_refused(document, "no_such_argument", "an unknown argument");
}

INSTANTIATE_TEST_SUITE_P(Registry, NodeProperties, ::testing::ValuesIn(NodeTypes()),
                         [](const ::testing::TestParamInfo<const NodeType*>& info) {
                           return info.param->name;
                         });

TEST(NodeRegistry, EveryTypeIsDeclaredCompletely) {
  std::vector<std::string> names;
  for (const NodeType* type : NodeTypes()) {
    EXPECT_FALSE(type->summary.empty()) << type->name;
    EXPECT_FALSE(type->formula.empty()) << type->name;
    EXPECT_FALSE(type->example.empty()) << type->name;
    EXPECT_NE(type->make, nullptr) << type->name;
    for (const Parameter& p : type->parameters) EXPECT_FALSE(p.help.empty()) << p.name;
    EXPECT_EQ(std::count(names.begin(), names.end(), type->name), 0) << type->name;
    names.push_back(type->name);
    EXPECT_EQ(FindNodeType(type->name), type);
  }
  EXPECT_EQ(FindNodeType("Gausian"), nullptr);
}

TEST(NodeRegistry, DocsListEveryNodeTypeAsTheRegistryDeclaresIt) {
  std::ifstream in(std::string(VFE_SOURCE_DIR) + "/docs/json-format.md");
  ASSERT_TRUE(in) << "docs/json-format.md";
  const std::string docs((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_THAT(docs, HasSubstr(NodeTypesMarkdown()))
      << "docs/json-format.md's node table differs from the registry: replace it with the "
         "output of `vfe nodes --markdown`";
}

}  // namespace
}  // namespace vfe
