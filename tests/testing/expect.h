#ifndef VFE_TESTS_TESTING_EXPECT_H_
#define VFE_TESTS_TESTING_EXPECT_H_

// The tests' near-equality and error-capture helpers: every test file uses these instead of
// its own copy.
//
// Near-equality: |actual − expected| ≤ tolerance · scale, where the scale is 1, |expected|,
// max(1, |expected|) or 1 + |expected| (Scale), for numbers (EXPECT_SCALED_NEAR,
// EXPECT_RELATIVE_NEAR) and for vectors and matrices entry by entry or in a norm
// (MatrixNear, ExpectMatrixNear). A failure prints both sides, the difference and the bound.
//
// Errors: ErrorMessage<E>(f) runs f and returns the message of the E it throws, failing the
// test when f throws nothing or something else; compare it with EXPECT_EQ, or with a gmock
// string matcher:
//   EXPECT_THAT(ErrorMessage<GraphError>([&] { graph.Finalize(); }), HasSubstr("cluster"));
// ExpectErrorMentioning<E>(f, parts) checks that the message holds every one of `parts`, and
// LoadError(text) is the message of the ModelError that loading a JSON model gives.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <exception>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <vector>

#if defined(__GNUG__)
#include <cxxabi.h>
#endif

#include "vfe/core/error.h"
#include "vfe/core/types.h"
#include "vfe/io/model_json.h"

namespace vfe::testing {

// ---- Near-equality ---------------------------------------------------------------------------

/// What a tolerance is multiplied by: |actual − expected| ≤ tolerance · scale.
enum class Scale {
  kAbsolute,          ///< 1
  kRelative,          ///< |expected|
  kRelativeAboveOne,  ///< max(1, |expected|): relative from 1 up, absolute below
  kOnePlusRelative,   ///< 1 + |expected|
};

/// The bound tolerance · scale for an expected value of magnitude `magnitude` (≥ 0).
inline double ToleranceBound(double magnitude, double tolerance, Scale scale) {
  switch (scale) {
    case Scale::kAbsolute:
      return tolerance;
    case Scale::kRelative:
      return tolerance * magnitude;
    case Scale::kRelativeAboveOne:
      return tolerance * std::max(1.0, magnitude);
    case Scale::kOnePlusRelative:
      return tolerance * (1.0 + magnitude);
  }
  return 0.0;
}

/// The name of a Scale, for failure messages.
inline const char* ScaleName(Scale scale) {
  switch (scale) {
    case Scale::kAbsolute:
      return "absolute";
    case Scale::kRelative:
      return "|expected|";
    case Scale::kRelativeAboveOne:
      return "max(1, |expected|)";
    case Scale::kOnePlusRelative:
      return "1 + |expected|";
  }
  return "?";
}

/// Predicate formatter of EXPECT_SCALED_NEAR: |actual − expected| ≤ tolerance · scale. NaN on
/// either side fails.
inline ::testing::AssertionResult ScaledNear(const char* actual_text, const char* expected_text,
                                             const char* /*tolerance_text*/,
                                             const char* /*scale_text*/, double actual,
                                             double expected, double tolerance, Scale scale) {
  const double difference = std::abs(actual - expected);
  const double bound = ToleranceBound(std::abs(expected), tolerance, scale);
  if (difference <= bound) return ::testing::AssertionSuccess();
  std::ostringstream out;
  out.precision(17);
  out << actual_text << " = " << actual << "\n"
      << expected_text << " = " << expected << "\ndiffer by " << difference << " > " << bound
      << " (tolerance " << tolerance << " × " << ScaleName(scale) << ")";
  return ::testing::AssertionFailure() << out.str();
}

/// |actual − expected| ≤ tolerance · scale (a Scale), printing both sides; takes << context.
#define EXPECT_SCALED_NEAR(actual, expected, tolerance, scale) \
  EXPECT_PRED_FORMAT4(::vfe::testing::ScaledNear, actual, expected, tolerance, scale)
#define ASSERT_SCALED_NEAR(actual, expected, tolerance, scale) \
  ASSERT_PRED_FORMAT4(::vfe::testing::ScaledNear, actual, expected, tolerance, scale)

/// |actual − expected| ≤ tolerance · |expected|, printing both sides; takes << context.
#define EXPECT_RELATIVE_NEAR(actual, expected, tolerance) \
  EXPECT_SCALED_NEAR(actual, expected, tolerance, ::vfe::testing::Scale::kRelative)

/// How MatrixNear measures a difference.
enum class Norm {
  kEntries,    ///< every entry: |a_ij − e_ij| ≤ tolerance · scale(|e_ij|)
  kFrobenius,  ///< ‖a − e‖_F ≤ tolerance · scale(‖e‖_F) (the Euclidean norm for vectors)
  kMax,        ///< max |a_ij − e_ij| ≤ tolerance · scale(max |e_ij|)
};

/// `actual` near `expected` (same shape; vectors are one-column matrices) by `norm`, with the
/// tolerance scaled by `scale`. A failure names the worst entry and prints both sides.
inline ::testing::AssertionResult MatrixNear(const Matrix& actual, const Matrix& expected,
                                             double tolerance, Scale scale = Scale::kAbsolute,
                                             Norm norm = Norm::kEntries) {
  if (actual.rows() != expected.rows() || actual.cols() != expected.cols())
    return ::testing::AssertionFailure()
           << "the shapes differ: actual " << actual.rows() << " x " << actual.cols()
           << ", expected " << expected.rows() << " x " << expected.cols();
  if (actual.size() == 0) return ::testing::AssertionSuccess();
  // The worst entry: the largest difference over its bound (entries), or over the one bound.
  Eigen::Index worst_row = 0, worst_col = 0;
  double worst_ratio = -1.0, worst_difference = 0.0, worst_bound = 0.0;
  bool nan = false;
  for (Eigen::Index j = 0; j < actual.cols(); ++j)
    for (Eigen::Index i = 0; i < actual.rows(); ++i) {
      const double difference = std::abs(actual(i, j) - expected(i, j));
      if (std::isnan(difference)) nan = true;
      const double bound = ToleranceBound(std::abs(expected(i, j)), tolerance, scale);
      const double ratio = norm == Norm::kEntries ? difference / bound : difference;
      if (std::isnan(difference) || ratio > worst_ratio) {
        worst_ratio = std::isnan(difference) ? INFINITY : ratio;
        worst_row = i;
        worst_col = j;
        worst_difference = difference;
        worst_bound = bound;
      }
    }
  bool near = !nan;
  double difference = 0.0, bound = 0.0;
  if (norm == Norm::kEntries) {
    near = near && worst_difference <= worst_bound;
    difference = worst_difference;
    bound = worst_bound;
  } else {
    const Matrix delta = actual - expected;
    difference = norm == Norm::kFrobenius ? delta.norm() : delta.cwiseAbs().maxCoeff();
    const double magnitude = norm == Norm::kFrobenius ? expected.norm()
                                                       : expected.cwiseAbs().maxCoeff();
    bound = ToleranceBound(magnitude, tolerance, scale);
    near = near && difference <= bound;
  }
  if (near) return ::testing::AssertionSuccess();
  std::ostringstream out;
  out.precision(17);
  out << (norm == Norm::kEntries    ? "entry"
          : norm == Norm::kFrobenius ? "Frobenius norm of the difference"
                                     : "largest difference")
      << ": " << difference << " > " << bound << " (tolerance " << tolerance << " × "
      << ScaleName(scale) << "); the worst entry (" << worst_row << ", " << worst_col
      << "): actual " << actual(worst_row, worst_col) << ", expected "
      << expected(worst_row, worst_col) << "\nactual:\n"
      << actual << "\nexpected:\n"
      << expected;
  return ::testing::AssertionFailure() << out.str();
}

/// EXPECT_TRUE(MatrixNear(actual, expected, tolerance, scale, norm)) << what.
inline void ExpectMatrixNear(const Matrix& actual, const Matrix& expected, double tolerance,
                             const std::string& what, Scale scale = Scale::kAbsolute,
                             Norm norm = Norm::kEntries) {
  EXPECT_TRUE(MatrixNear(actual, expected, tolerance, scale, norm)) << what;
}

// ---- Errors ----------------------------------------------------------------------------------

/// The readable name of a type (demangled where the compiler allows).
inline std::string TypeName(const std::type_info& type) {
#if defined(__GNUG__)
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> name(
      abi::__cxa_demangle(type.name(), nullptr, nullptr, &status), std::free);
  if (status == 0 && name) return name.get();
#endif
  return type.name();
}

/// Runs `f` and returns the message of the E (or a type derived from it) that it throws. When
/// f throws nothing, or an exception of another type, the current test fails (saying which)
/// and "" is returned.
template <class E, class F>
std::string ErrorMessage(F&& f) {
  static_assert(std::is_base_of<std::exception, E>::value, "E is an exception type");
  try {
    f();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected a " << TypeName(typeid(E)) << ", got a " << TypeName(typeid(e))
                  << ": " << e.what();
    return "";
  }
  ADD_FAILURE() << "expected a " << TypeName(typeid(E)) << ", nothing was thrown";
  return "";
}

/// Runs `action`, expecting an exception of type E whose message contains every one of
/// `parts` (the name of the variable or factor, what was wrong, expected and found values).
template <class E>
void ExpectErrorMentioning(const std::function<void()>& action,
                           const std::vector<std::string>& parts) {
  const std::string message = ErrorMessage<E>(action);
  for (const std::string& part : parts) EXPECT_THAT(message, ::testing::HasSubstr(part));
}

/// The message of the ModelError that ParseModel gives for the JSON model `text` (relative
/// paths from `base_directory`); the current test fails when it loads.
inline std::string LoadError(const std::string& text, const std::string& base_directory = ".") {
  return ErrorMessage<ModelError>([&] { ParseModel(text, base_directory); });
}

}  // namespace vfe::testing

#endif  // VFE_TESTS_TESTING_EXPECT_H_
