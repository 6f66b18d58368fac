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

/// A file that cannot be read or written: the message names it and says why ("no such file",
/// "no space left on device"). A ModelError, as an unreadable input always was.
class IoError : public ModelError {
 public:
  using ModelError::ModelError;
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
