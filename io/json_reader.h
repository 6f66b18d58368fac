#ifndef VFE_IO_JSON_READER_H_
#define VFE_IO_JSON_READER_H_

// Reading JSON values with errors in one style for every file format of the library (models,
// agents, predictive coding networks): the document, the JSON pointer of the value at fault,
// what was expected and what was found, and a did-you-mean for names
// ("/factors/2/precision: expected a positive number or a Gamma variable, found -1").
// Private to the library.

#include <algorithm>
#include <climits>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "vfe/core/error.h"
#include "vfe/core/types.h"

namespace vfe {

/// Documents are kept in the order they were written, so that a normalised model lists its
/// keys as its author did.
using Json = nlohmann::ordered_json;

class JsonReader {
 public:
  /// `where` names the document in every error ("agent file 'tmaze.json'"); empty for none.
  explicit JsonReader(std::string where = "") : where_(std::move(where)) {}

  /// The deepest a document may nest arrays and objects.
  static constexpr size_t kMaxDepth = 256;

  /// Parses `text`; a syntax error (or a number too large for a double) is a ModelError at
  /// "/" saying where the text is wrong, and a document nested deeper than kMaxDepth is
  /// refused at the pointer of the first value past the limit, before it is built.
  Json Parse(const std::string& text) const;

  /// Throws ModelError "where: pointer: message" (the whole document is "/").
  [[noreturn]] void Fail(const std::string& pointer, const std::string& message) const;
  /// Fail(pointer, "expected " + what + ", found " + Found(value)).
  [[noreturn]] void Expected(const Json& value, const std::string& pointer,
                             const std::string& what) const;

  /// A short description of a value for "found ...": "-1", "the string \"x\"", "an array of
  /// 3", "an object", "null", "true".
  static std::string Found(const Json& value);

  void RequireObject(const Json& value, const std::string& pointer,
                     const std::string& what = "an object") const;
  /// Refuses a value that is not an object, and keys outside `allowed` (with a did-you-mean).
  void CheckKeys(const Json& object, const std::string& pointer,
                 const std::vector<std::string>& allowed) const;
  /// object[key], or "missing required key 'key'".
  const Json& Required(const Json& object, const std::string& key,
                       const std::string& pointer) const;

  /// A finite number (JSON's 1e999 reads as infinity and is refused).
  double Number(const Json& value, const std::string& pointer,
                const std::string& what = "a finite number") const;
  /// A finite number > 0.
  double PositiveNumber(const Json& value, const std::string& pointer,
                        const std::string& what = "a positive number") const;
  /// An integer written as one (not 2.0) in [min, max] of T.
  template <class T = long>
  T Integer(const Json& value, const std::string& pointer, const std::string& what = "an integer",
            T min = std::numeric_limits<T>::min(), T max = std::numeric_limits<T>::max()) const {
    // The bounds as longs (an unsigned T's may not fit).
    const long low = static_cast<long>(
        std::max(static_cast<long double>(min), static_cast<long double>(LONG_MIN)));
    const long high = static_cast<long>(
        std::min(static_cast<long double>(max), static_cast<long double>(LONG_MAX)));
    return static_cast<T>(IntegerIn(value, pointer, what, low, high));
  }
  bool Bool(const Json& value, const std::string& pointer) const;
  std::string String(const Json& value, const std::string& pointer,
                     const std::string& what = "a string") const;
  /// One of `names`, returned as its index: "expected one of 'a', 'b', found ...", with a
  /// did-you-mean for a near miss.
  size_t Choice(const Json& value, const std::string& pointer,
                const std::vector<std::string>& names) const;
  const Json& Array(const Json& value, const std::string& pointer,
                    const std::string& what = "an array") const;

  /// True for a non-empty array of numbers.
  static bool IsNumberArray(const Json& value);
  /// A non-empty array of finite numbers (`allow_empty`: or an empty one).
  Vector Numbers(const Json& value, const std::string& pointer, bool allow_empty = false) const;
  std::vector<int> Integers(const Json& value, const std::string& pointer) const;
  /// A matrix written as a non-empty array of rows of equal length.
  Matrix Rows(const Json& value, const std::string& pointer) const;

 private:
  long IntegerIn(const Json& value, const std::string& pointer, const std::string& what, long min,
                 long max) const;
  std::string where_;
};

}  // namespace vfe

#endif  // VFE_IO_JSON_READER_H_
