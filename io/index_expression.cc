#include "io/index_expression.h"

#include <algorithm>
#include <cctype>
#include <climits>
#include <cmath>

#include "vfe/core/format.h"

namespace vfe {
namespace {

std::vector<std::string> LoopNames(const std::vector<LoopRange>& loops) {
  std::vector<std::string> names;
  for (const LoopRange& l : loops) names.push_back(l.name);
  return names;
}

/// The position of the ']' that closes the '[' at `open`, or npos.
size_t MatchingBracket(const std::string& text, size_t open) {
  int depth = 0;
  for (size_t i = open; i < text.size(); ++i) {
    if (text[i] == '[') ++depth;
    if (text[i] == ']' && --depth == 0) return i;
  }
  return std::string::npos;
}

/// "n=3, t=1": the loop values, for errors.
std::string LoopValues(const std::vector<LoopRange>& loops, const std::vector<long>& values) {
  std::string at;
  for (size_t l = 0; l < loops.size(); ++l)
    at += (l ? ", " : "") + loops[l].name + "=" + std::to_string(values[l]);
  return at;
}

}  // namespace

Reference ParseReference(const JsonReader& reader, const std::string& text,
                         const std::string& pointer, const std::vector<LoopRange>& loops) {
  Reference ref;
  const size_t bracket = text.find('[');
  ref.name = text.substr(0, bracket);
  if (ref.name.empty()) reader.Fail(pointer, "expected a variable name, found \"" + text + "\"");
  size_t pos = bracket;
  while (pos != std::string::npos && pos < text.size()) {
    if (text[pos] != '[')
      reader.Fail(pointer, "expected '[' in \"" + text + "\" at position " + std::to_string(pos));
    const size_t close = MatchingBracket(text, pos);
    if (close == std::string::npos) reader.Fail(pointer, "missing ']' in \"" + text + "\"");
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
          reader.Fail(pointer, "cannot read the index \"" + inside + "\" in \"" + text +
                                   "\": expected integers in [" + std::to_string(LONG_MIN) + ", " +
                                   std::to_string(LONG_MAX) + "], found " +
                                   inside.substr(i, j - i));
        i = j;
        expect_term = false;
      } else if ((std::isalpha(static_cast<unsigned char>(c)) || c == '_') && expect_term) {
        size_t j = i;
        while (j < inside.size() &&
               (std::isalnum(static_cast<unsigned char>(inside[j])) || inside[j] == '_'))
          ++j;
        const std::string loop = inside.substr(i, j - i);
        if (j < inside.size() && inside[j] == '[') {
          // A data index, "coin[n]": the whole index, read from observed integers.
          const size_t end = MatchingBracket(inside, j);
          if (end == std::string::npos) reader.Fail(pointer, "missing ']' in \"" + text + "\"");
          if (i != 0 || sign != 1 || inside.find_first_not_of(' ', end + 1) != std::string::npos)
            reader.Fail(pointer, "cannot read the index \"" + inside + "\" in \"" + text +
                                     "\": a data index (\"" + inside.substr(i, end + 1 - i) +
                                     "\") must be the whole index");
          index.data = std::make_shared<Reference>(
              ParseReference(reader, inside.substr(i, end + 1 - i), pointer, loops));
          i = end + 1;
          expect_term = false;
          continue;
        }
        auto it = std::find_if(loops.begin(), loops.end(),
                               [&](const LoopRange& l) { return l.name == loop; });
        if (it == loops.end())
          reader.Fail(pointer,
                      "\"" + text + "\" uses '" + loop + "', which is not a loop variable of " +
                          "this factor" +
                          (loops.empty() ? " (it has no \"for\")"
                                         : " (loops: " + JoinQuoted(LoopNames(loops)) + ")"));
        index.terms.emplace_back(static_cast<int>(it - loops.begin()), sign);
        i = j;
        expect_term = false;
      } else {
        reader.Fail(pointer, "cannot read the index \"" + inside + "\" in \"" + text +
                                 "\": expected integers and loop variables joined by + or -");
      }
      if (!expect_term) sign = 1;
    }
    if (expect_term)
      reader.Fail(pointer, "the index \"" + inside + "\" in \"" + text + "\" is incomplete");
    ref.indices.push_back(index);
    pos = close + 1;
  }
  return ref;
}

namespace {

/// The flat element `reference` names at the loop values `loop_value`.
size_t FlatElement(const JsonReader& reader, const Reference& reference, const std::string& text,
                   const std::string& pointer, const std::vector<size_t>& shape,
                   const std::vector<LoopRange>& loops, const std::vector<long>& loop_value,
                   const DataLookup* data) {
  size_t flat = 0;
  for (size_t d = 0; d < shape.size(); ++d) {
    const Reference::Index& index = reference.indices[d];
    long value = index.constant;
    bool overflow = false;
    std::string source;  // a data index: "coin[4] = 2"
    if (index.data) {
      if (!data) reader.Fail(pointer, "\"" + text + "\": indexing by data is not possible here");
      const Reference& inner = *index.data;
      const std::vector<size_t> inner_shape = data->shape(inner.name);
      if (inner.indices.size() != inner_shape.size())
        reader.Fail(pointer, "the data index \"" + inner.name + "[...]\" in \"" + text + "\" has " +
                                 std::to_string(inner.indices.size()) + " indices, but '" +
                                 inner.name + "' has shape " + ShapeText(inner_shape));
      const size_t element =
          FlatElement(reader, inner, text, pointer, inner_shape, loops, loop_value, data);
      const double x = data->value(inner.name, element);
      source = inner.name + "[" + std::to_string(element) + "] = " + FormatNumber(x);
      if (!(x == std::floor(x)) || !(std::abs(x) < 1e18))
        reader.Fail(pointer, "index " + std::to_string(d) + " of \"" + text + "\" is " + source +
                                 (loops.empty() ? "" : " at " + LoopValues(loops, loop_value)) +
                                 ", expected an integer in [0, " + std::to_string(shape[d]) +
                                 ") (shape of '" + reference.name + "' is " + ShapeText(shape) +
                                 ")");
      value = static_cast<long>(x);
    } else {
      for (const auto& [loop, sign] : index.terms) {
        long term = 0;
        overflow |= __builtin_mul_overflow(loop_value[loop], static_cast<long>(sign), &term) ||
                    __builtin_add_overflow(value, term, &value);
      }
    }
    if (overflow || value < 0 || static_cast<size_t>(value) >= shape[d]) {
      const std::string at = LoopValues(loops, loop_value);
      reader.Fail(pointer, "index " + std::to_string(d) + " of \"" + text + "\" is " +
                               (overflow         ? "beyond a 64-bit integer"
                                : source.empty() ? std::to_string(value)
                                                 : source) +
                               (at.empty() ? "" : " at " + at) + ", outside [0, " +
                               std::to_string(shape[d]) + ") (shape of '" + reference.name +
                               "' is " + ShapeText(shape) + ")");
    }
    flat = flat * shape[d] + static_cast<size_t>(value);
  }
  return flat;
}

}  // namespace

std::vector<size_t> ReferencedElements(const JsonReader& reader, const Reference& reference,
                                       const std::string& text, const std::string& pointer,
                                       const std::vector<size_t>& shape,
                                       const std::vector<LoopRange>& loops, size_t count,
                                       const DataLookup* data) {
  std::vector<size_t> elements(count);
  std::vector<long> loop_value(loops.size());
  for (size_t l = 0; l < loops.size(); ++l) loop_value[l] = loops[l].begin;
  for (size_t n = 0; n < count; ++n) {
    elements[n] = FlatElement(reader, reference, text, pointer, shape, loops, loop_value, data);
    // Advance the loops, innermost fastest.
    for (size_t l = loops.size(); l-- > 0;) {
      if (++loop_value[l] < loops[l].end) break;
      loop_value[l] = loops[l].begin;
    }
  }
  return elements;
}

std::string ShapeText(const std::vector<size_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

}  // namespace vfe
