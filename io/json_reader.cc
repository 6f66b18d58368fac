#include "io/json_reader.h"

#include <algorithm>
#include <cmath>

#include "vfe/core/format.h"

namespace vfe {

namespace {

/// Finds where a document nests arrays and objects deeper than JsonReader::kMaxDepth, in one
/// pass of nlohmann's event parser (no value is built, nothing recursive), so that no deeper
/// document ever reaches the recursive copies and destructors of a parsed value.
class DepthCheck final : public nlohmann::json_sax<Json> {
 public:
  /// The JSON pointer of the first value past the limit, if any ("" when there is none).
  const std::string& too_deep() const { return too_deep_; }
  bool found() const { return found_; }

  bool null() override { return Value(); }
  bool boolean(bool) override { return Value(); }
  bool number_integer(number_integer_t) override { return Value(); }
  bool number_unsigned(number_unsigned_t) override { return Value(); }
  bool number_float(number_float_t, const string_t&) override { return Value(); }
  bool string(string_t&) override { return Value(); }
  bool binary(binary_t&) override { return Value(); }
  bool start_object(std::size_t) override { return Open(false); }
  bool key(string_t& key) override {
    frames_.back().key = key;
    return true;
  }
  bool end_object() override { return Close(); }
  bool start_array(std::size_t) override { return Open(true); }
  bool end_array() override { return Close(); }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    return false;  // the syntax error is reported by the parse that follows
  }

 private:
  struct Frame {
    bool array = false;
    size_t index = 0;
    std::string key;
  };
  bool Value() {
    if (!frames_.empty() && frames_.back().array) ++frames_.back().index;
    return true;
  }
  bool Open(bool array) {
    if (frames_.size() == JsonReader::kMaxDepth) {
      found_ = true;
      for (const Frame& f : frames_) {
        too_deep_ += '/';
        if (f.array) {
          too_deep_ += std::to_string(f.index);
          continue;
        }
        for (char c : f.key) too_deep_ += c == '~' ? "~0" : c == '/' ? "~1" : std::string(1, c);
      }
      return false;
    }
    frames_.push_back({array, 0, {}});
    return true;
  }
  bool Close() {
    frames_.pop_back();
    return Value();
  }
  std::vector<Frame> frames_;
  std::string too_deep_;
  bool found_ = false;
};

}  // namespace

Json JsonReader::Parse(const std::string& text) const {
  DepthCheck depth;
  Json::sax_parse(text, &depth, nlohmann::detail::input_format_t::json, /*strict=*/true,
                  /*ignore_comments=*/false);
  if (depth.found())
    Fail(depth.too_deep(), "nested deeper than " + std::to_string(kMaxDepth) +
                               " levels of arrays and objects (the most a document may have)");
  try {
    return Json::parse(text);
  } catch (const Json::exception& e) {
    // A syntax error, or a number too large for a double ("1e400"). Drop the library's
    // "[json.exception.parse_error.101] " tag.
    const std::string what = e.what();
    const size_t tag_end = what.find("] ");
    Fail("", "not valid JSON: " + (tag_end == std::string::npos ? what : what.substr(tag_end + 2)));
  }
}

void JsonReader::Fail(const std::string& pointer, const std::string& message) const {
  throw ModelError((where_.empty() ? "" : where_ + ": ") + (pointer.empty() ? "/" : pointer) +
                   ": " + message);
}

void JsonReader::Expected(const Json& value, const std::string& pointer,
                          const std::string& what) const {
  Fail(pointer, "expected " + what + ", found " + Found(value));
}

std::string JsonReader::Found(const Json& value) {
  switch (value.type()) {
    case Json::value_t::null:
      return "null";
    case Json::value_t::boolean:
      return value.get<bool>() ? "true" : "false";
    case Json::value_t::string:
      return "the string \"" + value.get<std::string>() + "\"";
    case Json::value_t::array:
      return "an array of " + std::to_string(value.size());
    case Json::value_t::object:
      return "an object";
    default:
      return FormatNumber(value.get<double>());
  }
}

void JsonReader::RequireObject(const Json& value, const std::string& pointer,
                               const std::string& what) const {
  if (!value.is_object()) Expected(value, pointer, what);
}

void JsonReader::CheckKeys(const Json& object, const std::string& pointer,
                           const std::vector<std::string>& allowed) const {
  RequireObject(object, pointer);
  for (auto it = object.begin(); it != object.end(); ++it) {
    if (std::find(allowed.begin(), allowed.end(), it.key()) != allowed.end()) continue;
    Fail(pointer + "/" + it.key(), "unknown key '" + it.key() + "'" +
                                       DidYouMean(it.key(), allowed) + "; expected one of " +
                                       JoinQuoted(allowed));
  }
}

const Json& JsonReader::Required(const Json& object, const std::string& key,
                                 const std::string& pointer) const {
  auto it = object.find(key);
  if (it == object.end()) Fail(pointer, "missing required key '" + key + "'");
  return *it;
}

double JsonReader::Number(const Json& value, const std::string& pointer,
                          const std::string& what) const {
  if (!value.is_number()) Expected(value, pointer, what);
  const double x = value.get<double>();
  if (!std::isfinite(x)) Fail(pointer, "expected " + what + ", found " + FormatNumber(x));
  return x;
}

double JsonReader::PositiveNumber(const Json& value, const std::string& pointer,
                                  const std::string& what) const {
  const double x = Number(value, pointer, what);
  if (!(x > 0)) Fail(pointer, "expected " + what + ", found " + FormatNumber(x));
  return x;
}

long JsonReader::IntegerIn(const Json& value, const std::string& pointer, const std::string& what,
                           long min, long max) const {
  if (!value.is_number_integer()) Expected(value, pointer, what);
  if (value.is_number_unsigned() && value.get<unsigned long>() > static_cast<unsigned long>(max))
    Fail(pointer, "expected " + what + ", found " + value.dump());
  const long x = value.get<long>();
  if (x < min || x > max) Fail(pointer, "expected " + what + ", found " + std::to_string(x));
  return x;
}

bool JsonReader::Bool(const Json& value, const std::string& pointer) const {
  if (!value.is_boolean()) Expected(value, pointer, "true or false");
  return value.get<bool>();
}

std::string JsonReader::String(const Json& value, const std::string& pointer,
                               const std::string& what) const {
  if (!value.is_string()) Expected(value, pointer, what);
  return value.get<std::string>();
}

size_t JsonReader::Choice(const Json& value, const std::string& pointer,
                          const std::vector<std::string>& names) const {
  const std::string expected = "one of " + JoinQuoted(names);
  if (!value.is_string()) Expected(value, pointer, expected);
  const std::string text = value.get<std::string>();
  const auto it = std::find(names.begin(), names.end(), text);
  if (it == names.end())
    Fail(pointer, "expected " + expected + ", found " + Found(value) + DidYouMean(text, names));
  return static_cast<size_t>(it - names.begin());
}

const Json& JsonReader::Array(const Json& value, const std::string& pointer,
                              const std::string& what) const {
  if (!value.is_array()) Expected(value, pointer, what);
  return value;
}

bool JsonReader::IsNumberArray(const Json& value) {
  return value.is_array() && !value.empty() &&
         std::all_of(value.begin(), value.end(), [](const Json& x) { return x.is_number(); });
}

Vector JsonReader::Numbers(const Json& value, const std::string& pointer, bool allow_empty) const {
  if (!(IsNumberArray(value) || (allow_empty && value.is_array() && value.empty())))
    Expected(value, pointer, allow_empty ? "an array of numbers" : "a non-empty array of numbers");
  Vector v(static_cast<Eigen::Index>(value.size()));
  for (size_t i = 0; i < value.size(); ++i)
    v[static_cast<Eigen::Index>(i)] = Number(value[i], pointer + "/" + std::to_string(i));
  return v;
}

std::vector<int> JsonReader::Integers(const Json& value, const std::string& pointer) const {
  Array(value, pointer, "an array of integers");
  std::vector<int> out;
  for (size_t i = 0; i < value.size(); ++i)
    out.push_back(Integer<int>(value[i], pointer + "/" + std::to_string(i)));
  return out;
}

Matrix JsonReader::Rows(const Json& value, const std::string& pointer) const {
  if (!value.is_array() || value.empty() || !value[0].is_array())
    Expected(value, pointer, "a matrix (an array of rows)");
  const size_t cols = value[0].size();
  Matrix m(static_cast<Eigen::Index>(value.size()), static_cast<Eigen::Index>(cols));
  for (size_t i = 0; i < value.size(); ++i) {
    const std::string row_pointer = pointer + "/" + std::to_string(i);
    if (!value[i].is_array() || value[i].size() != cols)
      Expected(value[i], row_pointer, "a row of " + std::to_string(cols) + " numbers");
    m.row(static_cast<Eigen::Index>(i)) = Numbers(value[i], row_pointer).transpose();
  }
  return m;
}

}  // namespace vfe
