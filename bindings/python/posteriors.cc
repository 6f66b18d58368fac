// Posteriors to and from Python: FactorGraph.posterior (a namespace of numpy arrays, the
// parameters ResultJson writes) and FactorGraph.set_posterior (every family, one set of
// parameters for all elements or one per element).

#include <pybind11/pybind11.h>

#include <string>
#include <utility>
#include <vector>

#include "bindings/python/common.h"
#include "vfe/model.h"

namespace vfe {
namespace python {
namespace {

/// The numbers of one element's posterior by name, as ResultJson writes them.
std::vector<std::pair<std::string, std::vector<double>>> PosteriorFields(const FactorGraph& g,
                                                                          const Variable& e) {
  auto flat = [](const Matrix& m) {  // row-major
    std::vector<double> out;
    for (Eigen::Index i = 0; i < m.rows(); ++i)
      for (Eigen::Index j = 0; j < m.cols(); ++j) out.push_back(m(i, j));
    return out;
  };
  auto vec = [](const Vector& v) { return std::vector<double>(v.data(), v.data() + v.size()); };
  switch (g.family(e)) {
    case Family::kGaussian: {
      const Gaussian q = g.Posterior<Gaussian>(e);
      return {{"mean", {q.mean()}}, {"variance", {q.variance()}}};
    }
    case Family::kMvGaussian: {
      const MvGaussian q = g.Posterior<MvGaussian>(e);
      return {{"mean", vec(q.mean())}, {"covariance", flat(q.covariance())}};
    }
    case Family::kGamma: {
      const Gamma q = g.Posterior<Gamma>(e);
      return {{"shape", {q.shape()}}, {"rate", {q.rate()}}, {"mean", {q.mean()}}};
    }
    case Family::kWishart: {
      const Wishart q = g.Posterior<Wishart>(e);
      return {{"dof", {q.dof()}}, {"scale", flat(q.scale())}, {"mean", flat(q.mean())}};
    }
    case Family::kBeta: {
      const Beta q = g.Posterior<Beta>(e);
      return {{"a", {q.a()}}, {"b", {q.b()}}, {"mean", {q.mean()}}};
    }
    case Family::kBernoulli:
      return {{"p", {g.Posterior<Bernoulli>(e).p()}}};
    case Family::kCategorical:
      return {{"p", vec(g.Posterior<Categorical>(e).p())}};
    case Family::kDirichlet: {
      const Dirichlet q = g.Posterior<Dirichlet>(e);
      return {{"alpha", vec(q.alpha())}, {"mean", vec(q.mean())}};
    }
  }
  return {};
}

}  // namespace

/// The element shape first (none for one element), then the field's own (D, or D x D).
py::object PosteriorObject(const PyModel& m, const Variable& v) {
  const FactorGraph& g = m.model.graph;
  if (!g.finalized())
    throw GraphError("posterior: the graph is not finalised yet (run vfe.infer or finalize())");
  if (g.observed(v))
    throw GraphError("posterior: '" + g.variable_name(v.id()) + "' is observed");
  const int dim = g.dim(v);
  const bool single = v.size() == 1;
  std::vector<size_t> element_shape;
  if (!single) {
    const std::vector<size_t>& shape = m.model.shapes[v.id()];
    const bool whole = v.begin() == 0 && shape.size() == 2 && v.size() == shape[0] * shape[1];
    element_shape = whole ? shape : std::vector<size_t>{v.size()};
  }
  std::vector<std::pair<std::string, std::vector<double>>> fields;
  for (size_t i = 0; i < v.size(); ++i) {
    const auto one = PosteriorFields(g, v[i]);
    if (i == 0) {
      fields = one;
      for (auto& f : fields) f.second.reserve(f.second.size() * v.size());
      continue;
    }
    for (size_t f = 0; f < one.size(); ++f)
      fields[f].second.insert(fields[f].second.end(), one[f].second.begin(), one[f].second.end());
  }
  py::dict namespace_fields;
  namespace_fields["family"] = FamilyName(g.family(v));
  for (const auto& [name, values] : fields) {
    const size_t per_element = values.size() / v.size();
    std::vector<py::ssize_t> shape(element_shape.begin(), element_shape.end());
    if (per_element == static_cast<size_t>(dim * dim) && dim > 1 &&
        (name == "covariance" || name == "scale" || (name == "mean" && per_element > 1 &&
                                                     g.family(v) == Family::kWishart))) {
      shape.push_back(dim);
      shape.push_back(dim);
    } else if (per_element > 1) {
      shape.push_back(static_cast<py::ssize_t>(per_element));
    }
    if (shape.empty()) {
      namespace_fields[name.c_str()] = values[0];
      continue;
    }
    py::array_t<double> array(shape);
    std::copy(values.begin(), values.end(), array.mutable_data());
    namespace_fields[name.c_str()] = array;
  }
  return py::module_::import("types").attr("SimpleNamespace")(**namespace_fields);
}

namespace {

/// The parameters of a family that set_posterior takes, and the numbers of each per element.
struct Wanted {
  const char* name;
  size_t width;
};

std::vector<Wanted> ParametersOf(Family family, size_t dim) {
  switch (family) {
    case Family::kGaussian: return {{"mean", 1}, {"variance", 1}};
    case Family::kMvGaussian: return {{"mean", dim}, {"covariance", dim * dim}};
    case Family::kGamma: return {{"shape", 1}, {"rate", 1}};
    case Family::kWishart: return {{"dof", 1}, {"scale", dim * dim}};
    case Family::kBeta: return {{"a", 1}, {"b", 1}};
    case Family::kBernoulli: return {{"p", 1}};
    case Family::kCategorical: return {{"p", dim}};
    case Family::kDirichlet: return {{"alpha", dim}};
  }
  return {};
}

}  // namespace

void SetPosterior(PyModel& m, const PyVariable& v, const py::kwargs& parameters) {
  RequireOwner(v, m, "set_posterior");
  FactorGraph& g = m.model.graph;
  if (!g.finalized()) g.Finalize();
  const Family family = g.family(v.handle);
  const size_t dim = static_cast<size_t>(g.dim(v.handle));
  const size_t n = v.handle.size();
  const std::string what = "set_posterior('" + g.variable_name(v.handle.id()) + "')";
  if (g.observed(v.handle)) throw GraphError(what + ": the variable is observed");
  const std::vector<Wanted> wanted = ParametersOf(family, dim);
  std::string names;
  for (const Wanted& w : wanted) names += (names.empty() ? "" : ", ") + std::string(w.name);
  for (const auto& item : parameters) {
    const std::string key = item.first.cast<std::string>();
    if (std::none_of(wanted.begin(), wanted.end(), [&](const Wanted& w) { return key == w.name; }))
      throw ModelError(what + ": unknown parameter '" + key + "' for a " + FamilyName(family) +
                       " posterior; expected " + names);
  }
  // Each parameter as flat numbers: `width` for every element, or n·width, one set each.
  std::vector<std::vector<double>> values;
  for (const Wanted& w : wanted) {
    if (!parameters.contains(w.name))
      throw ModelError(what + ": a " + std::string(FamilyName(family)) + " posterior needs " +
                       names + "; '" + w.name + "' is missing");
    const auto a = Float64Array(parameters[w.name], what + ": " + w.name);
    const size_t size = static_cast<size_t>(a.size());
    if (size != w.width && size != n * w.width)
      throw ModelError(what + ": '" + w.name + "' must have " + std::to_string(w.width) +
                       " numbers for every element, or " + std::to_string(n * w.width) +
                       " (one set for each of the " + std::to_string(n) + " elements), found " +
                       std::to_string(size));
    values.emplace_back(a.data(), a.data() + size);
  }
  auto at = [&](size_t p, size_t i) {
    const std::vector<double>& x = values[p];
    return x.data() + (x.size() == wanted[p].width ? 0 : i * wanted[p].width);
  };
  const Eigen::Index d = static_cast<Eigen::Index>(dim);
  for (size_t i = 0; i < n; ++i) {
    const Variable e = v.handle[i];
    try {
      switch (family) {
        case Family::kGaussian:
          if (!(*at(1, i) > 0))
            throw ModelError("the variance must be > 0, got " + FormatNumber(*at(1, i)));
          g.SetPosterior(e, Gaussian(*at(0, i), 1.0 / *at(1, i)));
          break;
        case Family::kMvGaussian: {
          const Matrix covariance = Eigen::Map<const Matrix>(at(1, i), d, d).transpose();
          if (!covariance.isApprox(covariance.transpose(), 1e-12) ||
              covariance.llt().info() != Eigen::Success)
            throw ModelError("the covariance must be symmetric positive definite");
          g.SetPosterior(e, MvGaussian(Eigen::Map<const Vector>(at(0, i), d),
                                       covariance.llt().solve(Matrix::Identity(d, d))));
          break;
        }
        case Family::kGamma: g.SetPosterior(e, Gamma(*at(0, i), *at(1, i))); break;
        case Family::kWishart:
          g.SetPosterior(e, Wishart(*at(0, i), Eigen::Map<const Matrix>(at(1, i), d, d).transpose()));
          break;
        case Family::kBeta: g.SetPosterior(e, Beta(*at(0, i), *at(1, i))); break;
        case Family::kBernoulli: g.SetPosterior(e, Bernoulli(*at(0, i))); break;
        case Family::kCategorical:
          g.SetPosterior(e, Categorical(Eigen::Map<const Vector>(at(0, i), d)));
          break;
        case Family::kDirichlet:
          g.SetPosterior(e, Dirichlet(Eigen::Map<const Vector>(at(0, i), d)));
          break;
      }
    } catch (const ModelError& error) {
      throw ModelError(what + ": element " + std::to_string(i) + ": " + error.what());
    }
  }
}

}  // namespace python
}  // namespace vfe
