#ifndef VFE_TESTS_TESTING_REFERENCE_H_
#define VFE_TESTS_TESTING_REFERENCE_H_

// Access to the reference results of other libraries (tests/data/reference, described in its
// README.md). The files are part of the repository, so a missing one fails the test that reads
// it: a skip would let a checkout run silently without its best oracles.

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

namespace vfe::testing {

/// The path of a file under the reference folder. A missing file fails the current test, and
/// the exception thrown then ends it (GoogleTest reports it; nothing is left to check).
inline std::string ReferencePath(const std::string& relative) {
  const std::string path = std::string(VFE_REFERENCE_DIR) + "/" + relative;
  if (!std::ifstream(path)) {
    const std::string message = "reference file not found: " + path;
    ADD_FAILURE() << message;
    throw std::runtime_error(message);
  }
  return path;
}

/// Parses a reference JSON file; a missing file fails the current test (see ReferencePath).
inline nlohmann::json LoadReference(const std::string& relative) {
  std::ifstream in(ReferencePath(relative));
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

#endif  // VFE_TESTS_TESTING_REFERENCE_H_
