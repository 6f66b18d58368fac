// Loopy belief propagation on discrete graphs: on trees −F equals log Z and the beliefs the
// exact marginals (enumeration, the forward–backward algorithm); on loopy grids the beliefs
// and the Bethe free energy equal those of a plain textbook LBP written here; on libDAI's
// 100 x 100 Ising grid −F equals libDAI's Bethe log Z for both schedules; flooding gives the
// same bits on any number of threads; damping reaches the same fixed point; bad input.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "bench/models.h"
#include "tests/testing/allocation_counter.h"
#include "tests/testing/expect.h"
#include "tests/testing/models.h"
#include "tests/testing/reference.h"
#include "tests/testing/textbook.h"
#include "vfe/io/model_json.h"
#include "vfe/model.h"

namespace vfe {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using testing::ErrorMessage;

// ---- Models as plain lists, and their exact solution by enumeration ----------------------------

/// A factor: its variables and its log-table, row-major over them (the last fastest).
struct ListFactor {
  std::vector<int> variables;
  std::vector<double> log_table;
};

struct ListModel {
  std::vector<int> cardinality;
  std::vector<ListFactor> factors;
};

struct ExactSolution {
  double log_z = 0.0;
  std::vector<std::vector<double>> marginals;
};

/// log Z = log Σ_x Π_a f_a(x_a) and every marginal, over all configurations.
ExactSolution Enumerate(const ListModel& model) {
  const size_t n = model.cardinality.size();
  std::vector<int> x(n, 0);
  std::vector<double> log_weights;
  std::vector<std::vector<int>> configurations;
  while (true) {
    double log_weight = 0.0;
    for (const ListFactor& f : model.factors) {
      size_t index = 0;
      for (int v : f.variables) index = index * model.cardinality[v] + x[v];
      log_weight += f.log_table[index];
    }
    log_weights.push_back(log_weight);
    configurations.push_back(x);
    int i = static_cast<int>(n) - 1;  // the next configuration, the last variable fastest
    while (i >= 0 && ++x[i] == model.cardinality[i]) x[i--] = 0;
    if (i < 0) break;
  }
  double top = -INFINITY;
  for (double w : log_weights) top = std::max(top, w);
  double total = 0.0;
  for (double w : log_weights) total += std::exp(w - top);
  ExactSolution exact;
  exact.log_z = top + std::log(total);
  exact.marginals.resize(n);
  for (size_t i = 0; i < n; ++i) exact.marginals[i].assign(model.cardinality[i], 0.0);
  for (size_t c = 0; c < configurations.size(); ++c) {
    const double p = std::exp(log_weights[c] - exact.log_z);
    for (size_t i = 0; i < n; ++i) exact.marginals[i][configurations[c][i]] += p;
  }
  return exact;
}

/// The model as a vfe graph: variable i is "x<i>", each factor a Potential.
FactorGraph BuildGraph(const ListModel& model, std::vector<Variable>* variables) {
  FactorGraph graph;
  variables->clear();
  for (size_t i = 0; i < model.cardinality.size(); ++i)
    variables->push_back(
        graph.AddVariable("x" + std::to_string(i), Family::kCategorical, model.cardinality[i]));
  for (const ListFactor& f : model.factors) {
    std::vector<Argument> args;
    for (int v : f.variables) args.push_back((*variables)[v]);
    graph.AddPotential(args, f.log_table);
  }
  graph.Finalize();
  return graph;
}

std::vector<double> RandomTable(const ListModel& model, const std::vector<int>& variables,
                                std::mt19937_64& rng, double scale, double zero_probability) {
  size_t size = 1;
  for (int v : variables) size *= model.cardinality[v];
  std::normal_distribution<double> normal(0.0, scale);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  std::vector<double> table(size);
  for (double& t : table) t = uniform(rng) < zero_probability ? -INFINITY : normal(rng);
  table[0] = normal(rng);  // never every configuration impossible
  return table;
}

/// A random factor tree: each new factor joins one existing variable to one or two new ones,
/// plus unary factors; cardinalities 2 to 4, some impossible configurations.
ListModel RandomTree(uint64_t seed, int num_factors) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> card(2, 4);
  ListModel model;
  model.cardinality.push_back(card(rng));
  for (int f = 0; f < num_factors; ++f) {
    const int existing = std::uniform_int_distribution<int>(
        0, static_cast<int>(model.cardinality.size()) - 1)(rng);
    std::vector<int> variables = {existing};
    const int fresh = f % 3 == 2 ? 2 : 1;
    for (int k = 0; k < fresh; ++k) {
      variables.push_back(static_cast<int>(model.cardinality.size()));
      model.cardinality.push_back(card(rng));
    }
    // The existing variable at a random position, so that tables are read in every slot.
    std::swap(variables[0], variables[f % variables.size()]);
    model.factors.push_back({variables, RandomTable(model, variables, rng, 1.0, 0.1)});
  }
  for (size_t i = 0; i < model.cardinality.size(); i += 2)
    model.factors.push_back({{static_cast<int>(i)}, RandomTable(model, {int(i)}, rng, 1.0, 0.0)});
  return model;
}

BeliefPropagationOptions Options(BpSchedule schedule, double tolerance = 1e-13,
                                 int max_iterations = 1000) {
  BeliefPropagationOptions options;
  options.schedule = schedule;
  options.tolerance = tolerance;
  options.max_iterations = max_iterations;
  return options;
}

// ---- Trees: exact -------------------------------------------------------------------------------

TEST(LoopyBp, OnTreesMinusFreeEnergyIsLogZAndBeliefsAreExactMarginals) {
  for (uint64_t seed : {1, 2, 3, 4, 5}) {
    const ListModel model = RandomTree(seed, 7);
    const ExactSolution exact = Enumerate(model);
    for (BpSchedule schedule : {BpSchedule::kSequential, BpSchedule::kFlooding}) {
      SCOPED_TRACE("seed " + std::to_string(seed) +
                   (schedule == BpSchedule::kFlooding ? " flooding" : " sequential"));
      std::vector<Variable> x;
      FactorGraph graph = BuildGraph(model, &x);
      const Result result = BeliefPropagation(Options(schedule)).Run(graph);
      ASSERT_TRUE(result.converged()) << result.message;
      EXPECT_NEAR(-result.free_energy.back(), exact.log_z, 1e-10 * std::abs(exact.log_z) + 1e-12);
      for (size_t i = 0; i < x.size(); ++i) {
        const Vector p = graph.Posterior<Categorical>(x[i]).p();
        for (int k = 0; k < model.cardinality[i]; ++k)
          EXPECT_NEAR(p[k], exact.marginals[i][k], 1e-10) << "x" << i << " = " << k;
      }
    }
  }
}

TEST(LoopyBp, HiddenMarkovChainWithObservationsMatchesForwardBackward) {
  // Categorical with constant p, Transition with constant matrices, observed emissions.
  const int k = 3, m = 4, t_count = 30;
  testing::Hmm hmm = testing::RandomHmm(k, m, 0, 11, /*floor=*/0.1);
  hmm.b(3, 0) = 0.0;  // an impossible emission: a zero in the tables
  hmm.b.col(0) /= hmm.b.col(0).sum();
  for (int t = 0; t < t_count; ++t) hmm.y.push_back((t * 7 + 3) % m);
  const testing::ForwardBackwardResult exact = testing::ForwardBackward(hmm);

  for (BpSchedule schedule : {BpSchedule::kSequential, BpSchedule::kFlooding}) {
    FactorGraph graph;
    const Variable x = graph.AddVariableArray("x", Family::kCategorical, {size_t(t_count)}, k);
    const Variable obs = graph.AddObservedCategorical("y", hmm.y, m);
    graph.AddCategorical(x[0], hmm.pi);
    graph.AddTransition(x.Slice(1, t_count), x.Slice(0, t_count - 1), hmm.a);
    graph.AddTransition(obs, x, hmm.b);
    graph.Finalize();
    const Result result = BeliefPropagation(Options(schedule)).Run(graph);
    ASSERT_TRUE(result.converged()) << result.message;
    EXPECT_NEAR(-result.free_energy.back(), exact.log_z, 1e-10 * std::abs(exact.log_z));
    for (int t = 0; t < t_count; ++t) {
      const Vector p = graph.Posterior<Categorical>(x[t]).p();
      for (int j = 0; j < k; ++j) EXPECT_NEAR(p[j], exact.gamma[t][j], 1e-10) << t << " " << j;
    }
  }
}

TEST(LoopyBp, ObservedArgumentsConditionTables) {
  // A three-variable potential with its middle variable observed, against enumeration with the
  // observation entered as a unary factor that allows only the observed outcome.
  std::mt19937_64 rng(5);
  ListModel model;
  model.cardinality = {3, 2, 4};
  model.factors.push_back({{0, 1, 2}, RandomTable(model, {0, 1, 2}, rng, 1.0, 0.0)});
  model.factors.push_back({{0}, RandomTable(model, {0}, rng, 1.0, 0.0)});
  ListModel conditioned = model;
  conditioned.factors.push_back({{1}, {-INFINITY, 0.0}});  // x1 = 1
  const ExactSolution exact = Enumerate(conditioned);

  FactorGraph graph;
  const Variable x0 = graph.AddVariable("x0", Family::kCategorical, 3);
  const Variable x1 = graph.AddObservedCategorical("x1", {1}, 2);
  const Variable x2 = graph.AddVariable("x2", Family::kCategorical, 4);
  graph.AddPotential({x0, x1, x2}, model.factors[0].log_table);
  graph.AddPotential({x0}, model.factors[1].log_table);
  graph.Finalize();
  const Result result = BeliefPropagation(Options(BpSchedule::kSequential)).Run(graph);
  ASSERT_TRUE(result.converged()) << result.message;
  EXPECT_NEAR(-result.free_energy.back(), exact.log_z, 1e-12);
  for (int j = 0; j < 3; ++j)
    EXPECT_NEAR(graph.Posterior<Categorical>(x0).p()[j], exact.marginals[0][j], 1e-12);
  for (int j = 0; j < 4; ++j)
    EXPECT_NEAR(graph.Posterior<Categorical>(x2).p()[j], exact.marginals[2][j], 1e-12);
}

TEST(LoopyBp, ExtremeTablesNeitherUnderflowNorOverflow) {
  // Couplings of ±800 nats and fields of ±700 that nearly contradict each other: probabilities
  // far below the smallest double, which only log-domain sums keep (the tables' range leaves
  // the linear shortcut for the log path). A chain, so BP is exact.
  ListModel model;
  model.cardinality = {2, 2, 3};
  model.factors.push_back({{0, 1}, {800.0, -800.0, -800.0, 800.0}});
  model.factors.push_back({{1, 2}, {900.0, 0.0, -900.0, -900.0, 0.0, 900.0}});
  model.factors.push_back({{0}, {700.0, -700.0}});
  model.factors.push_back({{2}, {-2000.0, 0.0, -1000.0}});
  model.factors.push_back({{1}, {-1500.0, 0.0}});
  const ExactSolution exact = Enumerate(model);
  for (BpSchedule schedule : {BpSchedule::kSequential, BpSchedule::kFlooding}) {
    std::vector<Variable> x;
    FactorGraph graph = BuildGraph(model, &x);
    const Result result = BeliefPropagation(Options(schedule)).Run(graph);
    ASSERT_TRUE(result.converged()) << result.message;
    EXPECT_NEAR(-result.free_energy.back(), exact.log_z, 1e-12 * std::abs(exact.log_z));
    for (size_t i = 0; i < x.size(); ++i)
      for (int k = 0; k < model.cardinality[i]; ++k)
        EXPECT_NEAR(graph.Posterior<Categorical>(x[i]).p()[k], exact.marginals[i][k], 1e-12);
    // The log-posteriors keep what the probabilities cannot: log p(x2 = 0) = −1200 (the best
    // configuration with x2 = 0 scores 1200 below the best one) and log p(x0 = 0) = −100.
    EXPECT_NEAR(graph.Posterior<Categorical>(x[2]).LogDensity(0), -1200.0, 1e-9);
    EXPECT_NEAR(graph.Posterior<Categorical>(x[0]).LogDensity(0), -100.0, 1e-9);
  }
}

// ---- Tiny loopy graphs -------------------------------------------------------------------------

TEST(LoopyBp, OnWeakLoopsBeliefsAndBetheLogZAreCloseToExact) {
  // BP is not exact on loops, but with weak couplings its error is second order in them.
  for (uint64_t seed : {21, 22, 23}) {
    std::mt19937_64 rng(seed);
    ListModel model;
    model.cardinality = {2, 3, 2, 2, 3, 2};  // a 2 x 3 grid: two loops
    const int side = 3;
    for (int i = 0; i < 6; ++i) {
      model.factors.push_back({{i}, RandomTable(model, {i}, rng, 1.0, 0.0)});
      if (i % side + 1 < side)
        model.factors.push_back({{i, i + 1}, RandomTable(model, {i, i + 1}, rng, 0.1, 0.0)});
      if (i + side < 6)
        model.factors.push_back({{i, i + side}, RandomTable(model, {i, i + side}, rng, 0.1, 0.0)});
    }
    const ExactSolution exact = Enumerate(model);
    std::vector<Variable> x;
    FactorGraph graph = BuildGraph(model, &x);
    const Result result = BeliefPropagation(Options(BpSchedule::kSequential)).Run(graph);
    ASSERT_TRUE(result.converged()) << result.message;
    EXPECT_NEAR(-result.free_energy.back(), exact.log_z, 1e-3);
    EXPECT_NE(-result.free_energy.back(), exact.log_z);
    for (size_t i = 0; i < x.size(); ++i)
      for (int k = 0; k < model.cardinality[i]; ++k)
        EXPECT_NEAR(graph.Posterior<Categorical>(x[i]).p()[k], exact.marginals[i][k], 2e-3);
  }
}

/// Plain loopy BP as in the textbooks (Bishop, PRML §8.4.7; Yedidia et al. 2005): messages
/// variable→factor and factor→variable in probabilities, each normalised to sum 1, flooding
/// updates; the Bethe free energy from the factor and variable beliefs.
struct TextbookLbp {
  std::vector<std::vector<double>> beliefs;
  double free_energy = 0.0;
  int iterations = 0;
};

TextbookLbp RunTextbookLbp(const ListModel& model, int max_iterations, double tolerance) {
  const size_t num_vars = model.cardinality.size();
  struct Edge {
    size_t factor, variable, position;
  };
  std::vector<Edge> edges;
  std::vector<std::vector<size_t>> edges_of_variable(num_vars), edges_of_factor(model.factors.size());
  for (size_t a = 0; a < model.factors.size(); ++a)
    for (size_t q = 0; q < model.factors[a].variables.size(); ++q) {
      const size_t i = model.factors[a].variables[q];
      edges_of_variable[i].push_back(edges.size());
      edges_of_factor[a].push_back(edges.size());
      edges.push_back({a, i, q});
    }
  std::vector<std::vector<double>> to_factor(edges.size()), to_variable(edges.size());
  for (size_t e = 0; e < edges.size(); ++e) {
    const int k = model.cardinality[edges[e].variable];
    to_factor[e].assign(k, 1.0 / k);
    to_variable[e].assign(k, 1.0 / k);
  }
  auto normalise = [](std::vector<double>& v) {
    double total = 0.0;
    for (double x : v) total += x;
    for (double& x : v) x /= total;
  };
  auto beliefs_of = [&] {
    std::vector<std::vector<double>> b(num_vars);
    for (size_t i = 0; i < num_vars; ++i) {
      b[i].assign(model.cardinality[i], 1.0);
      for (size_t e : edges_of_variable[i])
        for (int k = 0; k < model.cardinality[i]; ++k) b[i][k] *= to_variable[e][k];
      normalise(b[i]);
    }
    return b;
  };
  // Σ_x f(x) Π_{q≠skip} messages[q](x_q), visiting each configuration of factor a.
  auto for_each_configuration = [&](size_t a, auto&& visit) {
    const ListFactor& f = model.factors[a];
    std::vector<int> x(f.variables.size(), 0);
    for (size_t index = 0; index < f.log_table.size(); ++index) {
      visit(x, std::exp(f.log_table[index]), f.log_table[index]);
      for (size_t q = x.size(); q-- > 0;) {
        if (++x[q] < model.cardinality[f.variables[q]]) break;
        x[q] = 0;
      }
    }
  };
  TextbookLbp out;
  std::vector<std::vector<double>> beliefs = beliefs_of();
  for (int it = 1; it <= max_iterations; ++it) {
    // Variable to factor: the product of the other factors' messages.
    for (size_t e = 0; e < edges.size(); ++e) {
      std::vector<double>& m = to_factor[e];
      std::fill(m.begin(), m.end(), 1.0);
      for (size_t other : edges_of_variable[edges[e].variable])
        if (other != e)
          for (size_t k = 0; k < m.size(); ++k) m[k] *= to_variable[other][k];
      normalise(m);
    }
    // Factor to variable: sum over the other variables.
    for (size_t e = 0; e < edges.size(); ++e) {
      const size_t a = edges[e].factor;
      std::vector<double> m(model.cardinality[edges[e].variable], 0.0);
      for_each_configuration(a, [&](const std::vector<int>& x, double f, double) {
        double w = f;
        for (size_t q = 0; q < x.size(); ++q)
          if (q != edges[e].position) w *= to_factor[edges_of_factor[a][q]][x[q]];
        m[x[edges[e].position]] += w;
      });
      normalise(m);
      to_variable[e] = m;
    }
    std::vector<std::vector<double>> next = beliefs_of();
    double change = 0.0;
    for (size_t i = 0; i < num_vars; ++i)
      for (size_t k = 0; k < next[i].size(); ++k)
        change = std::max(change, std::abs(next[i][k] - beliefs[i][k]));
    beliefs = next;
    out.iterations = it;
    if (change < tolerance) break;
  }
  for (size_t e = 0; e < edges.size(); ++e) {  // the variable-to-factor messages at the end
    std::vector<double>& m = to_factor[e];
    std::fill(m.begin(), m.end(), 1.0);
    for (size_t other : edges_of_variable[edges[e].variable])
      if (other != e)
        for (size_t k = 0; k < m.size(); ++k) m[k] *= to_variable[other][k];
    normalise(m);
  }
  // F = Σ_a Σ b_a log(b_a / f_a) − Σ_i (d_i − 1) Σ b_i log b_i.
  double f = 0.0;
  for (size_t a = 0; a < model.factors.size(); ++a) {
    std::vector<double> b, log_f;
    for_each_configuration(a, [&](const std::vector<int>& x, double fx, double log_fx) {
      double w = fx;
      for (size_t q = 0; q < x.size(); ++q) w *= to_factor[edges_of_factor[a][q]][x[q]];
      b.push_back(w);
      log_f.push_back(log_fx);
    });
    normalise(b);
    for (size_t c = 0; c < b.size(); ++c)
      if (b[c] > 0) f += b[c] * (std::log(b[c]) - log_f[c]);
  }
  for (size_t i = 0; i < num_vars; ++i) {
    double neg_entropy = 0.0;
    for (double p : beliefs[i])
      if (p > 0) neg_entropy += p * std::log(p);
    f -= (static_cast<double>(edges_of_variable[i].size()) - 1.0) * neg_entropy;
  }
  out.beliefs = beliefs;
  out.free_energy = f;
  return out;
}

TEST(LoopyBp, LoopyGridsMatchTextbookLbp) {
  // A 4 x 4 Ising grid and a 3 x 4 Potts-like grid (K = 3) with random fields and couplings
  // strong enough that BP is far from exact, weak enough that it converges.
  struct Case {
    int rows, cols, k;
    double coupling;
    uint64_t seed;
  };
  for (const Case& c : {Case{4, 4, 2, 0.5, 31}, Case{3, 4, 3, 0.4, 32}}) {
    std::mt19937_64 rng(c.seed);
    ListModel model;
    const int n = c.rows * c.cols;
    model.cardinality.assign(n, c.k);
    for (int i = 0; i < n; ++i) {
      model.factors.push_back({{i}, RandomTable(model, {i}, rng, 0.5, 0.0)});
      if (i % c.cols + 1 < c.cols)
        model.factors.push_back({{i, i + 1}, RandomTable(model, {i, i + 1}, rng, c.coupling, 0.0)});
      if (i + c.cols < n)
        model.factors.push_back({{i, i + c.cols}, RandomTable(model, {i, i + c.cols}, rng, c.coupling, 0.0)});
    }
    const TextbookLbp textbook = RunTextbookLbp(model, 10000, 1e-14);
    ASSERT_LT(textbook.iterations, 10000);
    for (BpSchedule schedule : {BpSchedule::kSequential, BpSchedule::kFlooding}) {
      SCOPED_TRACE(std::to_string(c.k) + " states, " +
                   (schedule == BpSchedule::kFlooding ? "flooding" : "sequential"));
      std::vector<Variable> x;
      FactorGraph graph = BuildGraph(model, &x);
      const Result result = BeliefPropagation(Options(schedule, 1e-14, 10000)).Run(graph);
      ASSERT_TRUE(result.converged()) << result.message;
      EXPECT_NEAR(result.free_energy.back(), textbook.free_energy,
                  1e-10 * std::abs(textbook.free_energy));
      for (int i = 0; i < n; ++i)
        for (int k = 0; k < c.k; ++k)
          EXPECT_NEAR(graph.Posterior<Categorical>(x[i]).p()[k], textbook.beliefs[i][k], 1e-11);
      // And not the exact answer: these loops matter.
      if (n <= 16) {
        const ExactSolution exact = Enumerate(model);
        EXPECT_GT(std::abs(-result.free_energy.back() - exact.log_z), 1e-4);
      }
    }
  }
}

TEST(LoopyBp, HigherOrderLoopsWithZerosMatchTextbookLbp) {
  // Factors of three variables that close loops among six variables of 2 and 3 states, some
  // configurations impossible: the general message path and the −∞ bookkeeping of the beliefs.
  std::mt19937_64 rng(41);
  ListModel model;
  model.cardinality = {2, 3, 2, 3, 2, 2};
  for (const std::vector<int>& vars :
       std::vector<std::vector<int>>{{0, 1, 2}, {2, 3, 4}, {4, 5, 0}, {1, 3, 5}})
    model.factors.push_back({vars, RandomTable(model, vars, rng, 0.7, 0.15)});
  for (int i = 0; i < 6; ++i) model.factors.push_back({{i}, RandomTable(model, {i}, rng, 0.5, 0.0)});
  const TextbookLbp textbook = RunTextbookLbp(model, 20000, 1e-14);
  ASSERT_LT(textbook.iterations, 20000);
  for (BpSchedule schedule : {BpSchedule::kSequential, BpSchedule::kFlooding}) {
    std::vector<Variable> x;
    FactorGraph graph = BuildGraph(model, &x);
    const Result result = BeliefPropagation(Options(schedule, 1e-14, 20000)).Run(graph);
    ASSERT_TRUE(result.converged()) << result.message;
    EXPECT_NEAR(result.free_energy.back(), textbook.free_energy,
                1e-10 * std::abs(textbook.free_energy));
    for (size_t i = 0; i < x.size(); ++i)
      for (int k = 0; k < model.cardinality[i]; ++k)
        EXPECT_NEAR(graph.Posterior<Categorical>(x[i]).p()[k], textbook.beliefs[i][k], 1e-11);
    const ExactSolution exact = Enumerate(model);
    EXPECT_GT(std::abs(-result.free_energy.back() - exact.log_z), 1e-4);  // the loops matter
  }
}

// ---- libDAI's Ising grid ------------------------------------------------------------------------

constexpr double kLibDaiBetheLogZ = 10255.4312769;

TEST(LoopyBp, LibDaiIsingGridGivesLibDaisBetheLogZ) {
  const std::string path = testing::ReferencePath("libdai/ising_grid_100x100.fg");
  for (BpSchedule schedule : {BpSchedule::kSequential, BpSchedule::kFlooding}) {
    Model model = LoadModel(path);
    BeliefPropagationOptions options = Options(schedule, 1e-9, 1000);
    options.threads = 2;
    const Result result = BeliefPropagation(options).Run(model.graph);
    const char* name = schedule == BpSchedule::kFlooding ? "flooding" : "sequential";
    ASSERT_TRUE(result.converged()) << name << ": " << result.message;
    EXPECT_NEAR(-result.free_energy.back(), kLibDaiBetheLogZ, 1e-6 * kLibDaiBetheLogZ) << name;
    std::cout << "[ libDAI   ] " << name << ": " << result.iterations << " sweeps to 1e-9 (libDAI "
              << (schedule == BpSchedule::kFlooding ? 101 : 48) << "), -F = "
              << FormatNumber(-result.free_energy.back()) << "\n";
  }
}

// ---- Flooding on threads, damping, allocation --------------------------------------------------

TEST(LoopyBp, FloodingIsBitwiseTheSameOnAnyNumberOfThreads) {
  const bench::IsingGrid grid = bench::MakeIsingGrid(60);
  std::vector<double> reference_trace;
  std::vector<double> reference_beliefs;
  for (int threads : {1, 2, 3, 4}) {
    Variable s;
    FactorGraph graph = bench::MakeIsingGraph(grid, /*plates=*/true, &s);
    BeliefPropagationOptions options = Options(BpSchedule::kFlooding, 0.0, 25);
    options.threads = threads;
    const BeliefPropagation bp(options);
    ASSERT_EQ(bp.threads(), threads);
    const Result result = bp.Run(graph);
    ASSERT_EQ(result.iterations, 25) << result.message;
    std::vector<double> beliefs;
    for (size_t i = 0; i < s.size(); ++i) beliefs.push_back(graph.Posterior<Categorical>(s[i]).p()[1]);
    if (threads == 1) {
      reference_trace = result.free_energy;
      reference_beliefs = beliefs;
      continue;
    }
    EXPECT_EQ(result.free_energy, reference_trace) << threads << " threads";
    EXPECT_EQ(beliefs, reference_beliefs) << threads << " threads";
  }
}

TEST(LoopyBp, DampingReachesTheSameFixedPoint) {
  const bench::IsingGrid grid = bench::MakeIsingGrid(20);
  std::vector<std::vector<double>> beliefs;
  std::vector<double> free_energy;
  std::vector<int> sweeps;
  for (double damping : {0.0, 0.5}) {
    for (BpSchedule schedule : {BpSchedule::kSequential, BpSchedule::kFlooding}) {
      Variable s;
      FactorGraph graph = bench::MakeIsingGraph(grid, /*plates=*/false, &s);
      BeliefPropagationOptions options = Options(schedule, 1e-12, 5000);
      options.damping = damping;
      const Result result = BeliefPropagation(options).Run(graph);
      ASSERT_TRUE(result.converged()) << result.message;
      std::vector<double> b;
      for (size_t i = 0; i < s.size(); ++i) b.push_back(graph.Posterior<Categorical>(s[i]).p()[0]);
      beliefs.push_back(b);
      free_energy.push_back(result.free_energy.back());
      sweeps.push_back(result.iterations);
    }
  }
  for (size_t run = 1; run < beliefs.size(); ++run) {
    EXPECT_NEAR(free_energy[run], free_energy[0], 1e-9 * std::abs(free_energy[0])) << run;
    for (size_t i = 0; i < beliefs[0].size(); ++i)
      ASSERT_NEAR(beliefs[run][i], beliefs[0][i], 1e-10) << "run " << run << " spin " << i;
  }
  EXPECT_GT(sweeps[2], sweeps[0]);  // damping slows the sequential schedule down
}

TEST(LoopyBp, SweepsAllocateNothing) {
  // The allocations of a run do not grow with its number of sweeps.
  const bench::IsingGrid grid = bench::MakeIsingGrid(30);
  for (BpSchedule schedule : {BpSchedule::kSequential, BpSchedule::kFlooding}) {
    std::vector<long> counts;
    // The first run pays for one-time set-up outside the graph (the thread pool's first
    // use): it is not counted.
    for (int sweeps : {1, 3, 30}) {
      Variable s;
      FactorGraph graph = bench::MakeIsingGraph(grid, /*plates=*/true, &s);
      const BeliefPropagation bp(Options(schedule, 0.0, sweeps));
      const long before = testing::AllocationCount();
      const Result result = bp.Run(graph);
      counts.push_back(testing::AllocationCount() - before);
      ASSERT_EQ(result.iterations, sweeps);
    }
    EXPECT_EQ(counts[1], counts[2]) << (schedule == BpSchedule::kFlooding ? "flooding" : "sequential");
  }
}

TEST(LoopyBp, ReportsEverySweepAndStopsOnTheCallbackOrTheCap) {
  const bench::IsingGrid grid = bench::MakeIsingGrid(10);
  Variable s;
  FactorGraph graph = bench::MakeIsingGraph(grid, /*plates=*/true, &s);
  BeliefPropagationOptions options = Options(BpSchedule::kSequential, 0.0, 7);
  int calls = 0;
  options.callback = [&](const IterationInfo& info) {
    EXPECT_EQ(info.iteration, ++calls);
    return info.iteration < 4;
  };
  Result result = BeliefPropagation(options).Run(graph);
  EXPECT_EQ(result.termination, Termination::kStopped);
  EXPECT_EQ(result.iterations, 4);
  EXPECT_EQ(result.free_energy.size(), 4u);
  options.callback = nullptr;
  result = BeliefPropagation(options).Run(graph);
  EXPECT_EQ(result.termination, Termination::kMaxIterations);
  EXPECT_THAT(result.message, HasSubstr("cap of 7 sweeps"));
  options.tolerance = 0.0;
  options.free_energy_tolerance = 1e-6;
  options.max_iterations = 1000;
  result = BeliefPropagation(options).Run(graph);
  EXPECT_TRUE(result.converged());
  EXPECT_THAT(result.message, HasSubstr("relative change of F"));
}

// ---- Bad input ----------------------------------------------------------------------------------

TEST(LoopyBp, RefusesContinuousVariablesAndLearnedMatricesNamingThem) {
  {
    FactorGraph graph;
    const Variable mu = graph.AddVariable("mu", Family::kGaussian);
    graph.AddGaussian(mu, 0.0, 1.0, "prior");
    graph.Finalize();
    EXPECT_THAT(
        ErrorMessage<GraphError>([&] { BeliefPropagation(BeliefPropagationOptions()).Run(graph); }),
        AllOf(HasSubstr("factor 'prior' (Gaussian) is not a discrete factor"),
              HasSubstr("variable 'mu' (Gaussian)")));
  }
  {
    FactorGraph graph;
    const Variable x = graph.AddVariableArray("x", Family::kCategorical, {5}, 2);
    const Variable a = graph.AddVariableArray("A", Family::kDirichlet, {2}, 2);
    graph.AddMatrixDirichlet(a, Matrix(Matrix::Ones(2, 2)));
    graph.AddCategorical(x[0], Vector(Vector::Constant(2, 0.5)));
    graph.AddTransition(x.Slice(1, 5), x.Slice(0, 4), a, "chain");
    graph.Finalize();
    EXPECT_THAT(
        ErrorMessage<GraphError>([&] { BeliefPropagation(BeliefPropagationOptions()).Run(graph); }),
        AllOf(HasSubstr("factor 'chain' (Transition), element 0 of its plate, is not a discrete "
                        "factor with a fixed table"),
              HasSubstr("slot 'matrix[0]' holds variable 'A' (Dirichlet)")));
  }
  {
    // Categorical with a Dirichlet p: a learned parameter.
    FactorGraph graph;
    const Variable z = graph.AddVariable("z", Family::kCategorical, 3);
    const Variable w = graph.AddVariable("w", Family::kDirichlet, 3);
    graph.AddDirichlet(w, Vector(Vector::Ones(3)), "weights prior");
    graph.AddCategorical(z, w, "label");
    graph.Finalize();
    EXPECT_THAT(
        ErrorMessage<GraphError>([&] { BeliefPropagation(BeliefPropagationOptions()).Run(graph); }),
        AllOf(HasSubstr("factor 'label' (Categorical) is not a discrete"),
              HasSubstr("slot 'p' holds variable 'w' (Dirichlet)")));
  }
}

TEST(LoopyBp, RefusesImpossibleEvidenceAndReportsContradictions) {
  {
    // The observed value has probability 0 under a factor with no hidden variable.
    FactorGraph graph;
    const Variable x = graph.AddVariable("x", Family::kCategorical, 2);
    const Variable y = graph.AddObservedCategorical("y", {1}, 2);
    graph.AddPotential({x}, {0.0, 0.0});
    graph.AddPotential({y}, {0.0, -INFINITY}, "evidence");
    graph.Finalize();
    EXPECT_THAT(
        ErrorMessage<ModelError>([&] { BeliefPropagation(BeliefPropagationOptions()).Run(graph); }),
        HasSubstr("factor 'evidence' (Potential) gives probability 0"));
  }
  for (BpSchedule schedule : {BpSchedule::kSequential, BpSchedule::kFlooding}) {
    // Two unary factors that exclude each other's only outcome: no belief is possible, and a
    // pairwise factor then has no possible cavity to send from.
    FactorGraph graph;
    const Variable x = graph.AddVariable("x", Family::kCategorical, 2);
    const Variable y = graph.AddVariable("y", Family::kCategorical, 2);
    graph.AddPotential({x}, {0.0, -INFINITY});
    graph.AddPotential({x}, {-INFINITY, 0.0});
    graph.AddPotential({x, y}, {0.0, 1.0, 1.0, 0.0});
    graph.Finalize();
    const Vector before = graph.Posterior<Categorical>(x).p();
    const Result result = BeliefPropagation(Options(schedule)).Run(graph);
    EXPECT_EQ(result.termination, Termination::kNumericalFailure);
    EXPECT_THAT(result.message, HasSubstr("sweep 1: the messages into x give probability 0 to "
                                          "every outcome (contradictory factors)"));
    EXPECT_THAT(result.message, HasSubstr("the posteriors are left as they were"));
    EXPECT_EQ(graph.Posterior<Categorical>(x).p(), before);
  }
}

TEST(LoopyBp, RefusesBadOptions) {
  auto message = [](BeliefPropagationOptions options) {
    return ErrorMessage<OptionsError>([&] { BeliefPropagation bp(options); });
  };
  BeliefPropagationOptions o;
  o.damping = 1.0;
  EXPECT_EQ(message(o), "damping must be in [0, 1), got 1");
  o = {};
  o.damping = -0.1;
  EXPECT_EQ(message(o), "damping must be in [0, 1), got -0.1");
  o = {};
  o.max_iterations = 0;
  EXPECT_EQ(message(o), "max_iterations must be >= 1, got 0");
  o = {};
  o.tolerance = NAN;
  EXPECT_THAT(message(o), HasSubstr("tolerance must be a finite number >= 0"));
  o = {};
  o.free_energy_tolerance = -1;
  EXPECT_THAT(message(o), HasSubstr("free_energy_tolerance must be a finite number >= 0"));
  o = {};
  o.threads = -2;
  EXPECT_EQ(message(o), "threads must be >= 0 (0: every core), got -2");

  FactorGraph unfinished;
  unfinished.AddVariable("x", Family::kCategorical, 2);
  EXPECT_THROW(BeliefPropagation(BeliefPropagationOptions()).Run(unfinished), GraphError);
}

TEST(LoopyBp, StructureQueriesCheckTheirArguments) {
  FactorGraph graph;
  const Variable x = graph.AddVariableArray("x", Family::kCategorical, {3}, 2);
  graph.AddPotential({x.Slice(0, 2), x.Slice(1, 3)}, {0.0, 1.0, 2.0, 3.0}, "pairs");
  graph.AddCategorical(x[0], Vector(Vector::Constant(2, 0.5)));
  EXPECT_THROW(graph.FactorArgument(0, 0, 0), GraphError);  // before Finalize
  graph.Finalize();
  const Variable second = graph.FactorArgument(0, 1, 1);
  EXPECT_EQ(second.id(), x.id());
  EXPECT_EQ(second.begin(), 2u);
  EXPECT_EQ(graph.FactorLogTable(0, 1)[3], 3.0);
  // Categorical with constant p: the table is log p, read from its constant.
  EXPECT_NEAR(graph.FactorLogTable(1, 0)[1], std::log(0.5), 1e-15);
  const Variable p = graph.FactorArgument(1, 0, 1);
  EXPECT_TRUE(graph.observed(p));
  EXPECT_EQ(graph.family(p), Family::kDirichlet);
  EXPECT_THAT(ErrorMessage<GraphError>([&] { graph.FactorArgument(0, 2, 0); }),
              HasSubstr("factor 2 is out of range: factor 'pairs' (Potential) has 2"));
  EXPECT_THROW(graph.FactorArgument(0, 0, 2), GraphError);
  EXPECT_THROW(graph.FactorLogTable(7, 0), GraphError);
  EXPECT_THROW(graph.Moments(x), GraphError);  // three elements
}

}  // namespace
}  // namespace vfe
