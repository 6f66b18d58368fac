#include "vfe/graph/model_json.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cmath>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string_view>

#include "vfe/core/format.h"
#include "vfe/nodes/functions.h"
#include "vfe/nodes/nodes.h"

namespace vfe {
namespace {

using Json = nlohmann::ordered_json;

/// The most numbers a model may hold: the statistics of all its variables' elements (2 for a
/// scalar, D + D² for an MvGaussian, K for a Categorical; observed ones included), and apart
/// the number of its factors. 2^28 doubles are 2 GiB, and the engine holds them twice
/// (moments and natural parameters), with messages and indices besides: a larger model does
/// not fit in a workstation's memory, and is refused before anything is allocated (instead of
/// std::bad_alloc, or sizes that wrap around).
constexpr size_t kMaxNumbers = size_t{1} << 28;

/// A matrix Dirichlet is not a family of the engine (the graph holds it as an array of
/// Dirichlet columns), but it is one in JSON.
constexpr const char* kMatrixDirichlet = "MatrixDirichlet";

/// a · b, or nullopt if it does not fit in size_t.
std::optional<size_t> CheckedProduct(size_t a, size_t b) {
  size_t product = 0;
  if (__builtin_mul_overflow(a, b, &product)) return std::nullopt;
  return product;
}

std::string CountText(std::optional<size_t> count) {
  return count ? std::to_string(*count) : "more than " + std::to_string(SIZE_MAX);
}

// ---- Error helpers ----------------------------------------------------------------------------

/// Throws "pointer: message" (the whole document is "/").
[[noreturn]] void Fail(const std::string& pointer, const std::string& message) {
  throw ModelError((pointer.empty() ? "/" : pointer) + ": " + message);
}

/// A short description of a JSON value for "found ..." ("-1", "a string \"x\"", "an array of 3").
std::string Found(const Json& value) {
  switch (value.type()) {
    case Json::value_t::null: return "null";
    case Json::value_t::boolean: return value.get<bool>() ? "true" : "false";
    case Json::value_t::string: return "the string \"" + value.get<std::string>() + "\"";
    case Json::value_t::array: return "an array of " + std::to_string(value.size());
    case Json::value_t::object: return "an object";
    default: return FormatNumber(value.get<double>());
  }
}

size_t EditDistance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1])});
      diagonal = up;
    }
  }
  return row[b.size()];
}

/// " (did you mean 'x'?)" for the nearest of `known` within a small edit distance, else "".
std::string DidYouMean(const std::string& word, const std::vector<std::string>& known) {
  std::string best;
  size_t best_distance = std::max<size_t>(2, word.size() / 3) + 1;
  for (const std::string& k : known) {
    const size_t d = EditDistance(word, k);
    if (d < best_distance) {
      best_distance = d;
      best = k;
    }
  }
  return best.empty() ? "" : " (did you mean '" + best + "'?)";
}

std::string JoinQuoted(const std::vector<std::string>& words) {
  std::string out;
  for (const std::string& w : words) out += (out.empty() ? "'" : ", '") + w + "'";
  return out;
}

void RequireObject(const Json& value, const std::string& pointer, const std::string& what) {
  if (!value.is_object()) Fail(pointer, "expected " + what + ", found " + Found(value));
}

/// Refuses keys outside `allowed`.
void CheckKeys(const Json& object, const std::string& pointer,
               const std::vector<std::string>& allowed) {
  for (auto it = object.begin(); it != object.end(); ++it) {
    if (std::find(allowed.begin(), allowed.end(), it.key()) != allowed.end()) continue;
    Fail(pointer + "/" + it.key(), "unknown key '" + it.key() + "'" +
                                       DidYouMean(it.key(), allowed) + "; expected one of " +
                                       JoinQuoted(allowed));
  }
}

const Json& Required(const Json& object, const std::string& key, const std::string& pointer) {
  auto it = object.find(key);
  if (it == object.end()) Fail(pointer, "missing required key '" + key + "'");
  return *it;
}

double Number(const Json& value, const std::string& pointer, const std::string& what) {
  if (!value.is_number()) Fail(pointer, "expected " + what + ", found " + Found(value));
  const double x = value.get<double>();
  if (!std::isfinite(x)) Fail(pointer, "expected " + what + ", found " + FormatNumber(x));
  return x;
}

double PositiveNumber(const Json& value, const std::string& pointer, const std::string& what) {
  const double x = Number(value, pointer, what);
  if (!(x > 0)) Fail(pointer, "expected " + what + ", found " + FormatNumber(x));
  return x;
}

long Integer(const Json& value, const std::string& pointer, const std::string& what) {
  if (!value.is_number_integer()) Fail(pointer, "expected " + what + ", found " + Found(value));
  if (value.is_number_unsigned() && value.get<unsigned long>() > LONG_MAX)
    Fail(pointer, "expected " + what + ", found " + value.dump());
  return value.get<long>();
}

bool IsNumberArray(const Json& value) {
  return value.is_array() && !value.empty() &&
         std::all_of(value.begin(), value.end(), [](const Json& x) { return x.is_number(); });
}

Vector ReadVector(const Json& value, const std::string& pointer) {
  if (!IsNumberArray(value))
    Fail(pointer, "expected a non-empty array of numbers, found " + Found(value));
  Vector v(static_cast<Eigen::Index>(value.size()));
  for (size_t i = 0; i < value.size(); ++i)
    v[i] = Number(value[i], pointer + "/" + std::to_string(i), "a finite number");
  return v;
}

/// A matrix written as an array of rows.
Matrix ReadMatrix(const Json& value, const std::string& pointer) {
  if (!value.is_array() || value.empty() || !value[0].is_array())
    Fail(pointer, "expected a matrix (an array of rows), found " + Found(value));
  const size_t cols = value[0].size();
  Matrix m(value.size(), cols);
  for (size_t i = 0; i < value.size(); ++i) {
    const std::string row_pointer = pointer + "/" + std::to_string(i);
    if (!value[i].is_array() || value[i].size() != cols)
      Fail(row_pointer, "expected a row of " + std::to_string(cols) + " numbers, found " +
                            Found(value[i]));
    m.row(i) = ReadVector(value[i], row_pointer).transpose();
  }
  return m;
}

/// The constant written at `pointer`: a number, a vector or a matrix.
Argument ReadConstant(const Json& value, const std::string& pointer) {
  if (value.is_number()) return Number(value, pointer, "a finite number");
  if (value.is_array() && !value.empty() && value[0].is_array()) return ReadMatrix(value, pointer);
  return ReadVector(value, pointer);
}

// ---- CSV ------------------------------------------------------------------------------------

/// A numeric table read from CSV: an optional header line, then one row per element.
struct Table {
  std::vector<std::string> header;
  size_t cols = 0;
  std::vector<double> values;  // row-major
  size_t rows() const { return cols ? values.size() / cols : 0; }
};

Table ReadCsv(const std::string& path, const std::string& pointer) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) Fail(pointer, "cannot read the CSV file '" + path + "'");
  // A regular file is read in one piece, its size known; a stream of unknown size (a pipe)
  // character by character.
  std::unique_ptr<char[]> file;  // not zero-filled first: the file overwrites it
  std::string streamed;
  std::string_view text;
  const std::streamoff size = in.tellg();
  if (size > 0 && in.seekg(0)) {
    file.reset(new char[static_cast<size_t>(size)]);
    in.read(file.get(), size);
    text = std::string_view(file.get(), static_cast<size_t>(in.gcount()));
  } else {
    in.clear();
    in.seekg(0);
    streamed.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    text = streamed;
  }
  // Room for every line's fields once their number is known, so the values never move.
  const size_t num_lines = static_cast<size_t>(std::count(text.begin(), text.end(), '\n')) + 1;
  auto capacity = [&](size_t fields) {  // a value takes two characters at least, with its comma
    return std::min(num_lines, (text.size() / 2 + 1) / fields) * fields;
  };
  Table table;
  size_t line_number = 0;
  size_t pos = 0;
  // The fields of the current line, reused (no allocation per line); their text and the line's
  // name are built only for a header or an error.
  std::vector<std::pair<const char*, const char*>> fields_text;
  auto where = [&] { return "'" + path + "' line " + std::to_string(line_number); };
  auto field_names = [&] {
    std::vector<std::string> names;
    for (const auto& [a, b] : fields_text) names.emplace_back(a, b);
    return names;
  };
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    size_t stop = end;
    if (stop > pos && text[stop - 1] == '\r') --stop;
    ++line_number;
    const char* p = text.data() + pos;
    const char* const line_end = text.data() + stop;
    pos = end + 1;
    if (p == line_end) continue;  // blank line
    size_t fields = 0;
    const size_t row_start = table.values.size();
    bool numeric = true;
    fields_text.clear();
    while (true) {
      const char* comma = std::find(p, line_end, ',');
      const char* a = p;
      const char* b = comma;
      while (a < b && (*a == ' ' || *a == '\t')) ++a;
      while (b > a && (b[-1] == ' ' || b[-1] == '\t')) --b;
      double x = 0;
      const char* start = (a < b && *a == '+') ? a + 1 : a;
      const auto [ptr, ec] = std::from_chars(start, b, x);
      if (ec != std::errc() || ptr != b || a == b) numeric = false;
      if (numeric) table.values.push_back(x);
      fields_text.emplace_back(a, b);
      ++fields;
      if (comma == line_end) break;
      p = comma + 1;
    }
    if (!numeric) {
      if (table.header.empty() && table.values.size() == row_start && line_number == 1) {
        table.header = field_names();
        table.cols = fields;
        table.values.reserve(capacity(fields));
        continue;
      }
      Fail(pointer, "CSV " + where() + ": expected numbers, found " + JoinQuoted(field_names()));
    }
    if (table.cols == 0) {
      table.cols = fields;
      table.values.reserve(capacity(fields));
    }
    if (fields != table.cols)
      Fail(pointer, "CSV " + where() + ": expected " + std::to_string(table.cols) +
                        " columns, found " + std::to_string(fields));
    for (size_t i = row_start; i < table.values.size(); ++i)
      if (!std::isfinite(table.values[i]))
        Fail(pointer, "CSV " + where() + ": expected finite numbers, found " +
                          FormatNumber(table.values[i]));
  }
  if (table.rows() == 0) Fail(pointer, "CSV '" + path + "' has no data rows");
  return table;
}

/// Keeps the columns named by "column" (one, by index or header name) or "columns" (a list).
void SelectColumns(Table& table, const Json& spec, const std::string& pointer,
                   const std::string& path) {
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
      Fail(pointer + "/columns", "expected a non-empty array of column indices or names, found " +
                                     Found(selection));
    for (const Json& c : selection) wanted.push_back(&c);
  }
  std::vector<size_t> columns;
  for (size_t k = 0; k < wanted.size(); ++k) {
    const Json& c = *wanted[k];
    const std::string p = pointer + "/" + key + (std::string(key) == "column" ? "" : "/" + std::to_string(k));
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

// ---- Index expressions ----------------------------------------------------------------------

/// A reference to a variable in an argument: "mu", "y[i]", "x[t-1]", "W[k][j+1]".
struct Reference {
  std::string name;
  /// Each index is constant + Σ loop variables (with signs).
  struct Index {
    long constant = 0;
    std::vector<std::pair<int, int>> terms;  // (loop variable, +1/−1)
  };
  std::vector<Index> indices;
};

Reference ParseReference(const std::string& text, const std::string& pointer,
                         const std::vector<std::string>& loops) {
  Reference ref;
  const size_t bracket = text.find('[');
  ref.name = text.substr(0, bracket);
  if (ref.name.empty()) Fail(pointer, "expected a variable name, found \"" + text + "\"");
  size_t pos = bracket;
  while (pos != std::string::npos && pos < text.size()) {
    if (text[pos] != '[') Fail(pointer, "expected '[' in \"" + text + "\" at position " +
                                            std::to_string(pos));
    const size_t close = text.find(']', pos);
    if (close == std::string::npos) Fail(pointer, "missing ']' in \"" + text + "\"");
    const std::string inside = text.substr(pos + 1, close - pos - 1);
    Reference::Index index;
    size_t i = 0;
    int sign = 1;
    bool expect_term = true;
    while (i < inside.size()) {
      const char c = inside[i];
      if (c == ' ') {
        ++i;
      } else if ((c == '+' || c == '-') && !expect_term) {
        sign = c == '+' ? 1 : -1;
        expect_term = true;
        ++i;
      } else if (c == '-' && expect_term && sign == 1 && i == 0) {
        sign = -1;
        ++i;
      } else if (std::isdigit(static_cast<unsigned char>(c)) && expect_term) {
        size_t j = i;
        long number = 0;
        bool overflow = false;
        for (; j < inside.size() && std::isdigit(static_cast<unsigned char>(inside[j])); ++j)
          overflow |= __builtin_mul_overflow(number, 10L, &number) ||
                      __builtin_add_overflow(number, static_cast<long>(inside[j] - '0'), &number);
        overflow |= __builtin_mul_overflow(number, static_cast<long>(sign), &number) ||
                    __builtin_add_overflow(index.constant, number, &index.constant);
        if (overflow)
          Fail(pointer, "cannot read the index \"" + inside + "\" in \"" + text +
                            "\": expected integers in [" + std::to_string(LONG_MIN) + ", " +
                            std::to_string(LONG_MAX) + "], found " + inside.substr(i, j - i));
        i = j;
        expect_term = false;
      } else if ((std::isalpha(static_cast<unsigned char>(c)) || c == '_') && expect_term) {
        size_t j = i;
        while (j < inside.size() &&
               (std::isalnum(static_cast<unsigned char>(inside[j])) || inside[j] == '_'))
          ++j;
        const std::string loop = inside.substr(i, j - i);
        auto it = std::find(loops.begin(), loops.end(), loop);
        if (it == loops.end())
          Fail(pointer, "\"" + text + "\" uses '" + loop + "', which is not a loop variable of " +
                            "this factor" +
                            (loops.empty() ? " (it has no \"for\")"
                                           : " (loops: " + JoinQuoted(loops) + ")"));
        index.terms.emplace_back(static_cast<int>(it - loops.begin()), sign);
        i = j;
        expect_term = false;
      } else {
        Fail(pointer, "cannot read the index \"" + inside + "\" in \"" + text +
                          "\": expected integers and loop variables joined by + or -");
      }
      if (!expect_term) sign = 1;
    }
    if (expect_term) Fail(pointer, "the index \"" + inside + "\" in \"" + text + "\" is incomplete");
    ref.indices.push_back(index);
    pos = close + 1;
  }
  return ref;
}

// ---- The loader -----------------------------------------------------------------------------

struct VariableEntry {
  Variable variable;
  std::vector<size_t> shape;
  bool observed = false;
  Family family = Family::kGaussian;
  int dim = 1;
  std::string pointer;
  /// Observed values: element i is row i (scalars: one column).
  Matrix rows;
  bool has_matrix_value = false;  ///< a single observed matrix
  bool used = false;              ///< connected to a factor or read as a matrix
  bool categorical = false;       ///< observed outcomes 0..dim−1
  Matrix matrix_value;
  /// A MatrixDirichlet (dim [K, L]): in the graph the array of its L columns, Dirichlet
  /// elements of dimension `dim` = K (shape {L}).
  bool matrix_dirichlet = false;
};

/// "'x' (Categorical)", "'y' (observed)": a variable as errors name it.
std::string Describe(const std::string& name, const VariableEntry& entry) {
  if (entry.observed) return "'" + name + "' (observed)";
  const std::string family = entry.matrix_dirichlet ? kMatrixDirichlet : FamilyName(entry.family);
  return "'" + name + "' (" + family + ")";
}

}  // namespace

/// The loader's record of a model for ResultJson and NormalisedModelJson.
struct ModelDocument {
  Json json;                             ///< the document as parsed
  std::vector<VariableEntry> variables;  ///< as declared, in order (observed values included)
  /// Numbers read from CSV files other than observed values (per-factor log-tables, starting
  /// posteriors), by the JSON pointer of their {"csv": ...}: `cols` numbers per element, a
  /// number (cols = 1, `scalar`) or an array.
  struct CsvValues {
    size_t cols = 1;
    bool scalar = false;
    std::vector<double> values;
  };
  std::map<std::string, CsvValues> csv_values;
};

namespace {

struct NodeSpec {
  const char* type;
  std::vector<std::string> slots;  ///< argument keys, in the node's order
};

const std::vector<NodeSpec>& NodeSpecs() {
  static const std::vector<NodeSpec> specs = {
      {"Gaussian", {"out", "mean", "precision"}},
      {"MvGaussian", {"out", "mean", "precision"}},
      {"LinearGaussian", {"out", "in", "matrix", "precision"}},
      {"Gamma", {"out", "shape", "rate"}},
      {"Wishart", {"out", "dof", "scale"}},
      {"Beta", {"out", "a", "b"}},
      {"Dirichlet", {"out", "alpha"}},
      {"MatrixDirichlet", {"out", "alpha"}},
      {"Bernoulli", {"out", "p"}},
      {"Categorical", {"out", "p"}},
      {"GaussianMixture", {"out", "switch", "means", "precisions"}},
      {"Transition", {"out", "in", "matrix"}},
      // One of "log_table" (shared) and "log_tables" (one per factor).
      {"Potential", {"variables", "log_table", "log_tables"}},
      {"Delta", {"out", "in", "precision"}},
      {"Sum", {"out", "in1", "in2"}},
      {"MatrixProduct", {"out", "in", "matrix"}},
  };
  return specs;
}

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

std::string ShapeText(const std::vector<size_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

class Loader {
 public:
  explicit Loader(std::string base_directory)
      : base_(std::move(base_directory)), document_(std::make_shared<ModelDocument>()) {}

  Model Load(const std::string& text) {
    const auto start = std::chrono::steady_clock::now();
    Json doc;
    try {
      doc = Json::parse(text);
    } catch (const Json::exception& e) {
      // A syntax error, or a number too large for a double ("1e400"). Drop the library's
      // "[json.exception.parse_error.101] " tag.
      const std::string what = e.what();
      const size_t tag_end = what.find("] ");
      Fail("", "not valid JSON: " + (tag_end == std::string::npos ? what : what.substr(tag_end + 2)));
    }
    RequireObject(doc, "", "a JSON object with \"format\", \"variables\" and \"factors\"");
    CheckKeys(doc, "", {"format", "description", "variables", "factors", "factorisation",
                        "inference"});
    const Json& format = Required(doc, "format", "");
    if (format != "vfe-model/1")
      Fail("/format", "expected \"vfe-model/1\", found " + Found(format));
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
    for (const std::string& name : names_) {
      const VariableEntry& entry = entries_.at(name);
      if (entry.observed && !entry.used)
        Fail(entry.pointer, "observed variable '" + name + "' is not used by any factor");
    }

    try {
      model_.graph.Finalize();
    } catch (const Error& e) {
      throw ModelError(LocateGraphError(e.what()));
    }
    if (doc.contains("inference")) ReadInference(doc["inference"], "/inference");
    model_.shapes.resize(model_.graph.num_variables());
    for (const std::string& name : names_) {
      const VariableEntry& entry = entries_.at(name);
      if (!entry.variable.valid()) continue;  // only supplies matrices
      model_.variables.push_back(entry.variable);
      model_.shapes[entry.variable.id()] = entry.shape;
    }
    // The settings as read, defaults included, for NormalisedModelJson.
    Json& inference = doc["inference"];
    inference["iterations"] = model_.inference.options.max_iterations;
    inference["tolerance"] = model_.inference.options.tolerance;
    inference["scheduler"] = model_.inference.scheduler;
    inference["threads"] = model_.inference.threads;
    document_->json = std::move(doc);
    for (const std::string& name : names_)
      document_->variables.push_back(std::move(entries_.at(name)));
    model_.document = std::move(document_);
    model_.build_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
            .count();
    return std::move(model_);
  }

 private:
  /// A graph error located by the factor or variable it names: "factor 'lik' (Gaussian): ..."
  /// becomes "/factors/2: factor 'lik' (Gaussian): ...", and for a factor without a name (its
  /// plate is named by its pointer) "/factors/2 (Gaussian): ...". An error about a cluster
  /// ("cluster 'x' has a cycle ...", "cluster 'x' (parallel-scan solver, ...): ...") that names
  /// no factor goes to its entry of "factorisation" ("/factorisation/0: cluster 'x' ...").
  std::string LocateGraphError(const std::string& message) const {
    for (const auto& [name, pointer] : cluster_pointers_)
      if (message.rfind("cluster '" + name + "'", 0) == 0)
        return pointer + ": " + SolverInJsonTerms(message);
    for (const auto& [pointer, name] : factor_labels_)
      if (message.find("factor '" + name + "'") != std::string::npos)
        return Located(pointer, name, message);
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

  static std::string Located(const std::string& pointer, const std::string& name,
                             const std::string& message) {
    const std::string label = "factor '" + name + "' ";
    if (name == pointer && message.rfind(label, 0) == 0)
      return pointer + " " + message.substr(label.size());
    return pointer + ": " + message;
  }

  // ---- variables ----

  void AddVariable(const Json& spec, const std::string& pointer) {
    RequireObject(spec, pointer, "a variable object");
    CheckKeys(spec, pointer, {"name", "family", "shape", "dim", "observed"});
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
      Fail(pointer + "/name", "the name '" + name + "' is already declared at " +
                                  entries_[name].pointer);
    VariableEntry entry;
    entry.pointer = pointer;
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
        const long n = Integer(shape[k], pointer + "/shape/" + std::to_string(k),
                               "a positive integer");
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
        Fail(pointer + "/dim", "expected a positive integer at most " +
                                   std::to_string(kMaxNumbers) + ", found " + std::to_string(d));
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
        if (!family) Fail(pointer, "missing required key 'family' (a hidden variable needs one; "
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

  /// {"family": "MatrixDirichlet", "dim": [K, L]}: L columns, each a Dirichlet over K outcomes,
  /// held by the graph as the array variable of L Dirichlet elements of dimension K.
  void DeclareMatrixDirichlet(const std::string& name, const Json& spec, const std::string& pointer,
                              VariableEntry& entry) {
    if (spec.contains("shape"))
      Fail(pointer + "/shape", "expected no 'shape' for a MatrixDirichlet variable (one matrix, "
                               "sized by 'dim': [K, L]), found " + Found(spec["shape"]));
    if (spec.contains("observed"))
      Fail(pointer + "/observed", "expected a hidden MatrixDirichlet variable (a known matrix is "
                                  "the 'matrix' of its Transition), found observed values");
    if (!spec.contains("dim"))
      Fail(pointer, "missing required key 'dim' ([K, L]: L columns, each a Dirichlet over K "
                    "outcomes)");
    const Json& dim = spec["dim"];
    if (!dim.is_array() || dim.size() != 2)
      Fail(pointer + "/dim", "expected [K, L] (L columns, each a Dirichlet over K outcomes), "
                             "found " + Found(dim));
    size_t sizes[2];
    for (size_t k = 0; k < 2; ++k) {
      const std::string p = pointer + "/dim/" + std::to_string(k);
      const long n = Integer(dim[k], p, "a positive integer");
      if (n < 1 || static_cast<size_t>(n) > kMaxNumbers)
        Fail(p, "expected a positive integer at most " + std::to_string(kMaxNumbers) +
                    ", found " + std::to_string(n));
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

  /// The MatrixDirichlet variable `text` names, whole ("A", not a column "A[k]").
  VariableEntry& MatrixVariable(const std::string& text, const std::string& pointer,
                                const std::string& expected) {
    const std::string name = text.substr(0, text.find('['));
    auto it = entries_.find(name);
    if (it == entries_.end())
      Fail(pointer, "unknown variable '" + name + "'" + DidYouMean(name, names_));
    VariableEntry& entry = it->second;
    if (!entry.matrix_dirichlet)
      Fail(pointer, "expected " + expected + ", found " + Describe(name, entry));
    if (name != text)
      Fail(pointer, "expected the whole MatrixDirichlet variable '" + name + "', found \"" +
                        text + "\" (one of its columns)");
    entry.used = true;
    return entry;
  }

  static std::optional<size_t> NumElements(const std::vector<size_t>& shape) {
    std::optional<size_t> elements = 1;
    for (size_t n : shape)
      if (elements) elements = CheckedProduct(*elements, n);
    return elements;
  }

  /// Adds the statistics of `entry`'s elements to the model's count, refusing a model of more
  /// than kMaxNumbers. Observed values count as the family they will take: scalars as 2,
  /// vectors of D as an MvGaussian's D + D², a D x D matrix as a Wishart's D² + 1, categorical
  /// data as K.
  void CountNumbers(const std::string& name, const std::string& pointer,
                    const VariableEntry& entry) {
    const size_t d = static_cast<size_t>(entry.dim);
    size_t elements = *NumElements(entry.shape), per_element = 2;
    if (!entry.observed) {
      switch (entry.family) {
        case Family::kMvGaussian: per_element = d + d * d; break;
        case Family::kWishart: per_element = d * d + 1; break;
        case Family::kCategorical:
        case Family::kDirichlet: per_element = d; break;
        default: break;
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
      Fail(pointer, "expected at most " + std::to_string(kMaxNumbers) +
                        " numbers in the variables of the model, found " + CountText(numbers) +
                        " in '" + name + "' (" + std::to_string(elements) +
                        (elements == 1 ? " element of " : " elements of ") +
                        std::to_string(per_element) + ")" +
                        (num_numbers_ ? " and " + std::to_string(num_numbers_) + " before it"
                                      : std::string()));
    num_numbers_ += *numbers;
  }

  /// The table of {"csv": file, "column"/"columns": ...}, the file relative to the model.
  Table ReadCsvSpec(const Json& value, const std::string& pointer) const {
    CheckKeys(value, pointer, {"csv", "column", "columns"});
    const Json& file = Required(value, "csv", pointer);
    if (!file.is_string()) Fail(pointer + "/csv", "expected a file name, found " + Found(file));
    std::string path = file.get<std::string>();
    if (!path.empty() && path[0] != '/') path = base_ + "/" + path;
    Table table = ReadCsv(path, pointer + "/csv");
    SelectColumns(table, value, pointer, path);
    return table;
  }

  void AddObserved(const std::string& name, const Json& value, const std::string& pointer,
                   size_t size, bool has_shape, VariableEntry& entry) {
    if (value.is_object()) {
      Table table = ReadCsvSpec(value, pointer);
      const size_t rows = table.rows();
      if (has_shape && rows != size)
        Fail(pointer + "/csv", "expected " + std::to_string(size) + " rows (shape " +
                                   ShapeText(entry.shape) + "), found " + std::to_string(rows));
      if (!has_shape && rows > 1) entry.shape = {rows};
      entry.rows = Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic,
                                                  Eigen::RowMajor>>(
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
      entry.matrix_value = ReadMatrix(value, pointer);
      return;
    }
    if (!has_shape && IsNumberArray(value) && entry.dim > 1) {
      // One vector.
      if (static_cast<int>(value.size()) != entry.dim)
        Fail(pointer, "expected " + std::to_string(entry.dim) + " numbers (dim), found " +
                          std::to_string(value.size()));
      entry.rows = ReadVector(value, pointer).transpose();
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

  /// Categorical data: integers 0..K−1, K given by "dim".
  static void CheckOutcomes(const Json& spec, const std::string& pointer, VariableEntry& entry) {
    if (!spec.contains("dim"))
      Fail(pointer, "missing required key 'dim' (the number of categories of Categorical data)");
    if (entry.rows.cols() != 1)
      Fail(pointer + "/observed", "expected one outcome per element, found rows of " +
                                      std::to_string(entry.rows.cols()));
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

  static double ObservedNumber(const Json& value, const std::string& pointer) {
    if (value.is_null()) Fail(pointer, "expected a finite number, found null (a missing value)");
    return Number(value, pointer, "a finite number");
  }

  void DeclareObservedRows(const std::string& /*name*/, const std::string& pointer,
                           VariableEntry& entry) {
    if (entry.dim > 1 && entry.rows.cols() != entry.dim)
      Fail(pointer, "expected rows of " + std::to_string(entry.dim) + " values (dim), found " +
                        std::to_string(entry.rows.cols()));
  }

  /// The graph variable of an entry. Observed variables enter the graph when a factor first
  /// connects them (one that only supplies LinearGaussian matrices never does).
  const Variable& GraphVariable(const std::string& name, VariableEntry& entry) {
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

  // ---- factors ----

  struct Loop {
    std::string name;
    long begin = 0, end = 0;
  };

  void AddFactor(const Json& spec, const std::string& pointer) {
    RequireObject(spec, pointer, "a factor object");
    const Json& node_json = Required(spec, "node", pointer);
    std::vector<std::string> node_names;
    for (const NodeSpec& s : NodeSpecs()) node_names.push_back(s.type);
    if (!node_json.is_string())
      Fail(pointer + "/node", "expected a node type, found " + Found(node_json));
    const std::string type = node_json.get<std::string>();
    auto spec_it = std::find_if(NodeSpecs().begin(), NodeSpecs().end(),
                                [&](const NodeSpec& s) { return type == s.type; });
    if (spec_it == NodeSpecs().end())
      Fail(pointer + "/node", "unknown node type \"" + type + "\"" + DidYouMean(type, node_names) +
                                  "; expected one of " + JoinQuoted(node_names));
    const NodeSpec& node = *spec_it;
    std::vector<std::string> allowed = {"node", "name", "for"};
    // A matrix Dirichlet prior is one factor per column of one matrix: it takes no loop.
    if (type == kMatrixDirichlet) allowed.pop_back();
    allowed.insert(allowed.end(), node.slots.begin(), node.slots.end());
    if (type == "Delta")
      allowed.insert(allowed.end(), {"function", "matrix", "offset", "output_matrix", "linear",
                                     "approximation", "alpha", "beta", "kappa", "energy",
                                     "samples", "seed"});
    CheckKeys(spec, pointer, allowed);
    const bool potential = type == "Potential";
    for (const std::string& slot : node.slots)
      if (!spec.contains(slot) && !(potential && slot != "variables"))
        Fail(pointer, "missing required key '" + slot + "' (" + type + " takes " +
                          JoinQuoted(node.slots) + ")");
    if (potential && spec.contains("log_table") == spec.contains("log_tables"))
      Fail(pointer, spec.contains("log_table")
                        ? "expected one of 'log_table' and 'log_tables', found both"
                        : "missing required key 'log_table' (one table for every factor) or "
                          "'log_tables' (one table per factor)");
    std::string name = pointer;
    if (spec.contains("name")) {
      if (!spec["name"].is_string())
        Fail(pointer + "/name", "expected a string, found " + Found(spec["name"]));
      name = spec["name"].get<std::string>();
    }
    factor_labels_.emplace_back(pointer, name);
    if (type == kMatrixDirichlet) return AddMatrixDirichletPrior(spec, pointer, name);

    // Loops, outermost first.
    std::vector<Loop> loops;
    std::vector<std::string> loop_names;
    if (spec.contains("for")) {
      const Json& loops_json = spec["for"];
      RequireObject(loops_json, pointer + "/for", "an object of ranges {\"i\": [begin, end]}");
      for (auto it = loops_json.begin(); it != loops_json.end(); ++it) {
        const std::string lp = pointer + "/for/" + it.key();
        const Json& range = it.value();
        if (!range.is_array() || range.size() != 2)
          Fail(lp, "expected a range [begin, end], found " + Found(range));
        Loop loop{it.key(), Integer(range[0], lp + "/0", "an integer"),
                  Integer(range[1], lp + "/1", "an integer")};
        if (loop.end < loop.begin)
          Fail(lp, "expected begin <= end, found [" + std::to_string(loop.begin) + ", " +
                       std::to_string(loop.end) + "]");
        loops.push_back(loop);
        loop_names.push_back(loop.name);
      }
    }
    // The product of the lengths of the ranges (end − begin always fits in size_t).
    for (const Loop& l : loops)
      if (l.end == l.begin) return;  // an empty range adds no factor
    std::optional<size_t> product = 1;
    for (const Loop& l : loops)
      if (product)
        product = CheckedProduct(*product, static_cast<size_t>(l.end) - static_cast<size_t>(l.begin));
    if (!product || *product > kMaxNumbers - num_factors_)
      Fail(pointer + "/for", "expected at most " + std::to_string(kMaxNumbers) +
                                 " factors in the model, found " + CountText(product) +
                                 " in this loop" +
                                 (num_factors_ ? " and " + std::to_string(num_factors_) + " before it"
                                               : std::string()));
    const size_t count = *product;
    num_factors_ += count;

    // Each argument: a constant, a whole variable, or one element per factor.
    struct Slot {
      std::string key, pointer;
      bool constant = false;
      Argument value = 0.0;   // constant or whole variable
      bool per_factor = false;
      VariableEntry* entry = nullptr;
      std::string variable_name;
      std::vector<size_t> elements;  // per factor
      double number = 0;            // numeric constants of Gamma/Wishart
    };
    std::vector<Slot> slots;
    // The arguments in slot order: a Potential's "variables" list gives one slot per entry,
    // and its table is read apart.
    std::vector<std::pair<std::string, const Json*>> arguments;
    std::vector<double> potential_table;
    if (potential) {
      const Json& list = spec["variables"];
      if (!list.is_array() || list.empty())
        Fail(pointer + "/variables", "expected a non-empty array of variable names, found " +
                                         Found(list));
      for (size_t j = 0; j < list.size(); ++j)
        arguments.emplace_back("variables/" + std::to_string(j), &list[j]);
      if (spec.contains("log_table"))
        FlattenTable(spec["log_table"], pointer + "/log_table", potential_table);
    } else {
      for (const std::string& key : node.slots) arguments.emplace_back(key, &spec[key]);
    }
    for (const auto& [key, arg_pointer] : arguments) {
      Slot slot;
      slot.key = key;
      slot.pointer = pointer + "/" + key;
      const Json& arg = *arg_pointer;
      if (type == "Potential" && !arg.is_string())
        Fail(slot.pointer, "expected a Categorical variable, found " + Found(arg));
      const bool learned_matrix = type == "Transition" && key == "matrix" && arg.is_string();
      const bool numeric_only = (type == "Gamma" && key == "shape") ||
                                (type == "Wishart" && (key == "dof" || key == "scale")) ||
                                type == "Beta" || type == "Dirichlet" ||
                                (type == "Transition" && key == "matrix" && !learned_matrix) ||
                                (type == "MatrixProduct" && key == "matrix");
      if (learned_matrix) {
        slot.variable_name = arg.get<std::string>();
        slot.entry = &MatrixVariable(slot.variable_name, slot.pointer,
                                     "a constant matrix (an array of rows) or a MatrixDirichlet "
                                     "variable");
      } else if (numeric_only && key != "out") {
        if (key == "scale" || key == "matrix") {
          slot.value = ReadMatrix(arg, slot.pointer);
        } else if (key == "alpha") {
          slot.value = ReadVector(arg, slot.pointer);
        } else {
          slot.number = PositiveNumber(arg, slot.pointer, "a positive number");
        }
        slot.constant = true;
      } else if (arg.is_string()) {
        ResolveReference(arg.get<std::string>(), slot.pointer, loops, loop_names, count, slot.entry,
                         slot.variable_name, slot.per_factor, slot.elements);
      } else {
        if (key == "out") Fail(slot.pointer, "expected a variable name, found " + Found(arg));
        slot.constant = true;
        slot.value = ReadConstant(arg, slot.pointer);
        CheckConstant(type, key, slot.value.constant().value(), slot.pointer);
      }
      slots.push_back(std::move(slot));
    }

    // Per-factor log-tables: the tables of factors [first, last) of the loop, one after another.
    size_t table_size = 0;
    if (potential) {
      // The graph compares a shared table with the product of the categories, once that fits.
      std::optional<size_t> categories = 1;
      for (const Slot& slot : slots)
        if (categories)
          categories = CheckedProduct(*categories, static_cast<size_t>(slot.entry->dim));
      if (!categories || *categories > kMaxNumbers)
        Fail(pointer, "the log-table has " + std::to_string(potential_table.size()) +
                          " entries, but the variables' categories make " + CountText(categories));
      table_size = *categories;
      if (spec.contains("log_tables"))
        ReadLogTables(spec["log_tables"], pointer + "/log_tables", count, table_size,
                      potential_table);
    }
    if (type == "Transition") {
      // Rows of the matrix are out's outcomes, columns in's states (DESIGN §2).
      const Slot& matrix = slots[2];
      const bool learned = !matrix.constant;
      const size_t rows = learned ? static_cast<size_t>(matrix.entry->dim)
                                  : static_cast<size_t>(matrix.value.constant().value().rows());
      const size_t cols = learned ? matrix.entry->shape[0]
                                  : static_cast<size_t>(matrix.value.constant().value().cols());
      const std::string matrix_text =
          learned ? "the MatrixDirichlet '" + matrix.variable_name + "', dim [" +
                        std::to_string(rows) + ", " + std::to_string(cols) + "]"
                  : "the " + std::to_string(rows) + "x" + std::to_string(cols) + " matrix";
      for (size_t s = 0; s < 2; ++s) {
        const Slot& slot = slots[s];
        if (slot.constant || slot.entry->family != Family::kCategorical) continue;
        const size_t expected = s == 0 ? rows : cols;
        if (static_cast<size_t>(slot.entry->dim) != expected)
          Fail(slot.pointer, "expected a Categorical variable with " + std::to_string(expected) +
                                 " outcomes (the " + (s == 0 ? "rows" : "columns") + " of " +
                                 matrix_text + "), found " +
                                 Describe(slot.variable_name, *slot.entry) + " with " +
                                 std::to_string(slot.entry->dim));
      }
    }
    if (type == "GaussianMixture")
      for (size_t s = 2; s < 4; ++s)
        if (slots[s].constant || slots[s].per_factor)
          Fail(slots[s].pointer, "expected the name of an array variable with one element per "
                                 "component (all of it, not indexed), found " +
                                     Found(spec[slots[s].key]));
    // The matrix of a LinearGaussian may come from an observed variable, one row per factor.
    const bool rows_matrix = type == "LinearGaussian" && !slots[2].constant;
    if (rows_matrix) {
      const VariableEntry& x = *slots[2].entry;
      if (!x.observed)
        Fail(slots[2].pointer, "expected a constant matrix or an observed variable, found the "
                               "hidden variable in \"" + spec["matrix"].get<std::string>() + "\"");
    }
    if (type == "Delta") {
      auto dim_of = [](const Slot& slot) {
        return slot.constant ? static_cast<int>(slot.value.constant().value().size())
                             : slot.entry->dim;
      };
      auto describe = [&](const Slot& slot) {
        return slot.constant ? std::string("a constant")
                             : Describe(slot.variable_name, *slot.entry);
      };
      delta_ = ReadDelta(spec, pointer, dim_of(slots[1]), describe(slots[1]), dim_of(slots[0]),
                         describe(slots[0]));
    }
    for (size_t s = 0; s < slots.size(); ++s) {
      Slot& slot = slots[s];
      if (slot.constant) continue;
      if (rows_matrix && s == 2) {
        slot.entry->used = true;
        continue;
      }
      const Variable& v = GraphVariable(slot.variable_name, *slot.entry);
      if (!slot.per_factor) slot.value = v;
    }

    // Split the factors into runs in which every per-factor argument is either one element
    // or consecutive elements: each run becomes one plate.
    size_t first = 0;
    while (first < count) {
      size_t last = first + 1;
      std::vector<long> step(slots.size(), -1);
      while (last < count) {
        bool fits = true;
        for (size_t s = 0; s < slots.size() && fits; ++s) {
          if (!slots[s].per_factor || (rows_matrix && s == 2)) continue;
          const long delta = static_cast<long>(slots[s].elements[last]) -
                             static_cast<long>(slots[s].elements[first]);
          const long run = static_cast<long>(last - first);
          if (step[s] < 0) {
            if (delta != 0 && delta != 1) fits = false;
          } else if (delta != step[s] * run) {
            fits = false;
          }
        }
        if (!fits) break;
        if (last == first + 1)
          for (size_t s = 0; s < slots.size(); ++s)
            if (slots[s].per_factor)
              step[s] = static_cast<long>(slots[s].elements[last]) -
                        static_cast<long>(slots[s].elements[first]);
        ++last;
      }
      if (spec.contains("log_tables")) {
        const auto begin = potential_table.begin() + static_cast<std::ptrdiff_t>(first * table_size);
        const auto end = begin + static_cast<std::ptrdiff_t>((last - first) * table_size);
        AddPlate(type, name, pointer, slots, first, last, step, std::vector<double>(begin, end));
      } else {
        AddPlate(type, name, pointer, slots, first, last, step, potential_table);
      }
      first = last;
    }
  }

  /// A Delta node's function and options.
  struct DeltaSpec {
    DeltaFunction function;
    DeltaOptions options;
  };

  /// The function of a Delta factor, f(x) = L·x + C·g(A·x + b) ("function" g, "matrix" A,
  /// "offset" b, "output_matrix" C, "linear" L), checked against the dimensions of 'in' (D)
  /// and 'out' (E), and its options.
  static DeltaSpec ReadDelta(const Json& spec, const std::string& pointer, int in_dim,
                             const std::string& in_name, int out_dim,
                             const std::string& out_name) {
    DeltaSpec delta;
    // The names: the scalar functions, then "affine" (the identity after the affine map).
    std::vector<std::string> names;
    int count = 0;
    const ScalarFunction* all = ScalarFunctions(&count);
    for (int i = 0; i < count; ++i) names.push_back(all[i].name);
    names.push_back("affine");
    const std::string fp = pointer + "/function";
    const Json& function = Required(spec, "function", pointer);
    if (!function.is_string())
      Fail(fp, "expected a function name (one of " + JoinQuoted(names) + "), found " +
                   Found(function));
    const std::string name = function.get<std::string>();
    const bool affine = name == "affine";
    const ScalarFunction* g = affine ? FindScalarFunction("identity") : FindScalarFunction(name);
    if (!g)
      Fail(fp, "unknown function \"" + name + "\"" + DidYouMean(name, names) +
                   "; expected one of " + JoinQuoted(names));
    if (affine && !spec.contains("matrix") && !spec.contains("offset"))
      Fail(pointer, "the affine function needs 'matrix' and/or 'offset' (f(x) = matrix * x + "
                    "offset)");
    const std::string in_text = "'in' is " + in_name + " of dimension " + std::to_string(in_dim);
    const std::string out_text =
        "'out' is " + out_name + " of dimension " + std::to_string(out_dim);
    auto shape = [](const Matrix& m) {
      return std::to_string(m.rows()) + "x" + std::to_string(m.cols());
    };
    DeltaFunction& f = delta.function;
    f.elementwise = g;
    f.description = name;
    f.in_dim = in_dim;
    int hidden = in_dim;  // H, the dimension g works in
    if (spec.contains("matrix")) {
      f.matrix = ReadMatrix(spec["matrix"], pointer + "/matrix");
      if (f.matrix.cols() != in_dim)
        Fail(pointer + "/matrix", "expected a matrix of " + std::to_string(in_dim) +
                                      " columns, found " + shape(f.matrix) + ": " + in_text);
      hidden = static_cast<int>(f.matrix.rows());
    }
    if (spec.contains("offset")) {
      const Json& offset = spec["offset"];
      f.offset = offset.is_number() ? Vector::Constant(1, Number(offset, pointer + "/offset",
                                                                 "a finite number"))
                                    : ReadVector(offset, pointer + "/offset");
      if (f.offset.size() != hidden)
        Fail(pointer + "/offset", "expected " + std::to_string(hidden) + " numbers, found " +
                                      std::to_string(f.offset.size()) + ": " +
                                      (f.matrix.size() ? "'matrix' has " + std::to_string(hidden) +
                                                             " rows"
                                                       : in_text));
    }
    int e = hidden;
    if (spec.contains("output_matrix")) {
      f.output_matrix = ReadMatrix(spec["output_matrix"], pointer + "/output_matrix");
      if (f.output_matrix.cols() != hidden)
        Fail(pointer + "/output_matrix",
             "expected a matrix of " + std::to_string(hidden) + " columns (the dimension g "
             "works in), found " + shape(f.output_matrix));
      e = static_cast<int>(f.output_matrix.rows());
    }
    if (spec.contains("linear")) {
      f.linear = ReadMatrix(spec["linear"], pointer + "/linear");
      if (f.linear.rows() != out_dim || f.linear.cols() != in_dim)
        Fail(pointer + "/linear", "expected a " + std::to_string(out_dim) + "x" +
                                      std::to_string(in_dim) + " matrix, found " +
                                      shape(f.linear) + ": " + out_text + " and " + in_text);
    }
    if (e != out_dim) {
      const std::string key = spec.contains("output_matrix") ? "output_matrix"
                              : spec.contains("matrix")      ? "matrix"
                              : spec.contains("offset")      ? "offset"
                                                             : "in";
      Fail(pointer + "/" + key,
           "f maps R^" + std::to_string(in_dim) + " to R^" + std::to_string(e) + " but " +
               out_text +
               (key == "in" ? "; an elementwise function keeps the dimension (add a 'matrix')"
                            : ""));
    }
    // Without a matrix or an offset the output matrix and linear term still need H: a zero
    // offset of dimension D states it.
    if (!f.matrix.size() && !f.offset.size()) f.offset = Vector::Zero(hidden);
    f.out_dim = out_dim;
    if (std::max({hidden, in_dim, out_dim}) > DeltaFunction::kMaxDim)
      Fail(pointer, "a Delta node takes dimensions up to " +
                        std::to_string(DeltaFunction::kMaxDim) + ", found 'in' of " +
                        std::to_string(in_dim) + ", 'out' of " + std::to_string(out_dim) +
                        " and g working in " + std::to_string(hidden));

    DeltaOptions& options = delta.options;
    if (spec.contains("approximation")) {
      const Json& value = spec["approximation"];
      const std::vector<std::string> known = {"linearise", "unscented"};
      const std::string text = value.is_string() ? value.get<std::string>() : "";
      if (text == "unscented") {
        options.approximation = DeltaApproximation::kUnscented;
      } else if (text != "linearise") {
        Fail(pointer + "/approximation",
             "expected one of " + JoinQuoted(known) + ", found " + Found(value) +
                 (text.empty() ? "" : DidYouMean(text, known)));
      }
    }
    for (const char* key : {"alpha", "beta", "kappa"}) {
      if (!spec.contains(key)) continue;
      const std::string kp = pointer + "/" + key;
      if (options.approximation != DeltaApproximation::kUnscented)
        Fail(kp, std::string("only the unscented approximation takes '") + key +
                     "' (add \"approximation\": \"unscented\")");
      const std::string k = key;
      if (k == "alpha") options.alpha = PositiveNumber(spec[key], kp, "a positive number");
      if (k == "beta") {
        options.beta = Number(spec[key], kp, "a number >= 0");
        if (options.beta < 0) Fail(kp, "expected a number >= 0, found " + FormatNumber(options.beta));
      }
      if (k == "kappa") {
        options.kappa = Number(spec[key], kp, "a finite number");
        if (!(in_dim + *options.kappa > 0))
          Fail(kp, "expected kappa > -" + std::to_string(in_dim) + " (D + kappa > 0: " +
                       in_text + "), found " + FormatNumber(*options.kappa));
      }
    }
    if (spec.contains("energy")) {
      const Json& value = spec["energy"];
      const std::vector<std::string> known = {"approximation", "monte_carlo"};
      const std::string text = value.is_string() ? value.get<std::string>() : "";
      if (text == "monte_carlo") {
        options.energy = DeltaEnergy::kMonteCarlo;
      } else if (text != "approximation") {
        Fail(pointer + "/energy", "expected one of " + JoinQuoted(known) + ", found " +
                                      Found(value) + (text.empty() ? "" : DidYouMean(text, known)));
      }
    }
    for (const char* key : {"samples", "seed"}) {
      if (!spec.contains(key)) continue;
      const std::string kp = pointer + "/" + key;
      if (options.energy != DeltaEnergy::kMonteCarlo)
        Fail(kp, std::string("only a Monte Carlo energy takes '") + key +
                     "' (add \"energy\": \"monte_carlo\")");
      const long value = Integer(spec[key], kp, std::string(key) == "samples"
                                                     ? "a positive integer"
                                                     : "a non-negative integer");
      if (std::string(key) == "samples") {
        if (value < 1 || value > INT_MAX)
          Fail(kp, "expected a positive integer (at most " + std::to_string(INT_MAX) +
                       "), found " + std::to_string(value));
        options.samples = static_cast<int>(value);
      } else {
        if (value < 0) Fail(kp, "expected a non-negative integer, found " + std::to_string(value));
        options.seed = static_cast<uint64_t>(value);
      }
    }
    return delta;
  }

  /// {"node": "MatrixDirichlet", "out": "A", "alpha": K rows of L}: column k of A gets the prior
  /// Dirichlet(alpha[·][k]), the orientation of a Transition's matrix (FactorGraph::
  /// AddMatrixDirichlet).
  void AddMatrixDirichletPrior(const Json& spec, const std::string& pointer,
                               const std::string& name) {
    const Json& out = spec["out"];
    if (!out.is_string())
      Fail(pointer + "/out", "expected the name of a MatrixDirichlet variable, found " + Found(out));
    const std::string matrix_name = out.get<std::string>();
    VariableEntry& matrix =
        MatrixVariable(matrix_name, pointer + "/out", "a MatrixDirichlet variable");
    const Matrix alpha = ReadMatrix(spec["alpha"], pointer + "/alpha");
    const size_t rows = static_cast<size_t>(matrix.dim), cols = matrix.shape[0];
    if (static_cast<size_t>(alpha.rows()) != rows || static_cast<size_t>(alpha.cols()) != cols)
      Fail(pointer + "/alpha", "expected " + std::to_string(rows) + " rows of " +
                                   std::to_string(cols) + " (an outcome per row, a column per "
                                   "column of '" + matrix_name + "', dim [" + std::to_string(rows) +
                                   ", " + std::to_string(cols) + "]), found " +
                                   std::to_string(alpha.rows()) + " rows of " +
                                   std::to_string(alpha.cols()));
    for (Eigen::Index j = 0; j < alpha.rows(); ++j)
      for (Eigen::Index k = 0; k < alpha.cols(); ++k)
        if (!(alpha(j, k) > 0))
          Fail(pointer + "/alpha/" + std::to_string(j) + "/" + std::to_string(k),
               "expected a positive number, found " + FormatNumber(alpha(j, k)));
    num_factors_ += cols;
    try {
      model_.graph.AddMatrixDirichlet(matrix.variable, alpha, name);
    } catch (const Error& e) {
      throw ModelError(Located(pointer, name, e.what()));
    }
  }

  /// "log_tables": one table per factor of the loop, in loop order: an array of `count` tables
  /// (each written like "log_table"), or {"csv": ...} with one row of `table_size` entries per
  /// factor (row-major, the last variable fastest). Appends them to `out`, one after another.
  void ReadLogTables(const Json& value, const std::string& pointer, size_t count,
                     size_t table_size, std::vector<double>& out) {
    const std::string sizes = std::to_string(table_size) +
                              " entries (the product of the variables' categories)";
    if (value.is_object()) {
      Table table = ReadCsvSpec(value, pointer);
      if (table.rows() != count || table.cols != table_size)
        Fail(pointer + "/csv", "expected " + std::to_string(count) +
                                   " rows (one per factor of the loop) of " + sizes + ", found " +
                                   std::to_string(table.rows()) + " rows of " +
                                   std::to_string(table.cols));
      out = table.values;
      document_->csv_values[pointer] = {table_size, false, std::move(table.values)};
      return;
    }
    if (!value.is_array() || value.size() != count)
      Fail(pointer, "expected an array of " + std::to_string(count) +
                        " tables (one per factor of the loop) or {\"csv\": ...}, found " +
                        Found(value));
    out.reserve(count * table_size);
    for (size_t n = 0; n < count; ++n) {
      const std::string p = pointer + "/" + std::to_string(n);
      const size_t before = out.size();
      FlattenTable(value[n], p, out);
      if (out.size() - before != table_size)
        Fail(p, "expected a table of " + sizes + ", found " + std::to_string(out.size() - before));
    }
  }

  /// A log-table written as nested arrays (one level per variable), row-major; entries are
  /// numbers or "-inf" (an impossible configuration). The shape is checked against the
  /// variables' categories when the graph is finalised.
  static void FlattenTable(const Json& value, const std::string& pointer,
                           std::vector<double>& out) {
    if (value.is_array()) {
      if (value.empty()) Fail(pointer, "expected a non-empty array, found an array of 0");
      const bool nested = value[0].is_array();
      for (size_t i = 0; i < value.size(); ++i) {
        if (value[i].is_array() != nested || (nested && value[i].size() != value[0].size()))
          Fail(pointer + "/" + std::to_string(i),
               "expected rows of equal length (a rectangular table), found " + Found(value[i]));
        FlattenTable(value[i], pointer + "/" + std::to_string(i), out);
      }
      return;
    }
    if (value == "-inf") {
      out.push_back(-INFINITY);
      return;
    }
    out.push_back(Number(value, pointer, "a number or \"-inf\""));
  }

  void ResolveReference(const std::string& text, const std::string& pointer,
                        const std::vector<Loop>& loops, const std::vector<std::string>& loop_names,
                        size_t count, VariableEntry*& entry, std::string& name,
                        bool& per_factor, std::vector<size_t>& elements) {
    const Reference ref = ParseReference(text, pointer, loop_names);
    auto it = entries_.find(ref.name);
    if (it == entries_.end())
      Fail(pointer, "unknown variable '" + ref.name + "'" + DidYouMean(ref.name, names_));
    entry = &it->second;
    name = ref.name;
    if (entry->matrix_dirichlet && ref.indices.empty())
      Fail(pointer, "expected a variable or one element, found the MatrixDirichlet '" + name +
                        "' (whole, it is only the 'matrix' of a Transition or the 'out' of its "
                        "prior; its column k, a Dirichlet variable, is \"" + name + "[k]\")");
    const std::vector<size_t>& shape = entry->shape;
    if (ref.indices.empty()) {
      per_factor = false;
      return;
    }
    if (ref.indices.size() != shape.size())
      Fail(pointer, "\"" + text + "\" has " + std::to_string(ref.indices.size()) +
                        " indices, but '" + ref.name + "' has shape " + ShapeText(shape) +
                        (shape.empty() ? " (a single element: write \"" + ref.name + "\")" : ""));
    per_factor = true;
    elements.resize(count);
    std::vector<long> loop_value(loops.size());
    for (size_t l = 0; l < loops.size(); ++l) loop_value[l] = loops[l].begin;
    for (size_t n = 0; n < count; ++n) {
      size_t flat = 0;
      for (size_t d = 0; d < shape.size(); ++d) {
        long value = ref.indices[d].constant;
        bool overflow = false;
        for (const auto& [loop, sign] : ref.indices[d].terms) {
          long term = 0;
          overflow |= __builtin_mul_overflow(loop_value[loop], static_cast<long>(sign), &term) ||
                      __builtin_add_overflow(value, term, &value);
        }
        if (overflow || value < 0 || static_cast<size_t>(value) >= shape[d]) {
          std::string at;
          for (size_t l = 0; l < loops.size(); ++l)
            at += (l ? ", " : "") + loops[l].name + "=" + std::to_string(loop_value[l]);
          Fail(pointer, "index " + std::to_string(d) + " of \"" + text + "\" is " +
                            (overflow ? "beyond a 64-bit integer" : std::to_string(value)) +
                            (at.empty() ? "" : " at " + at) +
                            ", outside [0, " + std::to_string(shape[d]) + ") (shape of '" +
                            ref.name + "' is " + ShapeText(shape) + ")");
        }
        flat = flat * shape[d] + static_cast<size_t>(value);
      }
      elements[n] = flat;
      // Advance the loops, innermost fastest.
      for (size_t l = loops.size(); l-- > 0;) {
        if (++loop_value[l] < loops[l].end) break;
        loop_value[l] = loops[l].begin;
      }
    }
  }

  static void CheckConstant(const std::string& type, const std::string& key, const Matrix& value,
                            const std::string& pointer) {
    if (key == "precision") {
      if (value.size() == 1) {
        if (!(value(0, 0) > 0))
          Fail(pointer, "expected a positive number or a " +
                            std::string(type == "Gaussian" ? "Gamma" : "Wishart or Gamma") +
                            " variable, found " + FormatNumber(value(0, 0)));
        return;
      }
      if (value.rows() != value.cols())
        Fail(pointer, "expected a square precision matrix, found " +
                          std::to_string(value.rows()) + "x" + std::to_string(value.cols()));
      if (!value.isApprox(value.transpose(), 1e-12))
        Fail(pointer, "expected a symmetric precision matrix, found an asymmetric one");
      if (Eigen::LLT<Matrix>(value).info() != Eigen::Success)
        Fail(pointer, "expected a positive-definite precision matrix, found one that is not");
    }
    if (type == "Bernoulli" && key == "p" && !(value.size() == 1 && value(0, 0) > 0 && value(0, 0) < 1))
      Fail(pointer, "expected a probability in (0, 1) or a Beta variable, found " +
                        (value.size() == 1 ? FormatNumber(value(0, 0)) : std::string("an array")));
    if (key == "rate" && !(value.size() == 1 && value(0, 0) > 0))
      Fail(pointer, "expected a positive number or a Gamma variable, found " +
                        (value.size() == 1 ? FormatNumber(value(0, 0)) : std::string("an array")));
  }

  template <class Slots>
  void AddPlate(const std::string& type, const std::string& name, const std::string& pointer,
                const Slots& slots, size_t first, size_t last, const std::vector<long>& step,
                const std::vector<double>& table) {
    std::vector<Argument> args;
    for (size_t s = 0; s < slots.size(); ++s) {
      const auto& slot = slots[s];
      if (slot.constant || !slot.per_factor) {
        args.push_back(slot.value);
        continue;
      }
      const size_t e0 = slot.elements[first];
      const Variable& v = slot.entry->variable;
      if (!v.valid()) {  // a LinearGaussian matrix read from data, handled below
        args.push_back(0.0);
        continue;
      }
      if (step[s] == 1) {
        args.push_back(v.Slice(e0, e0 + (last - first)));
      } else {
        args.push_back(v[e0]);
      }
    }
    try {
      if (type == "Gaussian") {
        model_.graph.AddGaussian(args[0], args[1], args[2], name);
      } else if (type == "MvGaussian") {
        model_.graph.AddMvGaussian(args[0], args[1], args[2], name);
      } else if (type == "Gamma") {
        model_.graph.AddGamma(args[0], slots[1].number, args[2], name);
      } else if (type == "Wishart") {
        model_.graph.AddWishart(args[0], slots[1].number, slots[2].value.constant().value(), name);
      } else if (type == "Beta") {
        model_.graph.AddBeta(args[0], slots[1].number, slots[2].number, name);
      } else if (type == "Dirichlet") {
        model_.graph.AddDirichlet(args[0], slots[1].value.constant().value().col(0), name);
      } else if (type == "Bernoulli") {
        model_.graph.AddBernoulli(args[0], args[1], name);
      } else if (type == "Categorical") {
        model_.graph.AddCategorical(args[0], args[1], name);
      } else if (type == "GaussianMixture") {
        model_.graph.AddGaussianMixture(args[0], args[1], slots[2].entry->variable,
                                        slots[3].entry->variable, name);
      } else if (type == "Potential") {
        model_.graph.AddPotential(args, table, name);
      } else if (type == "Delta") {
        model_.graph.AddFactor(MakeDeltaNode(delta_->function, delta_->options), args, name);
      } else if (type == "Sum") {
        model_.graph.AddSum(args[0], args[1], args[2], name);
      } else if (type == "MatrixProduct") {
        model_.graph.AddMatrixProduct(args[0], slots[2].value.constant().value(), args[1], name);
      } else if (type == "Transition" && slots[2].constant) {
        model_.graph.AddTransition(args[0], args[1], slots[2].value.constant().value(), name);
      } else if (type == "Transition") {
        model_.graph.AddTransition(args[0], args[1], slots[2].entry->variable, name);
      } else if (type == "LinearGaussian") {
        const auto& matrix = slots[2];
        if (matrix.constant) {
          model_.graph.AddLinearGaussian(args[0], args[1], matrix.value.constant().value(),
                                         args[3], name);
        } else if (!matrix.per_factor) {
          const VariableEntry& x = *matrix.entry;
          const Matrix a = x.has_matrix_value ? x.matrix_value : Matrix(x.rows);
          model_.graph.AddLinearGaussian(args[0], args[1], a, args[3], name);
        } else {
          // Factor n reads the row X[element n] as its 1 x K matrix.
          const VariableEntry& x = *matrix.entry;
          Matrix design(static_cast<Eigen::Index>(last - first), x.rows.cols());
          for (size_t n = first; n < last; ++n)
            design.row(static_cast<Eigen::Index>(n - first)) = x.rows.row(
                static_cast<Eigen::Index>(matrix.elements[n]));
          if (last - first == 1) {
            // A single factor: the shared-matrix node (a plate of one is the same thing).
            model_.graph.AddLinearGaussian(args[0], args[1], design, args[3], name);
          } else {
            model_.graph.AddLinearRegression(args[0], args[1], design, args[3], name);
          }
        }
      }
    } catch (const Error& e) {
      throw ModelError(Located(pointer, name, e.what()));
    }
  }

  // ---- factorisation and inference ----

  /// Each entry names the variables that share one joint posterior: a list of names, or an
  /// object {"variables": [...], "solver": "sequential" | "parallel_scan"} that also chooses
  /// how the cluster's sum-product runs (ClusterSolver). A list of one array variable gives
  /// its elements a joint q (a cluster, solved by sum-product); a list of one single-element
  /// variable is mean field anyway.
  void ReadFactorisation(const Json& value) {
    const std::string pointer = "/factorisation";
    if (!value.is_array())
      Fail(pointer, "expected an array of clusters (lists of variable names, or objects "
                    "{\"variables\": [...], \"solver\": ...}), found " + Found(value));
    std::map<std::string, std::string> listed;  // name -> where
    for (size_t i = 0; i < value.size(); ++i) {
      const std::string p = pointer + "/" + std::to_string(i);
      // The list of names and its pointer: the entry itself, or its "variables".
      const Json* names = &value[i];
      std::string names_pointer = p;
      ClusterSolver solver = ClusterSolver::kSequential;
      if (value[i].is_object()) {
        CheckKeys(value[i], p, {"variables", "solver"});
        names = &Required(value[i], "variables", p);
        names_pointer = p + "/variables";
        if (value[i].contains("solver"))
          solver = ReadClusterSolver(value[i]["solver"], p + "/solver");
      } else if (!value[i].is_array()) {
        Fail(p, "expected a list of variable names or an object {\"variables\": [...], "
                "\"solver\": ...}, found " + Found(value[i]));
      }
      if (!names->is_array() || names->empty())
        Fail(names_pointer, "expected a list of variable names, found " + Found(*names));
      for (size_t j = 0; j < names->size(); ++j) {
        const Json& n = (*names)[j];
        const std::string pj = names_pointer + "/" + std::to_string(j);
        if (!n.is_string()) Fail(pj, "expected a variable name, found " + Found(n));
        const std::string name = n.get<std::string>();
        const auto it = entries_.find(name);
        if (it == entries_.end())
          Fail(pj, "unknown variable '" + name + "'" + DidYouMean(name, names_));
        if (listed.count(name))
          Fail(pj, "variable '" + name + "' is already in the cluster at " + listed[name] +
                       "; a variable belongs to one cluster");
        listed[name] = p;
      }
      if (names->size() > 1)
        Fail(names_pointer,
             "expected one variable per cluster (the joint posterior over the elements of "
             "an array variable, e.g. [\"x\"]), found " + Found(*names) +
                 "; clusters of several variables are not supported yet");
      const std::string name = (*names)[0].get<std::string>();
      const VariableEntry& entry = entries_.at(name);
      if (entry.observed)
        Fail(names_pointer + "/0",
             "expected a hidden variable, found the observed variable '" + name + "'");
      if (entry.shape.empty()) continue;  // one element: mean field already
      cluster_pointers_[name] = p;
      try {
        model_.graph.AddCluster(entry.variable, solver);
      } catch (const Error& e) {
        Fail(names_pointer + "/0", SolverInJsonTerms(e.what()));
      }
    }
  }

  /// The solver of a cluster: "sequential" or "parallel_scan".
  static ClusterSolver ReadClusterSolver(const Json& value, const std::string& pointer) {
    const std::vector<std::string> known = {"sequential", "parallel_scan"};
    if (!value.is_string())
      Fail(pointer, "expected a solver name (" + JoinQuoted(known) + "), found " + Found(value));
    const std::string name = value.get<std::string>();
    if (name == "sequential") return ClusterSolver::kSequential;
    if (name == "parallel_scan") return ClusterSolver::kParallelScan;
    Fail(pointer, "unknown solver \"" + name + "\"" + DidYouMean(name, known) +
                      "; expected one of " + JoinQuoted(known));
  }

  /// A cluster error of the graph as a model author reads it: the C++ solver names
  /// (ClusterSolver::kSequential) become the JSON ones ("solver": "sequential").
  static std::string SolverInJsonTerms(std::string message) {
    const std::pair<std::string_view, std::string_view> names[] = {
        {"ClusterSolver::kSequential", "\"solver\": \"sequential\""},
        {"ClusterSolver::kParallelScan", "\"solver\": \"parallel_scan\""}};
    for (const auto& [cpp_name, json_name] : names)
      for (size_t at = message.find(cpp_name); at != std::string::npos;
           at = message.find(cpp_name, at + json_name.size()))
        message.replace(at, cpp_name.size(), json_name);
    return message;
  }

  void ReadInference(const Json& value, const std::string& pointer) {
    RequireObject(value, pointer, "an object");
    CheckKeys(value, pointer, {"iterations", "tolerance", "scheduler", "threads", "order",
                               "initial"});
    InferenceSettings& s = model_.inference;
    if (value.contains("iterations")) {
      const long k = Integer(value["iterations"], pointer + "/iterations", "a positive integer");
      if (k < 1 || k > 100000000)
        Fail(pointer + "/iterations", "expected a positive integer, found " + std::to_string(k));
      s.options.max_iterations = static_cast<int>(k);
    }
    if (value.contains("tolerance")) {
      const double t = Number(value["tolerance"], pointer + "/tolerance", "a number >= 0");
      if (t < 0) Fail(pointer + "/tolerance", "expected a number >= 0, found " + FormatNumber(t));
      s.options.tolerance = t;
    }
    if (value.contains("scheduler")) {
      const Json& sc = value["scheduler"];
      if (sc != "sequential" && sc != "parallel" && sc != "async")
        Fail(pointer + "/scheduler",
             "expected \"sequential\", \"parallel\" or \"async\", found " + Found(sc));
      s.scheduler = sc.get<std::string>();
    }
    if (value.contains("threads")) {
      const long t = Integer(value["threads"], pointer + "/threads", "an integer >= 0");
      if (t < 0) Fail(pointer + "/threads", "expected an integer >= 0, found " + std::to_string(t));
      if (t > INT_MAX)
        Fail(pointer + "/threads", "expected an integer at most " + std::to_string(INT_MAX) +
                                       ", found " + std::to_string(t));
      s.threads = static_cast<int>(t);
    }
    if (value.contains("order")) {
      const Json& order = value["order"];
      if (!order.is_array())
        Fail(pointer + "/order", "expected an array of variable names, found " + Found(order));
      for (size_t i = 0; i < order.size(); ++i) {
        const std::string p = pointer + "/order/" + std::to_string(i);
        if (!order[i].is_string()) Fail(p, "expected a variable name, found " + Found(order[i]));
        const std::string n = order[i].get<std::string>();
        auto it = entries_.find(n);
        if (it == entries_.end()) Fail(p, "unknown variable '" + n + "'" + DidYouMean(n, names_));
        if (it->second.observed) Fail(p, "'" + n + "' is observed and has nothing to update");
        s.options.order.push_back(it->second.variable);
      }
    }
    if (value.contains("initial")) ReadInitial(value["initial"], pointer + "/initial");
  }

  /// One value per element: a number for all, an array with one entry per element, or CSV.
  std::vector<Matrix> PerElement(const Json& value, const std::string& pointer, size_t size,
                                 int rows, int cols, const std::string& what) {
    auto read_one = [&](const Json& v, const std::string& p) -> Matrix {
      if (rows == 1 && cols == 1) return Matrix::Constant(1, 1, Number(v, p, what));
      if (cols == 1) {
        const Vector x = ReadVector(v, p);
        if (x.size() != rows)
          Fail(p, "expected " + std::to_string(rows) + " numbers, found " +
                      std::to_string(x.size()));
        return x;
      }
      const Matrix m = ReadMatrix(v, p);
      if (m.rows() != rows || m.cols() != cols)
        Fail(p, "expected a " + std::to_string(rows) + "x" + std::to_string(cols) +
                    " matrix, found " + std::to_string(m.rows()) + "x" + std::to_string(m.cols()));
      return m;
    };
    if (value.is_object()) {
      if (cols != 1) Fail(pointer, "CSV gives numbers or vectors; expected a matrix here");
      const Table table = ReadCsvSpec(value, pointer);
      const size_t column = 0, width = table.cols;
      if (table.rows() != size || static_cast<int>(width) != rows)
        Fail(pointer + "/csv", "expected " + std::to_string(size) + " rows of " +
                                   std::to_string(rows) + " values, found " +
                                   std::to_string(table.rows()) + " rows of " +
                                   std::to_string(width));
      std::vector<Matrix> out(size, Matrix(rows, 1));
      for (size_t i = 0; i < size; ++i)
        for (int j = 0; j < rows; ++j) out[i](j, 0) = table.values[i * table.cols + column + j];
      document_->csv_values[pointer] = {width, rows == 1, table.values};
      return out;
    }
    const bool one_for_all = (rows == 1 && cols == 1) ? value.is_number()
                             : (cols == 1)           ? IsNumberArray(value)
                                                     : (value.is_array() && !value.empty() &&
                                                        IsNumberArray(value[0]));
    if (one_for_all) return std::vector<Matrix>(size, read_one(value, pointer));
    if (!value.is_array() || value.size() != size)
      Fail(pointer, "expected " + what + " for all elements or an array of " +
                        std::to_string(size) + " (one per element), found " + Found(value));
    std::vector<Matrix> out;
    for (size_t i = 0; i < size; ++i) out.push_back(read_one(value[i], pointer + "/" + std::to_string(i)));
    return out;
  }

  void ReadInitial(const Json& value, const std::string& pointer) {
    RequireObject(value, pointer, "an object of variable names");
    for (auto it = value.begin(); it != value.end(); ++it) {
      const std::string p = pointer + "/" + it.key();
      auto e = entries_.find(it.key());
      if (e == entries_.end())
        Fail(p, "unknown variable '" + it.key() + "'" + DidYouMean(it.key(), names_));
      const VariableEntry& entry = e->second;
      if (entry.observed) Fail(p, "'" + it.key() + "' is observed: it has no posterior to start");
      const Json& q = it.value();
      if (!q.is_array() || entry.shape.empty() || entry.matrix_dirichlet) {
        SetInitial(it.key(), entry, q, p, entry.variable);
        continue;
      }
      // One posterior object per element, as a result gives them (nested for [N, M]).
      const bool nested = entry.shape.size() == 2;
      if (q.size() != entry.shape[0])
        Fail(p, "expected an object of parameters or an array of " +
                    std::to_string(entry.shape[0]) + " posteriors (shape " +
                    ShapeText(entry.shape) + "), found " + Found(q));
      for (size_t i = 0; i < q.size(); ++i) {
        const std::string pi = p + "/" + std::to_string(i);
        if (!nested) {
          SetInitial(it.key(), entry, q[i], pi, entry.variable[i]);
          continue;
        }
        if (!q[i].is_array() || q[i].size() != entry.shape[1])
          Fail(pi, "expected an array of " + std::to_string(entry.shape[1]) + " posteriors (shape " +
                       ShapeText(entry.shape) + "), found " + Found(q[i]));
        for (size_t j = 0; j < q[i].size(); ++j)
          SetInitial(it.key(), entry, q[i][j], pi + "/" + std::to_string(j),
                     entry.variable[i * entry.shape[1] + j]);
      }
    }
  }

  /// Sets the starting posterior of `target` (the whole of `entry`'s variable, or one of its
  /// elements) from the distribution object `q` at pointer `p`.
  void SetInitial(const std::string& name, const VariableEntry& entry, const Json& q,
                  const std::string& p, const Variable& target) {
    RequireObject(q, p, "a distribution object");
    const Family family = entry.family;
    const std::string family_name = entry.matrix_dirichlet ? kMatrixDirichlet : FamilyName(family);
    if (q.contains("family") && q["family"] != family_name)
      Fail(p + "/family", "expected \"" + family_name + "\" (the family of '" + name +
                              "'), found " + Found(q["family"]));
    const size_t size = target.size();
    const int d = entry.dim;
    try {
      if (entry.matrix_dirichlet) {
        // One K x L matrix, oriented as the prior's alpha.
        CheckKeys(q, p, {"family", "alpha", "mean"});
        const Matrix alpha = ReadMatrix(Required(q, "alpha", p), p + "/alpha");
        if (alpha.rows() != d || static_cast<size_t>(alpha.cols()) != size)
          Fail(p + "/alpha", "expected " + std::to_string(d) + " rows of " +
                                 std::to_string(size) + " (dim [" + std::to_string(d) + ", " +
                                 std::to_string(size) + "]), found " +
                                 std::to_string(alpha.rows()) + " rows of " +
                                 std::to_string(alpha.cols()));
        Matrix mean(alpha.rows(), alpha.cols());
        for (size_t k = 0; k < size; ++k) {
          const Dirichlet column(alpha.col(static_cast<Eigen::Index>(k)));
          model_.graph.SetPosterior(target[k], column);
          mean.col(static_cast<Eigen::Index>(k)) = column.mean();
        }
        if (q.contains("mean")) CheckDerivedMean({ReadMatrix(q["mean"], p + "/mean")}, {mean}, p);
      } else if (family == Family::kGaussian) {
        CheckKeys(q, p, {"family", "mean", "variance", "precision"});
        const bool by_variance = q.contains("variance");
        if (by_variance == q.contains("precision"))
          Fail(p, "expected exactly one of 'variance' and 'precision'");
        const std::string spread = by_variance ? "variance" : "precision";
        const auto mean = PerElement(Required(q, "mean", p), p + "/mean", size, 1, 1, "a number");
        const auto s = PerElement(q[spread], p + "/" + spread, size, 1, 1, "a positive number");
        for (size_t i = 0; i < size; ++i) {
          const double x = s[i](0, 0);
          if (!(x > 0)) Fail(p + "/" + spread, "expected positive numbers, found " + FormatNumber(x));
          model_.graph.SetPosterior(target[i],
                                    Gaussian(mean[i](0, 0), by_variance ? 1 / x : x));
        }
      } else if (family == Family::kGamma) {
        CheckKeys(q, p, {"family", "shape", "rate", "mean"});
        const auto shape = PerElement(Required(q, "shape", p), p + "/shape", size, 1, 1,
                                      "a positive number");
        const auto rate = PerElement(Required(q, "rate", p), p + "/rate", size, 1, 1,
                                     "a positive number");
        std::vector<Matrix> means;
        for (size_t i = 0; i < size; ++i) {
          const Gamma q_i(shape[i](0, 0), rate[i](0, 0));
          model_.graph.SetPosterior(target[i], q_i);
          means.push_back(Matrix::Constant(1, 1, q_i.mean()));
        }
        if (q.contains("mean"))
          CheckDerivedMean(PerElement(q["mean"], p + "/mean", size, 1, 1, "a number"), means, p);
      } else if (family == Family::kMvGaussian) {
        CheckKeys(q, p, {"family", "mean", "covariance", "precision"});
        const bool by_covariance = q.contains("covariance");
        if (by_covariance == q.contains("precision"))
          Fail(p, "expected exactly one of 'covariance' and 'precision'");
        const std::string spread = by_covariance ? "covariance" : "precision";
        const auto mean = PerElement(Required(q, "mean", p), p + "/mean", size, d, 1, "a vector");
        const auto s = PerElement(q[spread], p + "/" + spread, size, d, d, "a matrix");
        for (size_t i = 0; i < size; ++i) {
          ValidatePositiveDefinite(s[i], "initial " + spread + " of '" + name + "'");
          const Matrix precision =
              by_covariance ? Matrix(s[i].llt().solve(Matrix::Identity(d, d))) : s[i];
          model_.graph.SetPosterior(target[i], MvGaussian(mean[i], precision));
        }
      } else if (family == Family::kWishart) {
        CheckKeys(q, p, {"family", "dof", "scale", "mean"});
        const auto dof = PerElement(Required(q, "dof", p), p + "/dof", size, 1, 1, "a number");
        const auto scale = PerElement(Required(q, "scale", p), p + "/scale", size, d, d, "a matrix");
        std::vector<Matrix> means;
        for (size_t i = 0; i < size; ++i) {
          const Wishart q_i(dof[i](0, 0), scale[i]);
          model_.graph.SetPosterior(target[i], q_i);
          means.push_back(q_i.mean());
        }
        if (q.contains("mean"))
          CheckDerivedMean(PerElement(q["mean"], p + "/mean", size, d, d, "a matrix"), means, p);
      } else if (family == Family::kBeta) {
        CheckKeys(q, p, {"family", "a", "b", "mean"});
        const auto a = PerElement(Required(q, "a", p), p + "/a", size, 1, 1, "a positive number");
        const auto b = PerElement(Required(q, "b", p), p + "/b", size, 1, 1, "a positive number");
        std::vector<Matrix> means;
        for (size_t i = 0; i < size; ++i) {
          const Beta q_i(a[i](0, 0), b[i](0, 0));
          model_.graph.SetPosterior(target[i], q_i);
          means.push_back(Matrix::Constant(1, 1, q_i.mean()));
        }
        if (q.contains("mean"))
          CheckDerivedMean(PerElement(q["mean"], p + "/mean", size, 1, 1, "a number"), means, p);
      } else if (family == Family::kBernoulli) {
        CheckKeys(q, p, {"family", "p"});
        const auto prob = PerElement(Required(q, "p", p), p + "/p", size, 1, 1, "a probability");
        for (size_t i = 0; i < size; ++i)
          model_.graph.SetPosterior(target[i], Bernoulli(prob[i](0, 0)));
      } else if (family == Family::kCategorical) {
        CheckKeys(q, p, {"family", "p"});
        const auto prob = PerElement(Required(q, "p", p), p + "/p", size, d, 1, "probabilities");
        for (size_t i = 0; i < size; ++i)
          model_.graph.SetPosterior(target[i], Categorical(prob[i]));
      } else if (family == Family::kDirichlet) {
        CheckKeys(q, p, {"family", "alpha", "mean"});
        const auto alpha = PerElement(Required(q, "alpha", p), p + "/alpha", size, d, 1, "a vector");
        std::vector<Matrix> means;
        for (size_t i = 0; i < size; ++i) {
          const Dirichlet q_i(alpha[i]);
          model_.graph.SetPosterior(target[i], q_i);
          means.push_back(q_i.mean());
        }
        if (q.contains("mean"))
          CheckDerivedMean(PerElement(q["mean"], p + "/mean", size, d, 1, "a vector"), means, p);
      }
    } catch (const ModelError& error) {
      const std::string message = error.what();
      if (message.rfind("/", 0) == 0) throw;
      Fail(p, message);
    } catch (const Error& error) {
      Fail(p, error.what());
    }
  }

  /// The mean a result writes beside the parameters of a Gamma, Beta, Wishart, Dirichlet or
  /// MatrixDirichlet posterior may be given back; it must then be the mean the parameters
  /// give (to 1e-9 relative: a written mean was rounded once). Entries are numbered row-major.
  static void CheckDerivedMean(const std::vector<Matrix>& given, const std::vector<Matrix>& means,
                               const std::string& pointer) {
    for (size_t i = 0; i < means.size(); ++i) {
      const std::string element = means.size() > 1 ? " of element " + std::to_string(i) : "";
      if (given[i].rows() != means[i].rows() || given[i].cols() != means[i].cols())
        Fail(pointer + "/mean", "expected a " + std::to_string(means[i].rows()) + "x" +
                                    std::to_string(means[i].cols()) + " mean" + element +
                                    ", found " + std::to_string(given[i].rows()) + "x" +
                                    std::to_string(given[i].cols()));
      for (Eigen::Index r = 0; r < means[i].rows(); ++r)
        for (Eigen::Index c = 0; c < means[i].cols(); ++c) {
          const double m = means[i](r, c), g = given[i](r, c);
          if (!(std::abs(g - m) <= 1e-9 * std::max(1.0, std::abs(m))))
            Fail(pointer + "/mean",
                 "expected the mean the other parameters give" + element + ", " + FormatNumber(m) +
                     ", found " + FormatNumber(g) +
                     (means[i].size() > 1
                          ? " (entry " + std::to_string(r * means[i].cols() + c) + ")"
                          : std::string()));
        }
    }
  }

  std::string base_;
  std::shared_ptr<ModelDocument> document_;
  size_t num_numbers_ = 0;  // statistics of the variables declared so far (kMaxNumbers)
  size_t num_factors_ = 0;  // factors added so far (kMaxNumbers)
  Model model_;
  std::map<std::string, VariableEntry> entries_;
  std::vector<std::string> names_;  // declaration order
  std::vector<std::pair<std::string, std::string>> factor_labels_;  // (pointer, plate name)
  std::map<std::string, std::string> cluster_pointers_;  // clustered variable -> /factorisation/i
  std::optional<DeltaSpec> delta_;  // the function and options of the Delta factor being read
};

// ---- Result JSON ----------------------------------------------------------------------------

Json MatrixJson(const Matrix& m) {
  Json rows = Json::array();
  for (Eigen::Index i = 0; i < m.rows(); ++i) {
    Json row = Json::array();
    for (Eigen::Index j = 0; j < m.cols(); ++j) row.push_back(m(i, j));
    rows.push_back(row);
  }
  return rows;
}

Json VectorJson(const Vector& v) {
  Json out = Json::array();
  for (Eigen::Index i = 0; i < v.size(); ++i) out.push_back(v[i]);
  return out;
}

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
    case Family::kBernoulli: q["p"] = graph.Posterior<Bernoulli>(element).p(); break;
    case Family::kCategorical: q["p"] = VectorJson(graph.Posterior<Categorical>(element).p()); break;
    case Family::kDirichlet: {
      const Dirichlet g = graph.Posterior<Dirichlet>(element);
      q["alpha"] = VectorJson(g.alpha());
      q["mean"] = VectorJson(g.mean());
      break;
    }
  }
  return q;
}

// ---- Normalised model JSON ------------------------------------------------------------------

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

/// An observed variable's values, inline, in the layout the loader reads back to the same
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

/// A MatrixDirichlet posterior from its Dirichlet columns: "alpha" and "mean" as K rows of L.
Json MatrixDirichletJson(const FactorGraph& graph, const Variable& matrix) {
  std::vector<Dirichlet> columns;
  for (size_t k = 0; k < matrix.size(); ++k)
    columns.push_back(graph.Posterior<Dirichlet>(matrix[k]));
  const MatrixDirichlet q = MatrixDirichlet::FromColumns(columns);
  Matrix mean(q.alpha().rows(), q.alpha().cols());
  for (size_t k = 0; k < columns.size(); ++k)
    mean.col(static_cast<Eigen::Index>(k)) = columns[k].mean();
  return {{"family", kMatrixDirichlet},
          {"alpha", MatrixJson(q.alpha())},
          {"mean", MatrixJson(mean)}};
}

}  // namespace

Model ParseModel(const std::string& text, const std::string& base_directory) {
  return Loader(base_directory).Load(text);
}

Model LoadModel(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ModelError("cannot read the model file '" + path + "'");
  std::ostringstream text;
  text << in.rdbuf();
  if (path.size() >= 3 && path.compare(path.size() - 3, 3, ".fg") == 0)
    return ParseLibDaiFactorGraph(text.str(), path);
  const size_t slash = path.find_last_of('/');
  return ParseModel(text.str(), slash == std::string::npos ? "." : path.substr(0, slash));
}

std::string NormalisedModelJson(const Model& model, int indent) {
  if (!model.document)
    throw ModelError("the model was not read from a vfe-model/1 document (a libDAI file?): "
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
  out["inference"] = written["inference"];
  return out.dump(indent);
}

std::string ResultJson(const Model& model, const Result& result, int indent) {
  const FactorGraph& graph = model.graph;
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
  out["free_energy"] = result.free_energy;
  out["evidence_lower_bound"] = result.evidence_lower_bound();
  Json posteriors = Json::object();
  for (const Variable& v : graph.HiddenVariables()) {
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
        for (size_t j = 0; j < shape[1]; ++j) row.push_back(PosteriorJson(graph, v[i * shape[1] + j]));
        all.push_back(row);
      }
    }
    posteriors[graph.variable_name(v.id())] = all;
  }
  out["posteriors"] = posteriors;
  out["timing_ms"] = {{"build", model.build_ms}, {"inference", result.inference_ms}};
  return out.dump(indent);
}

}  // namespace vfe
