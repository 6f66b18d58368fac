// The checked public API of FactorGraph: every method that takes a variable id, an element, a
// plate or a block index, or that needs Finalize first (or refuses it after), throws a
// GraphError naming the call, the variable or plate, and what was wrong, instead of crashing,
// throwing std::out_of_range, or writing into an observed variable; and NaN or infinite data are
// refused (ModelError, like the other bad values) by the call that brings them. Each refusal
// leaves the graph as it was, and the checks cost the engine's loops no allocation.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <functional>
#include <limits>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "tests/testing/allocation_counter.h"
#include "vfe/model.h"

namespace vfe {
namespace {

using ::testing::HasSubstr;

constexpr double kNan = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

/// Runs `action`, expecting an exception of exactly type E (GraphError or ModelError) whose
/// message contains every one of `parts`.
template <class E>
void ExpectThrows(const std::function<void()>& action, const std::vector<std::string>& parts) {
  static_assert(std::is_base_of<Error, E>::value, "vfe errors derive from vfe::Error");
  try {
    action();
  } catch (const E& e) {
    for (const std::string& part : parts) EXPECT_THAT(e.what(), HasSubstr(part));
    return;
  } catch (const Error& e) {
    ADD_FAILURE() << "a vfe::Error of the wrong type: " << e.what();
    return;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not a vfe::Error: " << e.what();
    return;
  }
  ADD_FAILURE() << "no exception";
}

void ExpectGraphError(const std::function<void()>& action,
                      const std::vector<std::string>& parts) {
  ExpectThrows<GraphError>(action, parts);
}

/// mu ~ N(0, 1), tau ~ Gamma(1, 1), y_n ~ N(mu, 1/tau) for five data points: variables 0 (mu),
/// 1 (tau), 2 (y) and three plates, one of them the likelihood of five factors.
FactorGraph BaseModel() {
  FactorGraph graph;
  const Variable mu = graph.AddVariable("mu", Family::kGaussian);
  const Variable tau = graph.AddVariable("tau", Family::kGamma);
  graph.AddGaussian(mu, 0.0, 1.0, "mu_prior");
  graph.AddGamma(tau, 1.0, 1.0, "tau_prior");
  graph.AddGaussian(graph.AddObserved("y", std::vector<double>{1.0, 2.0, 3.0, 2.5, 1.5}), mu,
                    tau, "likelihood");
  return graph;
}

FactorGraph FinalizedBaseModel() {
  FactorGraph graph = BaseModel();
  graph.Finalize();
  return graph;
}

/// A chain of three Gaussian states with one joint posterior (AddCluster), finalised.
FactorGraph ClusteredChain() {
  FactorGraph graph;
  const Variable x = graph.AddVariableArray("x", Family::kGaussian, {3});
  graph.AddGaussian(x[0], 0.0, 1.0, "x0_prior");
  graph.AddLinearGaussian(x.Slice(1, 3), x.Slice(0, 2), Matrix::Identity(1, 1), 2.0,
                          "dynamics");
  graph.AddGaussian(graph.AddObserved("obs", std::vector<double>{0.5, 1.0, 0.2}), x, 1.0,
                    "emissions");
  graph.AddCluster(x);
  graph.Finalize();
  return graph;
}

/// Runs the blocks on the caller's thread, with one scratch of its own.
class InlineRunner final : public BlockRunner {
 public:
  explicit InlineRunner(const FactorGraph& graph) : scratch_(graph.MakeScratch()) {}
  void Run(size_t count, const Body& body) const override {
    for (size_t b = 0; b < count; ++b) body(b, scratch_);
  }

 private:
  mutable Scratch scratch_;
};

/// The moments of every element of `v`, to check that a refused call wrote nothing.
std::vector<double> MomentsOf(const FactorGraph& graph, const Variable& v, int stat) {
  std::vector<double> result;
  for (size_t i = 0; i < v.size(); ++i) {
    const double* m = graph.Moments(v[i]);
    result.insert(result.end(), m, m + stat);
  }
  return result;
}

// ---- UpdateElement ------------------------------------------------------------------------------

TEST(Api, UpdateElementBeforeFinalizeIsRefused) {
  FactorGraph graph = BaseModel();
  Scratch scratch;  // MakeScratch itself needs Finalize (below)
  ExpectGraphError([&] { graph.UpdateElement(graph.Find("mu").id(), 0, scratch); },
                   {"UpdateElement", "finalise the graph first", "'mu'"});
  ExpectGraphError([&] { graph.MakeScratch(); }, {"MakeScratch", "finalise the graph first"});
}

TEST(Api, UpdateElementOnAnObservedVariableIsRefusedAndWritesNothing) {
  FactorGraph graph = FinalizedBaseModel();
  Scratch scratch = graph.MakeScratch();
  const Variable y = graph.Find("y");
  const std::vector<double> before = MomentsOf(graph, y, 2);
  ExpectGraphError([&] { graph.UpdateElement(y.id(), 0, scratch); },
                   {"UpdateElement: 'y' is observed and has no posterior to update"});
  const InlineRunner runner(graph);
  ExpectGraphError([&] { graph.UpdateElement(y.id(), 3, scratch, runner); },
                   {"UpdateElement: 'y' is observed and has no posterior to update"});
  EXPECT_EQ(MomentsOf(graph, y, 2), before);
}

TEST(Api, UpdateElementOutOfRangeGivesIndexAndSize) {
  FactorGraph graph = FinalizedBaseModel();
  Scratch scratch = graph.MakeScratch();
  const uint32_t mu = graph.Find("mu").id();
  ExpectGraphError([&] { graph.UpdateElement(mu, 1, scratch); },
                   {"UpdateElement", "element 1 of 'mu' is out of range", "(it has 1 element)"});
  ExpectGraphError([&] { graph.UpdateElement(mu, SIZE_MAX, scratch); },
                   {"UpdateElement", "of 'mu' is out of range"});
  const InlineRunner runner(graph);
  ExpectGraphError([&] { graph.UpdateElement(mu, 7, scratch, runner); },
                   {"UpdateElement", "element 7 of 'mu' is out of range"});
  EXPECT_TRUE(graph.UpdateElement(mu, 0, scratch));
  EXPECT_TRUE(graph.UpdateElement(mu, 0, scratch, runner));
}

TEST(Api, UpdateElementWithAnUnknownVariableIdGivesTheIdAndCount) {
  FactorGraph graph = FinalizedBaseModel();
  Scratch scratch = graph.MakeScratch();
  // Past the declared variables and the factors' constants.
  const uint32_t bad = static_cast<uint32_t>(graph.num_variables()) + 5;
  ExpectGraphError([&] { graph.UpdateElement(bad, 0, scratch); },
                   {"UpdateElement", "variable id " + std::to_string(bad), "out of range",
                    std::to_string(graph.num_variables()) + " variables"});
}

TEST(Api, UpdateElementOnAConstantIsRefused) {
  FactorGraph graph = FinalizedBaseModel();
  Scratch scratch = graph.MakeScratch();
  // Slot 1 of plate 0 is mu_prior's constant mean, a one-element observed variable.
  const uint32_t constant = graph.FactorArgument(0, 0, 1).id();
  ExpectGraphError([&] { graph.UpdateElement(constant, 0, scratch); },
                   {"UpdateElement", "factor 'mu_prior' (Gaussian): constant mean",
                    "no posterior to update"});
}

TEST(Api, UpdateElementOfAClusterAsksForUpdateElements) {
  FactorGraph graph = ClusteredChain();
  Scratch scratch = graph.MakeScratch();
  ExpectGraphError([&] { graph.UpdateElement(graph.Find("x").id(), 1, scratch); },
                   {"UpdateElement", "'x' is a cluster", "UpdateElements"});
}

// ---- UpdateElements, UpdateListedElements, natural gradient ---------------------------------

TEST(Api, UpdateElementsPastTheEndGivesTheRangeAndSize) {
  FactorGraph graph = FinalizedBaseModel();
  Scratch scratch = graph.MakeScratch();
  const Variable mu = graph.Find("mu");
  ExpectGraphError([&] { graph.UpdateElements(mu.id(), 0, 100000, scratch); },
                   {"UpdateElements: elements [0, 100000) of 'mu' are out of range (it has 1 "
                    "element)"});
  ExpectGraphError([&] { graph.UpdateElements(mu.id(), 1, 0, scratch); },
                   {"UpdateElements", "[1, 0) of 'mu'", "not a range", "begin > end"});
  EXPECT_EQ(graph.UpdateElements(mu.id(), 0, 1, scratch), 1u);
  EXPECT_EQ(graph.UpdateElements(mu.id(), 1, 1, scratch), 1u);  // empty, at the end
}

TEST(Api, UpdateElementsBeforeFinalizeOnObservedOrUnknownIsRefused) {
  FactorGraph graph = BaseModel();
  Scratch scratch;
  ExpectGraphError([&] { graph.UpdateElements(graph.Find("tau").id(), 0, 1, scratch); },
                   {"UpdateElements", "finalise the graph first", "'tau'"});
  graph.Finalize();
  scratch = graph.MakeScratch();
  const Variable y = graph.Find("y");
  const std::vector<double> before = MomentsOf(graph, y, 2);
  ExpectGraphError([&] { graph.UpdateElements(y.id(), 0, 5, scratch); },
                   {"UpdateElements: 'y' is observed and has no posterior to update"});
  EXPECT_EQ(MomentsOf(graph, y, 2), before);
  ExpectGraphError([&] { graph.UpdateElements(1000, 0, 1, scratch); },
                   {"UpdateElements", "variable id 1000", "out of range"});
}

TEST(Api, UpdateElementsOfPartOfAClusterIsRefused) {
  FactorGraph graph = ClusteredChain();
  Scratch scratch = graph.MakeScratch();
  const uint32_t x = graph.Find("x").id();
  ExpectGraphError([&] { graph.UpdateElements(x, 0, 2, scratch); },
                   {"UpdateElements", "'x' is a cluster", "all of its 3 elements", "[0, 2)"});
  ExpectGraphError([&] { graph.UpdateElements(x, 0, 4, scratch); },
                   {"UpdateElements", "elements [0, 4) of 'x' are out of range",
                    "it has 3 elements"});
  EXPECT_EQ(graph.UpdateElements(x, 0, 3, scratch), 3u);
}

TEST(Api, UpdateListedElementsChecksVariableAndElements) {
  FactorGraph graph;
  const Variable x = graph.AddVariableArray("x", Family::kGaussian, {4});
  graph.AddGaussian(x, 0.0, 1.0, "x_prior");
  const std::vector<size_t> list = {0, 2, 9};
  Scratch scratch;
  ExpectGraphError(
      [&] { graph.UpdateListedElements(x.id(), list.data(), list.size(), scratch); },
      {"UpdateListedElements", "finalise the graph first", "'x'"});
  graph.Finalize();
  scratch = graph.MakeScratch();
  ExpectGraphError(
      [&] { graph.UpdateListedElements(x.id(), list.data(), list.size(), scratch); },
      {"UpdateListedElements", "element 9 of 'x' is out of range", "(it has 4 elements)"});
  ExpectGraphError([&] { graph.UpdateListedElements(x.id(), nullptr, 2, scratch); },
                   {"UpdateListedElements", "'x'", "no list given"});
  ExpectGraphError(
      [&] { graph.UpdateListedElements(77, list.data(), 2, scratch); },
      {"UpdateListedElements", "variable id 77", "out of range"});
  EXPECT_EQ(graph.UpdateListedElements(x.id(), list.data(), 2, scratch), SIZE_MAX);
}

TEST(Api, UpdateListedElementsOnAnObservedVariableIsRefused) {
  FactorGraph graph = FinalizedBaseModel();
  Scratch scratch = graph.MakeScratch();
  const Variable y = graph.Find("y");
  const std::vector<double> before = MomentsOf(graph, y, 2);
  const std::vector<size_t> list = {0, 1};
  ExpectGraphError([&] { graph.UpdateListedElements(y.id(), list.data(), 2, scratch); },
                   {"UpdateListedElements: 'y' is observed and has no posterior to update"});
  EXPECT_EQ(MomentsOf(graph, y, 2), before);
}

TEST(Api, NaturalGradientStepChecksItsRange) {
  FactorGraph graph = BaseModel();
  Scratch scratch;
  const uint32_t mu = graph.Find("mu").id();
  ExpectGraphError([&] { graph.UpdateElementsNaturalGradient(mu, 0, 1, 0.5, scratch); },
                   {"UpdateElementsNaturalGradient", "finalise the graph first", "'mu'"});
  graph.Finalize();
  scratch = graph.MakeScratch();
  ExpectGraphError([&] { graph.UpdateElementsNaturalGradient(mu, 0, 3, 0.5, scratch); },
                   {"UpdateElementsNaturalGradient", "elements [0, 3) of 'mu' are out of range",
                    "it has 1 element"});
  ExpectGraphError(
      [&] { graph.UpdateElementsNaturalGradient(graph.Find("y").id(), 0, 1, 0.5, scratch); },
      {"UpdateElementsNaturalGradient: 'y' is observed and has no posterior to update"});
  ExpectGraphError([&] { graph.UpdateElementsNaturalGradient(mu, 0, 1, 0.0, scratch); },
                   {"UpdateElementsNaturalGradient", "step must be in (0, 1]", "got 0"});
  EXPECT_EQ(graph.UpdateElementsNaturalGradient(mu, 0, 1, 0.5, scratch), 1u);
}

// ---- Free energy --------------------------------------------------------------------------------

TEST(Api, FreeEnergyBeforeFinalizeIsRefused) {
  FactorGraph graph = BaseModel();
  Scratch scratch;
  ExpectGraphError([&] { graph.FreeEnergy(scratch); }, {"FreeEnergy", "finalise the graph first"});
  ExpectGraphError([&] { graph.FreeEnergyParts(scratch); },
                   {"FreeEnergyParts", "finalise the graph first"});
  ExpectGraphError([&] { graph.num_free_energy_blocks(); },
                   {"num_free_energy_blocks", "finalise the graph first"});
  ExpectGraphError([&] { graph.FreeEnergyBlock(0, scratch); },
                   {"FreeEnergyBlock", "finalise the graph first"});
  ExpectGraphError([&] { graph.FreeEnergyBlockPosition(0); },
                   {"FreeEnergyBlockPosition", "finalise the graph first"});
  ExpectGraphError([&] { graph.FreeEnergyFromBlocks({}); },
                   {"FreeEnergyFromBlocks", "finalise the graph first"});
}

TEST(Api, FreeEnergyBlockOutOfRangeGivesTheBlockAndCount) {
  FactorGraph graph = FinalizedBaseModel();
  Scratch scratch = graph.MakeScratch();
  const size_t blocks = graph.num_free_energy_blocks();
  ExpectGraphError([&] { graph.FreeEnergyBlock(1000, scratch); },
                   {"FreeEnergyBlock: block 1000 is out of range",
                    "the graph has " + std::to_string(blocks) + " free-energy blocks"});
  ExpectGraphError([&] { graph.FreeEnergyBlock(blocks, scratch); },
                   {"FreeEnergyBlock: block " + std::to_string(blocks) + " is out of range"});
  ExpectGraphError([&] { graph.FreeEnergyBlockPosition(1000); },
                   {"FreeEnergyBlockPosition: block 1000 is out of range"});
  ExpectGraphError([&] { graph.FreeEnergyFromBlocks(std::vector<double>(blocks + 1)); },
                   {"FreeEnergyFromBlocks", std::to_string(blocks + 1) + " values",
                    std::to_string(blocks) + " blocks"});
  // The blocks in range still sum to F.
  std::vector<double> values(blocks);
  for (size_t b = 0; b < blocks; ++b) values[b] = graph.FreeEnergyBlock(b, scratch);
  EXPECT_EQ(graph.FreeEnergyFromBlocks(values), graph.FreeEnergy(scratch));
}

// ---- Queries by id and by plate -----------------------------------------------------------------

TEST(Api, BadVariableIdInVariableNameIsRefused) {
  FactorGraph graph = BaseModel();
  EXPECT_EQ(graph.variable_name(0), "mu");
  ExpectGraphError([&] { graph.variable_name(1000); },
                   {"variable_name", "variable id 1000", "out of range",
                    std::to_string(graph.num_variables()) + " variables"});
}

TEST(Api, BadPlateInNodePlateNameAndPlateSizeIsRefused) {
  FactorGraph graph = BaseModel();
  ExpectGraphError([&] { graph.node(3); },
                   {"node: plate 3 is out of range (the graph has 3 plates)"});
  ExpectGraphError([&] { graph.plate_name(3); },
                   {"plate_name: plate 3 is out of range (the graph has 3 plates)"});
  ExpectGraphError([&] { graph.plate_size(1000); },
                   {"plate_size: plate 1000 is out of range (the graph has 3 plates)"});
  EXPECT_EQ(graph.plate_size(2), 5u);
  EXPECT_EQ(graph.plate_name(2), "likelihood");
  EXPECT_EQ(graph.node(2).type(), std::string("Gaussian"));
}

TEST(Api, BadPlateInPlateWeightsIsRefused) {
  FactorGraph graph = FinalizedBaseModel();
  ExpectGraphError([&] { graph.SetPlateWeight(9, 2.0); },
                   {"SetPlateWeight: plate 9 is out of range (the graph has 3 plates)"});
  ExpectGraphError([&] { graph.plate_weight(9); },
                   {"plate_weight: plate 9 is out of range (the graph has 3 plates)"});
  ExpectGraphError([&] { graph.SetPlateWeight(2, kNan); },
                   {"SetPlateWeight", "factor 'likelihood' (Gaussian)", "> 0 and finite",
                    "got nan"});
  EXPECT_EQ(graph.plate_weight(2), 1.0);
}

TEST(Api, StructureQueriesCheckPlateFactorAndSlot) {
  FactorGraph graph = BaseModel();
  ExpectGraphError([&] { graph.FactorArgument(2, 0, 0); },
                   {"FactorArgument", "finalise the graph first"});
  graph.Finalize();
  ExpectGraphError([&] { graph.FactorArgument(5, 0, 0); },
                   {"FactorArgument: plate 5 is out of range (the graph has 3 plates)"});
  ExpectGraphError([&] { graph.FactorArgument(2, 5, 0); },
                   {"FactorArgument", "factor 5 is out of range",
                    "factor 'likelihood' (Gaussian) has 5"});
  ExpectGraphError([&] { graph.FactorArgument(2, 0, 3); },
                   {"FactorArgument", "slot 3 is out of range"});
  ExpectGraphError([&] { graph.FactorLogTable(7, 0); },
                   {"FactorLogTable: plate 7 is out of range"});
  EXPECT_EQ(graph.FactorArgument(2, 4, 0).begin(), 4u);
}

// ---- Queries by Variable ------------------------------------------------------------------------

TEST(Api, QueriesNameTheCallForAForeignHandle) {
  FactorGraph other;
  const Variable big = other.AddVariableArray("big", Family::kGaussian, {10});
  FactorGraph graph = FinalizedBaseModel();
  Scratch scratch = graph.MakeScratch();
  const std::vector<std::pair<std::string, std::function<void()>>> calls = {
      {"ElementName", [&] { graph.ElementName(big[7]); }},
      {"family", [&] { graph.family(big[7]); }},
      {"dim", [&] { graph.dim(big[7]); }},
      {"observed", [&] { graph.observed(big[7]); }},
      {"clustered", [&] { graph.clustered(big[7]); }},
      {"Posterior", [&] { graph.Posterior<Gaussian>(big[7]); }},
      {"SetPosterior", [&] { graph.SetPosterior(big[7], Gaussian(0.0, 1.0)); }},
      {"DescribePosterior", [&] { graph.DescribePosterior(big[7]); }},
      {"NaturalParameters", [&] { graph.NaturalParameters(big[7]); }},
      {"SetNaturalParameters", [&] { graph.SetNaturalParameters(big[7], {0.0, -0.5}); }},
      {"updates_in_blocks", [&] { graph.updates_in_blocks(big[7]); }},
      {"num_colours", [&] { graph.num_colours(big[7]); }},
      {"ColourClasses", [&] { graph.ColourClasses(big[7]); }},
      {"Moments", [&] { graph.Moments(big[7]); }},
      {"HiddenNeighbours", [&] { graph.HiddenNeighbours(big[7]); }},
      {"SetObservedValues", [&] { graph.SetObservedValues(big[7], {1.0}); }},
  };
  for (const auto& [call, action] : calls) {
    SCOPED_TRACE(call);
    // big[7] is element 7 of variable 0 here: 'mu', of one element.
    ExpectGraphError(action, {call + ": not a variable of this graph", "[7, 8)",
                              "variable 'mu', which has 1 elements"});
  }
  ExpectGraphError([&] { graph.family(Variable()); },
                   {"family: an empty Variable handle is not a variable of this graph"});
}

TEST(Api, ElementNameAsksForOneElement) {
  FactorGraph graph;
  const Variable x = graph.AddVariableArray("x", Family::kGaussian, {2, 3});
  EXPECT_EQ(graph.ElementName(x[4]), "x[1][1]");
  ExpectGraphError([&] { graph.ElementName(x); },
                   {"ElementName", "elements [0, 6) of 'x'", "6 elements", "ask for one"});
  ExpectGraphError([&] { graph.ElementName(x.Slice(6, 6)); },
                   {"ElementName", "[6, 6) of 'x'", "0 elements"});
}

TEST(Api, PosteriorsAndNaturalParametersNeedFinalizeAndAHiddenVariable) {
  FactorGraph graph = BaseModel();
  const Variable mu = graph.Find("mu");
  ExpectGraphError([&] { graph.Posterior<Gaussian>(mu); },
                   {"Posterior", "'mu'", "once the graph is finalised"});
  ExpectGraphError([&] { graph.SetPosterior(mu, Gaussian(0.0, 1.0)); },
                   {"SetPosterior", "finalise the graph first", "'mu'"});
  ExpectGraphError([&] { graph.NaturalParameters(mu); },
                   {"NaturalParameters", "finalise the graph first", "'mu'"});
  ExpectGraphError([&] { graph.SetNaturalParameters(mu, {0.0, -0.5}); },
                   {"SetNaturalParameters", "finalise the graph first", "'mu'"});
  ExpectGraphError([&] { graph.updates_in_blocks(mu); },
                   {"updates_in_blocks", "finalise the graph first"});
  ExpectGraphError([&] { graph.ColourClasses(mu); }, {"ColourClasses", "finalise the graph first"});
  ExpectGraphError([&] { graph.num_colours(mu); }, {"num_colours", "finalise the graph first"});
  ExpectGraphError([&] { graph.Moments(mu); }, {"Moments", "finalise the graph first"});
  ExpectGraphError([&] { graph.HiddenNeighbours(mu); },
                   {"HiddenNeighbours", "finalise the graph first"});
  std::ostringstream dot;
  ExpectGraphError([&] { graph.WriteGraphviz(dot); }, {"WriteGraphviz", "finalise the graph first"});
  ExpectGraphError([&] { graph.MonteCarloFreeEnergy(10); }, {"MonteCarloFreeEnergy", "Finalize"});
  graph.Finalize();
  const Variable y = graph.Find("y");
  ExpectGraphError([&] { graph.Posterior<Gaussian>(y[1]); },
                   {"Posterior", "observed variable 'y'", "no posterior"});
  ExpectGraphError([&] { graph.SetPosterior(y, Gaussian(0.0, 1.0)); },
                   {"SetPosterior", "observed variable 'y'", "is observed"});
  ExpectGraphError([&] { graph.NaturalParameters(y); },
                   {"NaturalParameters", "observed variable 'y'", "is observed"});
  ExpectGraphError([&] { graph.SetNaturalParameters(y, std::vector<double>(10, 0.0)); },
                   {"SetNaturalParameters", "observed variable 'y'", "is observed"});
  ExpectGraphError([&] { graph.SetNaturalParameters(mu, {0.0}); },
                   {"SetNaturalParameters", "variable 'mu'", "expected 2 numbers", "got 1"});
  ExpectGraphError([&] { graph.MonteCarloFreeEnergy(1); },
                   {"MonteCarloFreeEnergy", "at least 2 samples", "got 1"});
}

// ---- Building after Finalize --------------------------------------------------------------------

TEST(Api, AddingAfterFinalizeIsRefusedAndTheGraphIsUnchanged) {
  FactorGraph graph = FinalizedBaseModel();
  const Variable mu = graph.Find("mu");
  const size_t variables = graph.num_variables();
  ExpectGraphError([&] { graph.AddFactor(MakeGaussianNode(), {mu, 1.0, 1.0}, "late"); },
                   {"factor 'late' (Gaussian)", "already finalised"});
  ExpectGraphError([&] { graph.AddGaussian(mu, 1.0, 1.0, "late_gaussian"); },
                   {"factor 'late_gaussian' (Gaussian)", "already finalised"});
  ExpectGraphError([&] { graph.AddPotential({mu}, {0.0, 0.0}, "late_potential"); },
                   {"late_potential", "already finalised"});
  ExpectGraphError([&] { graph.AddVariable("z", Family::kGaussian); },
                   {"variable 'z'", "already finalised"});
  ExpectGraphError([&] { graph.AddVariableArray("zs", Family::kGaussian, {3}); },
                   {"variable 'zs'", "already finalised"});
  ExpectGraphError([&] { graph.AddObserved("w", 1.0); }, {"variable 'w'", "already finalised"});
  ExpectGraphError([&] { graph.AddObservedCategorical("c", {0, 1}, 2); },
                   {"variable 'c'", "already finalised"});
  ExpectGraphError([&] { graph.AddObservedRows("r", Matrix::Ones(2, 2)); },
                   {"variable 'r'", "already finalised"});
  ExpectGraphError([&] { graph.AddCluster(mu); },
                   {"AddCluster", "variable 'mu'", "already finalised"});
  ExpectGraphError([&] { graph.Finalize(); }, {"Finalize", "already finalised"});
  EXPECT_EQ(graph.num_plates(), 3u);
  EXPECT_EQ(graph.num_variables(), variables);
  EXPECT_TRUE(SequentialScheduler(SchedulerOptions()).Run(graph).converged());
}

TEST(Api, AddClusterChecksItsVariable) {
  FactorGraph graph = BaseModel();
  ExpectGraphError([&] { graph.AddCluster(Variable()); },
                   {"AddCluster", "not a variable of this graph"});
  ExpectGraphError([&] { graph.AddCluster(graph.Find("y")); },
                   {"AddCluster", "observed variable 'y'", "no posterior"});
}

// ---- Data ---------------------------------------------------------------------------------------

TEST(Api, NanDataThroughAddObservedIsRefusedByElement) {
  // Bad values are ModelErrors, like the values outside a family's support that Finalize finds.
  FactorGraph graph;
  ExpectThrows<ModelError>([&] { graph.AddObserved("z", kNan); },
                           {"AddObserved", "observed variable 'z'", "must be finite", "got nan"});
  ExpectThrows<ModelError>(
      [&] { graph.AddObserved("y", std::vector<double>{1.0, 2.0, kNan, 4.0}); },
      {"AddObserved", "observed variable 'y' at y[2]", "must be finite", "got nan"});
  ExpectThrows<ModelError>(
      [&] { graph.AddObserved("y", std::vector<double>{1.0, -kInf}); },
      {"AddObserved", "observed variable 'y' at y[1]", "must be finite", "got -inf"});
  Matrix w = Matrix::Identity(2, 2);
  w(1, 0) = kInf;
  ExpectThrows<ModelError>([&] { graph.AddObserved("W", w); },
                           {"AddObserved", "observed variable 'W'", "entry (1, 0)",
                            "must be finite", "got inf"});
  Matrix rows = Matrix::Ones(3, 2);
  rows(2, 1) = kNan;
  ExpectThrows<ModelError>([&] { graph.AddObservedRows("points", rows); },
                           {"AddObservedRows", "observed variable 'points' at points[2]",
                            "entry 1", "must be finite", "got nan"});
  ExpectThrows<ModelError>([&] { graph.AddObservedCategorical("c", {0, 2, 3}, 3); },
                           {"AddObservedCategorical", "observed variable 'c' at c[2]",
                            "expected an outcome in 0..2", "got 3"});
  ExpectThrows<ModelError>([&] { graph.AddObservedCategorical("c", {-1}, 3); },
                           {"AddObservedCategorical", "observed variable 'c'", "got -1"});
  // Nothing was declared: the names are free.
  EXPECT_EQ(graph.num_variables(), 0u);
  EXPECT_NO_THROW(graph.AddObserved("y", std::vector<double>{1.0, 2.0}));
}

TEST(Api, NanDataThroughSetObservedValuesIsRefusedBeforeAndAfterFinalize) {
  FactorGraph graph = BaseModel();
  const Variable y = graph.Find("y");
  ExpectThrows<ModelError>([&] { graph.SetObservedValues(y.Slice(1, 3), {0.5, kNan}); },
                           {"SetObservedValues", "observed variable 'y' at y[2]",
                            "must be finite", "got nan"});
  graph.Finalize();
  const std::vector<double> before = MomentsOf(graph, y, 2);
  ExpectThrows<ModelError>([&] { graph.SetObservedValues(y, {1.0, 2.0, 3.0, kInf, 5.0}); },
                           {"SetObservedValues", "observed variable 'y' at y[3]",
                            "must be finite", "got inf"});
  EXPECT_EQ(MomentsOf(graph, y, 2), before);
  ExpectGraphError([&] { graph.SetObservedValues(graph.Find("mu"), {1.0}); },
                   {"SetObservedValues", "variable 'mu'", "not an observed variable"});
}

TEST(Api, NanDataThroughSetObservedRowsIsRefusedBeforeAndAfterFinalize) {
  FactorGraph graph;
  const Variable m = graph.AddVariable("m", Family::kMvGaussian, 2);
  graph.AddMvGaussian(m, Vector(Vector::Zero(2)), Matrix(Matrix::Identity(2, 2)), "m_prior");
  const Variable points = graph.AddObservedRows("points", Matrix::Ones(3, 2));
  graph.AddMvGaussian(points, m, Matrix(Matrix::Identity(2, 2)), "likelihood");
  Matrix rows = Matrix::Ones(2, 2);
  rows(1, 0) = kNan;
  ExpectThrows<ModelError>([&] { graph.SetObservedRows(points.Slice(1, 3), rows); },
                           {"SetObservedRows", "observed variable 'points' at points[2]",
                            "entry 0", "must be finite", "got nan"});
  graph.Finalize();
  ExpectThrows<ModelError>([&] { graph.SetObservedRows(points.Slice(1, 3), rows); },
                           {"SetObservedRows", "observed variable 'points' at points[2]",
                            "must be finite", "nan"});
}

// ---- The graph stays usable; the checks cost the loops nothing ----------------------------------

TEST(Api, RefusedCallsLeaveTheGraphUsable) {
  FactorGraph graph = FinalizedBaseModel();
  Scratch scratch = graph.MakeScratch();
  const double before = graph.FreeEnergy(scratch);
  EXPECT_THROW(graph.UpdateElements(graph.Find("y").id(), 0, 5, scratch), GraphError);
  EXPECT_THROW(graph.UpdateElement(graph.Find("mu").id(), 3, scratch), GraphError);
  EXPECT_THROW(graph.FreeEnergyBlock(1000, scratch), GraphError);
  EXPECT_EQ(graph.FreeEnergy(scratch), before);
  const Result result = SequentialScheduler(SchedulerOptions()).Run(graph);
  EXPECT_TRUE(result.converged()) << result.message;
  EXPECT_LT(result.free_energy.back(), before);
}

TEST(Api, CheckedEngineCallsAllocateNothing) {
  FactorGraph graph;
  const Variable x = graph.AddVariableArray("x", Family::kGaussian, {64});
  const Variable mu = graph.AddVariable("mu", Family::kGaussian);
  graph.AddGaussian(mu, 0.0, 1.0, "mu_prior");
  graph.AddGaussian(x, mu, 2.0, "x_given_mu");
  std::vector<double> data(64);
  for (size_t i = 0; i < data.size(); ++i) data[i] = 0.1 * static_cast<double>(i);
  graph.AddGaussian(graph.AddObserved("y", data), x, 1.0, "likelihood");
  graph.Finalize();
  Scratch scratch = graph.MakeScratch();
  const std::vector<size_t> list = {1, 3, 5, 7};
  const size_t blocks = graph.num_free_energy_blocks();
  bool updated = true;
  size_t stopped = 0, failed = SIZE_MAX;
  double energy = 0.0;
  const long before = testing::AllocationCount();
  for (int sweep = 0; sweep < 3; ++sweep) {
    updated = updated && graph.UpdateElement(mu.id(), 0, scratch);
    stopped += graph.UpdateElements(x.id(), 0, 64, scratch);
    failed = std::min(failed, graph.UpdateListedElements(x.id(), list.data(), list.size(),
                                                         scratch));
    for (size_t b = 0; b < blocks; ++b) energy += graph.FreeEnergyBlock(b, scratch);
    energy += graph.Moments(x[3])[0];  // the async scheduler reads moments per element
  }
  const long allocations = testing::AllocationCount() - before;
  EXPECT_EQ(allocations, 0);
  EXPECT_TRUE(updated);
  EXPECT_EQ(stopped, 3u * 64u);
  EXPECT_EQ(failed, SIZE_MAX);  // no listed update failed
  EXPECT_TRUE(std::isfinite(energy));
}

}  // namespace
}  // namespace vfe
