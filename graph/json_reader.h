#ifndef VFE_GRAPH_JSON_READER_H_
#define VFE_GRAPH_JSON_READER_H_

// Reading JSON values with errors that name the document and the JSON pointer of the value
// at fault: the small readers of the agent and predictive-coding file formats (private to the
// library; the model format has its own, richer loader in model_json.cc).

#include <cmath>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <utility>

#include "vfe/core/error.h"
#include "vfe/core/format.h"
#include "vfe/core/types.h"

namespace vfe {

class JsonReader {
 public:
  using Json = nlohmann::json;

  /// `where` names the document in every error ("agent file 'tmaze.json'").
  explicit JsonReader(std::string where) : where_(std::move(where)) {}

  [[noreturn]] void Fail(const std::string& pointer, const std::string& message) const {
    throw ModelError(where_ + ": " + (pointer.empty() ? "/" : pointer) + ": " + message);
  }

  static std::string Describe(const Json& j) {
    if (j.is_null()) return "null";
    if (j.is_boolean()) return j.get<bool>() ? "true" : "false";
    if (j.is_number()) return FormatNumber(j.get<double>());
    if (j.is_string()) return "\"" + j.get<std::string>() + "\"";
    if (j.is_array()) return "an array of " + std::to_string(j.size());
    return "an object";
  }

  void CheckKeys(const Json& j, const std::string& pointer,
                 const std::set<std::string>& allowed) const {
    if (!j.is_object()) Fail(pointer, "expected an object, got " + Describe(j));
    for (auto it = j.begin(); it != j.end(); ++it)
      if (!allowed.count(it.key())) {
        std::string list;
        for (const std::string& k : allowed) list += (list.empty() ? "" : ", ") + k;
        Fail(pointer + "/" + it.key(), "unknown key (expected one of " + list + ")");
      }
  }

  const Json& Required(const Json& j, const std::string& key, const std::string& pointer) const {
    if (!j.contains(key)) Fail(pointer, "missing \"" + key + "\"");
    return j[key];
  }

  /// A finite number (JSON's 1e999 parses as infinity).
  double Number(const Json& j, const std::string& pointer) const {
    if (!j.is_number()) Fail(pointer, "expected a number, got " + Describe(j));
    const double v = j.get<double>();
    if (!std::isfinite(v)) Fail(pointer, "expected a finite number, got " + Describe(j));
    return v;
  }

  int Integer(const Json& j, const std::string& pointer) const {
    const double v = Number(j, pointer);
    if (v != std::floor(v)) Fail(pointer, "expected an integer, got " + Describe(j));
    if (std::abs(v) > 2e9) Fail(pointer, "expected an integer of at most 2e9, got " + Describe(j));
    return static_cast<int>(v);
  }

  bool Bool(const Json& j, const std::string& pointer) const {
    if (!j.is_boolean()) Fail(pointer, "expected true or false, got " + Describe(j));
    return j.get<bool>();
  }

  std::string String(const Json& j, const std::string& pointer) const {
    if (!j.is_string()) Fail(pointer, "expected a string, got " + Describe(j));
    return j.get<std::string>();
  }

  const Json& Array(const Json& j, const std::string& pointer) const {
    if (!j.is_array()) Fail(pointer, "expected an array, got " + Describe(j));
    return j;
  }

  std::vector<int> Integers(const Json& j, const std::string& pointer) const {
    Array(j, pointer);
    std::vector<int> out;
    for (size_t i = 0; i < j.size(); ++i)
      out.push_back(Integer(j[i], pointer + "/" + std::to_string(i)));
    return out;
  }

  Vector Numbers(const Json& j, const std::string& pointer) const {
    if (!j.is_array()) Fail(pointer, "expected an array of numbers, got " + Describe(j));
    Vector out(static_cast<Eigen::Index>(j.size()));
    for (size_t i = 0; i < j.size(); ++i) out[i] = Number(j[i], pointer + "/" + std::to_string(i));
    return out;
  }

  /// A list of rows of equal length.
  Matrix Rows(const Json& j, const std::string& pointer) const {
    if (!j.is_array() || j.empty())
      Fail(pointer, "expected a non-empty array of rows, got " + Describe(j));
    Matrix out;
    for (size_t i = 0; i < j.size(); ++i) {
      const std::string at = pointer + "/" + std::to_string(i);
      const Vector row = Numbers(j[i], at);
      if (i == 0) out.resize(static_cast<Eigen::Index>(j.size()), row.size());
      if (row.size() != out.cols())
        Fail(at, "expected a row of " + std::to_string(out.cols()) +
                     " numbers (the length of the first row), got " + std::to_string(row.size()));
      out.row(static_cast<Eigen::Index>(i)) = row.transpose();
    }
    return out;
  }

 private:
  std::string where_;
};

}  // namespace vfe

#endif  // VFE_GRAPH_JSON_READER_H_
