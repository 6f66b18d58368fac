// Gauss–Hermite quadrature (vfe/core/quadrature.h) against the moments of N(0, 1), which a
// rule of K points must give exactly up to degree 2K − 1.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "vfe/core/error.h"
#include "vfe/core/quadrature.h"

namespace vfe {
namespace {

/// E[z^k] under N(0, 1): 0 for odd k, (k − 1)!! for even k.
double NormalMoment(int k) {
  if (k % 2) return 0.0;
  double m = 1.0;
  for (int j = k - 1; j > 1; j -= 2) m *= j;
  return m;
}

TEST(Quadrature, ExactForPolynomialsUpToDegreeTwoKMinusOne) {
  for (int points : {1, 2, 3, 5, 8, 20, 32, 64, 128}) {
    const QuadratureRule rule = StandardNormalRule(points);
    ASSERT_EQ(rule.size(), points);
    // Beyond degree 40 the moments reach 1e23 and the sums lose relative digits to rounding
    // of the terms, not to the rule.
    for (int k = 0; k <= std::min(2 * points - 1, 40); ++k) {
      double sum = 0.0, magnitude = 0.0;
      for (int i = 0; i < points; ++i) {
        sum += rule.weights[i] * std::pow(rule.nodes[i], k);
        magnitude += rule.weights[i] * std::abs(std::pow(rule.nodes[i], k));
      }
      EXPECT_NEAR(sum, NormalMoment(k), 1e-13 * std::max(1.0, magnitude))
          << points << " points, degree " << k;
    }
    for (int i = 1; i < points; ++i) EXPECT_LT(rule.nodes[i - 1], rule.nodes[i]);
  }
  // And not beyond: the rule of K points misses E[z^2K] (by K!·2^K/(2K)!·(2K−1)!! ≠ 0).
  const QuadratureRule three = StandardNormalRule(3);
  double sum = 0.0;
  for (int i = 0; i < 3; ++i) sum += three.weights[i] * std::pow(three.nodes[i], 6);
  EXPECT_GT(std::abs(sum - NormalMoment(6)), 1.0);
}

TEST(Quadrature, RefusesRulesItCannotBuild) {
  EXPECT_THROW(StandardNormalRule(0), ModelError);
  EXPECT_THROW(StandardNormalRule(kMaxQuadraturePoints + 1), ModelError);
}

TEST(Quadrature, ProductRuleIsExactForPolynomialsOfTheDegreeInEachCoordinate) {
  // E[z₁^a z₂^b z₃^c] = E[z^a] E[z^b] E[z^c] under N(0, I), for a, b, c ≤ 2K − 1.
  const int points = 6;
  const ProductRule rule = StandardNormalProductRule(points, 3, 0.0);
  ASSERT_EQ(rule.size(), points * points * points);
  for (int a = 0; a < 2 * points; ++a) {
    for (int b = 0; b < 2 * points; b += 3) {
      for (int c = 0; c < 2 * points; c += 5) {
        double sum = 0.0, magnitude = 0.0;
        for (int i = 0; i < rule.size(); ++i) {
          const double* z = rule.Point(i);
          const double term =
              rule.weights[i] * std::pow(z[0], a) * std::pow(z[1], b) * std::pow(z[2], c);
          sum += term;
          magnitude += std::abs(term);
        }
        // Rounding of the terms, relative to their absolute sum, bounds the error.
        const double exact = NormalMoment(a) * NormalMoment(b) * NormalMoment(c);
        EXPECT_NEAR(sum, exact, 1e-13 * std::max(1.0, magnitude)) << a << ", " << b << ", " << c;
      }
    }
  }
}

TEST(Quadrature, ProductRuleLeavesOutOnlyPointsBelowTheMinimumWeight) {
  const ProductRule full = StandardNormalProductRule(64, 2, 0.0);
  const ProductRule pruned = StandardNormalProductRule(64, 2);
  ASSERT_EQ(full.size(), 64 * 64);
  EXPECT_LT(pruned.size(), full.size());
  double kept = 0.0;
  for (double w : pruned.weights) {
    EXPECT_GE(w, 1e-18);
    kept += w;
  }
  // What is left out weighs at most 64² · 1e-18.
  EXPECT_NEAR(kept, 1.0, 64 * 64 * 1e-18 + 1e-14);
  EXPECT_THROW(StandardNormalProductRule(64, 4), ModelError);  // 64⁴ > 2²²
  EXPECT_THROW(StandardNormalProductRule(8, 0), ModelError);
}

}  // namespace
}  // namespace vfe
