// The model loader (io/model_loader.h): "predictions", the posterior predictive means the
// result reports for new data (FactorGraph::PredictiveMeans), each checked where it is
// written.

#include <set>

#include "io/model_loader.h"
#include "vfe/core/format.h"

namespace vfe {

Matrix Loader::PredictionRows(const Json& value, const std::string& pointer) {
  if (IsNumberArray(value)) return Numbers(value, pointer).transpose();  // one row
  if (value.is_array()) return Rows(value, pointer);
  const std::string name =
      String(value, pointer, "an observed variable (rows of new data) or a matrix");
  const auto it = entries_.find(name);
  if (it == entries_.end())
    Fail(pointer, "unknown variable \"" + name + "\"" + DidYouMean(name, names_) +
                      "; expected an observed variable of rows of new data");
  VariableEntry& entry = it->second;
  if (!entry.observed || entry.categorical)
    Fail(pointer, "expected an observed variable of rows of new data, found " +
                      Describe(name, entry) + (entry.categorical ? " (categorical data)" : ""));
  entry.used = true;
  return entry.has_matrix_value ? entry.matrix_value : entry.rows;
}

void Loader::ReadPredictions(const Json& value, const std::string& pointer) {
  if (!value.is_array())
    Fail(pointer, "expected an array of predictions, found " + Found(value));
  std::set<std::string> seen;
  for (size_t i = 0; i < value.size(); ++i) {
    const std::string p = pointer + "/" + std::to_string(i);
    const Json& spec = value[i];
    RequireObject(spec, p, "a prediction object");
    CheckKeys(spec, p, {"name", "node", "in", "matrix", "offset"});
    Prediction prediction;
    prediction.pointer = p;
    prediction.name = String(Required(spec, "name", p), p + "/name", "a name");
    if (!seen.insert(prediction.name).second)
      Fail(p + "/name", "prediction \"" + prediction.name + "\" is already defined");
    const std::vector<std::string> types = PredictiveNodeTypeNames();
    prediction.node = types[Choice(Required(spec, "node", p), p + "/node", types)];

    const std::string in_name = String(Required(spec, "in", p), p + "/in", "a variable name");
    const auto it = entries_.find(in_name);
    if (it == entries_.end())
      Fail(p + "/in", "unknown variable \"" + in_name + "\"" + DidYouMean(in_name, names_) +
                          "; expected a hidden Gaussian or MvGaussian variable");
    const VariableEntry& in = it->second;
    if (in.observed || (in.family != Family::kGaussian && in.family != Family::kMvGaussian))
      Fail(p + "/in", "expected a hidden Gaussian or MvGaussian variable, found " +
                          Describe(in_name, in));
    prediction.in = in.variable;

    if (spec.contains("matrix")) {
      prediction.rows = PredictionRows(spec["matrix"], p + "/matrix");
      if (prediction.rows.cols() != in.dim)
        Fail(p + "/matrix", "expected rows of " + std::to_string(in.dim) +
                                " numbers (the dimension of '" + in_name + "'), found rows of " +
                                std::to_string(prediction.rows.cols()));
      if (in.variable.size() != 1)
        Fail(p + "/in", "expected one element (the weights the rows multiply), found '" +
                            in_name + "' of " + std::to_string(in.variable.size()) + " elements");
    } else if (in.family != Family::kGaussian) {
      Fail(p, "'" + in_name + "' is MvGaussian: give \"matrix\", the rows of new data (one of " +
                  std::to_string(in.dim) + " numbers per prediction)");
    }
    const size_t count = prediction.rows.size() ? static_cast<size_t>(prediction.rows.rows())
                                                : in.variable.size();

    if (spec.contains("offset")) {
      const Json& offset = spec["offset"];
      const std::string op = p + "/offset";
      if (offset.is_number()) {
        prediction.offsets = Vector::Constant(1, Number(offset, op));
      } else {
        const Matrix values = PredictionRows(offset, op);
        if (values.cols() != 1 && values.rows() != 1)
          Fail(op, "expected one number per prediction, found a " +
                       std::to_string(values.rows()) + " x " + std::to_string(values.cols()) +
                       " matrix");
        prediction.offsets = Eigen::Map<const Vector>(values.data(), values.size());
        if (static_cast<size_t>(prediction.offsets.size()) != count)
          Fail(op, "expected " + std::to_string(count) + " offsets (one per prediction), found " +
                       std::to_string(prediction.offsets.size()));
      }
    }
    model_.predictions.push_back(std::move(prediction));
  }
}

}  // namespace vfe
