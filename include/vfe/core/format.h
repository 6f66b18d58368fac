#ifndef VFE_CORE_FORMAT_H_
#define VFE_CORE_FORMAT_H_

// How the library writes numbers and names in its messages: one wording for every error.

#include <algorithm>
#include <sstream>
#include <string>
#include <vector>

namespace vfe {

/// A number as error messages and summaries print it: up to 10 significant digits.
inline std::string FormatNumber(double x) {
  std::ostringstream out;
  out.precision(10);
  out << x;
  return out.str();
}

/// The Levenshtein distance between two words (insertions, deletions, substitutions).
inline size_t EditDistance(const std::string& a, const std::string& b) {
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

/// " (did you mean 'x'?)" for the nearest of `known` within a small edit distance (a third
/// of the word, at least 2), else "".
inline std::string DidYouMean(const std::string& word, const std::vector<std::string>& known) {
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

/// "'a', 'b', 'c'".
inline std::string JoinQuoted(const std::vector<std::string>& words) {
  std::string out;
  for (const std::string& w : words) out += (out.empty() ? "'" : ", '") + w + "'";
  return out;
}

}  // namespace vfe

#endif  // VFE_CORE_FORMAT_H_
