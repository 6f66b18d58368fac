// DeltaFunction and DeltaOptions (vfe/nodes/nodes.h): the function a Delta node applies and
// the options of its approximation, checked before the node is built (nodes/delta.cc).

#include <cmath>
#include <string>

#include "vfe/core/format.h"
#include "vfe/core/quadrature.h"
#include "vfe/nodes/nodes.h"

namespace vfe {

DeltaFunction DeltaFunction::Callable(int in_dim, int out_dim, Value value, Jacobian jacobian) {
  DeltaFunction f;
  f.in_dim = in_dim;
  f.out_dim = out_dim;
  f.value = std::move(value);
  f.jacobian = std::move(jacobian);
  f.description = "a callable R^" + std::to_string(in_dim) + " -> R^" + std::to_string(out_dim);
  return f;
}

DeltaFunction DeltaFunction::Named(const ScalarFunction& g, const Matrix& matrix,
                                   const Vector& offset) {
  DeltaFunction f;
  f.elementwise = &g;
  f.matrix = matrix;
  f.offset = offset;
  f.description = g.name;
  if (matrix.size() > 0) {
    f.in_dim = static_cast<int>(matrix.cols());
    f.out_dim = static_cast<int>(matrix.rows());
  } else if (offset.size() > 0) {
    f.in_dim = f.out_dim = static_cast<int>(offset.size());
  }
  return f;
}

DeltaFunction DeltaFunction::Affine(const Matrix& matrix, const Vector& offset) {
  DeltaFunction f = Named(*FindScalarFunction("identity"), matrix, offset);
  f.description = "affine";
  return f;
}

void DeltaFunction::Validate() const {
  const std::string what = "Delta function (" + description + ")";
  auto size_text = [](const Matrix& m) {
    return std::to_string(m.rows()) + "x" + std::to_string(m.cols());
  };
  if (value) {
    if (elementwise || matrix.size() || offset.size() || output_matrix.size() || linear.size())
      throw ModelError(what + ": give either a callable or the named form, not both");
    if (in_dim < 1 || out_dim < 1)
      throw ModelError(what + ": a callable needs dimensions >= 1, got R^" +
                       std::to_string(in_dim) + " -> R^" + std::to_string(out_dim));
  } else {
    if (!elementwise) throw ModelError(what + ": no callable and no elementwise function");
    for (const Matrix* m : {&matrix, &output_matrix, &linear})
      if (!m->allFinite()) throw ModelError(what + ": the matrices must be finite");
    if (!offset.allFinite()) throw ModelError(what + ": the offset must be finite");
    // H, the dimension g works in.
    int hidden = 0;
    if (matrix.size()) hidden = static_cast<int>(matrix.rows());
    if (offset.size()) {
      if (hidden && offset.size() != hidden)
        throw ModelError(what + ": the offset has " + std::to_string(offset.size()) +
                         " entries but the matrix is " + size_text(matrix));
      hidden = static_cast<int>(offset.size());
    }
    if (output_matrix.size()) {
      if (hidden && output_matrix.cols() != hidden)
        throw ModelError(what + ": the output matrix is " + size_text(output_matrix) +
                         " but g works in dimension " + std::to_string(hidden));
    }
    const int d = matrix.size() ? static_cast<int>(matrix.cols()) : hidden;
    const int e = output_matrix.size() ? static_cast<int>(output_matrix.rows()) : hidden;
    if (!hidden && (output_matrix.size() || linear.size()))
      throw ModelError(what + ": an output matrix or a linear term needs the matrix or the "
                       "offset (the dimension g works in)");
    if (linear.size() && (linear.rows() != e || linear.cols() != d))
      throw ModelError(what + ": the linear term is " + size_text(linear) + ", expected " +
                       std::to_string(e) + "x" + std::to_string(d));
    if (in_dim != d || out_dim != e)
      throw ModelError(what + ": in_dim and out_dim are " + std::to_string(in_dim) + " and " +
                       std::to_string(out_dim) + " but the matrices map R^" + std::to_string(d) +
                       " to R^" + std::to_string(e));
    if (hidden > kMaxDim)
      throw ModelError(what + ": g works in dimension " + std::to_string(hidden) +
                       ", more than the " + std::to_string(kMaxDim) + " a Delta node takes");
  }
  if (in_dim > kMaxDim || out_dim > kMaxDim)
    throw ModelError(what + ": maps R^" + std::to_string(in_dim) + " to R^" +
                     std::to_string(out_dim) + "; a Delta node takes dimensions up to " +
                     std::to_string(kMaxDim));
}

void DeltaOptions::Validate() const {
  if (!(alpha > 0) || !std::isfinite(alpha))
    throw OptionsError("Delta options: alpha must be > 0 and finite, got " + FormatNumber(alpha));
  if (!(beta >= 0) || !std::isfinite(beta))
    throw OptionsError("Delta options: beta must be >= 0 and finite, got " + FormatNumber(beta));
  if (kappa && !std::isfinite(*kappa))
    throw OptionsError("Delta options: kappa must be finite, got " + FormatNumber(*kappa));
  if (samples < 1)
    throw OptionsError("Delta options: samples must be >= 1, got " + std::to_string(samples));
  if (quadrature_points < 0 || quadrature_points > kMaxQuadraturePoints)
    throw OptionsError("Delta options: quadrature_points must be in [0, " +
                       std::to_string(kMaxQuadraturePoints) + "] (0: the default), got " +
                       std::to_string(quadrature_points));
}

}  // namespace vfe
