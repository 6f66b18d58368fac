#include "io/index_expression.h"

#include <algorithm>
#include <cctype>
#include <climits>

#include "vfe/core/format.h"

namespace vfe {
namespace {

std::vector<std::string> LoopNames(const std::vector<LoopRange>& loops) {
  std::vector<std::string> names;
  for (const LoopRange& l : loops) names.push_back(l.name);
  return names;
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
    const size_t close = text.find(']', pos);
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

std::vector<size_t> ReferencedElements(const JsonReader& reader, const Reference& reference,
                                       const std::string& text, const std::string& pointer,
                                       const std::vector<size_t>& shape,
                                       const std::vector<LoopRange>& loops, size_t count) {
  std::vector<size_t> elements(count);
  std::vector<long> loop_value(loops.size());
  for (size_t l = 0; l < loops.size(); ++l) loop_value[l] = loops[l].begin;
  for (size_t n = 0; n < count; ++n) {
    size_t flat = 0;
    for (size_t d = 0; d < shape.size(); ++d) {
      long value = reference.indices[d].constant;
      bool overflow = false;
      for (const auto& [loop, sign] : reference.indices[d].terms) {
        long term = 0;
        overflow |= __builtin_mul_overflow(loop_value[loop], static_cast<long>(sign), &term) ||
                    __builtin_add_overflow(value, term, &value);
      }
      if (overflow || value < 0 || static_cast<size_t>(value) >= shape[d]) {
        std::string at;
        for (size_t l = 0; l < loops.size(); ++l)
          at += (l ? ", " : "") + loops[l].name + "=" + std::to_string(loop_value[l]);
        reader.Fail(pointer, "index " + std::to_string(d) + " of \"" + text + "\" is " +
                                 (overflow ? "beyond a 64-bit integer" : std::to_string(value)) +
                                 (at.empty() ? "" : " at " + at) + ", outside [0, " +
                                 std::to_string(shape[d]) + ") (shape of '" + reference.name +
                                 "' is " + ShapeText(shape) + ")");
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
  return elements;
}

std::string ShapeText(const std::vector<size_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

}  // namespace vfe
