// The Python module `vfe._vfe` (pybind11): factor graphs built from Python through the node
// registry (every registered node type by its name and slot names), models loaded from JSON,
// inference with the GIL released, posteriors and results as numpy arrays and dicts, and the
// library's errors as a Python exception hierarchy. The package `vfe` (vfe/__init__.py)
// re-exports it. The names follow the JSON format (docs/json-format.md) and docs/python.md.

#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "bindings/python/common.h"
#include "vfe/model.h"
#include "vfe/nodes/registry.h"

namespace py = pybind11;

namespace vfe {
namespace {

using python::Float64Array;
using python::ToArray;
using python::ToMatrix;

// ---- The graph ---------------------------------------------------------------------------

using python::PyModel;
using python::PyVariable;
using python::RequireOwner;

/// One row of data per factor, for a parameter that takes them (`vfe.rows(X)`).
struct PyRows {
  Matrix rows;
};

/// Factor n reads element indices[n] of `array` (`vfe.gather(theta, group)`).
struct PyGather {
  PyVariable array;
  std::vector<size_t> indices;
};

Family ParseFamily(const std::string& name) {
  std::vector<std::string> names;
  for (Family f : kAllFamilies) {
    if (name == FamilyName(f)) return f;
    names.push_back(FamilyName(f));
  }
  throw ModelError("unknown family \"" + name + "\"; expected one of " + JoinQuoted(names));
}

/// A keyword argument as the registry takes it.
ParameterValue ToParameterValue(const PyModel& model, const std::string& parameter,
                                const py::handle& value) {
  const std::string what = "argument '" + parameter + "'";
  if (py::isinstance<PyVariable>(value)) {
    const auto& v = value.cast<const PyVariable&>();
    RequireOwner(v, model, what);
    return ParameterValue(v.handle);
  }
  if (py::isinstance<PyRows>(value)) return ParameterValue::Rows(value.cast<const PyRows&>().rows);
  if (py::isinstance<PyGather>(value)) {
    const auto& g = value.cast<const PyGather&>();
    RequireOwner(g.array, model, what);
    return ParameterValue::Gather(g.array.handle, g.indices);
  }
  if (py::isinstance<py::str>(value)) return ParameterValue(value.cast<std::string>());
  if (py::isinstance<py::bool_>(value))
    throw ModelError(what + ": expected a variable, a number or an array, found a bool");
  if (py::isinstance<py::list>(value) || py::isinstance<py::tuple>(value)) {
    const py::sequence items = value.cast<py::sequence>();
    bool all_variables = items.size() > 0;
    for (const py::handle item : items) all_variables &= py::isinstance<PyVariable>(item);
    if (all_variables) {
      std::vector<Variable> list;
      for (const py::handle item : items) {
        const auto& v = item.cast<const PyVariable&>();
        RequireOwner(v, model, what);
        list.push_back(v.handle);
      }
      return ParameterValue(std::move(list));
    }
  }
  if (py::isinstance<py::int_>(value) || py::isinstance<py::float_>(value))
    return ParameterValue(value.cast<double>());
  const auto a = Float64Array(value, what);
  if (a.ndim() == 0) return ParameterValue(*a.data());
  if (a.ndim() == 1) {
    Vector v(a.shape(0));
    for (py::ssize_t i = 0; i < a.shape(0); ++i) v(i) = a.at(i);
    return ParameterValue(v);
  }
  return ParameterValue(ToMatrix(value, what));
}

/// The arguments of one factor by slot name, from Python keywords (`in_` stands for `in`).
/// A log-table parameter's numbers in any shape (a K x L table, or one table per factor), as
/// the registry takes them: flattened, row-major.
bool IsTable(const std::string& type, const std::string& parameter) {
  const NodeType* t = FindNodeType(type);
  const Parameter* p = t ? t->Find(parameter) : nullptr;
  return p && (p->constant == ConstantKind::kTable || p->constant == ConstantKind::kTables);
}

std::vector<NamedArgument> NamedArguments(const PyModel& model, const std::string& type,
                                          const py::dict& arguments) {
  std::vector<NamedArgument> named;
  for (const auto& [key, value] : arguments) {
    std::string parameter = key.cast<std::string>();
    // Python keywords cannot be parameter names ("in"): in_ stands for in.
    if (!parameter.empty() && parameter.back() == '_') parameter.pop_back();
    if (IsTable(type, parameter) && !py::isinstance<PyVariable>(value) &&
        !py::isinstance<py::str>(value)) {
      const auto a = Float64Array(value, "argument '" + parameter + "'");
      named.push_back({parameter, ParameterValue(Vector(Eigen::Map<const Vector>(a.data(), a.size())))});
      continue;
    }
    named.push_back({parameter, ToParameterValue(model, parameter, value)});
  }
  return named;
}

/// The model as one vfe-model/1 document (FactorGraph.to_json).
std::string ModelText(const PyModel& m, int indent) {
  return m.built ? m.built->Text(indent) : NormalisedModelJson(m.model, indent);
}

// ---- Inference -------------------------------------------------------------------------------

/// vfe.infer: the model's settings, overridden for this run by the keywords given.
Result Run(PyModel& m, const std::optional<std::string>& scheduler, std::optional<int> threads,
           std::optional<double> tolerance, std::optional<int> iterations,
           const std::optional<std::string>& algorithm, std::optional<double> threshold,
           std::optional<double> damping, const std::optional<py::function>& callback,
           const std::optional<std::vector<PyVariable>>& order) {
  // The keywords apply to this run only: the settings are restored on every way out (with the
  // GIL held, since they may hold the Python callback).
  struct Restore {
    Model& model;
    InferenceSettings saved;
    ~Restore() { model.inference = std::move(saved); }
  } restore{m.model, m.model.inference};
  InferenceSettings& s = m.model.inference;
  if (order) {
    s.options.order.clear();
    for (const PyVariable& v : *order) {
      RequireOwner(v, m, "order");
      s.options.order.push_back(v.handle);
    }
  }
  if (scheduler) {
    const std::optional<SchedulerKind> kind = ParseSchedulerKind(*scheduler);
    if (!kind)
      throw OptionsError("scheduler: unknown scheduler \"" + *scheduler +
                         "\"; expected one of 'sequential', 'parallel', 'async'");
    s.scheduler = *kind;
  }
  if (algorithm) {
    const std::optional<Algorithm> a = ParseAlgorithm(*algorithm);
    if (!a) throw OptionsError("algorithm: unknown algorithm \"" + *algorithm +
                               "\"; expected one of 'vmp', 'bp'");
    s.algorithm = *a;
  }
  if (threads) {
    if (*threads < 0) throw OptionsError("threads: expected 0 (every core) or more, found " +
                                         std::to_string(*threads));
    s.threads = *threads;
  }
  if (tolerance) s.options.tolerance = *tolerance;
  if (iterations) s.options.max_iterations = *iterations;
  if (threshold) s.threshold = *threshold;
  if (damping) s.damping = *damping;
  // A Python callback runs with the GIL; its exception ends the run and is raised again.
  std::exception_ptr raised;
  if (callback) {
    const py::function f = *callback;
    s.options.callback = [f, &raised](const IterationInfo& info) {
      py::gil_scoped_acquire gil;
      try {
        py::dict d;
        d["iteration"] = info.iteration;
        d["free_energy"] = info.free_energy;
        d["change"] = info.change;
        d["relative_change"] = info.relative_change;
        d["elapsed_ms"] = info.elapsed_ms;
        const py::object keep_going = f(py::module_::import("types").attr("SimpleNamespace")(**d));
        return keep_going.is_none() || keep_going.cast<bool>();
      } catch (...) {
        raised = std::current_exception();
        return false;
      }
    };
  }
  Result result;
  {
    py::gil_scoped_release release;
    if (!m.model.graph.finalized()) m.model.graph.Finalize();
    result = Infer(m.model);
  }
  if (raised) std::rethrow_exception(raised);
  return result;
}


}  // namespace

void python::RequireOwner(const PyVariable& v, const PyModel& model, const std::string& what) {
  if (v.owner.get() != &model)
    throw GraphError(what + ": variable '" + v.owner->model.graph.variable_name(v.handle.id()) +
                     "' belongs to another graph");
}

}  // namespace vfe

PYBIND11_MODULE(_vfe, m) {
  using namespace vfe;
  m.doc() = "vfe: variational message passing on factor graphs (the C++ engine)";

  // Errors: the C++ hierarchy, most derived first.
  static py::exception<Error> error(m, "Error");
  static py::exception<ModelError> model_error(m, "ModelError", error.ptr());
  static py::exception<GraphError> graph_error(m, "GraphError", error.ptr());
  static py::exception<OptionsError> options_error(m, "OptionsError", error.ptr());
  static py::exception<ParameterError> parameter_error(m, "ParameterError", model_error.ptr());
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const ParameterError& e) {
      parameter_error(e.what());
    } catch (const ModelError& e) {
      model_error(e.what());
    } catch (const GraphError& e) {
      graph_error(e.what());
    } catch (const OptionsError& e) {
      options_error(e.what());
    } catch (const Error& e) {
      error(e.what());
    }
  });

  py::class_<PyRows>(m, "Rows", "One row of data per factor (vfe.rows(X)).")
      .def_property_readonly("rows", [](const PyRows& r) { return r.rows; });
  m.def("rows", [](const py::handle& x) { return PyRows{ToMatrix(x, "rows")}; }, py::arg("x"),
        "Marks a 2-D array as one row of data per factor (a Logistic's `matrix`).");
  py::class_<PyGather>(m, "Gather", "Factor n reads element indices[n] of an array.");
  m.def(
      "gather",
      [](const PyVariable& array, const py::handle& indices) {
        const auto a = py::array_t<long long, py::array::c_style | py::array::forcecast>::ensure(
            indices);
        if (!a || a.ndim() != 1) throw ModelError("gather: expected a 1-D array of indices");
        std::vector<size_t> out;
        for (py::ssize_t i = 0; i < a.shape(0); ++i) {
          if (a.at(i) < 0)
            throw ModelError("gather: index " + std::to_string(i) + " is negative (" +
                             std::to_string(a.at(i)) + ")");
          out.push_back(static_cast<size_t>(a.at(i)));
        }
        return PyGather{array, std::move(out)};
      },
      py::arg("array"), py::arg("indices"),
      "Indexing by data: factor n uses element indices[n] of `array` (JSON \"p[group[n]]\").");

  py::class_<PyVariable>(m, "Variable", "A variable of a graph, one of its elements, or a run.")
      .def_property_readonly("name",
                             [](const PyVariable& v) {
                               const FactorGraph& g = v.owner->model.graph;
                               return v.handle.size() == 1 &&
                                              g.variable_name(v.handle.id()) !=
                                                  g.ElementName(v.handle)
                                          ? g.ElementName(v.handle)
                                          : g.variable_name(v.handle.id());
                             })
      .def_property_readonly("family",
                             [](const PyVariable& v) -> py::object {
                               const FactorGraph& g = v.owner->model.graph;
                               if (g.observed(v.handle)) return py::none();
                               return py::str(FamilyName(g.family(v.handle)));
                             })
      .def_property_readonly("dim",
                             [](const PyVariable& v) { return v.owner->model.graph.dim(v.handle); })
      .def_property_readonly(
          "observed", [](const PyVariable& v) { return v.owner->model.graph.observed(v.handle); })
      .def("__len__", [](const PyVariable& v) { return v.handle.size(); })
      .def("__getitem__",
           [](const PyVariable& v, py::object index) {
             if (py::isinstance<py::slice>(index)) {
               size_t start = 0, stop = 0, step = 0, length = 0;
               if (!index.cast<py::slice>().compute(v.handle.size(), &start, &stop, &step, &length))
                 throw py::error_already_set();
               if (step != 1) throw py::index_error("a variable's slice must have step 1");
               return PyVariable{v.handle.Slice(start, start + length), v.owner};
             }
             long long i = index.cast<long long>();
             if (i < 0) i += static_cast<long long>(v.handle.size());
             if (i < 0 || static_cast<size_t>(i) >= v.handle.size())
               throw py::index_error("index " + std::string(py::str(index)) + " out of range for " +
                                     std::to_string(v.handle.size()) + " elements");
             return PyVariable{v.handle[static_cast<size_t>(i)], v.owner};
           })
      .def("__repr__", [](const PyVariable& v) {
        const FactorGraph& g = v.owner->model.graph;
        std::string text = "<vfe.Variable '" + g.variable_name(v.handle.id()) + "'";
        if (v.handle.size() != 1 || v.handle.begin() != 0)
          text += " elements [" + std::to_string(v.handle.begin()) + ", " +
                  std::to_string(v.handle.begin() + v.handle.size()) + ")";
        return text + ">";
      });

  py::class_<Result>(m, "Result", "The outcome of a run; the posteriors stay in the graph.")
      .def_property_readonly("converged", &Result::converged)
      .def_property_readonly("termination",
                             [](const Result& r) { return TerminationName(r.termination); })
      .def_readonly("message", &Result::message)
      .def_readonly("iterations", &Result::iterations)
      .def_property_readonly("free_energy", [](const Result& r) { return ToArray(r.free_energy); })
      .def_readonly("initial_free_energy", &Result::initial_free_energy)
      .def_property_readonly("evidence_lower_bound", &Result::evidence_lower_bound)
      .def_readonly("warnings", &Result::warnings)
      .def_readonly("inference_ms", &Result::inference_ms)
      .def("__repr__", [](const Result& r) { return "<vfe.Result: " + r.message + ">"; });

  py::class_<PyModel, std::shared_ptr<PyModel>>(
      m, "FactorGraph",
      "A factor graph built from Python (variable, observed, factor) or loaded from JSON "
      "(vfe.load), with its inference settings.")
      .def(py::init([] { return std::make_shared<PyModel>(); }))
      .def(
          "variable",
          [](const std::shared_ptr<PyModel>& self, const std::string& name,
             const std::string& family, int dim, std::optional<std::vector<size_t>> shape) {
            const Family f = ParseFamily(family);
            Model& model = self->model;
            const Variable v = shape ? model.graph.AddVariableArray(name, f, *shape, dim)
                                     : model.graph.AddVariable(name, f, dim);
            model.variables.push_back(v);
            model.shapes.resize(model.graph.num_variables());
            model.shapes[v.id()] = shape ? *shape : std::vector<size_t>{};
            if (self->built)
              self->built->AddHidden(v, name, f, dim, shape ? *shape : std::vector<size_t>{});
            return PyVariable{v, self};
          },
          py::arg("name"), py::arg("family"), py::kw_only(), py::arg("dim") = 1,
          py::arg("shape") = py::none(),
          "A hidden variable: family 'Gaussian', 'MvGaussian', 'Gamma', 'Wishart', 'Beta', "
          "'Bernoulli', 'Categorical' or 'Dirichlet'; dim the event dimension (D of an "
          "MvGaussian, K of a Categorical); shape [N] or [N, M] for an array.")
      .def(
          "observed",
          [](const std::shared_ptr<PyModel>& self, const std::string& name, const py::handle& data,
             std::optional<int> categories) {
            Model& model = self->model;
            Variable v;
            std::vector<size_t> shape;
            const std::string what = "observed '" + name + "'";
            const auto a = Float64Array(data, what);
            python::BuiltDocument::Json values;
            int dim = 1;
            if (categories) {
              if (a.ndim() != 1) throw ModelError(what + ": categorical data must be a 1-D array");
              std::vector<int> outcomes;
              for (py::ssize_t i = 0; i < a.shape(0); ++i) {
                const double x = a.at(i);
                if (x != std::floor(x))
                  throw ModelError(what + "[" + std::to_string(i) + "]: expected an integer "
                                   "outcome, found " + FormatNumber(x));
                outcomes.push_back(static_cast<int>(x));
              }
              v = model.graph.AddObservedCategorical(name, outcomes, *categories);
              shape = {outcomes.size()};
              values = outcomes;
            } else if (a.ndim() == 0) {
              v = model.graph.AddObserved(name, *a.data());
              values = *a.data();
            } else if (a.ndim() == 1) {
              std::vector<double> numbers(a.data(), a.data() + a.size());
              v = model.graph.AddObserved(name, numbers);
              shape = {numbers.size()};
              values = std::move(numbers);
            } else if (a.ndim() == 2) {
              const Matrix rows = ToMatrix(data, what);
              v = model.graph.AddObservedRows(name, rows);
              shape = {static_cast<size_t>(a.shape(0))};
              dim = static_cast<int>(rows.cols());
              values = python::BuiltDocument::RowsJson(rows);
            } else {
              throw ModelError(what + ": expected a number, a 1-D array (N scalars) or a 2-D "
                               "array (N rows), found " + std::to_string(a.ndim()) +
                               " dimensions");
            }
            model.variables.push_back(v);
            model.shapes.resize(model.graph.num_variables());
            model.shapes[v.id()] = shape.size() == 1 && shape[0] == 1 ? std::vector<size_t>{} : shape;
            if (self->built) self->built->AddObserved(v, name, values, shape, dim, categories);
            return PyVariable{v, self};
          },
          py::arg("name"), py::arg("data"), py::kw_only(), py::arg("categories") = py::none(),
          "Observed data: a number, N scalars (1-D), or N rows (2-D: N vectors); with "
          "categories=K, N outcomes 0..K-1. The values are copied.")
      .def(
          "observed_matrix",
          [](const std::shared_ptr<PyModel>& self, const std::string& name, const py::handle& data) {
            Model& model = self->model;
            const Matrix value = ToMatrix(data, "observed '" + name + "'");
            const Variable v = model.graph.AddObserved(name, value);
            model.variables.push_back(v);
            model.shapes.resize(model.graph.num_variables());
            if (self->built)
              self->built->AddObserved(v, name, python::BuiltDocument::RowsJson(value), {},
                                       static_cast<int>(value.rows()), std::nullopt);
            return PyVariable{v, self};
          },
          py::arg("name"), py::arg("data"),
          "One observed vector (a 1-D array, an MvGaussian value) or square matrix (a Wishart "
          "value).")
      .def(
          "factor",
          [](const std::shared_ptr<PyModel>& self, const std::string& type, const std::string& name,
             const py::kwargs& arguments) {
            const std::vector<NamedArgument> named = NamedArguments(*self, type, arguments);
            const PlateId plate = self->model.graph.AddFactor(type, named, name);
            if (self->built) self->built->AddFactor(type, name, named);
            return plate;
          },
          py::arg("type"), py::kw_only(), py::arg("name") = "",
          "Adds factors of a registered node type (vfe.node_types()), its arguments by slot "
          "name: g.factor('Gaussian', out=y, mean=mu, precision=tau). `in` is written in_. "
          "A variable of N elements gives factor n its element n; one element is shared. "
          "Returns the id of the (first) plate.")
      .def(
          "gated_factor",
          [](const std::shared_ptr<PyModel>& self, const std::string& type, const PyVariable& gate,
             const py::sequence& components, const std::string& name) {
            RequireOwner(gate, *self, "gated_factor: gate");
            std::vector<std::vector<NamedArgument>> named;
            for (size_t k = 0; k < components.size(); ++k) {
              const py::object component = components[k];
              if (!py::isinstance<py::dict>(component))
                throw ModelError("gated_factor: component " + std::to_string(k) +
                                 ": expected a dict of arguments by slot name, found " +
                                 std::string(py::str(component.get_type().attr("__name__"))));
              named.push_back(NamedArguments(*self, type, component.cast<py::dict>()));
            }
            const PlateId plate = self->model.graph.AddGatedFactor(type, gate.handle, named, name);
            if (self->built) self->built->AddGatedFactor(type, gate.handle, named, name);
            return plate;
          },
          py::arg("type"), py::kw_only(), py::arg("gate"), py::arg("components"),
          py::arg("name") = "",
          "A mixture of any conjugate node type (Minka & Winn's gates): factor n is "
          "Π_k f(out; θ_k)^[gate_n = k], component k's arguments in components[k] (a dict by "
          "slot name): g.gated_factor('Bernoulli', gate=z, components=[dict(out=x, p=theta[k]) "
          "for k in range(K)]).")
      .def(
          "cluster",
          [](const std::shared_ptr<PyModel>& self, const PyVariable& v, const std::string& solver) {
            RequireOwner(v, *self, "cluster");
            ClusterSolver s = ClusterSolver::kSequential;
            if (solver == "parallel_scan") s = ClusterSolver::kParallelScan;
            else if (solver != "sequential")
              throw GraphError("cluster: unknown solver \"" + solver +
                               "\"; expected one of 'sequential', 'parallel_scan'");
            self->model.graph.AddCluster(v.handle, s);
            if (self->built) self->built->AddCluster(self->model.graph, v.handle, solver);
          },
          py::arg("variable"), py::arg("solver") = "sequential",
          "Gives the elements of an array variable one joint posterior, solved by sum-product "
          "(a Kalman smoother, forward-backward).")
      .def("finalize", [](const std::shared_ptr<PyModel>& self) { self->model.graph.Finalize(); },
           "Validates the graph and sets every posterior to its start (vfe.infer does it on "
           "its first run).")
      .def_property_readonly("finalized",
                             [](const std::shared_ptr<PyModel>& self) {
                               return self->model.graph.finalized();
                             })
      .def(
          "__getitem__",
          [](const std::shared_ptr<PyModel>& self, const std::string& name) {
            const Variable v = self->model.graph.Find(name);
            return PyVariable{v, self};
          },
          py::arg("name"), "The variable called `name`.")
      .def(
          "posterior",
          [](const std::shared_ptr<PyModel>& self, const py::object& which) {
            Variable v;
            if (py::isinstance<py::str>(which)) {
              v = self->model.graph.Find(which.cast<std::string>());
            } else {
              const auto& pv = which.cast<const PyVariable&>();
              RequireOwner(pv, *self, "posterior");
              v = pv.handle;
            }
            return PosteriorObject(*self, v);
          },
          py::arg("variable"),
          "The current posterior of a hidden variable (or element, or run) as a namespace: "
          "family and its parameters (Gaussian: mean, variance; MvGaussian: mean, covariance; "
          "Gamma: shape, rate, mean; Categorical and Bernoulli: p; ...), numpy arrays over the "
          "elements for an array.")
      .def(
          "set_posterior",
          [](const std::shared_ptr<PyModel>& self, const PyVariable& v, const py::kwargs& q) {
            python::SetPosterior(*self, v, q);
          },
          py::arg("variable"),
          "Sets the posterior of a hidden variable (or element, or run), finalising the graph "
          "first: Gaussian mean=, variance=; MvGaussian mean=, covariance=; Gamma shape=, "
          "rate=; Wishart dof=, scale=; Beta a=, b=; Bernoulli and Categorical p=; Dirichlet "
          "alpha=. Each is one value for every element or one per element (leading axis).")
      .def(
          "result_json",
          [](const std::shared_ptr<PyModel>& self, const Result& result, bool trace) {
            ResultJsonOptions options;
            options.trace = trace;
            return ResultJson(self->model, result, options);
          },
          py::arg("result"), py::kw_only(), py::arg("trace") = true,
          "The result as a vfe-result/1 document (the JSON text vfe run writes).")
      .def(
          "to_json",
          [](const std::shared_ptr<PyModel>& self, int indent) { return ModelText(*self, indent); },
          py::kw_only(), py::arg("indent") = -1,
          "The model as one self-contained vfe-model/1 document: the document a loaded model "
          "was read from (its CSV data inlined), or the calls that built it from Python. "
          "vfe.parse(text) builds the same graph (the same F bit for bit). Posteriors are not "
          "in it (pickling keeps them).")
      .def(py::pickle(
          [](const std::shared_ptr<PyModel>& self) {
            // The document and, once finalised, every hidden variable's natural parameters.
            py::dict posteriors;
            const FactorGraph& g = self->model.graph;
            if (g.finalized())
              for (const Variable& v : self->model.variables)
                if (!g.observed(v))
                  posteriors[py::str(g.variable_name(v.id()))] = ToArray(g.NaturalParameters(v));
            return py::make_tuple(ModelText(*self, -1), posteriors);
          },
          [](const py::tuple& state) {
            if (state.size() != 2)
              throw ModelError("unpickling a FactorGraph: expected (document, posteriors)");
            auto model = std::make_shared<PyModel>();
            model->model = ParseModel(state[0].cast<std::string>());
            model->built = nullptr;
            for (const auto& [name, eta] : state[1].cast<py::dict>()) {
              const auto a = Float64Array(eta, "unpickling a FactorGraph");
              model->model.graph.SetNaturalParameters(
                  model->model.graph.Find(name.cast<std::string>()),
                  std::vector<double>(a.data(), a.data() + a.size()));
            }
            return model;
          }))
      .def(
          "predictive_means",
          [](const std::shared_ptr<PyModel>& self, const std::string& type, const PyVariable& in,
             const py::object& rows, const py::object& offsets) {
            RequireOwner(in, *self, "predictive_means");
            const Matrix r = rows.is_none() ? Matrix() : ToMatrix(rows, "rows");
            Vector o;
            if (!offsets.is_none()) {
              const Matrix m = ToMatrix(offsets, "offsets");
              o = Eigen::Map<const Vector>(m.data(), m.size());
            }
            return ToArray(self->model.graph.PredictiveMeans(type, in.handle, r, o));
          },
          py::arg("type"), py::arg("in_"), py::arg("rows") = py::none(),
          py::arg("offsets") = py::none(),
          "Posterior predictive means for new data (FactorGraph::PredictiveMeans): "
          "P(out = 1) for 'Logistic' and 'Probit', the expected count for 'Poisson'.")
      .def_property_readonly("warnings",
                             [](const std::shared_ptr<PyModel>& self) {
                               return self->model.graph.warnings();
                             })
      .def("__repr__", [](const std::shared_ptr<PyModel>& self) {
        const FactorGraph& g = self->model.graph;
        return "<vfe.FactorGraph: " + std::to_string(g.num_variables()) + " variables, " +
               std::to_string(g.num_factors()) + " factors" +
               (g.finalized() ? "" : ", not finalised") + ">";
      });

  m.def(
      "load",
      [](const std::string& path) {
        auto model = std::make_shared<PyModel>();
        model->model = LoadModel(path);
        model->built = nullptr;
        return model;
      },
      py::arg("path"),
      "Loads a model file (vfe-model/1 JSON, or a libDAI .fg) with its inference settings.");
  m.def(
      "parse",
      [](const std::string& text, const std::string& base_directory) {
        auto model = std::make_shared<PyModel>();
        model->model = ParseModel(text, base_directory);
        model->built = nullptr;
        return model;
      },
      py::arg("text"), py::arg("base_directory") = ".",
      "Parses a vfe-model/1 document given as text (CSV paths relative to base_directory).");
  python::BindAgents(m);

  python::BindNodeTypes(m);

  m.def(
      "infer",
      [](const std::shared_ptr<PyModel>& model, std::optional<std::string> scheduler,
         std::optional<int> threads, std::optional<double> tolerance,
         std::optional<int> iterations, std::optional<std::string> algorithm,
         std::optional<double> threshold, std::optional<double> damping,
         std::optional<py::function> callback, std::optional<std::vector<PyVariable>> order) {
        return Run(*model, scheduler, threads, tolerance, iterations, algorithm, threshold,
                   damping, callback, order);
      },
      py::arg("graph"), py::kw_only(), py::arg("scheduler") = py::none(),
      py::arg("threads") = py::none(), py::arg("tolerance") = py::none(),
      py::arg("iterations") = py::none(), py::arg("algorithm") = py::none(),
      py::arg("threshold") = py::none(), py::arg("damping") = py::none(),
      py::arg("callback") = py::none(), py::arg("order") = py::none(),
      "Runs inference (the graph's settings, or those of its JSON file, with these keywords "
      "overriding them for this run only) and returns a Result; the posteriors stay in the graph. The GIL is "
      "released while it runs; `callback(info)` is called after every sweep and stops the run "
      "by returning False; `order` lists the hidden variables updated in each sweep.");
}
