// The summary table of a run (SummaryTable): per hidden variable its mean, standard deviation
// and central 95% credible interval, and the run's outcome.

#include "vfe/io/summary.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "io/index_expression.h"
#include "io/model_document.h"
#include "vfe/core/format.h"
#include "vfe/core/special.h"

namespace vfe {
namespace {

// ---- Quantiles of the Gamma and Beta distributions ------------------------------------------

/// The regularised lower incomplete gamma function P(a, x): its series for x < a + 1, else
/// 1 − Q(a, x) from the continued fraction of Q (Press et al., Numerical Recipes, 3rd ed.,
/// §6.2; Lentz's method).
double RegularizedGammaP(double a, double x) {
  if (x <= 0) return 0.0;
  const double log_prefactor = a * std::log(x) - x - LogGamma(a);
  if (x < a + 1) {
    double term = 1.0 / a, sum = term;
    for (int n = 1; n < 10000 && std::abs(term) > 1e-17 * std::abs(sum); ++n) {
      term *= x / (a + n);
      sum += term;
    }
    return std::min(1.0, sum * std::exp(log_prefactor));
  }
  const double tiny = 1e-300;
  double b = x + 1 - a, c = 1 / tiny, d = 1 / b, h = d;
  for (int i = 1; i < 10000; ++i) {
    const double an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (std::abs(d) < tiny) d = tiny;
    c = b + an / c;
    if (std::abs(c) < tiny) c = tiny;
    d = 1 / d;
    const double delta = d * c;
    h *= delta;
    if (std::abs(delta - 1) < 1e-16) break;
  }
  return std::max(0.0, 1.0 - std::exp(log_prefactor) * h);
}

/// The continued fraction of the incomplete beta function (Numerical Recipes §6.4).
double BetaContinuedFraction(double a, double b, double x) {
  const double tiny = 1e-300;
  double c = 1, d = 1 - (a + b) * x / (a + 1);
  if (std::abs(d) < tiny) d = tiny;
  d = 1 / d;
  double h = d;
  for (int m = 1; m < 10000; ++m) {
    const double m2 = 2.0 * m;
    double aa = m * (b - m) * x / ((a + m2 - 1) * (a + m2));
    d = 1 + aa * d;
    if (std::abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (std::abs(c) < tiny) c = tiny;
    d = 1 / d;
    h *= d * c;
    aa = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1));
    d = 1 + aa * d;
    if (std::abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (std::abs(c) < tiny) c = tiny;
    d = 1 / d;
    const double delta = d * c;
    h *= delta;
    if (std::abs(delta - 1) < 1e-16) break;
  }
  return h;
}

/// The regularised incomplete beta function I_x(a, b).
double RegularizedBeta(double a, double b, double x) {
  if (x <= 0) return 0.0;
  if (x >= 1) return 1.0;
  const double log_front =
      LogGamma(a + b) - LogGamma(a) - LogGamma(b) + a * std::log(x) + b * std::log1p(-x);
  if (x < (a + 1) / (a + b + 2)) return std::exp(log_front) * BetaContinuedFraction(a, b, x) / a;
  return 1 - std::exp(log_front) * BetaContinuedFraction(b, a, 1 - x) / b;
}

/// The x in [low, high] where the increasing `cdf` reaches p, by bisection to the last bit.
template <class Cdf>
double Bisect(const Cdf& cdf, double p, double low, double high) {
  for (int i = 0; i < 2000 && low < high; ++i) {
    const double mid = 0.5 * (low + high);
    if (mid <= low || mid >= high) break;
    (cdf(mid) < p ? low : high) = mid;
  }
  return 0.5 * (low + high);
}

}  // namespace

double GammaQuantile(double shape, double rate, double p) {
  // P(a, x) increases in x: double the upper end until it is past p, then bisect.
  auto cdf = [shape](double x) { return RegularizedGammaP(shape, x); };
  double high = shape + 1;
  while (cdf(high) < p && high < 1e300) high *= 2;
  return Bisect(cdf, p, 0.0, high) / rate;
}

double BetaQuantile(double a, double b, double p) {
  return Bisect([a, b](double x) { return RegularizedBeta(a, b, x); }, p, 0.0, 1.0);
}

namespace {

/// One row of the table: a scalar quantity of a posterior.
struct Row {
  std::string name;
  std::string family;
  double mean = NAN;
  double sd = NAN;
  double lower = NAN;  ///< NaN: no interval
  double upper = NAN;
};

constexpr double kZ975 = 1.959963984540054;  // the 0.975 quantile of N(0, 1)

Row GaussianRow(std::string name, std::string family, double mean, double variance) {
  const double sd = std::sqrt(variance);
  return {std::move(name), std::move(family), mean, sd, mean - kZ975 * sd, mean + kZ975 * sd};
}

Row GammaRow(std::string name, std::string family, double shape, double rate) {
  return {std::move(name),
          std::move(family),
          shape / rate,
          std::sqrt(shape) / rate,
          GammaQuantile(shape, rate, 0.025),
          GammaQuantile(shape, rate, 0.975)};
}

Row BetaRow(std::string name, std::string family, double a, double b) {
  const double n = a + b;
  return {std::move(name),
          std::move(family),
          a / n,
          std::sqrt(a * b / (n * n * (n + 1))),
          BetaQuantile(a, b, 0.025),
          BetaQuantile(a, b, 0.975)};
}

/// The rows of one element: one per component of a vector family (at most `max_components`).
void ElementRows(const FactorGraph& graph, const Variable& element, const std::string& name,
                 size_t max_components, std::vector<Row>& rows, size_t& hidden_components) {
  const Family family = graph.family(element);
  const std::string family_name = FamilyName(family);
  auto component = [&](size_t k) { return name + "(" + std::to_string(k) + ")"; };
  auto limited = [&](size_t count) {
    hidden_components += count > max_components ? count - max_components : 0;
    return std::min(count, max_components);
  };
  switch (family) {
    case Family::kGaussian: {
      const Gaussian q = graph.Posterior<Gaussian>(element);
      rows.push_back(GaussianRow(name, family_name, q.mean(), q.variance()));
      break;
    }
    case Family::kGamma: {
      const Gamma q = graph.Posterior<Gamma>(element);
      rows.push_back(GammaRow(name, family_name, q.shape(), q.rate()));
      break;
    }
    case Family::kBeta: {
      const Beta q = graph.Posterior<Beta>(element);
      rows.push_back(BetaRow(name, family_name, q.a(), q.b()));
      break;
    }
    case Family::kBernoulli: {
      const double p = graph.Posterior<Bernoulli>(element).p();
      rows.push_back({name, family_name, p, std::sqrt(p * (1 - p)), NAN, NAN});
      break;
    }
    case Family::kMvGaussian: {
      const MvGaussian q = graph.Posterior<MvGaussian>(element);
      const Vector mean = q.mean();
      const Matrix covariance = q.covariance();
      const size_t d = limited(static_cast<size_t>(mean.size()));
      for (size_t k = 0; k < d; ++k) {
        const auto i = static_cast<Eigen::Index>(k);
        rows.push_back(GaussianRow(component(k), family_name, mean(i), covariance(i, i)));
      }
      break;
    }
    case Family::kWishart: {
      // The diagonal: Λ_kk ~ V_kk χ²_ν, a Gamma(ν/2, 1/(2 V_kk)).
      const Wishart q = graph.Posterior<Wishart>(element);
      const Matrix scale = q.scale();
      const size_t d = limited(static_cast<size_t>(scale.rows()));
      for (size_t k = 0; k < d; ++k) {
        const auto i = static_cast<Eigen::Index>(k);
        rows.push_back(GammaRow(name + "(" + std::to_string(k) + "," + std::to_string(k) + ")",
                                family_name, q.dof() / 2, 1 / (2 * scale(i, i))));
      }
      break;
    }
    case Family::kCategorical: {
      const Vector p = graph.Posterior<Categorical>(element).p();
      const size_t d = limited(static_cast<size_t>(p.size()));
      for (size_t k = 0; k < d; ++k) {
        const double pk = p(static_cast<Eigen::Index>(k));
        rows.push_back({component(k), family_name, pk, std::sqrt(pk * (1 - pk)), NAN, NAN});
      }
      break;
    }
    case Family::kDirichlet: {
      // Each component's marginal: Beta(α_k, α₀ − α_k).
      const Vector alpha = graph.Posterior<Dirichlet>(element).alpha();
      const double total = alpha.sum();
      const size_t d = limited(static_cast<size_t>(alpha.size()));
      for (size_t k = 0; k < d; ++k) {
        const double ak = alpha(static_cast<Eigen::Index>(k));
        rows.push_back(BetaRow(component(k), family_name, ak, total - ak));
      }
      break;
    }
  }
}

std::string Cell(double x) {
  if (std::isnan(x)) return "";
  char text[32];
  std::snprintf(text, sizeof text, "%.6g", x);
  return text;
}

std::string ElementIndex(const std::vector<size_t>& shape, size_t i) {
  if (shape.size() == 2)
    return "[" + std::to_string(i / shape[1]) + "][" + std::to_string(i % shape[1]) + "]";
  return "[" + std::to_string(i) + "]";
}

}  // namespace

std::string SummaryTable(const Model& model, const Result& result, const SummaryOptions& options) {
  const FactorGraph& graph = model.graph;
  std::vector<Row> rows;
  std::vector<std::string> notes;  // elements and components left out, by variable
  for (const Variable& v : graph.HiddenVariables()) {
    const std::string& name = graph.variable_name(v.id());
    if (!options.variables.empty() && std::find(options.variables.begin(), options.variables.end(),
                                                name) == options.variables.end())
      continue;
    const std::vector<size_t>& shape = model.shapes[v.id()];
    const size_t shown = shape.empty() ? 1 : std::min(v.size(), options.max_elements);
    size_t hidden_components = 0;
    for (size_t i = 0; i < shown; ++i)
      ElementRows(graph, v[i], shape.empty() ? name : name + ElementIndex(shape, i),
                  options.max_components, rows, hidden_components);
    std::string note;
    if (shown < v.size())
      note = std::to_string(v.size() - shown) + " more elements (" + std::to_string(v.size()) +
             " in all, shape " + ShapeText(shape) + ")";
    if (hidden_components > 0)
      note +=
          (note.empty() ? "" : "; ") + std::to_string(hidden_components) + " components not shown";
    if (!note.empty()) rows.push_back({"  " + name + ": " + note, "", NAN, NAN, NAN, NAN});
  }
  // Posterior predictive means ("predictions"), every one: the mean only.
  for (const Prediction& prediction : model.predictions) {
    const std::vector<double> means = PredictiveMeans(model, prediction);
    const size_t shown = std::min(means.size(), options.max_elements);
    for (size_t k = 0; k < shown; ++k)
      rows.push_back({prediction.name + "[" + std::to_string(k) + "]",
                      "predictive " + prediction.node, means[k], NAN, NAN, NAN});
    if (shown < means.size())
      rows.push_back({"  " + prediction.name + ": " + std::to_string(means.size() - shown) +
                          " more predictions (" + std::to_string(means.size()) + " in all)",
                      "", NAN, NAN, NAN, NAN});
  }
  std::ostringstream out;
  out << result.message << "\n";
  const double f =
      result.free_energy.empty() ? result.initial_free_energy : result.free_energy.back();
  out << "F = " << FormatNumber(f) << " (ELBO " << FormatNumber(-f) << "), " << result.iterations
      << (result.iterations == 1 ? " sweep, " : " sweeps, ") << Cell(result.inference_ms)
      << " ms (model built in " << Cell(model.build_ms) << " ms)\n";
  if (rows.empty()) return out.str();
  const char* headers[] = {"variable", "family", "mean", "sd", "2.5%", "97.5%"};
  std::vector<std::vector<std::string>> cells;
  for (const Row& r : rows)
    cells.push_back({r.name, r.family, Cell(r.mean), Cell(r.sd), Cell(r.lower), Cell(r.upper)});
  size_t width[6];
  for (size_t c = 0; c < 6; ++c) {
    width[c] = std::string(headers[c]).size();
    for (size_t r = 0; r < rows.size(); ++r)
      if (!rows[r].family.empty()) width[c] = std::max(width[c], cells[r][c].size());
  }
  auto line = [&](const std::vector<std::string>& fields) {
    std::string text;
    for (size_t c = 0; c < 6; ++c) {
      const std::string& s = fields[c];
      const size_t pad = width[c] > s.size() ? width[c] - s.size() : 0;
      // Names and families to the left, numbers to the right.
      text += c < 2 ? s + std::string(pad, ' ') : std::string(pad, ' ') + s;
      if (c < 5) text += "  ";
    }
    while (!text.empty() && text.back() == ' ') text.pop_back();
    out << text << "\n";
  };
  line({headers[0], headers[1], headers[2], headers[3], headers[4], headers[5]});
  for (size_t r = 0; r < rows.size(); ++r) {
    if (rows[r].family.empty()) {
      out << rows[r].name << "\n";  // a note
      continue;
    }
    line(cells[r]);
  }
  for (const std::string& w : result.warnings) out << "warning: " << w << "\n";
  return out.str();
}

}  // namespace vfe
