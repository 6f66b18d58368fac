#ifndef VFE_TESTS_TESTING_REFERENCE_H_
#define VFE_TESTS_TESTING_REFERENCE_H_

// Access to the reference results of other libraries (shared/reference beside the project).

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace vfe::testing {

/// The path of a file under the reference folder.
inline std::string ReferencePath(const std::string& relative) {
  return std::string(VFE_REFERENCE_DIR) + "/" + relative;
}

/// Parses a reference JSON file; an empty object if it is absent (the caller skips).
inline nlohmann::json LoadReference(const std::string& relative) {
  std::ifstream in(ReferencePath(relative));
  if (!in) return nlohmann::json::object();
  return nlohmann::json::parse(in);
}

/// The run matches a BayesPy result file's trace: the same number of sweeps, converged, and
/// each sweep's −F equal to the lower bound to 1e-9 relative.
template <class Result>
void ExpectBayesPyTrace(const Result& result, const nlohmann::json& expected) {
  const std::vector<double> bound = expected["trace"]["lower_bound"];
  ASSERT_EQ(result.iterations, static_cast<int>(bound.size()));
  EXPECT_TRUE(result.converged());
  for (size_t i = 0; i < bound.size(); ++i)
    EXPECT_NEAR(-result.free_energy[i], bound[i], 1e-9 * std::abs(bound[i])) << "sweep " << i + 1;
}

}  // namespace vfe::testing

/// Skips the current test when a reference file is missing (a checkout without shared/).
#define VFE_REQUIRE_REFERENCE(json, relative)                                  \
  if ((json).empty()) GTEST_SKIP() << "reference file not found: " << (relative)

#endif  // VFE_TESTS_TESTING_REFERENCE_H_
