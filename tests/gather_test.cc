// Indexing by data: "theta[school[n]]" in JSON, ParameterValue::Gather in C++. The oracle is
// the same model written the long way, one block of factors per group, whose plates read
// consecutive elements only.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/testing/expect.h"
#include "vfe/io/model_json.h"
#include "vfe/model.h"

namespace vfe {
namespace {

using testing::ErrorMessage;
using testing::LoadError;

using ::testing::HasSubstr;
using Json = nlohmann::ordered_json;

Json EightSchools() {
  std::ifstream in(std::string(VFE_SOURCE_DIR) + "/examples/eight_schools.json");
  return Json::parse(in);
}

/// The eight-schools model with one block per school: score_j[i] ~ N(theta[j], 1/0.01) for
/// school j's scores in their order of appearance.
Json OneBlockPerSchool(const Json& gathered) {
  Json model = gathered;
  const std::vector<int> school = gathered["variables"][3]["observed"].get<std::vector<int>>();
  const std::vector<double> score = gathered["variables"][4]["observed"].get<std::vector<double>>();
  Json variables = Json::array();
  for (size_t v = 0; v < 3; ++v) variables.push_back(gathered["variables"][v]);
  Json factors = Json::array();
  for (size_t f = 0; f < 3; ++f) factors.push_back(gathered["factors"][f]);
  for (int j = 0; j < 8; ++j) {
    std::vector<double> scores;
    for (size_t n = 0; n < school.size(); ++n)
      if (school[n] == j) scores.push_back(score[n]);
    const std::string name = "score_" + std::to_string(j);
    variables.push_back({{"name", name}, {"shape", {scores.size()}}, {"observed", scores}});
    factors.push_back({{"node", "Gaussian"},
                       {"for", {{"i", {0, scores.size()}}}},
                       {"out", name + "[i]"},
                       {"mean", "theta[" + std::to_string(j) + "]"},
                       {"precision", 0.01}});
  }
  model["variables"] = variables;
  model["factors"] = factors;
  return model;
}

TEST(Gather, EightSchoolsEqualsOneBlockPerSchool) {
  const Json gathered = EightSchools();
  Model a = ParseModel(gathered.dump());
  Model b = ParseModel(OneBlockPerSchool(gathered).dump());
  const Result ra = Infer(a);
  const Result rb = Infer(b);
  ASSERT_TRUE(ra.converged()) << ra.message;
  ASSERT_TRUE(rb.converged()) << rb.message;
  // The same updates, their sums taken in another order: equal up to rounding.
  EXPECT_RELATIVE_NEAR(ra.free_energy.back(), rb.free_energy.back(), 1e-12);
  for (size_t j = 0; j < 8; ++j) {
    const Gaussian qa = a.graph.Posterior<Gaussian>(a.graph.Find("theta")[j]);
    const Gaussian qb = b.graph.Posterior<Gaussian>(b.graph.Find("theta")[j]);
    EXPECT_NEAR(qa.mean(), qb.mean(), 1e-12 * std::max(1.0, std::abs(qb.mean())));
    EXPECT_RELATIVE_NEAR(qa.variance(), qb.variance(), 1e-12);
  }
  EXPECT_RELATIVE_NEAR(a.graph.Posterior<Gamma>(a.graph.Find("tau")).rate(),
                       b.graph.Posterior<Gamma>(b.graph.Find("tau")).rate(), 1e-12);
  EXPECT_TRUE(ra.warnings.empty());
}

TEST(Gather, MessagesSumOverTheFactorsThatChoseAnElement) {
  // With mu and tau fixed at point-like starting posteriors, theta[j]'s update is closed form:
  // precision E[tau] + 0.01 n_j, mean (E[tau] E[mu] + 0.01 Σ_{school[n] = j} score[n]) / that.
  const Json gathered = EightSchools();
  Json fixed = gathered;
  fixed["variables"][0]["fixed"] = true;
  fixed["variables"][1]["fixed"] = true;
  fixed["inference"]["initial"] = {{"mu", {{"mean", 5.0}, {"variance", 1e-300}}},
                                   {"tau", {{"shape", 1e6}, {"rate", 1e6 * 50.0}}}};
  Model model = ParseModel(fixed.dump());
  Infer(model);
  const std::vector<int> school = gathered["variables"][3]["observed"].get<std::vector<int>>();
  const std::vector<double> score = gathered["variables"][4]["observed"].get<std::vector<double>>();
  for (int j = 0; j < 8; ++j) {
    double count = 0, sum = 0;
    for (size_t n = 0; n < school.size(); ++n)
      if (school[n] == j) count += 1, sum += score[n];
    const double tau = 1.0 / 50.0;
    const double precision = tau + 0.01 * count;
    const Gaussian q = model.graph.Posterior<Gaussian>(model.graph.Find("theta")[j]);
    EXPECT_RELATIVE_NEAR(1 / q.variance(), precision, 1e-12);
    EXPECT_RELATIVE_NEAR(q.mean(), (tau * 5.0 + 0.01 * sum) / precision, 1e-12);
  }
}

TEST(Gather, CppGatherBuildsTheJsonModelBitForBit) {
  const Json gathered = EightSchools();
  const std::vector<size_t> school =
      gathered["variables"][3]["observed"].get<std::vector<size_t>>();
  const std::vector<double> score = gathered["variables"][4]["observed"].get<std::vector<double>>();
  FactorGraph g;
  const Variable mu = g.AddVariable("mu", Family::kGaussian);
  const Variable tau = g.AddVariable("tau", Family::kGamma);
  const Variable theta = g.AddVariableArray("theta", Family::kGaussian, {8});
  const Variable y = g.AddObserved("score", score);
  g.AddFactor("Gaussian", {{"out", mu}, {"mean", 0.0}, {"precision", 1e-4}});
  g.AddFactor("Gamma", {{"out", tau}, {"shape", 1.0}, {"rate", 10.0}});
  g.AddFactor("Gaussian", {{"out", theta}, {"mean", mu}, {"precision", tau}});
  const PlateId first = g.AddFactor(
      "Gaussian",
      {{"out", y}, {"mean", ParameterValue::Gather(theta, school)}, {"precision", 0.01}}, "scores");
  EXPECT_EQ(first, 3u);
  g.Finalize();
  Model json = ParseModel(gathered.dump());
  EXPECT_EQ(g.num_plates(), json.graph.num_plates());
  SchedulerOptions options;
  options.max_iterations = 1000;
  options.tolerance = 1e-12;
  const Result cpp = SequentialScheduler(options).Run(g);
  const Result from_json = Infer(json);
  ASSERT_EQ(cpp.free_energy.size(), from_json.free_energy.size());
  for (size_t i = 0; i < cpp.free_energy.size(); ++i)
    EXPECT_EQ(cpp.free_energy[i], from_json.free_energy[i]) << "sweep " << i + 1;
}

TEST(Gather, EveryThreadCountGivesTheSameBits) {
  std::vector<double> reference;
  for (int threads : {1, 2, 3}) {
    Model model = ParseModel(EightSchools().dump());
    model.inference.scheduler = SchedulerKind::kParallel;
    model.inference.threads = threads;
    const Result result = Infer(model);
    if (reference.empty()) {
      reference = result.free_energy;
      continue;
    }
    EXPECT_EQ(result.free_energy, reference) << threads << " threads";
  }
}

TEST(Gather, BadIndicesAreRefusedWithTheirPointerAndValue) {
  Json model = EightSchools();
  model["variables"][3]["observed"][5] = 8;
  EXPECT_EQ(LoadError(model.dump()),
            "/factors/3/mean: index 0 of \"theta[school[n]]\" is school[5] = 8 at n=5, outside "
            "[0, 8) (shape of 'theta' is [8])");
  model = EightSchools();
  model["variables"][3]["observed"][2] = 2.5;
  EXPECT_EQ(LoadError(model.dump()),
            "/factors/3/mean: index 0 of \"theta[school[n]]\" is school[2] = 2.5 at n=2, "
            "expected an integer in [0, 8) (shape of 'theta' is [8])");
  model = EightSchools();
  model["factors"][3]["mean"] = "theta[mu[n]]";
  EXPECT_EQ(LoadError(model.dump()),
            "/factors/3/mean: \"theta[mu[n]]\" indexes by 'mu' (Gaussian); an index must be an "
            "observed array of integers");
  model["factors"][3]["mean"] = "theta[schol[n]]";
  EXPECT_THAT(LoadError(model.dump()),
              HasSubstr("indexes by 'schol', which is not a variable (did you mean 'school'?)"));
  model["factors"][3]["mean"] = "theta[school[n] + 1]";
  EXPECT_THAT(LoadError(model.dump()), HasSubstr("must be the whole index"));
}

TEST(Gather, CppMisuseIsRefused) {
  FactorGraph g;
  const Variable theta = g.AddVariableArray("theta", Family::kGaussian, {3});
  const Variable y = g.AddObserved("y", std::vector<double>{1, 2, 3, 4});
  g.AddFactor("Gaussian", {{"out", theta}, {"mean", 0.0}, {"precision", 1.0}});
  EXPECT_THAT(ErrorMessage<ParameterError>([&] {
                g.AddFactor("Gaussian", {{"out", y},
                                         {"mean", ParameterValue::Gather(theta, {0, 1, 3, 2})},
                                         {"precision", 1.0}});
              }),
              HasSubstr("'mean' entry 2: expected an element of 'theta' (0 to 2), found 3"));
  EXPECT_THAT(ErrorMessage<ParameterError>([&] {
                g.AddFactor("Gaussian", {{"out", y},
                                         {"mean", ParameterValue::Gather(theta, {0, 1, 2})},
                                         {"precision", 1.0}});
              }),
              HasSubstr("expected 1 element or one per factor (3, the gathered elements), "
                        "found 4"));
  // Nothing was added by the refused calls.
  EXPECT_EQ(g.num_plates(), 1u);
}

}  // namespace
}  // namespace vfe
