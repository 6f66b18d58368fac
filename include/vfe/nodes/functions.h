#ifndef VFE_NODES_FUNCTIONS_H_
#define VFE_NODES_FUNCTIONS_H_

#include <cmath>
#include <string>

#include "vfe/core/special.h"

namespace vfe {

/// A smooth scalar function with its first derivative, applied elementwise by nonlinear nodes
/// (`Delta`) and predictive coding layers. The named ones are what models may write in JSON.
struct ScalarFunction {
  const char* name;
  double (*value)(double);
  double (*derivative)(double);
};

namespace functions {
inline double Identity(double x) { return x; }
inline double One(double) { return 1.0; }
inline double Tanh(double x) { return std::tanh(x); }
inline double TanhDerivative(double x) {
  const double t = std::tanh(x);
  return 1.0 - t * t;
}
inline double Sigmoid(double x) { return vfe::Sigmoid(x); }
inline double SigmoidDerivative(double x) {
  const double s = Sigmoid(x);
  return s * (1.0 - s);
}
inline double Exp(double x) { return std::exp(x); }
inline double Square(double x) { return x * x; }
inline double SquareDerivative(double x) { return 2.0 * x; }
inline double Sin(double x) { return std::sin(x); }
inline double Cos(double x) { return std::cos(x); }
}  // namespace functions

/// The named scalar functions, in the order the docs list them.
inline const ScalarFunction* ScalarFunctions(int* count) {
  static const ScalarFunction kFunctions[] = {
      {"identity", functions::Identity, functions::One},
      {"tanh", functions::Tanh, functions::TanhDerivative},
      {"sigmoid", functions::Sigmoid, functions::SigmoidDerivative},
      {"exp", functions::Exp, functions::Exp},
      {"square", functions::Square, functions::SquareDerivative},
      {"sin", functions::Sin, functions::Cos},
  };
  *count = static_cast<int>(sizeof(kFunctions) / sizeof(kFunctions[0]));
  return kFunctions;
}

/// The function called `name`, or nullptr.
inline const ScalarFunction* FindScalarFunction(const std::string& name) {
  int count = 0;
  const ScalarFunction* all = ScalarFunctions(&count);
  for (int i = 0; i < count; ++i)
    if (name == all[i].name) return &all[i];
  return nullptr;
}

}  // namespace vfe

#endif  // VFE_NODES_FUNCTIONS_H_
