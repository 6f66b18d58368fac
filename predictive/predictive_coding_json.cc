// Predictive coding files ("format": "vfe-predictive-coding/1") and their results.

#include <chrono>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <ostream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "io/input_file.h"
#include "io/json_reader.h"
#include "io/json_writer.h"
#include "vfe/core/format.h"
#include "vfe/predictive/predictive_coding_file.h"

namespace vfe {
namespace predictive {
namespace {

using Reader = JsonReader;
/// Results are written with sorted keys.
using ResultJson = nlohmann::json;

PrecisionForm ParseForm(const Reader& r, const Json& j, const std::string& pointer) {
  constexpr PrecisionForm kForms[] = {PrecisionForm::kFull, PrecisionForm::kDiagonal,
                                      PrecisionForm::kIsotropic};
  return kForms[r.Choice(j, pointer, {"full", "diagonal", "isotropic"})];
}

const char* FormName(PrecisionForm form) {
  switch (form) {
    case PrecisionForm::kFull: return "full";
    case PrecisionForm::kDiagonal: return "diagonal";
    case PrecisionForm::kIsotropic: return "isotropic";
  }
  return "full";
}

/// A precision: a number π (π·I, isotropic), a list (a diagonal) or a list of rows (full).
/// `dim` is the size a number or a list stands for.
void ParsePrecision(const Reader& r, const Json& j, const std::string& pointer, int dim,
                    Matrix* precision, PrecisionForm* form) {
  if (j.is_number()) {
    *precision = r.Number(j, pointer) * Matrix::Identity(dim, dim);
    *form = PrecisionForm::kIsotropic;
  } else if (j.is_array() && !j.empty() && j[0].is_number()) {
    *precision = r.Numbers(j, pointer).asDiagonal();
    *form = PrecisionForm::kDiagonal;
  } else {
    *precision = r.Rows(j, pointer);
    *form = PrecisionForm::kFull;
  }
}

ResultJson NetworkJson(const NetworkSpec& spec) {
  ResultJson levels = ResultJson::array();
  for (const LevelSpec& level : spec.levels) {
    ResultJson l = {{"weights", MatrixJson<ResultJson>(level.weights)},
              {"function", level.function},
              {"precision", MatrixJson<ResultJson>(level.precision)},
              {"precision_form", FormName(level.precision_form)}};
    if (level.bias.size()) l["bias"] = VectorJson<ResultJson>(level.bias);
    levels.push_back(l);
  }
  return {{"levels", levels},
          {"prior",
           {{"mean", VectorJson<ResultJson>(spec.prior_mean)},
            {"precision", MatrixJson<ResultJson>(spec.prior_precision)},
            {"precision_form", FormName(spec.prior_precision_form)}}}};
}

}  // namespace

PredictiveCodingFile ParsePredictiveCodingJson(const std::string& text, const std::string& where) {
  const Reader r(where);
  const Json j = r.Parse(text);
  r.CheckKeys(j, "", {"format", "description", "network", "observations", "inference",
                      "learning", "threads"});
  if (r.Required(j, "format", "") != "vfe-predictive-coding/1")
    r.Expected(j["format"], "/format", "\"vfe-predictive-coding/1\"");
  PredictiveCodingFile file;

  const Json& network = r.Required(j, "network", "");
  r.CheckKeys(network, "/network", {"levels", "prior"});
  const Json& levels = r.Required(network, "levels", "/network");
  if (!levels.is_array() || levels.empty())
    r.Fail("/network/levels", "expected a non-empty array of levels, found " + Reader::Found(levels));
  for (size_t i = 0; i < levels.size(); ++i) {
    const std::string p = "/network/levels/" + std::to_string(i);
    const Json& l = levels[i];
    r.CheckKeys(l, p, {"weights", "bias", "function", "precision", "precision_form"});
    LevelSpec level;
    level.weights = r.Rows(r.Required(l, "weights", p), p + "/weights");
    if (l.contains("bias")) level.bias = r.Numbers(l["bias"], p + "/bias");
    if (l.contains("function")) level.function = r.String(l["function"], p + "/function");
    ParsePrecision(r, r.Required(l, "precision", p), p + "/precision",
                   static_cast<int>(level.weights.rows()), &level.precision,
                   &level.precision_form);
    if (l.contains("precision_form"))
      level.precision_form = ParseForm(r, l["precision_form"], p + "/precision_form");
    file.network.levels.push_back(level);
  }
  const Json& prior = r.Required(network, "prior", "/network");
  r.CheckKeys(prior, "/network/prior", {"mean", "precision", "precision_form"});
  file.network.prior_mean = r.Numbers(r.Required(prior, "mean", "/network/prior"),
                                      "/network/prior/mean");
  ParsePrecision(r, r.Required(prior, "precision", "/network/prior"), "/network/prior/precision",
                 static_cast<int>(file.network.prior_mean.size()), &file.network.prior_precision,
                 &file.network.prior_precision_form);
  if (prior.contains("precision_form"))
    file.network.prior_precision_form =
        ParseForm(r, prior["precision_form"], "/network/prior/precision_form");
  try {
    const PredictiveCodingNetwork check(file.network);
  } catch (const ModelError& e) {
    r.Fail("/network", e.what());
  }

  // One observation per row in the file, one per column in memory.
  file.observations = r.Rows(r.Required(j, "observations", ""), "/observations").transpose();
  const int n0 = static_cast<int>(file.network.levels[0].weights.rows());
  if (file.observations.rows() != n0)
    r.Fail("/observations", "expected rows of " + std::to_string(n0) +
                                " numbers (the dimension of y), found " +
                                std::to_string(file.observations.rows()));

  if (j.contains("threads")) {
    file.num_threads = r.Integer<int>(j["threads"], "/threads", "an integer >= 0", 0);
  }
  auto parse_inference = [&](const Json& i, const std::string& p, InferenceOptions* options) {
    r.CheckKeys(i, p, {"method", "max_iterations", "tolerance", "gradient_tolerance", "step_size"});
    if (i.contains("method")) {
      options->method = r.Choice(i["method"], p + "/method", {"gauss_newton", "gradient"}) == 0
                            ? InferenceMethod::kGaussNewton
                            : InferenceMethod::kGradient;
    }
    if (i.contains("max_iterations"))
      options->max_iterations = r.Integer<int>(i["max_iterations"], p + "/max_iterations");
    if (i.contains("tolerance")) options->tolerance = r.Number(i["tolerance"], p + "/tolerance");
    if (i.contains("gradient_tolerance"))
      options->gradient_tolerance = r.Number(i["gradient_tolerance"], p + "/gradient_tolerance");
    if (i.contains("step_size")) options->step_size = r.Number(i["step_size"], p + "/step_size");
    try {
      options->Validate();
    } catch (const OptionsError& e) {
      r.Fail(p, e.what());
    }
  };
  if (j.contains("inference")) parse_inference(j["inference"], "/inference", &file.inference);
  file.learning.inference = file.inference;
  file.learning.num_threads = file.num_threads;
  if (j.contains("learning")) {
    const Json& l = j["learning"];
    const std::string p = "/learning";
    r.CheckKeys(l, p, {"epochs", "learning_rate", "weights", "biases", "precisions", "prior",
                       "closed_form_linear", "covariance_correction", "tolerance"});
    file.learn = true;
    LearningOptions& o = file.learning;
    if (l.contains("epochs")) o.epochs = r.Integer<int>(l["epochs"], p + "/epochs");
    if (l.contains("learning_rate")) o.learning_rate = r.Number(l["learning_rate"], p + "/learning_rate");
    if (l.contains("weights")) o.learn_weights = r.Bool(l["weights"], p + "/weights");
    if (l.contains("biases")) o.learn_biases = r.Bool(l["biases"], p + "/biases");
    if (l.contains("precisions")) o.learn_precisions = r.Bool(l["precisions"], p + "/precisions");
    if (l.contains("prior")) o.learn_prior = r.Bool(l["prior"], p + "/prior");
    if (l.contains("closed_form_linear"))
      o.closed_form_linear = r.Bool(l["closed_form_linear"], p + "/closed_form_linear");
    if (l.contains("covariance_correction"))
      o.covariance_correction = r.Bool(l["covariance_correction"], p + "/covariance_correction");
    if (l.contains("tolerance")) o.tolerance = r.Number(l["tolerance"], p + "/tolerance");
    try {
      o.Validate();
    } catch (const OptionsError& e) {
      r.Fail(p, e.what());
    }
  }
  return file;
}

PredictiveCodingFile LoadPredictiveCodingFile(const std::string& path) {
  return ParsePredictiveCodingJson(ReadInputFile(path, "network file"), path);
}

void RunPredictiveCodingFile(const PredictiveCodingFile& file, std::ostream& out) {
  using Clock = std::chrono::steady_clock;
  PredictiveCodingNetwork network(file.network);
  ResultJson result = {{"format", "vfe-predictive-coding-result/1"}};
  const Clock::time_point start = Clock::now();
  if (file.learn) {
    const LearningResult learning = network.Learn(file.observations, file.learning);
    ResultJson free_energy = ResultJson::array(), levels = ResultJson::array(), entropy = ResultJson::array();
    for (const Epoch& e : learning.epochs) {
      free_energy.push_back(e.free_energy);
      levels.push_back(e.level_energies);
      entropy.push_back(e.entropy);
    }
    result["learning"] = {{"epochs", learning.epochs.size()},
                          {"converged", learning.converged},
                          {"message", learning.message},
                          {"free_energy", free_energy},
                          {"level_energies", levels},
                          {"entropy", entropy}};
  }
  const Clock::time_point learned = Clock::now();
  const std::vector<Inference> posteriors =
      network.InferBatch(file.observations, file.inference, file.num_threads);
  const Clock::time_point inferred = Clock::now();
  double total = 0.0;
  int unconverged = 0;
  std::vector<double> level_totals(network.num_levels() + 1, 0.0);
  ResultJson list = ResultJson::array();
  for (const Inference& q : posteriors) {
    total += q.free_energy;
    if (!q.converged) ++unconverged;
    ResultJson means = ResultJson::array(), levels = ResultJson::array();
    for (const Vector& m : q.means) means.push_back(VectorJson<ResultJson>(m));
    for (size_t i = 0; i < q.levels.size(); ++i) {
      level_totals[i] += q.levels[i].total();
      levels.push_back(q.levels[i].total());
    }
    list.push_back({{"means", means},
                    {"covariance", MatrixJson<ResultJson>(q.covariance)},
                    {"free_energy", q.free_energy},
                    {"levels", levels},
                    {"entropy", q.entropy},
                    {"converged", q.converged},
                    {"iterations", q.iterations}});
  }
  result["network"] = NetworkJson(network.spec());
  result["free_energy"] = total;
  result["levels"] = level_totals;
  result["unconverged"] = unconverged;
  result["posteriors"] = list;
  auto ms = [](Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); };
  result["timing_ms"] = {{"learning", ms(learned - start)}, {"inference", ms(inferred - learned)}};
  out << result.dump(1) << "\n";
}

}  // namespace predictive
}  // namespace vfe
