#ifndef VFE_CORE_ERROR_H_
#define VFE_CORE_ERROR_H_

#include <stdexcept>
#include <string>

namespace vfe {

/// Base of every error vfe throws for bad user input.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// An invalid distribution or node parameter, or an invalid observed value.
class ModelError : public Error {
 public:
  using Error::Error;
};

/// A malformed graph: unknown or unused variables, mismatched families or dimensions.
class GraphError : public Error {
 public:
  using Error::Error;
};

/// Invalid inference options.
class OptionsError : public Error {
 public:
  using Error::Error;
};

}  // namespace vfe

#endif  // VFE_CORE_ERROR_H_
