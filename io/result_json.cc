// The result of a run as a "vfe-result/1" document.

#include <algorithm>

#include "io/json_writer.h"
#include "io/model_document.h"
#include "vfe/core/format.h"
#include "vfe/io/model_json.h"
#include "vfe/nodes/registry.h"

namespace vfe {
namespace {

Json PosteriorJson(const FactorGraph& graph, const Variable& element) {
  Json q = Json::object();
  q["family"] = FamilyName(graph.family(element));
  switch (graph.family(element)) {
    case Family::kGaussian: {
      const Gaussian g = graph.Posterior<Gaussian>(element);
      q["mean"] = g.mean();
      q["variance"] = g.variance();
      break;
    }
    case Family::kGamma: {
      const Gamma g = graph.Posterior<Gamma>(element);
      q["shape"] = g.shape();
      q["rate"] = g.rate();
      q["mean"] = g.mean();
      break;
    }
    case Family::kMvGaussian: {
      const MvGaussian g = graph.Posterior<MvGaussian>(element);
      q["mean"] = VectorJson(g.mean());
      q["covariance"] = MatrixJson(g.covariance());
      break;
    }
    case Family::kWishart: {
      const Wishart g = graph.Posterior<Wishart>(element);
      q["dof"] = g.dof();
      q["scale"] = MatrixJson(g.scale());
      q["mean"] = MatrixJson(g.mean());
      break;
    }
    case Family::kBeta: {
      const Beta g = graph.Posterior<Beta>(element);
      q["a"] = g.a();
      q["b"] = g.b();
      q["mean"] = g.mean();
      break;
    }
    case Family::kBernoulli:
      q["p"] = graph.Posterior<Bernoulli>(element).p();
      break;
    case Family::kCategorical:
      q["p"] = VectorJson(graph.Posterior<Categorical>(element).p());
      break;
    case Family::kDirichlet: {
      const Dirichlet g = graph.Posterior<Dirichlet>(element);
      q["alpha"] = VectorJson(g.alpha());
      q["mean"] = VectorJson(g.mean());
      break;
    }
  }
  return q;
}

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

std::string ResultJson(const Model& model, const Result& result, const ResultJsonOptions& options) {
  const FactorGraph& graph = model.graph;
  std::vector<std::string> hidden_names;
  for (const Variable& v : graph.HiddenVariables())
    hidden_names.push_back(graph.variable_name(v.id()));
  for (const std::string& name : options.posteriors)
    if (std::find(hidden_names.begin(), hidden_names.end(), name) == hidden_names.end())
      throw ModelError("posteriors: '" + name + "' is not a hidden variable of the model" +
                       DidYouMean(name, hidden_names) + "; expected one of " +
                       JoinQuoted(hidden_names));
  std::vector<bool> is_matrix(graph.num_variables(), false);
  if (model.document)
    for (const VariableEntry& entry : model.document->variables)
      if (entry.matrix_dirichlet) is_matrix[entry.variable.id()] = true;
  Json out = Json::object();
  out["format"] = "vfe-result/1";
  out["converged"] = result.converged();
  out["termination"] = TerminationName(result.termination);
  out["message"] = result.message;
  out["iterations"] = result.iterations;
  out["initial_free_energy"] = result.initial_free_energy;
  out["final_free_energy"] = -result.evidence_lower_bound();
  if (options.trace) out["free_energy"] = result.free_energy;
  out["evidence_lower_bound"] = result.evidence_lower_bound();
  out["warnings"] = result.warnings;
  Json posteriors = Json::object();
  for (const Variable& v : graph.HiddenVariables()) {
    if (!options.posteriors.empty() &&
        std::find(options.posteriors.begin(), options.posteriors.end(),
                  graph.variable_name(v.id())) == options.posteriors.end())
      continue;
    const std::vector<size_t>& shape = model.shapes[v.id()];
    if (is_matrix[v.id()]) {
      posteriors[graph.variable_name(v.id())] = MatrixDirichletJson(graph, v);
      continue;
    }
    if (shape.empty()) {
      posteriors[graph.variable_name(v.id())] = PosteriorJson(graph, v);
      continue;
    }
    Json all = Json::array();
    if (shape.size() == 1) {
      for (size_t i = 0; i < v.size(); ++i) all.push_back(PosteriorJson(graph, v[i]));
    } else {
      for (size_t i = 0; i < shape[0]; ++i) {
        Json row = Json::array();
        for (size_t j = 0; j < shape[1]; ++j)
          row.push_back(PosteriorJson(graph, v[i * shape[1] + j]));
        all.push_back(row);
      }
    }
    posteriors[graph.variable_name(v.id())] = all;
  }
  out["posteriors"] = posteriors;
  if (!model.predictions.empty()) {
    Json predictions = Json::object();
    for (const Prediction& prediction : model.predictions)
      predictions[prediction.name] = {
          {"node", prediction.node},
          {"formula", FindNodeType(prediction.node)->predictive_formula},
          {"mean", PredictiveMeans(model, prediction)}};
    out["predictions"] = predictions;
  }
  out["timing_ms"] = {{"build", model.build_ms}, {"inference", result.inference_ms}};
  return out.dump(options.indent);
}

}  // namespace vfe
