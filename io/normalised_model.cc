// A model as one self-contained "vfe-model/1" document: CSV data inlined, shapes and the
// inference defaults written out.

#include "io/json_writer.h"
#include "io/model_document.h"
#include "vfe/io/model_json.h"

namespace vfe {
namespace {

/// Numbers read from CSV as JSON: one entry per element, a number or an array of `cols`.
Json CsvValuesJson(const ModelDocument::CsvValues& csv) {
  Json out = Json::array();
  for (size_t i = 0; i < csv.values.size(); i += csv.cols) {
    if (csv.scalar) {
      out.push_back(csv.values[i]);
      continue;
    }
    Json row = Json::array();
    for (size_t j = 0; j < csv.cols; ++j) row.push_back(csv.values[i + j]);
    out.push_back(row);
  }
  return out;
}

/// graph variable: one entry per element (a number, an integer outcome, or a row), nested for
/// shape [N, M]; a single element as itself; a single matrix as its rows.
Json ObservedJson(const VariableEntry& entry) {
  if (entry.has_matrix_value) return MatrixJson(entry.matrix_value);
  auto element = [&](size_t i) -> Json {
    const Eigen::Index row = static_cast<Eigen::Index>(i);
    if (entry.categorical) return static_cast<long>(entry.rows(row, 0));
    if (entry.rows.cols() == 1) return entry.rows(row, 0);
    return VectorJson(entry.rows.row(row).transpose());
  };
  if (entry.shape.empty()) return element(0);
  Json out = Json::array();
  if (entry.shape.size() == 1) {
    for (size_t i = 0; i < entry.shape[0]; ++i) out.push_back(element(i));
    return out;
  }
  for (size_t i = 0; i < entry.shape[0]; ++i) {
    Json row = Json::array();
    for (size_t j = 0; j < entry.shape[1]; ++j) row.push_back(element(i * entry.shape[1] + j));
    out.push_back(row);
  }
  return out;
}

}  // namespace

std::string NormalisedModelJson(const Model& model, int indent) {
  if (!model.document)
    throw ModelError(
        "the model was not read from a vfe-model/1 document (a libDAI file?): "
        "there is no document to write");
  const ModelDocument& document = *model.document;
  const Json& read = document.json;
  // The CSV tables other than observed values, at their pointers.
  Json written = read;
  for (const auto& [pointer, csv] : document.csv_values)
    written[Json::json_pointer(pointer)] = CsvValuesJson(csv);
  Json out = Json::object();
  out["format"] = read["format"];
  if (read.contains("description")) out["description"] = read["description"];
  out["variables"] = Json::array();
  for (size_t i = 0; i < document.variables.size(); ++i) {
    const VariableEntry& entry = document.variables[i];
    Json variable = read["variables"][i];  // name, family and dim as written
    if (entry.observed) {
      if (!entry.shape.empty()) variable["shape"] = entry.shape;
      // One vector (a CSV file of one row) is read back by its "dim".
      if (entry.shape.empty() && !entry.has_matrix_value && entry.rows.cols() > 1)
        variable["dim"] = entry.rows.cols();
      variable["observed"] = ObservedJson(entry);
    }
    out["variables"].push_back(std::move(variable));
  }
  out["factors"] = written["factors"];
  if (read.contains("factorisation")) out["factorisation"] = read["factorisation"];
  if (read.contains("predictions")) out["predictions"] = read["predictions"];
  out["inference"] = written["inference"];
  return out.dump(indent);
}

}  // namespace vfe
