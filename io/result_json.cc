// The result of a run as a "vfe-result/1" document.

#include <algorithm>
#include <charconv>
#include <cmath>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "io/json_writer.h"
#include "io/model_document.h"
#include "io/posterior_json.h"
#include "vfe/core/format.h"
#include "vfe/io/model_json.h"
#include "vfe/nodes/registry.h"

namespace vfe {

void VisitPosterior(const FactorGraph& graph, const Variable& element, PosteriorVisitor& visit) {
  visit.Family(FamilyName(graph.family(element)));
  switch (graph.family(element)) {
    case Family::kGaussian: {
      const Gaussian g = graph.Posterior<Gaussian>(element);
      visit.Number("mean", g.mean());
      visit.Number("variance", g.variance());
      break;
    }
    case Family::kGamma: {
      const Gamma g = graph.Posterior<Gamma>(element);
      visit.Number("shape", g.shape());
      visit.Number("rate", g.rate());
      visit.Number("mean", g.mean());
      break;
    }
    case Family::kMvGaussian: {
      const MvGaussian g = graph.Posterior<MvGaussian>(element);
      visit.Numbers("mean", g.mean());
      visit.Rows("covariance", g.covariance());
      break;
    }
    case Family::kWishart: {
      const Wishart g = graph.Posterior<Wishart>(element);
      visit.Number("dof", g.dof());
      visit.Rows("scale", g.scale());
      visit.Rows("mean", g.mean());
      break;
    }
    case Family::kBeta: {
      const Beta g = graph.Posterior<Beta>(element);
      visit.Number("a", g.a());
      visit.Number("b", g.b());
      visit.Number("mean", g.mean());
      break;
    }
    case Family::kBernoulli:
      visit.Number("p", graph.Posterior<Bernoulli>(element).p());
      break;
    case Family::kCategorical:
      visit.Numbers("p", graph.Posterior<Categorical>(element).p());
      break;
    case Family::kDirichlet: {
      const Dirichlet g = graph.Posterior<Dirichlet>(element);
      visit.Numbers("alpha", g.alpha());
      visit.Numbers("mean", g.mean());
      break;
    }
  }
}

Json PosteriorJson(const FactorGraph& graph, const Variable& element) {
  struct Build final : PosteriorVisitor {
    Json q = Json::object();
    void Family(const char* name) override { q["family"] = name; }
    void Number(const char* key, double value) override { q[key] = value; }
    void Numbers(const char* key, const Vector& value) override { q[key] = VectorJson(value); }
    void Rows(const char* key, const Matrix& value) override { q[key] = MatrixJson(value); }
  } build;
  VisitPosterior(graph, element, build);
  return std::move(build.q);
}

void AppendJsonNumber(double value, std::string& out) {
  if (!std::isfinite(value)) {
    out += "null";
    return;
  }
  char text[32];
  const auto [end, error] = std::to_chars(text, text + sizeof text, value);
  out.append(text, error == std::errc() ? end : text);
}

void AppendPosteriorJson(const FactorGraph& graph, const Variable& element, std::string& out) {
  struct Append final : PosteriorVisitor {
    std::string& out;
    explicit Append(std::string& text) : out(text) {}
    void Key(const char* key) {
      out += ",\"";
      out += key;
      out += "\":";
    }
    void Family(const char* name) override {
      out += "{\"family\":\"";
      out += name;
      out += '"';
    }
    void Number(const char* key, double value) override {
      Key(key);
      AppendJsonNumber(value, out);
    }
    void Numbers(const char* key, const Vector& value) override {
      Key(key);
      Array(value.data(), value.size(), 1);
    }
    void Rows(const char* key, const Matrix& value) override {
      Key(key);
      out += '[';
      for (Eigen::Index i = 0; i < value.rows(); ++i) {
        if (i) out += ',';
        Array(value.data() + i, value.cols(), value.rows());  // column-major: row i strides
      }
      out += ']';
    }
    void Array(const double* values, Eigen::Index count, Eigen::Index stride) {
      out += '[';
      for (Eigen::Index j = 0; j < count; ++j) {
        if (j) out += ',';
        AppendJsonNumber(values[j * stride], out);
      }
      out += ']';
    }
  } append(out);
  VisitPosterior(graph, element, append);
  out += '}';
}

namespace {

/// A MatrixDirichlet posterior from its Dirichlet columns: "alpha" and "mean" as K rows of L.
Json MatrixDirichletJson(const FactorGraph& graph, const Variable& matrix) {
  std::vector<Dirichlet> columns;
  for (size_t k = 0; k < matrix.size(); ++k)
    columns.push_back(graph.Posterior<Dirichlet>(matrix[k]));
  const MatrixDirichlet q = MatrixDirichlet::FromColumns(columns);
  Matrix mean(q.alpha().rows(), q.alpha().cols());
  for (size_t k = 0; k < columns.size(); ++k)
    mean.col(static_cast<Eigen::Index>(k)) = columns[k].mean();
  return {
      {"family", kMatrixDirichlet}, {"alpha", MatrixJson(q.alpha())}, {"mean", MatrixJson(mean)}};
}

}  // namespace

std::vector<double> PredictiveMeans(const Model& model, const Prediction& prediction) {
  return model.graph.PredictiveMeans(prediction.node, prediction.in, prediction.rows,
                                     prediction.offsets);
}

namespace {

/// Writes a JSON document piece by piece, in the layout of nlohmann's dump(indent) (compact
/// for a negative indent), so that a document with millions of elements is never held whole:
/// containers are opened and closed here, and only leaves (one posterior) are built as values.
class StreamingJson {
 public:
  StreamingJson(std::ostream& out, int indent) : out_(out), indent_(indent) {}
  void Open(char bracket) {
    out_ << bracket;
    first_.push_back(true);
  }
  void Close(char bracket) {
    const bool empty = first_.back();
    first_.pop_back();
    if (!empty) NewLine();
    out_ << bracket;
  }
  /// The next key of an object.
  void Key(const std::string& key) {
    Next();
    out_ << Json(key).dump() << (indent_ >= 0 ? ": " : ":");
  }
  /// The next element of an array.
  void Element() { Next(); }
  void Value(const Json& value) {
    const std::string text = value.dump(indent_);
    if (indent_ <= 0 || text.find('\n') == std::string::npos) {
      out_ << text;
      return;
    }
    // Continuation lines take the depth of the place the value is written at.
    const std::string pad(first_.size() * static_cast<size_t>(indent_), ' ');
    size_t from = 0;
    for (size_t at = text.find('\n'); at != std::string::npos; at = text.find('\n', from)) {
      out_.write(text.data() + from, static_cast<std::streamsize>(at + 1 - from));
      out_ << pad;
      from = at + 1;
    }
    out_.write(text.data() + from, static_cast<std::streamsize>(text.size() - from));
  }
  template <class T>
  void Field(const std::string& key, const T& value) {
    Key(key);
    Value(Json(value));
  }

 private:
  void Next() {
    if (!first_.back()) out_ << ',';
    first_.back() = false;
    NewLine();
  }
  void NewLine() {
    if (indent_ < 0) return;
    out_ << '\n' << std::string(first_.size() * static_cast<size_t>(indent_), ' ');
  }
  std::ostream& out_;
  int indent_;
  std::vector<bool> first_;
};

}  // namespace

void CheckResultJsonOptions(const Model& model, const ResultJsonOptions& options) {
  const FactorGraph& graph = model.graph;
  std::vector<std::string> hidden_names;
  for (const Variable& v : graph.HiddenVariables())
    hidden_names.push_back(graph.variable_name(v.id()));
  for (const std::string& name : options.posteriors)
    if (std::find(hidden_names.begin(), hidden_names.end(), name) == hidden_names.end())
      throw ModelError("posteriors: '" + name + "' is not a hidden variable of the model" +
                       DidYouMean(name, hidden_names) + "; expected one of " +
                       JoinQuoted(hidden_names));
}

void WriteResultJson(std::ostream& stream, const Model& model, const Result& result,
                     const ResultJsonOptions& options) {
  CheckResultJsonOptions(model, options);
  const FactorGraph& graph = model.graph;
  std::vector<bool> is_matrix(graph.num_variables(), false);
  if (model.document)
    for (const VariableEntry& entry : model.document->variables)
      if (entry.matrix_dirichlet) is_matrix[entry.variable.id()] = true;
  StreamingJson out(stream, options.indent);
  out.Open('{');
  out.Field("format", "vfe-result/1");
  out.Field("converged", result.converged());
  out.Field("termination", TerminationName(result.termination));
  out.Field("message", result.message);
  out.Field("iterations", result.iterations);
  out.Field("initial_free_energy", result.initial_free_energy);
  out.Field("final_free_energy", -result.evidence_lower_bound());
  if (options.trace) out.Field("free_energy", result.free_energy);
  out.Field("evidence_lower_bound", result.evidence_lower_bound());
  out.Field("warnings", result.warnings);
  out.Key("posteriors");
  out.Open('{');
  for (const Variable& v : graph.HiddenVariables()) {
    if (!options.posteriors.empty() &&
        std::find(options.posteriors.begin(), options.posteriors.end(),
                  graph.variable_name(v.id())) == options.posteriors.end())
      continue;
    const std::vector<size_t>& shape = model.shapes[v.id()];
    out.Key(graph.variable_name(v.id()));
    if (is_matrix[v.id()]) {
      out.Value(MatrixDirichletJson(graph, v));
      continue;
    }
    if (shape.empty()) {
      out.Value(PosteriorJson(graph, v));
      continue;
    }
    const size_t rows = shape.size() == 1 ? 1 : shape[0];
    const size_t cols = shape.size() == 1 ? v.size() : shape[1];
    if (shape.size() == 2) out.Open('[');
    for (size_t i = 0; i < rows; ++i) {
      if (shape.size() == 2) out.Element();
      out.Open('[');
      for (size_t j = 0; j < cols; ++j) {
        // A stream that failed (a full disk) keeps nothing: stop formatting; the writer's
        // owner reports the failure.
        if (j % 4096 == 0 && !stream.good()) return;
        out.Element();
        out.Value(PosteriorJson(graph, v[i * cols + j]));
      }
      out.Close(']');
    }
    if (shape.size() == 2) out.Close(']');
  }
  out.Close('}');
  if (!model.predictions.empty()) {
    Json predictions = Json::object();
    for (const Prediction& prediction : model.predictions)
      predictions[prediction.name] = {
          {"node", prediction.node},
          {"formula", FindNodeType(prediction.node)->predictive_formula},
          {"mean", PredictiveMeans(model, prediction)}};
    out.Key("predictions");
    out.Value(predictions);
  }
  out.Key("timing_ms");
  out.Value(Json{{"build", model.build_ms}, {"inference", result.inference_ms}});
  for (const auto& [key, text] : options.extra) {
    out.Key(key);
    out.Value(Json::parse(text));
  }
  out.Close('}');
}

std::string ResultJson(const Model& model, const Result& result, const ResultJsonOptions& options) {
  std::ostringstream text;
  WriteResultJson(text, model, result, options);
  return text.str();
}

}  // namespace vfe
