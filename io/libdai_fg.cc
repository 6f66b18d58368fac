// libDAI's .fg factor-graph files: Categorical variables joined by Potential factors.

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cmath>
#include <fstream>
#include <map>
#include <sstream>

#include "io/model_document.h"
#include "vfe/core/format.h"
#include "vfe/io/model_json.h"

namespace vfe {
namespace {

/// Whitespace-separated tokens with their line numbers; '#' starts a comment line.
class Tokens {
 public:
  Tokens(const std::string& text, std::string source) : source_(std::move(source)) {
    std::istringstream in(text);
    std::string line;
    int number = 0;
    while (std::getline(in, line)) {
      ++number;
      const size_t first = line.find_first_not_of(" \t\r");
      if (first != std::string::npos && line[first] == '#') continue;
      std::istringstream words(line);
      std::string word;
      while (words >> word) tokens_.push_back({word, number});
    }
  }
  /// Throws "source line L: message" for the line of the last token read.
  [[noreturn]] void Fail(const std::string& message) const {
    const int line = next_ > 0 ? tokens_[next_ - 1].line : (tokens_.empty() ? 1 : tokens_[0].line);
    throw ModelError(source_ + " line " + std::to_string(line) + ": " + message);
  }
  /// The same for the line of the next token (one that should not be there).
  [[noreturn]] void FailAtNext(const std::string& message) {
    ++next_;
    Fail(message);
  }
  long Integer(const std::string& what, long low) {
    const std::string& word = Next(what);
    char* end = nullptr;
    errno = 0;
    const long value = std::strtol(word.c_str(), &end, 10);
    // The whole word (a NUL byte in it would end c_str() early), and no overflow.
    if (end != word.c_str() + word.size() || word.empty())
      Fail("expected " + what + ", found \"" + word + "\"");
    if (errno == ERANGE)
      Fail("expected " + what + " in [" + std::to_string(LONG_MIN) + ", " +
           std::to_string(LONG_MAX) + "], found " + word);
    if (value < low) Fail("expected " + what + " >= " + std::to_string(low) + ", found " + word);
    return value;
  }
  double Number(const std::string& what) {
    const std::string& word = Next(what);
    char* end = nullptr;
    const double value = std::strtod(word.c_str(), &end);
    if (end != word.c_str() + word.size() || word.empty() || !std::isfinite(value) || value < 0)
      Fail("expected " + what + " (a finite number >= 0), found \"" + word + "\"");
    return value;
  }
  bool done() const { return next_ >= tokens_.size(); }
  size_t remaining() const { return tokens_.size() - next_; }

 private:
  struct Token {
    std::string word;
    int line;
  };
  const std::string& Next(const std::string& what) {
    if (done()) Fail("expected " + what + ", found the end of the file");
    return tokens_[next_++].word;
  }
  std::string source_;
  std::vector<Token> tokens_;
  size_t next_ = 0;
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

  Model model;
  std::map<long, Variable> variable_of;
  for (const auto& [label, k] : cardinality_of) {
    const Variable v =
        model.graph.AddVariable("x" + std::to_string(label), Family::kCategorical, k);
    variable_of[label] = v;
    model.variables.push_back(v);
  }
  for (size_t a = 0; a < factors.size(); ++a) {
    std::vector<Argument> args;
    for (long label : factors[a].labels) args.push_back(variable_of.at(label));
    model.graph.AddPotential(args, factors[a].log_table, "factor " + std::to_string(a));
  }
  model.graph.Finalize();
  model.shapes.assign(model.graph.num_variables(), {});
  model.build_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  return model;
}

}  // namespace vfe
