// The model loader (io/model_loader.h): factorisation, inference settings and starting
// posteriors.

#include <algorithm>
#include <climits>
#include <cmath>
#include <string_view>

#include "io/model_loader.h"
#include "vfe/core/format.h"

namespace vfe {

void Loader::ReadFactorisation(const Json& value) {
  const std::string pointer = "/factorisation";
  if (!value.is_array())
    Fail(pointer,
         "expected an array of clusters (lists of variable names, or objects "
         "{\"variables\": [...], \"solver\": ...}), found " +
             Found(value));
  std::map<std::string, std::string> listed;  // name -> where
  for (size_t i = 0; i < value.size(); ++i) {
    const std::string p = pointer + "/" + std::to_string(i);
    // The list of names and its pointer: the entry itself, or its "variables".
    const Json* names = &value[i];
    std::string names_pointer = p;
    ClusterSolver solver = ClusterSolver::kSequential;
    if (value[i].is_object()) {
      CheckKeys(value[i], p, {"variables", "solver"});
      names = &Required(value[i], "variables", p);
      names_pointer = p + "/variables";
      if (value[i].contains("solver"))
        solver = ReadClusterSolver(value[i]["solver"], p + "/solver");
    } else if (!value[i].is_array()) {
      Fail(p,
           "expected a list of variable names or an object {\"variables\": [...], "
           "\"solver\": ...}, found " +
               Found(value[i]));
    }
    if (!names->is_array() || names->empty())
      Fail(names_pointer, "expected a list of variable names, found " + Found(*names));
    for (size_t j = 0; j < names->size(); ++j) {
      const Json& n = (*names)[j];
      const std::string pj = names_pointer + "/" + std::to_string(j);
      if (!n.is_string()) Fail(pj, "expected a variable name, found " + Found(n));
      const std::string name = n.get<std::string>();
      const auto it = entries_.find(name);
      if (it == entries_.end())
        Fail(pj, "unknown variable '" + name + "'" + DidYouMean(name, names_));
      if (listed.count(name))
        Fail(pj, "variable '" + name + "' is already in the cluster at " + listed[name] +
                     "; a variable belongs to one cluster");
      listed[name] = p;
    }
    if (names->size() > 1)
      Fail(names_pointer,
           "expected one variable per cluster (the joint posterior over the elements of "
           "an array variable, e.g. [\"x\"]), found " +
               Found(*names) + "; clusters of several variables are not supported yet");
    const std::string name = (*names)[0].get<std::string>();
    const VariableEntry& entry = entries_.at(name);
    if (entry.observed)
      Fail(names_pointer + "/0",
           "expected a hidden variable, found the observed variable '" + name + "'");
    if (entry.shape.empty()) continue;  // one element: mean field already
    cluster_pointers_[name] = p;
    try {
      model_.graph.AddCluster(entry.variable, solver);
    } catch (const Error& e) {
      Fail(names_pointer + "/0", SolverInJsonTerms(e.what()));
    }
  }
}

ClusterSolver Loader::ReadClusterSolver(const Json& value, const std::string& pointer) {
  const std::vector<std::string> known = {"sequential", "parallel_scan"};
  if (!value.is_string())
    Fail(pointer, "expected a solver name (" + JoinQuoted(known) + "), found " + Found(value));
  const std::string name = value.get<std::string>();
  if (name == "sequential") return ClusterSolver::kSequential;
  if (name == "parallel_scan") return ClusterSolver::kParallelScan;
  Fail(pointer, "unknown solver \"" + name + "\"" + DidYouMean(name, known) + "; expected one of " +
                    JoinQuoted(known));
}

std::string Loader::SolverInJsonTerms(std::string message) {
  const std::pair<std::string_view, std::string_view> names[] = {
      {"ClusterSolver::kSequential", "\"solver\": \"sequential\""},
      {"ClusterSolver::kParallelScan", "\"solver\": \"parallel_scan\""}};
  for (const auto& [cpp_name, json_name] : names)
    for (size_t at = message.find(cpp_name); at != std::string::npos;
         at = message.find(cpp_name, at + json_name.size()))
      message.replace(at, cpp_name.size(), json_name);
  return message;
}

void Loader::ReadInference(const Json& value, const std::string& pointer) {
  RequireObject(value, pointer, "an object");
  CheckKeys(value, pointer,
            {"iterations", "tolerance", "scheduler", "threads", "algorithm", "threshold", "damping",
             "order", "initial"});
  InferenceSettings& s = model_.inference;
  if (value.contains("iterations"))
    s.options.max_iterations = Integer<int>(value["iterations"], pointer + "/iterations",
                                            "a positive integer", 1, 100000000);
  if (value.contains("tolerance")) {
    const double t = Number(value["tolerance"], pointer + "/tolerance", "a number >= 0");
    if (t < 0) Fail(pointer + "/tolerance", "expected a number >= 0, found " + FormatNumber(t));
    s.options.tolerance = t;
  }
  if (value.contains("scheduler"))
    s.scheduler = static_cast<SchedulerKind>(
        Choice(value["scheduler"], pointer + "/scheduler", {"sequential", "parallel", "async"}));
  if (value.contains("threads"))
    s.threads = Integer<int>(value["threads"], pointer + "/threads", "an integer >= 0", 0);
  if (value.contains("algorithm"))
    s.algorithm =
        static_cast<Algorithm>(Choice(value["algorithm"], pointer + "/algorithm", {"vmp", "bp"}));
  if (value.contains("threshold")) {
    const double t = Number(value["threshold"], pointer + "/threshold", "a number >= 0");
    if (t < 0) Fail(pointer + "/threshold", "expected a number >= 0, found " + FormatNumber(t));
    if (s.scheduler != SchedulerKind::kAsync)
      Fail(pointer + "/threshold",
           "only the async scheduler takes a threshold (add "
           "\"scheduler\": \"async\")");
    s.threshold = t;
  }
  if (value.contains("damping")) {
    const double d = Number(value["damping"], pointer + "/damping", "a number in [0, 1)");
    if (!(d >= 0 && d < 1))
      Fail(pointer + "/damping", "expected a number in [0, 1), found " + FormatNumber(d));
    if (s.algorithm != Algorithm::kBeliefPropagation)
      Fail(pointer + "/damping",
           "only belief propagation damps its messages (add "
           "\"algorithm\": \"bp\")");
    s.damping = d;
  }
  if (s.algorithm == Algorithm::kBeliefPropagation && s.scheduler == SchedulerKind::kAsync)
    Fail(pointer + "/scheduler",
         "expected \"sequential\" or \"parallel\" (flooding) for "
         "belief propagation, found \"async\"");
  if (value.contains("order")) {
    const Json& order = value["order"];
    if (!order.is_array())
      Fail(pointer + "/order", "expected an array of variable names, found " + Found(order));
    for (size_t i = 0; i < order.size(); ++i) {
      const std::string p = pointer + "/order/" + std::to_string(i);
      if (!order[i].is_string()) Fail(p, "expected a variable name, found " + Found(order[i]));
      const std::string n = order[i].get<std::string>();
      auto it = entries_.find(n);
      if (it == entries_.end()) Fail(p, "unknown variable '" + n + "'" + DidYouMean(n, names_));
      if (it->second.observed) Fail(p, "'" + n + "' is observed and has nothing to update");
      if (it->second.fixed)
        Fail(p, "'" + n + "' is declared \"fixed\" (at " + it->second.pointer +
                    ") and is never updated");
      s.options.order.push_back(it->second.variable);
    }
  }
  if (value.contains("initial")) ReadInitial(value["initial"], pointer + "/initial");
}

void Loader::SettleOrder(bool order_given) {
  SchedulerOptions& options = model_.inference.options;
  std::vector<Variable> started;
  std::vector<Variable> others;
  for (const std::string& name : names_) {
    const VariableEntry& entry = entries_.at(name);
    if (entry.observed || !entry.variable.valid()) continue;
    if (entry.fixed) {
      options.fixed.push_back(entry.variable);
      continue;
    }
    if (order_given) {
      const bool listed =
          std::any_of(options.order.begin(), options.order.end(),
                      [&](const Variable& v) { return v.id() == entry.variable.id(); });
      if (!listed)
        Fail("/inference/order",
             "leaves out hidden variable '" + name +
                 "', which would then keep its starting posterior; add it to the order, or "
                 "declare it \"fixed\": true (at " +
                 entry.pointer + ")");
      continue;
    }
    (initialised_.count(name) ? started : others).push_back(entry.variable);
  }
  if (!order_given && !started.empty() && !others.empty()) {
    options.order = others;
    options.order.insert(options.order.end(), started.begin(), started.end());
  }
}

void Loader::SetRandomInitial(const std::string& name, const VariableEntry& entry, const Json& q,
                              const std::string& p) {
  CheckKeys(q, p, {"random"});
  const Json& random = q["random"];
  RequireObject(random, p + "/random", "an object {\"seed\": S}");
  CheckKeys(random, p + "/random", {"seed"});
  const auto seed = random.contains("seed")
                        ? Integer<uint64_t>(random["seed"], p + "/random/seed", "an integer >= 0")
                        : uint64_t{0};
  if (entry.matrix_dirichlet ||
      (entry.family != Family::kCategorical && entry.family != Family::kGaussian &&
       entry.family != Family::kMvGaussian))
    Fail(p + "/random", "expected a Categorical, Gaussian or MvGaussian variable, found " +
                            Describe(name, entry) + " (give its starting posterior instead)");
  model_.graph.SetRandomPosterior(entry.variable, seed);
}

std::vector<Matrix> Loader::PerElement(const Json& value, const std::string& pointer, size_t size,
                                       int rows, int cols, const std::string& what) {
  auto read_one = [&](const Json& v, const std::string& p) -> Matrix {
    if (rows == 1 && cols == 1) return Matrix::Constant(1, 1, Number(v, p, what));
    if (cols == 1) {
      const Vector x = Numbers(v, p);
      if (x.size() != rows)
        Fail(p, "expected " + std::to_string(rows) + " numbers, found " + std::to_string(x.size()));
      return x;
    }
    const Matrix m = Rows(v, p);
    if (m.rows() != rows || m.cols() != cols)
      Fail(p, "expected a " + std::to_string(rows) + "x" + std::to_string(cols) +
                  " matrix, found " + std::to_string(m.rows()) + "x" + std::to_string(m.cols()));
    return m;
  };
  if (value.is_object()) {
    if (cols != 1) Fail(pointer, "CSV gives numbers or vectors; expected a matrix here");
    const CsvTable table = ReadCsvSpec(value, pointer);
    const size_t column = 0, width = table.cols;
    if (table.rows() != size || static_cast<int>(width) != rows)
      Fail(pointer + "/csv", "expected " + std::to_string(size) + " rows of " +
                                 std::to_string(rows) + " values, found " +
                                 std::to_string(table.rows()) + " rows of " +
                                 std::to_string(width));
    std::vector<Matrix> out(size, Matrix(rows, 1));
    for (size_t i = 0; i < size; ++i)
      for (int j = 0; j < rows; ++j) out[i](j, 0) = table.values[i * table.cols + column + j];
    document_->csv_values[pointer] = {width, rows == 1, table.values};
    return out;
  }
  const bool one_for_all = (rows == 1 && cols == 1) ? value.is_number()
                           : (cols == 1)
                               ? IsNumberArray(value)
                               : (value.is_array() && !value.empty() && IsNumberArray(value[0]));
  if (one_for_all) return std::vector<Matrix>(size, read_one(value, pointer));
  if (!value.is_array() || value.size() != size)
    Fail(pointer, "expected " + what + " for all elements or an array of " + std::to_string(size) +
                      " (one per element), found " + Found(value));
  std::vector<Matrix> out;
  for (size_t i = 0; i < size; ++i)
    out.push_back(read_one(value[i], pointer + "/" + std::to_string(i)));
  return out;
}

void Loader::ReadInitial(const Json& value, const std::string& pointer) {
  RequireObject(value, pointer, "an object of variable names");
  for (auto it = value.begin(); it != value.end(); ++it) {
    const std::string p = pointer + "/" + it.key();
    auto e = entries_.find(it.key());
    if (e == entries_.end())
      Fail(p, "unknown variable '" + it.key() + "'" + DidYouMean(it.key(), names_));
    const VariableEntry& entry = e->second;
    if (entry.observed) Fail(p, "'" + it.key() + "' is observed: it has no posterior to start");
    const Json& q = it.value();
    initialised_[it.key()] = p;
    if (q.is_object() && q.contains("random")) {
      SetRandomInitial(it.key(), entry, q, p);
      continue;
    }
    if (!q.is_array() || entry.shape.empty() || entry.matrix_dirichlet) {
      SetInitial(it.key(), entry, q, p, entry.variable);
      continue;
    }
    // One posterior object per element, as a result gives them (nested for [N, M]).
    const bool nested = entry.shape.size() == 2;
    if (q.size() != entry.shape[0])
      Fail(p, "expected an object of parameters or an array of " + std::to_string(entry.shape[0]) +
                  " posteriors (shape " + ShapeText(entry.shape) + "), found " + Found(q));
    for (size_t i = 0; i < q.size(); ++i) {
      const std::string pi = p + "/" + std::to_string(i);
      if (!nested) {
        SetInitial(it.key(), entry, q[i], pi, entry.variable[i]);
        continue;
      }
      if (!q[i].is_array() || q[i].size() != entry.shape[1])
        Fail(pi, "expected an array of " + std::to_string(entry.shape[1]) + " posteriors (shape " +
                     ShapeText(entry.shape) + "), found " + Found(q[i]));
      for (size_t j = 0; j < q[i].size(); ++j)
        SetInitial(it.key(), entry, q[i][j], pi + "/" + std::to_string(j),
                   entry.variable[i * entry.shape[1] + j]);
    }
  }
}

void Loader::SetInitial(const std::string& name, const VariableEntry& entry, const Json& q,
                        const std::string& p, const Variable& target) {
  RequireObject(q, p, "a distribution object");
  const Family family = entry.family;
  const std::string family_name = entry.matrix_dirichlet ? kMatrixDirichlet : FamilyName(family);
  if (q.contains("family") && q["family"] != family_name)
    Fail(p + "/family", "expected \"" + family_name + "\" (the family of '" + name + "'), found " +
                            Found(q["family"]));
  const size_t size = target.size();
  const int d = entry.dim;
  try {
    if (entry.matrix_dirichlet) {
      // One K x L matrix, oriented as the prior's alpha.
      CheckKeys(q, p, {"family", "alpha", "mean"});
      const Matrix alpha = Rows(Required(q, "alpha", p), p + "/alpha");
      if (alpha.rows() != d || static_cast<size_t>(alpha.cols()) != size)
        Fail(p + "/alpha", "expected " + std::to_string(d) + " rows of " + std::to_string(size) +
                               " (dim [" + std::to_string(d) + ", " + std::to_string(size) +
                               "]), found " + std::to_string(alpha.rows()) + " rows of " +
                               std::to_string(alpha.cols()));
      Matrix mean(alpha.rows(), alpha.cols());
      for (size_t k = 0; k < size; ++k) {
        const Dirichlet column(alpha.col(static_cast<Eigen::Index>(k)));
        model_.graph.SetPosterior(target[k], column);
        mean.col(static_cast<Eigen::Index>(k)) = column.mean();
      }
      if (q.contains("mean")) CheckDerivedMean({Rows(q["mean"], p + "/mean")}, {mean}, p);
    } else if (family == Family::kGaussian) {
      CheckKeys(q, p, {"family", "mean", "variance", "precision"});
      const bool by_variance = q.contains("variance");
      if (by_variance == q.contains("precision"))
        Fail(p, "expected exactly one of 'variance' and 'precision'");
      const std::string spread = by_variance ? "variance" : "precision";
      const auto mean = PerElement(Required(q, "mean", p), p + "/mean", size, 1, 1, "a number");
      const auto s = PerElement(q[spread], p + "/" + spread, size, 1, 1, "a positive number");
      for (size_t i = 0; i < size; ++i) {
        const double x = s[i](0, 0);
        if (!(x > 0)) Fail(p + "/" + spread, "expected positive numbers, found " + FormatNumber(x));
        model_.graph.SetPosterior(target[i], Gaussian(mean[i](0, 0), by_variance ? 1 / x : x));
      }
    } else if (family == Family::kGamma) {
      CheckKeys(q, p, {"family", "shape", "rate", "mean"});
      const auto shape =
          PerElement(Required(q, "shape", p), p + "/shape", size, 1, 1, "a positive number");
      const auto rate =
          PerElement(Required(q, "rate", p), p + "/rate", size, 1, 1, "a positive number");
      std::vector<Matrix> means;
      for (size_t i = 0; i < size; ++i) {
        const Gamma q_i(shape[i](0, 0), rate[i](0, 0));
        model_.graph.SetPosterior(target[i], q_i);
        means.push_back(Matrix::Constant(1, 1, q_i.mean()));
      }
      if (q.contains("mean"))
        CheckDerivedMean(PerElement(q["mean"], p + "/mean", size, 1, 1, "a number"), means, p);
    } else if (family == Family::kMvGaussian) {
      CheckKeys(q, p, {"family", "mean", "covariance", "precision"});
      const bool by_covariance = q.contains("covariance");
      if (by_covariance == q.contains("precision"))
        Fail(p, "expected exactly one of 'covariance' and 'precision'");
      const std::string spread = by_covariance ? "covariance" : "precision";
      const auto mean = PerElement(Required(q, "mean", p), p + "/mean", size, d, 1, "a vector");
      const auto s = PerElement(q[spread], p + "/" + spread, size, d, d, "a matrix");
      for (size_t i = 0; i < size; ++i) {
        ValidatePositiveDefinite(s[i], "initial " + spread + " of '" + name + "'");
        const Matrix precision =
            by_covariance ? Matrix(s[i].llt().solve(Matrix::Identity(d, d))) : s[i];
        model_.graph.SetPosterior(target[i], MvGaussian(mean[i], precision));
      }
    } else if (family == Family::kWishart) {
      CheckKeys(q, p, {"family", "dof", "scale", "mean"});
      const auto dof = PerElement(Required(q, "dof", p), p + "/dof", size, 1, 1, "a number");
      const auto scale = PerElement(Required(q, "scale", p), p + "/scale", size, d, d, "a matrix");
      std::vector<Matrix> means;
      for (size_t i = 0; i < size; ++i) {
        const Wishart q_i(dof[i](0, 0), scale[i]);
        model_.graph.SetPosterior(target[i], q_i);
        means.push_back(q_i.mean());
      }
      if (q.contains("mean"))
        CheckDerivedMean(PerElement(q["mean"], p + "/mean", size, d, d, "a matrix"), means, p);
    } else if (family == Family::kBeta) {
      CheckKeys(q, p, {"family", "a", "b", "mean"});
      const auto a = PerElement(Required(q, "a", p), p + "/a", size, 1, 1, "a positive number");
      const auto b = PerElement(Required(q, "b", p), p + "/b", size, 1, 1, "a positive number");
      std::vector<Matrix> means;
      for (size_t i = 0; i < size; ++i) {
        const Beta q_i(a[i](0, 0), b[i](0, 0));
        model_.graph.SetPosterior(target[i], q_i);
        means.push_back(Matrix::Constant(1, 1, q_i.mean()));
      }
      if (q.contains("mean"))
        CheckDerivedMean(PerElement(q["mean"], p + "/mean", size, 1, 1, "a number"), means, p);
    } else if (family == Family::kBernoulli) {
      CheckKeys(q, p, {"family", "p"});
      const auto prob = PerElement(Required(q, "p", p), p + "/p", size, 1, 1, "a probability");
      for (size_t i = 0; i < size; ++i)
        model_.graph.SetPosterior(target[i], Bernoulli(prob[i](0, 0)));
    } else if (family == Family::kCategorical) {
      CheckKeys(q, p, {"family", "p"});
      const auto prob = PerElement(Required(q, "p", p), p + "/p", size, d, 1, "probabilities");
      for (size_t i = 0; i < size; ++i) model_.graph.SetPosterior(target[i], Categorical(prob[i]));
    } else if (family == Family::kDirichlet) {
      CheckKeys(q, p, {"family", "alpha", "mean"});
      const auto alpha = PerElement(Required(q, "alpha", p), p + "/alpha", size, d, 1, "a vector");
      std::vector<Matrix> means;
      for (size_t i = 0; i < size; ++i) {
        const Dirichlet q_i(alpha[i]);
        model_.graph.SetPosterior(target[i], q_i);
        means.push_back(q_i.mean());
      }
      if (q.contains("mean"))
        CheckDerivedMean(PerElement(q["mean"], p + "/mean", size, d, 1, "a vector"), means, p);
    }
  } catch (const ModelError& error) {
    const std::string message = error.what();
    if (message.rfind("/", 0) == 0) throw;
    Fail(p, message);
  } catch (const Error& error) {
    Fail(p, error.what());
  }
}

void Loader::CheckDerivedMean(const std::vector<Matrix>& given, const std::vector<Matrix>& means,
                              const std::string& pointer) {
  for (size_t i = 0; i < means.size(); ++i) {
    const std::string element = means.size() > 1 ? " of element " + std::to_string(i) : "";
    if (given[i].rows() != means[i].rows() || given[i].cols() != means[i].cols())
      Fail(pointer + "/mean", "expected a " + std::to_string(means[i].rows()) + "x" +
                                  std::to_string(means[i].cols()) + " mean" + element + ", found " +
                                  std::to_string(given[i].rows()) + "x" +
                                  std::to_string(given[i].cols()));
    for (Eigen::Index r = 0; r < means[i].rows(); ++r)
      for (Eigen::Index c = 0; c < means[i].cols(); ++c) {
        const double m = means[i](r, c), g = given[i](r, c);
        if (!(std::abs(g - m) <= 1e-9 * std::max(1.0, std::abs(m))))
          Fail(pointer + "/mean",
               "expected the mean the other parameters give" + element + ", " + FormatNumber(m) +
                   ", found " + FormatNumber(g) +
                   (means[i].size() > 1 ? " (entry " + std::to_string(r * means[i].cols() + c) + ")"
                                        : std::string()));
      }
  }
}

}  // namespace vfe
