// libDAI's .fg factor-graph files: Categorical variables joined by Potential factors.

#include <algorithm>
#include <charconv>
#include <string_view>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cmath>
#include <fstream>
#include <map>

#include "io/model_document.h"
#include "vfe/core/format.h"
#include "vfe/io/model_json.h"
#include "vfe/nodes/nodes.h"

namespace vfe {
namespace {

/// Whitespace-separated tokens with their line numbers, read in place from the text (no
/// string per token: a 300 x 300 grid has 3.3 million); a line whose first non-blank
/// character is '#' is a comment.
class Tokens {
 public:
  Tokens(const std::string& text, std::string source)
      : source_(std::move(source)), at_(text.data()), end_(text.data() + text.size()) {
    SkipSpace();
  }
  /// Throws "source line L: message" for the line of the last token read.
  [[noreturn]] void Fail(const std::string& message) const {
    throw ModelError(source_ + " line " + std::to_string(last_line_) + ": " + message);
  }
  /// The same for the line of the next token (one that should not be there).
  [[noreturn]] void FailAtNext(const std::string& message) {
    last_line_ = line_;
    Fail(message);
  }
  long Integer(const std::string& what, long low) {
    const std::string_view word = Next(what);
    long value = 0;
    const char* begin = word.data();
    if (word.size() > 1 && word[0] == '+') ++begin;
    const auto [end, error] = std::from_chars(begin, word.data() + word.size(), value);
    if (error == std::errc::result_out_of_range)
      Fail("expected " + what + " in [" + std::to_string(LONG_MIN) + ", " +
           std::to_string(LONG_MAX) + "], found " + std::string(word));
    if (error != std::errc() || end != word.data() + word.size())
      Fail("expected " + what + ", found \"" + std::string(word) + "\"");
    if (value < low)
      Fail("expected " + what + " >= " + std::to_string(low) + ", found " + std::string(word));
    return value;
  }
  double Number(const std::string& what) {
    const std::string_view word = Next(what);
    double value = 0;
    const char* begin = word.data();
    if (word.size() > 1 && word[0] == '+') ++begin;
    const auto [end, error] = std::from_chars(begin, word.data() + word.size(), value);
    if (error != std::errc() || end != word.data() + word.size() || !std::isfinite(value) ||
        value < 0)
      Fail("expected " + what + " (a finite number >= 0), found \"" + std::string(word) + "\"");
    return value;
  }
  bool done() const { return at_ == end_; }
  /// A bound on the tokens left (each takes two characters at least, with its separator).
  size_t remaining() const { return static_cast<size_t>(end_ - at_) / 2 + 1; }

 private:
  static bool Space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'; }
  /// Moves to the next token, over blanks, newlines (counted) and comment lines.
  void SkipSpace() {
    while (at_ < end_) {
      if (*at_ == '\n') {
        ++line_;
        ++at_;
        line_start_ = true;
      } else if (Space(*at_)) {
        ++at_;
      } else if (*at_ == '#' && line_start_) {
        while (at_ < end_ && *at_ != '\n') ++at_;
      } else {
        return;
      }
    }
  }
  std::string_view Next(const std::string& what) {
    if (done()) Fail("expected " + what + ", found the end of the file");
    const char* begin = at_;
    while (at_ < end_ && !Space(*at_)) ++at_;
    last_line_ = line_;
    line_start_ = false;
    const std::string_view word(begin, static_cast<size_t>(at_ - begin));
    SkipSpace();
    return word;
  }
  std::string source_;
  const char* at_;
  const char* end_;
  int line_ = 1, last_line_ = 1;
  bool line_start_ = true;
};

struct FgFactor {
  std::vector<long> labels;
  std::vector<int> cardinalities;
  std::vector<double> log_table;  // row-major over the labels in file order
};

}  // namespace

Model ParseLibDaiFactorGraph(const std::string& text, const std::string& source) {
  const auto start = std::chrono::steady_clock::now();
  Tokens tokens(text, source);
  const long num_factors = tokens.Integer("the number of factors", 1);
  // Each factor takes at least 4 tokens: the count is not trusted before they are read.
  std::vector<FgFactor> factors;
  factors.reserve(std::min(static_cast<size_t>(num_factors), tokens.remaining() / 4));
  std::map<long, int> cardinality_of;
  size_t num_numbers = 0;  // table entries and states so far (kMaxNumbers)
  for (long a = 0; a < num_factors; ++a) {
    FgFactor& f = factors.emplace_back();
    const long n = tokens.Integer("the number of variables of a factor", 1);
    if (n > 16) tokens.Fail("a factor joins at most 16 variables, found " + std::to_string(n));
    for (long i = 0; i < n; ++i) f.labels.push_back(tokens.Integer("a variable label", 0));
    for (size_t i = 0; i < f.labels.size(); ++i)
      for (size_t j = 0; j < i; ++j)
        if (f.labels[i] == f.labels[j])
          tokens.Fail("variable " + std::to_string(f.labels[i]) + " appears twice in one factor");
    size_t size = 1;
    for (long i = 0; i < n; ++i) {
      const long k = tokens.Integer("a cardinality", 1);
      if (k > 1000000) tokens.Fail("cardinality " + std::to_string(k) + " is too large");
      const auto [it, inserted] = cardinality_of.emplace(f.labels[i], static_cast<int>(k));
      if (!inserted && it->second != k)
        tokens.Fail("variable " + std::to_string(f.labels[i]) + " has " + std::to_string(k) +
                    " states here but " + std::to_string(it->second) + " before");
      if (inserted) num_numbers += static_cast<size_t>(k);
      f.cardinalities.push_back(static_cast<int>(k));
      size *= static_cast<size_t>(k);
      if (size > (size_t{1} << 24)) tokens.Fail("the factor's table is too large");
    }
    num_numbers += size;
    if (num_numbers > kMaxNumbers)
      tokens.Fail("expected at most " + std::to_string(kMaxNumbers) +
                  " table entries and states in all, found " + std::to_string(num_numbers) +
                  " up to factor " + std::to_string(a));
    // Entries not listed are 0, that is log 0 = −∞.
    f.log_table.assign(size, -INFINITY);
    const long entries = tokens.Integer("the number of table entries", 0);
    for (long e = 0; e < entries; ++e) {
      const long index = tokens.Integer("a table index", 0);
      if (static_cast<size_t>(index) >= size)
        tokens.Fail("table index " + std::to_string(index) + " is outside [0, " +
                    std::to_string(size) + ")");
      const double value = tokens.Number("a table value");
      // libDAI's index has the first variable fastest; ours the last.
      size_t rest = static_cast<size_t>(index), row_major = 0;
      std::vector<size_t> x(f.labels.size());
      for (size_t i = 0; i < x.size(); ++i) {
        x[i] = rest % f.cardinalities[i];
        rest /= f.cardinalities[i];
      }
      for (size_t i = 0; i < x.size(); ++i) row_major = row_major * f.cardinalities[i] + x[i];
      f.log_table[row_major] = std::log(value);
    }
  }
  if (!tokens.done())
    tokens.FailAtNext("expected the end of the file after " + std::to_string(num_factors) +
                      " factors");

  // The variables: one Categorical array per cardinality ("x" when there is one, else
  // "x_K"), a label's element its position among that array's labels in increasing order.
  Model model;
  std::map<int, std::vector<long>> labels_of;  // by cardinality, increasing
  for (const auto& [label, k] : cardinality_of) labels_of[k].push_back(label);
  struct Place {
    int array;
    size_t index;
  };
  std::map<long, Place> place_of;
  std::vector<Variable> arrays;
  for (const auto& [k, labels] : labels_of) {
    const std::string name = labels_of.size() == 1 ? "x" : "x_" + std::to_string(k);
    const Variable v = model.graph.AddVariableArray(name, Family::kCategorical, {labels.size()}, k);
    for (size_t i = 0; i < labels.size(); ++i)
      place_of[labels[i]] = {static_cast<int>(arrays.size()), i};
    arrays.push_back(v);
    model.variables.push_back(v);
  }
  // The factors, grouped into plates: factors whose variables lie in the same arrays at the
  // same offsets from the first one's element, that element stepping by one from factor to
  // factor, make one Potential plate with a table per factor (a grid's horizontal couplings
  // one plate per row, its vertical ones one plate), so that a file runs as fast as the
  // same graph written with "for" loops.
  std::map<std::vector<long>, std::vector<size_t>> groups;  // (arrays, offsets) -> factors
  std::vector<std::vector<long>> group_order;
  std::vector<size_t> first_element(factors.size());  // the element of a factor's first label
  std::vector<long> key;
  for (size_t a = 0; a < factors.size(); ++a) {
    key.clear();
    const Place first = place_of.at(factors[a].labels[0]);
    first_element[a] = first.index;
    for (long label : factors[a].labels) {
      const Place p = place_of.at(label);
      key.push_back(p.array);
      key.push_back(static_cast<long>(p.index) - static_cast<long>(first.index));
    }
    auto [it, inserted] = groups.try_emplace(key);
    if (inserted) group_order.push_back(key);
    it->second.push_back(a);
  }
  for (const std::vector<long>& key : group_order) {
    std::vector<size_t>& members = groups[key];
    auto first_index = [&](size_t a) { return first_element[a]; };
    std::stable_sort(members.begin(), members.end(),
                     [&](size_t a, size_t b) { return first_index(a) < first_index(b); });
    for (size_t begin = 0; begin < members.size();) {
      size_t end = begin + 1;
      while (end < members.size() &&
             first_index(members[end]) == first_index(members[end - 1]) + 1)
        ++end;
      const size_t count = end - begin;
      const FgFactor& lead = factors[members[begin]];
      std::vector<Argument> args;
      for (size_t i = 0; i < lead.labels.size(); ++i) {
        const Place p = place_of.at(lead.labels[i]);
        args.push_back(arrays[p.array].Slice(p.index, p.index + count));
      }
      bool same_table = true;
      for (size_t m = begin + 1; m < end && same_table; ++m)
        same_table = factors[members[m]].log_table == lead.log_table;
      std::vector<double> tables;
      if (same_table) {
        tables = lead.log_table;
      } else {
        tables.reserve(lead.log_table.size() * count);
        for (size_t m = begin; m < end; ++m)
          tables.insert(tables.end(), factors[members[m]].log_table.begin(),
                        factors[members[m]].log_table.end());
      }
      const std::string name = "factor " + std::to_string(members[begin]) +
                               (count > 1 ? " and " + std::to_string(count - 1) + " more like it"
                                          : std::string());
      model.graph.AddFactor(MakePotentialNode(static_cast<int>(lead.labels.size()),
                                              std::move(tables)),
                            args, name);
      begin = end;
    }
  }
  model.graph.Finalize();
  model.shapes.assign(model.graph.num_variables(), {});
  for (const Variable& v : arrays) model.shapes[v.id()] = {v.size()};
  model.build_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  return model;
}

}  // namespace vfe
