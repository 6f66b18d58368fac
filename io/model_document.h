#ifndef VFE_IO_MODEL_DOCUMENT_H_
#define VFE_IO_MODEL_DOCUMENT_H_

// What the model loader keeps of a vfe-model/1 document for the result writer and the
// normaliser: the document as parsed, the declared variables as written (matrix Dirichlets,
// observed values read from CSV) and the other CSV tables it read. Private to io/.

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "io/json_reader.h"
#include "vfe/io/model_json.h"

namespace vfe {

/// The most numbers a model may hold: the statistics of all its variables' elements (2 for a
/// scalar, D + D² for an MvGaussian, K for a Categorical; observed ones included), and apart
/// the number of its factors. 2^28 doubles are 2 GiB, and the engine holds them twice
/// (moments and natural parameters), with messages and indices besides: a larger model does
/// not fit in a workstation's memory, and is refused before anything is allocated (instead of
/// std::bad_alloc, or sizes that wrap around).
constexpr size_t kMaxNumbers = size_t{1} << 28;

/// a · b, or nullopt if it does not fit in size_t.
inline std::optional<size_t> CheckedProduct(size_t a, size_t b) {
  size_t product = 0;
  if (__builtin_mul_overflow(a, b, &product)) return std::nullopt;
  return product;
}

/// A count in an error: the number, or "more than SIZE_MAX" when it overflowed.
inline std::string CountText(std::optional<size_t> count) {
  return count ? std::to_string(*count) : "more than " + std::to_string(SIZE_MAX);
}

/// A matrix Dirichlet is not a family of the engine (the graph holds it as an array of
/// Dirichlet columns), but it is one in JSON.
constexpr const char* kMatrixDirichlet = "MatrixDirichlet";

/// A declared variable as the document wrote it.
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
  /// "fixed": true: kept at its starting posterior, never updated (SchedulerOptions::fixed).
  bool fixed = false;
};

/// "'x' (Categorical)", "'y' (observed)": a variable as errors name it.
inline std::string Describe(const std::string& name, const VariableEntry& entry) {
  if (entry.observed) return "'" + name + "' (observed)";
  const std::string family = entry.matrix_dirichlet ? kMatrixDirichlet : FamilyName(entry.family);
  return "'" + name + "' (" + family + ")";
}

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

}  // namespace vfe

#endif  // VFE_IO_MODEL_DOCUMENT_H_
