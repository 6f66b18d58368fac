// The model loader (io/model_loader.h): the document and its variables.

#include "io/model_loader.h"

#include <algorithm>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string_view>

#include "io/input_file.h"
#include "vfe/core/format.h"
#include "vfe/io/model_json.h"

namespace vfe {
namespace {

std::optional<Family> ParseFamily(const std::string& name) {
  for (Family f : kAllFamilies)
    if (name == FamilyName(f)) return f;
  return std::nullopt;
}

/// The families a JSON variable may declare.
std::vector<std::string> FamilyNames() {
  std::vector<std::string> names;
  for (Family f : kAllFamilies) names.push_back(FamilyName(f));
  names.push_back(kMatrixDirichlet);
  return names;
}

}  // namespace

Model Loader::Load(const std::string& text) {
  const auto start = std::chrono::steady_clock::now();
  Json doc = Parse(text);
  RequireObject(doc, "", "a JSON object with \"format\", \"variables\" and \"factors\"");
  // The format first: another of the library's documents is named for what it is.
  const Json& format = Required(doc, "format", "");
  if (format != "vfe-model/1") {
    const std::string hint =
        format == "vfe-agent/1"                ? " (an agent file: run it with `vfe agent`)"
        : format == "vfe-predictive-coding/1" ? " (a network: run it with `vfe predictive-coding`)"
                                              : "";
    Fail("/format", "expected \"vfe-model/1\", found " + Found(format) + hint);
  }
  if (doc.contains("stream"))
    Fail("/stream", "a streaming model (one time slice): run it with `vfe stream`");
  CheckKeys(doc, "",
            {"format", "description", "variables", "factors", "factorisation", "inference",
             "predictions"});
  if (doc.contains("description") && !doc["description"].is_string())
    Fail("/description", "expected a string, found " + Found(doc["description"]));

  const Json& variables = Required(doc, "variables", "");
  if (!variables.is_array() || variables.empty())
    Fail("/variables", "expected a non-empty array of variables, found " + Found(variables));
  for (size_t i = 0; i < variables.size(); ++i)
    AddVariable(variables[i], "/variables/" + std::to_string(i));

  const Json& factors = Required(doc, "factors", "");
  if (!factors.is_array() || factors.empty())
    Fail("/factors", "expected a non-empty array of factors, found " + Found(factors));
  for (size_t i = 0; i < factors.size(); ++i)
    AddFactor(factors[i], "/factors/" + std::to_string(i));

  if (doc.contains("factorisation")) ReadFactorisation(doc["factorisation"]);
  if (doc.contains("predictions")) ReadPredictions(doc["predictions"], "/predictions");
  for (const std::string& name : names_) {
    const VariableEntry& entry = entries_.at(name);
    if (entry.observed && !entry.used)
      Fail(entry.pointer, "observed variable '" + name + "' is not used by any factor");
  }
  if (!finalize_) return std::move(model_);

  try {
    model_.graph.Finalize();
  } catch (const Error& e) {
    throw ModelError(LocateGraphError(e.what()));
  }
  if (doc.contains("inference")) ReadInference(doc["inference"], "/inference");
  SettleOrder(doc.contains("inference") && doc["inference"].contains("order"));
  model_.shapes.resize(model_.graph.num_variables());
  for (const std::string& name : names_) {
    const VariableEntry& entry = entries_.at(name);
    if (!entry.variable.valid()) {  // only supplies matrices
      ++model_.constant_variables;
      continue;
    }
    model_.variables.push_back(entry.variable);
    model_.shapes[entry.variable.id()] = entry.shape;
  }
  // The settings as read, defaults included, for NormalisedModelJson.
  Json& inference = doc["inference"];
  inference["iterations"] = model_.inference.options.max_iterations;
  inference["tolerance"] = model_.inference.options.tolerance;
  inference["scheduler"] = SchedulerName(model_.inference.scheduler);
  inference["threads"] = model_.inference.threads;
  inference["algorithm"] = AlgorithmName(model_.inference.algorithm);
  if (model_.inference.scheduler == SchedulerKind::kAsync)
    inference["threshold"] = model_.inference.threshold;
  if (model_.inference.algorithm == Algorithm::kBeliefPropagation)
    inference["damping"] = model_.inference.damping;
  document_->json = std::move(doc);
  for (const std::string& name : names_)
    document_->variables.push_back(std::move(entries_.at(name)));
  model_.document = std::move(document_);
  model_.build_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  return std::move(model_);
}

std::string Loader::LocateGraphError(const std::string& message) const {
  for (const auto& [name, pointer] : cluster_pointers_)
    if (message.rfind("cluster '" + name + "'", 0) == 0)
      return pointer + ": " + SolverInJsonTerms(message);
  for (PlateId p = 0; p < plate_sources_.size(); ++p) {
    const std::string label = plate_sources_[p].name.empty()
                                  ? "factor #" + std::to_string(p) + " ("
                                  : "factor '" + plate_sources_[p].name + "' (";
    if (message.find(label) != std::string::npos) return Located(p, message);
  }
  for (const auto& [name, pointer] : cluster_pointers_)
    if (message.find("cluster '" + name + "'") != std::string::npos)
      return pointer + ": " + SolverInJsonTerms(message);
  std::vector<std::string> names = names_;
  std::sort(names.begin(), names.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  for (const std::string& name : names)
    if (message.find("'" + name + "'") != std::string::npos)
      return entries_.at(name).pointer + ": " + message;
  return "/factors: " + message;
}

std::string Loader::Located(PlateId plate, const std::string& message) const {
  const PlateSource& source = plate_sources_[plate];
  // A slot's family or dimension ("'mean' expects dimension 3 ...") is at the argument.
  std::string pointer = source.pointer;
  if (const NodeType* type = FindNodeType(model_.graph.node(plate).type()))
    for (const Parameter& p : type->parameters)
      if (message.find(": '" + p.name + "' expects") != std::string::npos ||
          message.find(": '" + p.name + "[") != std::string::npos) {
        pointer += "/" + p.name;
        break;
      }
  // An unnamed factor is its pointer: "factor #4 (Gaussian): ..." reads "/factors/2
  // (Gaussian): ...".
  const std::string label = "factor #" + std::to_string(plate) + " ";
  if (source.name.empty() && message.rfind(label, 0) == 0)
    return pointer + " " + message.substr(label.size());
  return pointer + ": " + message;
}

void Loader::AddVariable(const Json& spec, const std::string& pointer) {
  RequireObject(spec, pointer, "a variable object");
  CheckKeys(spec, pointer, {"name", "family", "shape", "dim", "observed", "fixed"});
  const Json& name_json = Required(spec, "name", pointer);
  if (!name_json.is_string())
    Fail(pointer + "/name", "expected a string, found " + Found(name_json));
  const std::string name = name_json.get<std::string>();
  if (name.empty() || !(std::isalpha(static_cast<unsigned char>(name[0])) || name[0] == '_') ||
      !std::all_of(name.begin(), name.end(),
                   [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }))
    Fail(pointer + "/name", "expected a name of letters, digits and '_' (not starting with a " +
                                std::string("digit), found \"") + name + "\"");
  if (entries_.count(name))
    Fail(pointer + "/name",
         "the name '" + name + "' is already declared at " + entries_[name].pointer);
  VariableEntry entry;
  entry.pointer = pointer;
  if (spec.contains("fixed")) {
    entry.fixed = Bool(spec["fixed"], pointer + "/fixed");
    if (entry.fixed && spec.contains("observed"))
      Fail(pointer + "/fixed",
           "expected a hidden variable: an observed variable is never updated anyway");
  }
  // The family first: what "shape" and "dim" may be depends on it.
  std::optional<Family> family;
  if (spec.contains("family") && spec["family"] == kMatrixDirichlet) {
    DeclareMatrixDirichlet(name, spec, pointer, entry);
    entries_[name] = std::move(entry);
    names_.push_back(name);
    return;
  }
  if (spec.contains("family")) {
    const Json& f = spec["family"];
    if (!f.is_string()) Fail(pointer + "/family", "expected a family name, found " + Found(f));
    family = ParseFamily(f.get<std::string>());
    if (!family)
      Fail(pointer + "/family", "unknown family \"" + f.get<std::string>() + "\"" +
                                    DidYouMean(f.get<std::string>(), FamilyNames()) +
                                    "; expected one of " + JoinQuoted(FamilyNames()));
  }
  if (spec.contains("shape")) {
    const Json& shape = spec["shape"];
    if (!shape.is_array() || shape.empty() || shape.size() > 2)
      Fail(pointer + "/shape", "expected [N] or [N, M], found " + Found(shape));
    for (size_t k = 0; k < shape.size(); ++k) {
      const long n =
          Integer(shape[k], pointer + "/shape/" + std::to_string(k), "a positive integer");
      if (n < 1)
        Fail(pointer + "/shape/" + std::to_string(k),
             "expected a positive integer, found " + std::to_string(n));
      entry.shape.push_back(static_cast<size_t>(n));
    }
    const std::optional<size_t> elements = NumElements(entry.shape);
    if (!elements || *elements > kMaxNumbers)
      Fail(pointer + "/shape", "expected at most " + std::to_string(kMaxNumbers) +
                                   " elements, found " + CountText(elements) + " (shape " +
                                   ShapeText(entry.shape) + ")");
  }
  if (spec.contains("dim")) {
    const long d = Integer(spec["dim"], pointer + "/dim", "a positive integer");
    if (d < 1) Fail(pointer + "/dim", "expected a positive integer, found " + std::to_string(d));
    if (static_cast<size_t>(d) > kMaxNumbers)
      Fail(pointer + "/dim", "expected a positive integer at most " + std::to_string(kMaxNumbers) +
                                 ", found " + std::to_string(d));
    entry.dim = static_cast<int>(d);
  }
  const size_t size = *NumElements(entry.shape);

  try {
    if (spec.contains("observed")) {
      entry.observed = true;
      // Categorical data are one outcome per element whatever the number of categories.
      const int declared_dim = entry.dim;
      if (family == Family::kCategorical) entry.dim = 1;
      AddObserved(name, spec["observed"], pointer + "/observed", size, spec.contains("shape"),
                  entry);
      entry.dim = declared_dim;
      if (family == Family::kCategorical) CheckOutcomes(spec, pointer, entry);
      CountNumbers(name, pointer, entry);
    } else {
      if (!family)
        Fail(pointer,
             "missing required key 'family' (a hidden variable needs one; "
             "an observed one needs 'observed')");
      entry.family = *family;
      if (entry.dim != 1 && !HasDimension(*family))
        Fail(pointer + "/dim", std::string("expected 1 for a ") + FamilyName(*family) +
                                   " variable, found " + std::to_string(entry.dim));
      CountNumbers(name, pointer, entry);
      entry.variable = entry.shape.empty()
                           ? model_.graph.AddVariable(name, *family, entry.dim)
                           : model_.graph.AddVariableArray(name, *family, entry.shape, entry.dim);
    }
  } catch (const ModelError&) {
    throw;
  } catch (const Error& e) {
    Fail(pointer, e.what());
  }
  entries_[name] = std::move(entry);
  names_.push_back(name);
}

void Loader::DeclareMatrixDirichlet(const std::string& name, const Json& spec,
                                    const std::string& pointer, VariableEntry& entry) {
  if (spec.contains("shape"))
    Fail(pointer + "/shape",
         "expected no 'shape' for a MatrixDirichlet variable (one matrix, "
         "sized by 'dim': [K, L]), found " +
             Found(spec["shape"]));
  if (spec.contains("observed"))
    Fail(pointer + "/observed",
         "expected a hidden MatrixDirichlet variable (a known matrix is "
         "the 'matrix' of its Transition), found observed values");
  if (!spec.contains("dim"))
    Fail(pointer,
         "missing required key 'dim' ([K, L]: L columns, each a Dirichlet over K "
         "outcomes)");
  const Json& dim = spec["dim"];
  if (!dim.is_array() || dim.size() != 2)
    Fail(pointer + "/dim",
         "expected [K, L] (L columns, each a Dirichlet over K outcomes), "
         "found " +
             Found(dim));
  size_t sizes[2];
  for (size_t k = 0; k < 2; ++k) {
    const std::string p = pointer + "/dim/" + std::to_string(k);
    const long n = Integer(dim[k], p, "a positive integer");
    if (n < 1 || static_cast<size_t>(n) > kMaxNumbers)
      Fail(p, "expected a positive integer at most " + std::to_string(kMaxNumbers) + ", found " +
                  std::to_string(n));
    sizes[k] = static_cast<size_t>(n);
  }
  entry.matrix_dirichlet = true;
  entry.family = Family::kDirichlet;
  entry.dim = static_cast<int>(sizes[0]);
  entry.shape = {sizes[1]};
  CountNumbers(name, pointer, entry);
  try {
    entry.variable =
        model_.graph.AddVariableArray(name, Family::kDirichlet, entry.shape, entry.dim);
  } catch (const Error& e) {
    Fail(pointer, e.what());
  }
}

std::optional<size_t> Loader::NumElements(const std::vector<size_t>& shape) {
  std::optional<size_t> elements = 1;
  for (size_t n : shape)
    if (elements) elements = CheckedProduct(*elements, n);
  return elements;
}

void Loader::CountNumbers(const std::string& name, const std::string& pointer,
                          const VariableEntry& entry) {
  const size_t d = static_cast<size_t>(entry.dim);
  size_t elements = *NumElements(entry.shape), per_element = 2;
  if (!entry.observed) {
    switch (entry.family) {
      case Family::kMvGaussian:
        per_element = d + d * d;
        break;
      case Family::kWishart:
        per_element = d * d + 1;
        break;
      case Family::kCategorical:
      case Family::kDirichlet:
        per_element = d;
        break;
      default:
        break;
    }
  } else if (entry.categorical) {
    elements = static_cast<size_t>(entry.rows.rows());
    per_element = d;
  } else if (entry.has_matrix_value) {
    elements = 1;
    per_element = static_cast<size_t>(entry.matrix_value.size()) + 1;
  } else {
    const size_t cols = static_cast<size_t>(entry.rows.cols());
    elements = static_cast<size_t>(entry.rows.rows());
    per_element = cols == 1 ? 2 : cols + cols * cols;
  }
  const std::optional<size_t> numbers = CheckedProduct(elements, per_element);
  if (!numbers || *numbers > kMaxNumbers - num_numbers_)
    Fail(
        pointer,
        "expected at most " + std::to_string(kMaxNumbers) +
            " numbers in the variables of the model, found " + CountText(numbers) + " in '" + name +
            "' (" + std::to_string(elements) + (elements == 1 ? " element of " : " elements of ") +
            std::to_string(per_element) + ")" +
            (num_numbers_ ? " and " + std::to_string(num_numbers_) + " before it" : std::string()));
  num_numbers_ += *numbers;
}

CsvTable Loader::ReadCsvSpec(const Json& value, const std::string& pointer) const {
  CheckKeys(value, pointer, {"csv", "column", "columns"});
  const std::string file = String(Required(value, "csv", pointer), pointer + "/csv", "a file name");
  const std::string path =
      !file.empty() && file[0] != '/' && file != "-" ? base_ + "/" + file : file;
  CsvTable table;
  try {
    table = ReadCsv(path);
  } catch (const IoError& e) {
    try {
      Fail(pointer + "/csv", e.what());
    } catch (const ModelError& located) {
      throw IoError(located.what());  // still an input that could not be read
    }
  } catch (const ModelError& e) {
    Fail(pointer + "/csv", e.what());
  }
  SelectColumns(table, value, pointer, path);
  return table;
}

void Loader::SelectColumns(CsvTable& table, const Json& spec, const std::string& pointer,
                           const std::string& path) const {
  if (spec.contains("column") && spec.contains("columns"))
    Fail(pointer, "expected one of 'column' and 'columns', found both");
  const char* key = spec.contains("column") ? "column" : "columns";
  if (!spec.contains(key)) return;
  const Json& selection = spec[key];
  std::vector<const Json*> wanted;
  if (std::string(key) == "column") {
    wanted.push_back(&selection);
  } else {
    if (!selection.is_array() || selection.empty())
      Fail(pointer + "/columns",
           "expected a non-empty array of column indices or names, found " + Found(selection));
    for (const Json& c : selection) wanted.push_back(&c);
  }
  std::vector<size_t> columns;
  for (size_t k = 0; k < wanted.size(); ++k) {
    const Json& c = *wanted[k];
    const std::string p =
        pointer + "/" + key + (std::string(key) == "column" ? "" : "/" + std::to_string(k));
    if (c.is_string()) {
      auto it = std::find(table.header.begin(), table.header.end(), c.get<std::string>());
      if (it == table.header.end())
        Fail(p, "no column \"" + c.get<std::string>() + "\" in '" + path + "' (" +
                    (table.header.empty() ? std::string("it has no header line")
                                          : "columns: " + JoinQuoted(table.header)) +
                    ")");
      columns.push_back(static_cast<size_t>(it - table.header.begin()));
    } else {
      const long i = Integer(c, p, "a column index or name");
      if (i < 0 || static_cast<size_t>(i) >= table.cols)
        Fail(p, "expected a column index in [0, " + std::to_string(table.cols) + "), found " +
                    std::to_string(i));
      columns.push_back(static_cast<size_t>(i));
    }
  }
  bool all_in_order = columns.size() == table.cols;
  for (size_t c = 0; c < columns.size(); ++c) all_in_order &= columns[c] == c;
  if (all_in_order) return;  // nothing to move
  std::vector<double> kept;
  kept.reserve(table.rows() * columns.size());
  for (size_t r = 0; r < table.rows(); ++r)
    for (size_t c : columns) kept.push_back(table.values[r * table.cols + c]);
  table.values = std::move(kept);
  table.cols = columns.size();
}

ConstantValue Loader::ReadConstant(const Json& value, const std::string& pointer) const {
  ConstantValue constant;
  if (value.is_number()) {
    constant.matrix = Matrix::Constant(1, 1, Number(value, pointer, "a finite number"));
  } else if (value.is_array() && !value.empty() && value[0].is_array()) {
    constant.kind = ConstantValue::Kind::kMatrix;
    constant.matrix = Rows(value, pointer);
  } else {
    constant.kind = ConstantValue::Kind::kVector;
    constant.matrix = Numbers(value, pointer);
  }
  return constant;
}

void Loader::AddObserved(const std::string& name, const Json& value, const std::string& pointer,
                         size_t size, bool has_shape, VariableEntry& entry) {
  if (value.is_object()) {
    CsvTable table = ReadCsvSpec(value, pointer);
    const size_t rows = table.rows();
    if (has_shape && rows != size)
      Fail(pointer + "/csv", "expected " + std::to_string(size) + " rows (shape " +
                                 ShapeText(entry.shape) + "), found " + std::to_string(rows));
    if (!has_shape && rows > 1) entry.shape = {rows};
    entry.rows =
        Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(
            table.values.data(), static_cast<Eigen::Index>(rows),
            static_cast<Eigen::Index>(table.cols));
    DeclareObservedRows(name, pointer, entry);
    return;
  }
  if (value.is_number()) {
    if (has_shape && size != 1)
      Fail(pointer, "expected " + std::to_string(size) + " values (shape " +
                        ShapeText(entry.shape) + "), found one number");
    entry.rows = Matrix::Constant(1, 1, Number(value, pointer, "a finite number"));
    return;
  }
  if (!value.is_array() || value.empty())
    Fail(pointer, "expected a number, an array or {\"csv\": ...}, found " + Found(value));
  if (!has_shape && value[0].is_array() && value[0].size() > 0 && value[0][0].is_number() &&
      value.size() == value[0].size() && entry.dim == static_cast<int>(value.size())) {
    // A single square matrix (a Wishart value), declared by "dim" without a shape.
    entry.has_matrix_value = true;
    entry.matrix_value = Rows(value, pointer);
    return;
  }
  if (!has_shape && IsNumberArray(value) && entry.dim > 1) {
    // One vector.
    if (static_cast<int>(value.size()) != entry.dim)
      Fail(pointer, "expected " + std::to_string(entry.dim) + " numbers (dim), found " +
                        std::to_string(value.size()));
    entry.rows = Numbers(value, pointer).transpose();
    DeclareObservedRows(name, pointer, entry);
    return;
  }
  // Elements: numbers, or rows for vectors; nested arrays for [N, M] shapes.
  std::vector<const Json*> elements;
  std::vector<std::string> element_pointers;
  if (entry.shape.size() == 2) {
    if (value.size() != entry.shape[0])
      Fail(pointer, "expected " + std::to_string(entry.shape[0]) + " rows (shape " +
                        ShapeText(entry.shape) + "), found " + std::to_string(value.size()));
    for (size_t i = 0; i < value.size(); ++i) {
      const std::string row = pointer + "/" + std::to_string(i);
      if (!value[i].is_array() || value[i].size() != entry.shape[1])
        Fail(row, "expected an array of " + std::to_string(entry.shape[1]) + " (shape " +
                      ShapeText(entry.shape) + "), found " + Found(value[i]));
      for (size_t j = 0; j < value[i].size(); ++j) {
        elements.push_back(&value[i][j]);
        element_pointers.push_back(row + "/" + std::to_string(j));
      }
    }
  } else {
    if (has_shape && value.size() != size)
      Fail(pointer, "expected " + std::to_string(size) + " values (shape " +
                        ShapeText(entry.shape) + "), found " + std::to_string(value.size()));
    for (size_t i = 0; i < value.size(); ++i) {
      elements.push_back(&value[i]);
      element_pointers.push_back(pointer + "/" + std::to_string(i));
    }
    if (!has_shape) entry.shape = {value.size()};
  }
  const size_t width = (*elements[0]).is_array() ? (*elements[0]).size() : 1;
  if (entry.dim > 1 && width != static_cast<size_t>(entry.dim))
    Fail(element_pointers[0], "expected a vector of " + std::to_string(entry.dim) +
                                  " numbers (dim), found " + Found(*elements[0]));
  entry.rows.resize(static_cast<Eigen::Index>(elements.size()), static_cast<Eigen::Index>(width));
  for (size_t i = 0; i < elements.size(); ++i) {
    const Json& e = *elements[i];
    if (width == 1 && !e.is_array()) {
      entry.rows(i, 0) = ObservedNumber(e, element_pointers[i]);
      continue;
    }
    if (!e.is_array() || e.size() != width)
      Fail(element_pointers[i], "expected a vector of " + std::to_string(width) +
                                    " numbers, like the first element, found " + Found(e));
    for (size_t j = 0; j < width; ++j)
      entry.rows(i, j) = ObservedNumber(e[j], element_pointers[i] + "/" + std::to_string(j));
  }
  DeclareObservedRows(name, pointer, entry);
}

void Loader::CheckOutcomes(const Json& spec, const std::string& pointer, VariableEntry& entry) {
  if (!spec.contains("dim"))
    Fail(pointer, "missing required key 'dim' (the number of categories of Categorical data)");
  if (entry.rows.cols() != 1)
    Fail(pointer + "/observed",
         "expected one outcome per element, found rows of " + std::to_string(entry.rows.cols()));
  for (Eigen::Index i = 0; i < entry.rows.rows(); ++i) {
    const double k = entry.rows(i, 0);
    if (k != std::floor(k) || k < 0 || k >= entry.dim)
      Fail(pointer + "/observed" + (entry.rows.rows() > 1 ? "/" + std::to_string(i) : ""),
           "expected an outcome in 0.." + std::to_string(entry.dim - 1) + ", found " +
               FormatNumber(k));
  }
  entry.family = Family::kCategorical;
  entry.categorical = true;
}

double Loader::ObservedNumber(const Json& value, const std::string& pointer) {
  if (value.is_null()) Fail(pointer, "expected a finite number, found null (a missing value)");
  return Number(value, pointer, "a finite number");
}

void Loader::DeclareObservedRows(const std::string& /*name*/, const std::string& pointer,
                                 VariableEntry& entry) {
  if (entry.dim > 1 && entry.rows.cols() != entry.dim)
    Fail(pointer, "expected rows of " + std::to_string(entry.dim) + " values (dim), found " +
                      std::to_string(entry.rows.cols()));
}

const Variable& Loader::GraphVariable(const std::string& name, VariableEntry& entry) {
  entry.used = true;
  if (entry.variable.valid()) return entry.variable;
  if (entry.categorical) {
    std::vector<int> outcomes(entry.rows.data(), entry.rows.data() + entry.rows.rows());
    entry.variable = model_.graph.AddObservedCategorical(name, outcomes, entry.dim);
  } else if (entry.has_matrix_value) {
    entry.variable = model_.graph.AddObserved(name, entry.matrix_value);
  } else if (entry.rows.cols() == 1 && entry.shape.empty()) {
    entry.variable = model_.graph.AddObserved(name, entry.rows(0, 0));
  } else if (entry.rows.cols() == 1) {
    entry.variable = model_.graph.AddObserved(
        name, std::vector<double>(entry.rows.data(), entry.rows.data() + entry.rows.rows()));
  } else if (entry.shape.empty()) {
    entry.variable = model_.graph.AddObserved(name, Matrix(entry.rows.transpose()));
  } else {
    entry.variable = model_.graph.AddObservedRows(name, entry.rows);
  }
  return entry.variable;
}

FactorGraph Loader::LoadGraph(const std::string& text) {
  finalize_ = false;
  return std::move(Load(text).graph);
}

Model ParseModel(const std::string& text, const std::string& base_directory) {
  return Loader(base_directory).Load(text);
}

Model LoadModel(const std::string& path) {
  const std::string text = ReadInputFile(path, "model file");
  if (path.size() >= 3 && path.compare(path.size() - 3, 3, ".fg") == 0)
    return ParseLibDaiFactorGraph(text, path);
  return ParseModel(text, BaseDirectory(path));
}

}  // namespace vfe
