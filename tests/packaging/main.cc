// A program built against an installed vfe (find_package(vfe), vfe::vfe): the Gaussian model
// with unknown mean and precision,
//   μ ~ N(0, precision 0.01),  τ ~ Gamma(1e-3, 1e-3),  y_n ~ N(μ, 1/τ),
// on eight data points, by the C++ API and by a JSON model. Exits with 1 unless both runs
// converge to a mean-field fixed point that satisfies the closed-form update of q(μ):
//   E[μ] = (κ₀m₀ + E[τ]·Σy) / (κ₀ + N·E[τ]),
// which lies between the prior mean and the sample mean and, with this vague prior, within
// 1% of the sample mean.

#include <cmath>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "vfe/io/model_json.h"
#include "vfe/model.h"

namespace {

constexpr double kPriorMean = 0.0, kPriorPrecision = 0.01;
const std::vector<double> kData = {2.1, 3.4, 1.7, 4.2, 2.9, 3.8, 2.5, 3.3};

bool Check(const char* what, const vfe::Result& result, const vfe::Gaussian& q_mu,
           const vfe::Gamma& q_tau) {
  double sum = 0.0;
  for (double y : kData) sum += y;
  const double n = static_cast<double>(kData.size());
  const double sample_mean = sum / n;
  const double fixed_point = (kPriorPrecision * kPriorMean + q_tau.mean() * sum) /
                             (kPriorPrecision + n * q_tau.mean());
  const bool converged = result.converged();
  const bool in_range = q_mu.mean() > kPriorMean && q_mu.mean() < sample_mean &&
                        std::abs(q_mu.mean() - sample_mean) < 0.01 * sample_mean;
  const bool consistent = std::abs(q_mu.mean() - fixed_point) < 1e-6 * sample_mean;
  const bool ok = converged && in_range && consistent;
  std::printf("%s: %s; E[mu] = %.9f (sample mean %.9f, fixed point %.9f), E[tau] = %.6f: %s\n",
              what, result.message.c_str(), q_mu.mean(), sample_mean,
              fixed_point, q_tau.mean(), ok ? "ok" : "WRONG");
  return ok;
}

bool RunApi() {
  vfe::FactorGraph graph;
  const vfe::Variable mu = graph.AddVariable("mu", vfe::Family::kGaussian);
  const vfe::Variable tau = graph.AddVariable("tau", vfe::Family::kGamma);
  const vfe::Variable y = graph.AddObserved("y", kData);
  graph.AddGaussian(mu, kPriorMean, kPriorPrecision, "mu_prior");
  graph.AddGamma(tau, 1e-3, 1e-3, "tau_prior");
  graph.AddGaussian(y, mu, tau, "likelihood");
  graph.Finalize();
  vfe::SchedulerOptions options;
  options.order = {mu, tau};
  options.max_iterations = 200;
  const vfe::Result result = vfe::SequentialScheduler(options).Run(graph);
  return Check("C++ API", result, graph.Posterior<vfe::Gaussian>(mu),
               graph.Posterior<vfe::Gamma>(tau));
}

bool RunJson() {
  std::string values;
  for (double y : kData) values += (values.empty() ? "" : ", ") + std::to_string(y);
  const std::string text = R"({
    "format": "vfe-model/1",
    "variables": [
      {"name": "mu", "family": "Gaussian"},
      {"name": "tau", "family": "Gamma"},
      {"name": "y", "observed": [)" + values + R"(]}
    ],
    "factors": [
      {"node": "Gaussian", "out": "mu", "mean": 0.0, "precision": 0.01},
      {"node": "Gamma", "out": "tau", "shape": 1e-3, "rate": 1e-3},
      {"node": "Gaussian", "out": "y", "mean": "mu", "precision": "tau"}
    ],
    "inference": {"iterations": 200, "tolerance": 1e-8, "order": ["mu", "tau"]}
  })";
  vfe::Model model = vfe::ParseModel(text);
  const vfe::Result result =
      vfe::SequentialScheduler(model.inference.options).Run(model.graph);
  return Check("JSON model", result, model.graph.Posterior<vfe::Gaussian>(model.graph.Find("mu")),
               model.graph.Posterior<vfe::Gamma>(model.graph.Find("tau")));
}

}  // namespace

int main() {
  try {
    const bool api = RunApi();
    const bool json = RunJson();
    return api && json ? 0 : 1;
  } catch (const std::exception& error) {
    std::printf("error: %s\n", error.what());
    return 1;
  }
}
