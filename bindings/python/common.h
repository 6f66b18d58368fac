#ifndef VFE_BINDINGS_PYTHON_COMMON_H_
#define VFE_BINDINGS_PYTHON_COMMON_H_

// What the files of the Python module share: numpy arrays in and out, and the binders of
// each part (module.cc holds PYBIND11_MODULE and calls them).

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "bindings/python/built_document.h"
#include "vfe/core/error.h"
#include "vfe/core/types.h"
#include "vfe/io/model_json.h"

namespace vfe {
namespace python {

namespace py = pybind11;

/// A model built from Python or loaded from JSON: the graph with its inference settings and
/// the shapes of its variables (for results), finalised on the first run.
struct PyModel {
  Model model;
  /// The document of a graph built from Python (to_json, pickling); null for a loaded model,
  /// which writes the document it was read from.
  std::unique_ptr<BuiltDocument> built = std::make_unique<BuiltDocument>();
};

/// A variable as Python holds it: the handle and the model it belongs to (kept alive).
struct PyVariable {
  Variable handle;
  std::shared_ptr<PyModel> owner;
};

/// Raises GraphError unless `v` belongs to `model`; `what` names the call.
void RequireOwner(const PyVariable& v, const PyModel& model, const std::string& what);

/// The current posterior of a hidden variable (or run) as a namespace of numpy arrays.
py::object PosteriorObject(const PyModel& m, const Variable& v);
/// Sets the posterior of every element of `v` from keyword parameters (FactorGraph.set_posterior).
void SetPosterior(PyModel& m, const PyVariable& v, const py::kwargs& parameters);

/// A float64 array from any array-like (copied when it is of another dtype or layout);
/// refuses object arrays and strings with the argument's name.
inline py::array_t<double, py::array::c_style | py::array::forcecast> Float64Array(
    const py::handle& value, const std::string& what) {
  if (py::isinstance<py::str>(value) || py::isinstance<py::bytes>(value))
    throw ModelError(what + ": expected numbers (a number or an array), found a string");
  py::array array = py::array::ensure(value);
  if (!array) throw ModelError(what + ": expected numbers (a number or an array)");
  const char kind = array.dtype().kind();
  if (kind != 'f' && kind != 'i' && kind != 'u' && kind != 'b')
    throw ModelError(what + ": expected an array of numbers, found dtype " +
                     std::string(py::str(array.dtype())));
  return py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(array);
}

inline Matrix ToMatrix(const py::handle& value, const std::string& what) {
  const auto a = Float64Array(value, what);
  if (a.ndim() == 0) return Matrix::Constant(1, 1, *a.data());
  if (a.ndim() == 1) {
    Matrix m(a.shape(0), 1);
    for (py::ssize_t i = 0; i < a.shape(0); ++i) m(i, 0) = a.at(i);
    return m;
  }
  if (a.ndim() != 2)
    throw ModelError(what + ": expected a 1-D or 2-D array, found " + std::to_string(a.ndim()) +
                     " dimensions");
  Matrix m(a.shape(0), a.shape(1));
  const double* data = a.data();
  for (py::ssize_t i = 0; i < a.shape(0); ++i)
    for (py::ssize_t j = 0; j < a.shape(1); ++j) m(i, j) = data[i * a.shape(1) + j];
  return m;
}

/// A 1-D float64 numpy array of `values` (copied).
inline py::array_t<double> ToArray(const std::vector<double>& values) {
  py::array_t<double> a(static_cast<py::ssize_t>(values.size()));
  std::copy(values.begin(), values.end(), a.mutable_data());
  return a;
}

/// vfe.Agent (agent.cc).
void BindAgents(py::module_& m);
/// vfe.node_types, vfe.describe_node, vfe.node_type (node_types.cc).
void BindNodeTypes(py::module_& m);

}  // namespace python
}  // namespace vfe

#endif  // VFE_BINDINGS_PYTHON_COMMON_H_
