// Deterministic Gaussian nodes: out = in1 + in2 (Sum) and out = A·in (MatrixProduct), by
// sum-product.
//
// A deterministic factor δ(out − f(in)) has no VMP message worth the name (the mean-field
// message to out would be a point mass at f(E[in])), so these nodes send sum-product
// messages: the message to one slot combines the messages coming in from the others, and
// the message coming in from slot s is q(s) divided by the message the node last sent to s,
// which the node keeps (per factor and slot). On a tree of such nodes and Gaussian factors
// with known parameters this is belief propagation, exact; the other factors' messages stay
// VMP messages from the current marginals.
//
// In information form (h, Λ) of log m(x) = hᵀx − ½ xᵀΛx, with incoming messages a and b:
//   Sum, to out = in1 + in2:   the density of in1 + in2, Convolve(a = m_in1, b = m_in2):
//       Λ = Λb − Λb S⁻¹ Λb,  h = hb + Λb S⁻¹ (ha − hb),  S = Λa + Λb;
//   Sum, to in1 = out − in2:   Convolve(m_out, m_in2 reflected: (−h, Λ)); to in2 alike;
//   MatrixProduct, to in:      m_out(A x):  Λ = Aᵀ Λo A,  h = Aᵀ ho;
//   MatrixProduct, to out:     the image of m_in under A: N(A μ, A Λi⁻¹ Aᵀ) (A of full row
//                              rank, so that the image is a density of out).
//
// The share of the free energy. In the Bethe form F = Σ_a (U_a − H[b_a]) + Σ_i (d_i − 1) H[q_i],
// a deterministic factor's joint b_a lives on the set out = f(in): parametrised by its
// inputs, U_a − H[b_a] = −H[b_a(in)] (the δ contributes no energy on that set). Writing F as
// the engine does, Σ_plates U − Σ_hidden H[q_i], the node's term is therefore
//   U = Σ_{i ∈ a} H[q_i] − H[b_a(in)],
// with b_a(in) ∝ Π_{inputs} m_in(x) · m_out(f(x)): for Sum the 2D-dimensional Gaussian of
// precision [Λ1 + Λo, Λo; Λo, Λ2 + Λo], for MatrixProduct the D-dimensional one of precision
// Λi + Aᵀ Λo A. On a tree at the fixed point F = −log p(y).
//
// The posteriors reach the node as moments E[x], E[xxᵀ]; their information form comes from
// the covariance E[xxᵀ] − E[x]E[x]ᵀ, which loses digits when the variance is tiny next to
// the squared mean (a relative error of about 1e-16 · |E[x]|² / Var[x]).

#include <cmath>
#include <string>
#include <vector>

#include <Eigen/Cholesky>
#include <Eigen/LU>

#include "nodes/node_checks.h"
#include "vfe/core/special.h"
#include "vfe/nodes/nodes.h"

namespace vfe {
namespace {

/// Largest event dimension of a deterministic node: its small matrices live on the stack.
constexpr int kMaxDim = 16;
using SmallMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor,
                                  kMaxDim, kMaxDim>;
using SmallVector = Eigen::Matrix<double, Eigen::Dynamic, 1, Eigen::ColMajor, kMaxDim, 1>;

/// A Gaussian message or belief in information form.
struct Information {
  SmallVector h;
  SmallMatrix precision;
};

/// Stored messages: per factor and slot, h (D numbers) then Λ (D² numbers).
class SentMessages {
 public:
  void Reset(size_t num_factors, const std::vector<int>& dims) {
    offsets_.assign(dims.size() + 1, 0);
    for (size_t s = 0; s < dims.size(); ++s)
      offsets_[s + 1] = offsets_[s] + static_cast<size_t>(dims[s]) * (1 + dims[s]);
    dims_ = dims;
    data_.assign(num_factors * offsets_.back(), 0.0);
  }
  double* At(size_t n, int slot) { return data_.data() + n * offsets_.back() + offsets_[slot]; }
  const double* At(size_t n, int slot) const {
    return data_.data() + n * offsets_.back() + offsets_[slot];
  }
  void Store(size_t n, int slot, const Information& m) {
    const int d = dims_[static_cast<size_t>(slot)];
    double* p = At(n, slot);
    VectorMap(p, d) = m.h;
    MatrixMap(p + d, d, d) = m.precision;
  }

 private:
  std::vector<size_t> offsets_;
  std::vector<int> dims_;
  std::vector<double> data_;
};

/// Adds a message in information form to natural parameters (h, −Λ/2).
void AddToNatural(const Information& m, double* eta) {
  const int d = static_cast<int>(m.h.size());
  VectorMap(eta, d) += m.h;
  MatrixMap(eta + d, d, d) -= 0.5 * m.precision;
}

/// The covariance E[xxᵀ] − E[x]E[x]ᵀ from the moments of a Gaussian.
void Covariance(int d, const double* moments, SmallMatrix* cov) {
  const ConstVectorMap mean(moments, d);
  *cov = ConstMatrixMap(moments + d, d, d);
  cov->noalias() -= mean * mean.transpose();
}

/// Entropy of a D-dimensional Gaussian with the given log det of its precision.
double GaussianEntropy(int d, double log_det_precision) {
  return 0.5 * d * (1.0 + kLog2Pi) - 0.5 * log_det_precision;
}

/// log det of a positive definite matrix; false when it is not.
bool LogDet(const SmallMatrix& m, double* log_det) {
  Eigen::LLT<SmallMatrix> llt(m);
  if (llt.info() != Eigen::Success) return false;
  *log_det = 2.0 * llt.matrixLLT().diagonal().array().log().sum();
  return std::isfinite(*log_det);
}

/// The density of a + b for independent a ~ ma, b ~ mb (either may be improper along
/// directions the other pins down): marginalising a from ma(a) mb(s − a).
bool Convolve(const Information& ma, const Information& mb, Information* out) {
  const SmallMatrix sum = ma.precision + mb.precision;
  Eigen::LLT<SmallMatrix> llt(sum);
  if (llt.info() != Eigen::Success) return false;
  const SmallMatrix gain = llt.solve(mb.precision);  // S⁻¹ Λb
  out->precision = mb.precision - mb.precision * gain;
  out->precision = 0.5 * (out->precision + out->precision.transpose()).eval();
  out->h = mb.h + gain.transpose() * (ma.h - mb.h);
  return out->h.allFinite() && out->precision.allFinite();
}

/// What the deterministic nodes share: the stored messages, the incoming messages, the
/// entropies of the slots' posteriors.
class DeterministicNode : public Node {
 public:
  bool IsDirected() const override { return true; }
  Family ObservedFamily(int, const PointMass& value) const override {
    return value.is_scalar() ? Family::kGaussian : Family::kMvGaussian;
  }

 protected:
  /// Checks one slot: a hidden Gaussian or MvGaussian variable of dimension `dim` ≤ kMaxDim.
  void RequireHiddenGaussian(const SlotInfo& slot, int dim, const std::string& where) const {
    RequireFamily(slot, {Family::kGaussian, Family::kMvGaussian}, where);
    if (slot.observed)
      throw GraphError(where + ": '" + slot.name + "' is " + slot.variable +
                       ", which is observed or constant; the slots of a deterministic " +
                       type() + " node take hidden Gaussian variables (observe a result "
                       "through a Gaussian factor with a precision instead)");
    RequireDim(slot, dim, where);
    if (dim > kMaxDim)
      throw GraphError(where + ": '" + slot.name + "' has dimension " + std::to_string(dim) +
                       "; deterministic nodes handle dimensions up to " +
                       std::to_string(kMaxDim));
  }

  /// The message coming in from `slot` to factor n: q(slot) over what the node last sent it.
  void Incoming(size_t n, int slot, const SlotView* q, Information* m) const {
    const int d = dims_[static_cast<size_t>(slot)];
    SmallMatrix cov;
    Covariance(d, q[slot].At(n), &cov);
    Eigen::LLT<SmallMatrix> llt(cov);
    if (llt.info() != Eigen::Success)
      throw ModelError(where_ + ": the posterior of '" + slot_names()[slot] +
                       "' has a covariance that is not positive definite");
    m->precision = llt.solve(SmallMatrix::Identity(d, d));
    m->h = m->precision * ConstVectorMap(q[slot].At(n), d);
    const double* sent = sent_.At(n, slot);
    m->h -= ConstVectorMap(sent, d);
    m->precision -= ConstMatrixMap(sent + d, d, d);
  }

  /// H[q(slot)] of factor n's element from its moments.
  double Entropy(size_t n, int slot, const SlotView* q) const {
    const int d = dims_[static_cast<size_t>(slot)];
    SmallMatrix cov;
    Covariance(d, q[slot].At(n), &cov);
    double log_det_cov = 0.0;
    if (!LogDet(cov, &log_det_cov))
      throw ModelError(where_ + ": the posterior of '" + slot_names()[slot] +
                       "' has a covariance that is not positive definite");
    return GaussianEntropy(d, -log_det_cov);
  }

  /// Sends message `m` of factor n to `slot`: keeps it and adds it to eta.
  void Send(size_t n, int slot, const Information& m, double* eta) const {
    sent_.Store(n, slot, m);
    AddToNatural(m, eta);
  }

  [[noreturn]] void Improper(const std::string& what) const {
    throw ModelError(where_ + ": " + what);
  }

  void ResetMessages(size_t num_factors, std::vector<int> dims, const std::string& where) {
    dims_ = std::move(dims);
    where_ = where;
    sent_.Reset(num_factors, dims_);
  }

  std::vector<int> dims_;
  std::string where_;
  // The messages sent, per factor and slot. Written by AccumulateMessage: the message of
  // factor n to slot s is written only while s's element of factor n is updated, and read
  // while the other slots' elements are, which the schedulers never run at the same time
  // (variables sharing a factor never share a colour), so factor ranges stay independent.
  mutable SentMessages sent_;
};

enum SumSlot { kSumOut = 0, kIn1 = 1, kIn2 = 2 };

/// out = in1 + in2 for Gaussian (or MvGaussian, one dimension D) variables.
class SumNode final : public DeterministicNode {
 public:
  const char* type() const override { return "Sum"; }
  std::vector<std::string> slot_names() const override { return {"out", "in1", "in2"}; }

  void Bind(const std::vector<SlotInfo>& slots, size_t num_factors,
            const std::string& where) override {
    const int d = slots[kSumOut].dim;
    for (int s : {kSumOut, kIn1, kIn2}) RequireHiddenGaussian(slots[s], d, where);
    if (slots[kIn1].family != slots[kSumOut].family || slots[kIn2].family != slots[kSumOut].family)
      throw GraphError(where + ": 'out', 'in1' and 'in2' must be of one family, got " +
                       FamilyName(slots[kSumOut].family) + ", " +
                       FamilyName(slots[kIn1].family) + " and " + FamilyName(slots[kIn2].family));
    ResetMessages(num_factors, {d, d, d}, where);
  }

  void AccumulateMessage(int slot, size_t begin, size_t end, const SlotView* q, double* eta,
                         Workspace&) const override {
    Information a, b, m;
    for (size_t n = begin; n < end; ++n) {
      if (slot == kSumOut) {
        Incoming(n, kIn1, q, &a);
        Incoming(n, kIn2, q, &b);
      } else {
        Incoming(n, kSumOut, q, &a);
        Incoming(n, slot == kIn1 ? kIn2 : kIn1, q, &b);
        b.h = -b.h;  // out − other = out + (−other)
      }
      if (!Convolve(a, b, &m))
        Improper("the messages into the sum leave a direction without information (give "
                 "the inputs priors)");
      Send(n, slot, m, eta);
    }
  }

  double AverageEnergy(size_t begin, size_t end, const SlotView* q, Workspace&) const override {
    const int d = dims_[0];
    double total = 0.0;
    Information in1, in2, out;
    for (size_t n = begin; n < end; ++n) {
      Incoming(n, kIn1, q, &in1);
      Incoming(n, kIn2, q, &in2);
      Incoming(n, kSumOut, q, &out);
      // log det [Λ1 + Λo, Λo; Λo, Λ2 + Λo] by its Schur complement.
      const SmallMatrix top = in1.precision + out.precision;
      Eigen::LLT<SmallMatrix> llt(top);
      const SmallMatrix schur = in2.precision + out.precision -
                                out.precision * llt.solve(out.precision);
      double log_det_top = 0.0, log_det_schur = 0.0;
      if (llt.info() != Eigen::Success || !LogDet(top, &log_det_top) ||
          !LogDet(schur, &log_det_schur))
        Improper("the joint of 'in1' and 'in2' at the sum is improper");
      total += Entropy(n, kIn1, q) + Entropy(n, kIn2, q) + Entropy(n, kSumOut, q) -
               GaussianEntropy(2 * d, log_det_top + log_det_schur);
    }
    return total;
  }
};

enum ProductSlot { kProductOut = 0, kProductIn = 1 };

/// out = A·in for a constant M x D matrix A of rank M.
class MatrixProductNode final : public DeterministicNode {
 public:
  explicit MatrixProductNode(const Matrix& matrix) : matrix_(matrix) {}

  const char* type() const override { return "MatrixProduct"; }
  std::vector<std::string> slot_names() const override { return {"out", "in"}; }

  void Bind(const std::vector<SlotInfo>& slots, size_t num_factors,
            const std::string& where) override {
    const int m = static_cast<int>(matrix_.rows()), d = static_cast<int>(matrix_.cols());
    if (matrix_.size() == 0) throw ModelError(where + ": the matrix is empty");
    if (!matrix_.allFinite()) throw ModelError(where + ": the matrix must be finite");
    if (slots[kProductOut].dim != m || slots[kProductIn].dim != d)
      throw GraphError(where + ": the matrix is " + std::to_string(m) + "x" + std::to_string(d) +
                       " but 'out' is " + slots[kProductOut].variable + " of dimension " +
                       std::to_string(slots[kProductOut].dim) + " and 'in' is " +
                       slots[kProductIn].variable + " of dimension " +
                       std::to_string(slots[kProductIn].dim));
    RequireHiddenGaussian(slots[kProductOut], m, where);
    RequireHiddenGaussian(slots[kProductIn], d, where);
    a_ = matrix_;
    const Eigen::FullPivLU<Matrix> lu(matrix_);
    if (m > d || lu.rank() < m)
      throw ModelError(where + ": the " + std::to_string(m) + "x" + std::to_string(d) +
                       " matrix has rank " + std::to_string(lu.rank()) +
                       "; out = A·in needs A of full row rank (rank " + std::to_string(m) +
                       ") so that out has a density (for a rank-deficient or tall A, use a "
                       "LinearGaussian node with a precision)");
    ResetMessages(num_factors, {m, d}, where);
  }

  void AccumulateMessage(int slot, size_t begin, size_t end, const SlotView* q, double* eta,
                         Workspace&) const override {
    const int m = static_cast<int>(a_.rows());
    Information incoming, message;
    for (size_t n = begin; n < end; ++n) {
      if (slot == kProductIn) {
        Incoming(n, kProductOut, q, &incoming);
        message.h.noalias() = a_.transpose() * incoming.h;
        const SmallMatrix precision_a = incoming.precision * a_;
        message.precision.noalias() = a_.transpose() * precision_a;
      } else {
        Incoming(n, kProductIn, q, &incoming);
        Eigen::LLT<SmallMatrix> llt(incoming.precision);
        if (llt.info() != Eigen::Success)
          Improper("the message from 'in' is improper, so A·in has no density (give 'in' a "
                   "prior)");
        const SmallVector mean = llt.solve(incoming.h);
        const SmallMatrix covariance_at = llt.solve(SmallMatrix(a_.transpose()));
        const SmallMatrix covariance = a_ * covariance_at;
        Eigen::LLT<SmallMatrix> image(covariance);
        if (image.info() != Eigen::Success)
          Improper("the image of the message from 'in' under A is degenerate");
        message.precision = image.solve(SmallMatrix::Identity(m, m));
        message.precision = 0.5 * (message.precision + message.precision.transpose()).eval();
        const SmallVector image_mean = a_ * mean;
        message.h.noalias() = message.precision * image_mean;
      }
      Send(n, slot, message, eta);
    }
  }

  double AverageEnergy(size_t begin, size_t end, const SlotView* q, Workspace&) const override {
    const int d = static_cast<int>(a_.cols());
    double total = 0.0;
    Information in, out;
    for (size_t n = begin; n < end; ++n) {
      Incoming(n, kProductIn, q, &in);
      Incoming(n, kProductOut, q, &out);
      const SmallMatrix precision_a = out.precision * a_;
      SmallMatrix joint = in.precision;
      joint.noalias() += a_.transpose() * precision_a;
      double log_det = 0.0;
      if (!LogDet(joint, &log_det)) Improper("the joint of 'in' at the product is improper");
      total += Entropy(n, kProductIn, q) + Entropy(n, kProductOut, q) -
               GaussianEntropy(d, log_det);
    }
    return total;
  }

  const Matrix& matrix() const { return matrix_; }

 private:
  Matrix matrix_;
  SmallMatrix a_;  ///< the matrix on the stack-sized type of the messages
};

}  // namespace

std::unique_ptr<Node> MakeSumNode() { return std::make_unique<SumNode>(); }

std::unique_ptr<Node> MakeMatrixProductNode(const Matrix& matrix) {
  return std::make_unique<MatrixProductNode>(matrix);
}

}  // namespace vfe
