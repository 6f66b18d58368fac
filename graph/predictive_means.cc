// Posterior predictive means for new data (FactorGraph::PredictiveMeans): the moments of each
// new predictor under the current posterior, then the node type's own formula.

#include <cmath>
#include <string>
#include <vector>

#include "graph/factor_graph_impl.h"
#include "vfe/core/format.h"
#include "vfe/distributions/gaussian.h"
#include "vfe/distributions/mv_gaussian.h"
#include "vfe/nodes/registry.h"

namespace vfe {

std::vector<double> FactorGraph::PredictiveMeans(const std::string& type, const Variable& in,
                                                 const Matrix& rows, const Vector& offsets) const {
  const std::string where = "PredictiveMeans";
  impl_->CheckFinalized("PredictiveMeans");
  const NodeType* node = FindNodeType(type);
  if (!node || !node->predictive_means)
    throw GraphError(where + ": " +
                     (node ? "node type '" + type + "' has no posterior predictive"
                           : "unknown node type \"" + type + "\"") +
                     "; expected one of " + JoinQuoted(PredictiveNodeTypeNames()));
  impl_->Checked(in, "PredictiveMeans");
  const VariableInfo& info = impl_->variables[in.id()];
  const std::string label = where + " (" + type + "): 'in' ('" + info.name + "')";
  if (info.observed)
    throw GraphError(label + " is observed; expected a hidden Gaussian or MvGaussian variable");
  if (info.family != Family::kGaussian && info.family != Family::kMvGaussian)
    throw GraphError(label + " is " + FamilyName(info.family) +
                     "; expected a hidden Gaussian or MvGaussian variable");
  if (!rows.allFinite() || !offsets.allFinite())
    throw GraphError(where + ": the rows and offsets must be finite numbers");

  // The moments of each predictor a_k before its offset.
  std::vector<double> mean, variance;
  if (rows.size() == 0) {
    if (info.family != Family::kGaussian)
      throw GraphError(label + " is MvGaussian of dimension " + std::to_string(info.dim) +
                       ": give the rows (one of " + std::to_string(info.dim) +
                       " numbers per prediction) that map it to each predictor");
    for (size_t k = 0; k < in.size(); ++k) {
      const Gaussian q = Posterior<Gaussian>(in[k]);
      mean.push_back(q.mean());
      variance.push_back(q.variance());
    }
  } else {
    if (in.size() != 1)
      throw GraphError(label + " has " + std::to_string(in.size()) +
                       " elements; with rows, expected one element (the weights)");
    if (rows.cols() != info.dim)
      throw GraphError(where + ": rows of " + std::to_string(rows.cols()) + " numbers, but 'in' ('" +
                       info.name + "') has dimension " + std::to_string(info.dim));
    Vector m(info.dim);
    Matrix covariance(info.dim, info.dim);
    if (info.family == Family::kGaussian) {
      const Gaussian q = Posterior<Gaussian>(in);
      m(0) = q.mean();
      covariance(0, 0) = q.variance();
    } else {
      const MvGaussian q = Posterior<MvGaussian>(in);
      m = q.mean();
      covariance = q.covariance();
    }
    for (Eigen::Index k = 0; k < rows.rows(); ++k) {
      const Vector r = rows.row(k).transpose();
      mean.push_back(r.dot(m));
      variance.push_back(std::max(0.0, r.dot(covariance * r)));
    }
  }
  const size_t count = mean.size();
  if (offsets.size() != 0 && offsets.size() != 1 && static_cast<size_t>(offsets.size()) != count)
    throw GraphError(where + ": " + std::to_string(offsets.size()) +
                     " offsets; expected none, one, or one per prediction (" +
                     std::to_string(count) + ")");
  for (size_t k = 0; k < count && offsets.size() != 0; ++k)
    mean[k] += offsets(offsets.size() == 1 ? 0 : static_cast<Eigen::Index>(k));
  std::vector<double> out(count);
  node->predictive_means(mean.data(), variance.data(), count, out.data());
  return out;
}

}  // namespace vfe
