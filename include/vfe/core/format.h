#ifndef VFE_CORE_FORMAT_H_
#define VFE_CORE_FORMAT_H_

#include <sstream>
#include <string>

namespace vfe {

/// A number as error messages and summaries print it: up to 10 significant digits.
inline std::string FormatNumber(double x) {
  std::ostringstream out;
  out.precision(10);
  out << x;
  return out.str();
}

}  // namespace vfe

#endif  // VFE_CORE_FORMAT_H_
