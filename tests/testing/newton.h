#ifndef VFE_TESTS_TESTING_NEWTON_H_
#define VFE_TESTS_TESTING_NEWTON_H_

// The minimiser of the tests' brute-force oracles: written-out free energies of small models,
// minimised over a Gaussian's mean and Cholesky factor without any of the library's code.

#include <functional>

#include "vfe/core/types.h"

namespace vfe::testing {

/// The θ minimising f from `theta`: Newton's method with central differences (step 1e-4 for
/// the gradient, whose error, ~1e-8·f''', sets the result's accuracy near 1e-9; the Hessian
/// from the four-point formula), steepest descent where the Newton step is not a descent
/// direction, and a backtracking line search in which NaN counts as a rise. Stops when the
/// gradient's norm is below 1e-10 or after `iterations` steps.
inline Vector MinimiseByNewton(const std::function<double(const Vector&)>& f, Vector theta,
                               int iterations = 100) {
  const int size = static_cast<int>(theta.size());
  const double h = 1e-4;
  for (int iteration = 0; iteration < iterations; ++iteration) {
    Vector gradient(size);
    Matrix hessian(size, size);
    const double f0 = f(theta);
    for (int i = 0; i < size; ++i) {
      Vector a = theta, b = theta;
      a(i) += h;
      b(i) -= h;
      gradient(i) = (f(a) - f(b)) / (2 * h);
      for (int j = 0; j <= i; ++j) {
        Vector pp = theta, pm = theta, mp = theta, mm = theta;
        pp(i) += h, pp(j) += h;
        pm(i) += h, pm(j) -= h;
        mp(i) -= h, mp(j) += h;
        mm(i) -= h, mm(j) -= h;
        hessian(i, j) = hessian(j, i) = (f(pp) - f(pm) - f(mp) + f(mm)) / (4 * h * h);
      }
    }
    if (gradient.norm() < 1e-10) break;
    Vector step = hessian.ldlt().solve(gradient);
    if (step.dot(gradient) <= 0) step = gradient;
    double t = 1.0;
    while (t > 1e-10 && !(f(theta - t * step) <= f0)) t *= 0.5;
    theta -= t * step;
  }
  return theta;
}

}  // namespace vfe::testing

#endif  // VFE_TESTS_TESTING_NEWTON_H_
