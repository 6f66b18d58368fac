// Predictive coding files ("format": "vfe-predictive-coding/1"), their results and the
// `vfe predictive-coding` command.

#include <chrono>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <ostream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "graph/json_reader.h"
#include "vfe/core/format.h"
#include "vfe/predictive/predictive_coding_file.h"

namespace vfe {
namespace predictive {
namespace {

using Json = nlohmann::json;

using Reader = JsonReader;

PrecisionForm ParseForm(const Reader& r, const Json& j, const std::string& pointer) {
  const std::string s = r.String(j, pointer);
  if (s == "full") return PrecisionForm::kFull;
  if (s == "diagonal") return PrecisionForm::kDiagonal;
  if (s == "isotropic") return PrecisionForm::kIsotropic;
  r.Fail(pointer, "expected \"full\", \"diagonal\" or \"isotropic\", got " + Reader::Describe(j));
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

Json VectorJson(const Vector& v) {
  Json out = Json::array();
  for (Eigen::Index i = 0; i < v.size(); ++i) out.push_back(v[i]);
  return out;
}

Json MatrixJson(const Matrix& m) {
  Json out = Json::array();
  for (Eigen::Index i = 0; i < m.rows(); ++i) out.push_back(VectorJson(m.row(i).transpose()));
  return out;
}

Json NetworkJson(const NetworkSpec& spec) {
  Json levels = Json::array();
  for (const LevelSpec& level : spec.levels) {
    Json l = {{"weights", MatrixJson(level.weights)},
              {"function", level.function},
              {"precision", MatrixJson(level.precision)},
              {"precision_form", FormName(level.precision_form)}};
    if (level.bias.size()) l["bias"] = VectorJson(level.bias);
    levels.push_back(l);
  }
  return {{"levels", levels},
          {"prior",
           {{"mean", VectorJson(spec.prior_mean)},
            {"precision", MatrixJson(spec.prior_precision)},
            {"precision_form", FormName(spec.prior_precision_form)}}}};
}

const char* const kUsage =
    "usage: vfe predictive-coding NETWORK.json [-o RESULT.json] [--epochs E] [--threads N]\n"
    "\n"
    "Reads a predictive coding network and its observations (vfe-predictive-coding/1, see\n"
    "docs/predictive-coding.md), learns its parameters when the file has a \"learning\" block\n"
    "or --epochs is given (E epochs, with the file's learning settings or the defaults), infers\n"
    "the Laplace posterior of every observation and writes the result\n"
    "(vfe-predictive-coding-result/1: the free energy per epoch and per level, the network,\n"
    "F in total and per level, every posterior) to RESULT.json or standard output.\n"
    "--threads N infers the observations on N threads (0: every core); the results do not\n"
    "depend on N.\n";

}  // namespace

PredictiveCodingFile ParsePredictiveCodingJson(const std::string& text, const std::string& where) {
  const Reader r(where);
  Json j;
  try {
    j = Json::parse(text);
  } catch (const Json::parse_error& e) {
    throw ModelError(where + ": not valid JSON: " + e.what());
  }
  r.CheckKeys(j, "", {"format", "description", "network", "observations", "inference",
                      "learning", "threads"});
  const std::string format = r.String(r.Required(j, "format", ""), "/format");
  if (format != "vfe-predictive-coding/1")
    r.Fail("/format", "expected \"vfe-predictive-coding/1\", got \"" + format + "\"");
  PredictiveCodingFile file;

  const Json& network = r.Required(j, "network", "");
  r.CheckKeys(network, "/network", {"levels", "prior"});
  const Json& levels = r.Required(network, "levels", "/network");
  if (!levels.is_array() || levels.empty())
    r.Fail("/network/levels", "expected a non-empty array of levels, got " + Reader::Describe(levels));
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
                                " numbers (the dimension of y), got " +
                                std::to_string(file.observations.rows()));

  if (j.contains("threads")) {
    file.num_threads = r.Integer(j["threads"], "/threads");
    if (file.num_threads < 0) r.Fail("/threads", "expected an integer >= 0");
  }
  auto parse_inference = [&](const Json& i, const std::string& p, InferenceOptions* options) {
    r.CheckKeys(i, p, {"method", "max_iterations", "tolerance", "gradient_tolerance", "step_size"});
    if (i.contains("method")) {
      const std::string m = r.String(i["method"], p + "/method");
      if (m == "gauss_newton") {
        options->method = InferenceMethod::kGaussNewton;
      } else if (m == "gradient") {
        options->method = InferenceMethod::kGradient;
      } else {
        r.Fail(p + "/method", "expected \"gauss_newton\" or \"gradient\", got \"" + m + "\"");
      }
    }
    if (i.contains("max_iterations"))
      options->max_iterations = r.Integer(i["max_iterations"], p + "/max_iterations");
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
    if (l.contains("epochs")) o.epochs = r.Integer(l["epochs"], p + "/epochs");
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
  std::ifstream in(path);
  if (!in) throw ModelError(path + ": cannot open the file");
  std::stringstream buffer;
  buffer << in.rdbuf();
  return ParsePredictiveCodingJson(buffer.str(), path);
}

void RunPredictiveCodingFile(const PredictiveCodingFile& file, std::ostream& out) {
  using Clock = std::chrono::steady_clock;
  PredictiveCodingNetwork network(file.network);
  Json result = {{"format", "vfe-predictive-coding-result/1"}};
  const Clock::time_point start = Clock::now();
  if (file.learn) {
    const LearningResult learning = network.Learn(file.observations, file.learning);
    Json free_energy = Json::array(), levels = Json::array(), entropy = Json::array();
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
  Json list = Json::array();
  for (const Inference& q : posteriors) {
    total += q.free_energy;
    if (!q.converged) ++unconverged;
    Json means = Json::array(), levels = Json::array();
    for (const Vector& m : q.means) means.push_back(VectorJson(m));
    for (size_t i = 0; i < q.levels.size(); ++i) {
      level_totals[i] += q.levels[i].total();
      levels.push_back(q.levels[i].total());
    }
    list.push_back({{"means", means},
                    {"covariance", MatrixJson(q.covariance)},
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

int PredictiveCodingCommand(const std::vector<std::string>& args, std::ostream& out,
                            std::ostream& err) {
  std::string path, output;
  int epochs = -1, threads = -1;
  auto usage_error = [&](const std::string& message) {
    err << "vfe: " << message << "\n\n" << kUsage;
    return 2;
  };
  auto parse_count = [](const std::string& text, int* value) {
    try {
      size_t used = 0;
      const long v = std::stol(text, &used);
      if (used != text.size() || v < 0 || v > 100000000) return false;
      *value = static_cast<int>(v);
      return true;
    } catch (const std::exception&) {
      return false;
    }
  };
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--help" || a == "-h") {
      out << kUsage;
      return 0;
    }
    if (a == "-o" || a == "--epochs" || a == "--threads") {
      if (i + 1 >= args.size()) return usage_error(a + ": missing its value");
      const std::string& v = args[++i];
      if (a == "-o") {
        output = v;
      } else if (a == "--epochs") {
        if (!parse_count(v, &epochs) || epochs < 1)
          return usage_error("--epochs: expected a positive integer, found \"" + v + "\"");
      } else if (!parse_count(v, &threads)) {
        return usage_error("--threads: expected an integer >= 0, found \"" + v + "\"");
      }
    } else if (!a.empty() && a[0] == '-') {
      return usage_error("predictive-coding: unknown option " + a);
    } else if (!path.empty()) {
      return usage_error("predictive-coding: expected one network file, found a second: " + a);
    } else {
      path = a;
    }
  }
  if (path.empty()) return usage_error("predictive-coding: missing the network file");
  PredictiveCodingFile file = LoadPredictiveCodingFile(path);
  if (epochs > 0) {
    file.learn = true;
    file.learning.epochs = epochs;
  }
  if (threads >= 0) file.num_threads = file.learning.num_threads = threads;
  std::ofstream file_out;
  if (!output.empty()) {
    file_out.open(output);
    if (!file_out) throw ModelError(output + ": cannot write the result");
  }
  RunPredictiveCodingFile(file, output.empty() ? out : file_out);
  return 0;
}

}  // namespace predictive
}  // namespace vfe
