#ifndef VFE_IO_INDEX_EXPRESSION_H_
#define VFE_IO_INDEX_EXPRESSION_H_

// References to variables in a model's factor arguments: "mu", "y[i]", "x[t-1]", "W[k][j+1]",
// each index an integer plus or minus loop variables of the factor's "for", or the value of
// observed integer data at such an index ("p[coin[n]]": indexing by data). Private to io/.

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "io/json_reader.h"

namespace vfe {

/// One loop of a factor's "for": a name and the half-open range [begin, end).
struct LoopRange {
  std::string name;
  long begin = 0, end = 0;
};

/// A parsed reference: the variable's name and its indices.
struct Reference {
  std::string name;
  /// Each index is constant + Σ loop variables (with signs).
  struct Index {
    long constant = 0;
    std::vector<std::pair<int, int>> terms;  // (loop variable, +1/−1)
    /// A data index ("coin[n]"): the value of this reference to observed integers; the
    /// constant and the terms are then unused.
    std::shared_ptr<const Reference> data;
  };
  std::vector<Index> indices;
};

/// Parses `text` written at `pointer`; `loops` are the loop variables it may use. Errors go
/// through `reader` ("... uses 'j', which is not a loop variable of this factor").
Reference ParseReference(const JsonReader& reader, const std::string& text,
                         const std::string& pointer, const std::vector<LoopRange>& loops);

/// The observed data a data index reads: the shape of variable `name` (failing, through the
/// reader, for a name that is not observed data) and its value at a flat element.
struct DataLookup {
  std::function<std::vector<size_t>(const std::string& name)> shape;
  std::function<double(const std::string& name, size_t element)> value;
};

/// The flat element (row-major over `shape`) that `reference` names in each of the `count`
/// iterations of `loops` (the innermost loop fastest). An index outside the shape is an error
/// naming the index, the loop values and the shape; so is a data index whose value is not an
/// integer. `data` is needed only when the reference has data indices.
std::vector<size_t> ReferencedElements(const JsonReader& reader, const Reference& reference,
                                       const std::string& text, const std::string& pointer,
                                       const std::vector<size_t>& shape,
                                       const std::vector<LoopRange>& loops, size_t count,
                                       const DataLookup* data = nullptr);

/// "[3, 4]".
std::string ShapeText(const std::vector<size_t>& shape);

}  // namespace vfe

#endif  // VFE_IO_INDEX_EXPRESSION_H_
