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
// Where these are exact: on a tree whose other factors each have at most one hidden argument
// (priors and observations with known parameters) or join a pair of a cluster, BP is exact and
// F = −log p(y) at the fixed point. A Gaussian factor between two hidden variables outside a
// cluster sends VMP messages from the marginals, so the result is then a structured mean
// field (F ≥ −log p(y)); loops through these nodes are neither detected nor exact.
//
// The node reads q in natural parameters (SlotView::natural): its information form exactly,
// where a covariance recovered from moments would lose every digit for a variance small next
// to the squared mean. Numerical trouble (an improper combination) gives NaN, which the
// engine reports as a numerical failure naming the element, as for every other node.

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include <Eigen/Cholesky>
#include <Eigen/LU>
#include <Eigen/SVD>

#include "nodes/declare.h"
#include "nodes/node_checks.h"
#include "vfe/core/special.h"
#include "vfe/nodes/nodes.h"

namespace vfe {

const NodeType& SumNodeType();
const NodeType& MatrixProductNodeType();
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
  void Clear() { std::fill(data_.begin(), data_.end(), 0.0); }
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
/// directions the other pins down): marginalising a from ma(a) mb(s − a) gives
/// Λ = Λb − Λb S⁻¹ Λb = Λb S⁻¹ Λa (the second form does not cancel when Λa ≪ Λb).
bool Convolve(const Information& ma, const Information& mb, Information* out) {
  const SmallMatrix sum = ma.precision + mb.precision;
  Eigen::LLT<SmallMatrix> llt(sum);
  if (llt.info() != Eigen::Success) return false;
  const SmallMatrix gain = llt.solve(mb.precision);  // S⁻¹ Λb
  out->precision.noalias() = gain.transpose() * ma.precision;
  out->precision = 0.5 * (out->precision + out->precision.transpose()).eval();
  out->h = mb.h + gain.transpose() * (ma.h - mb.h);
  return out->h.allFinite() && out->precision.allFinite();
}

/// Makes eta improper (NaN), so that the engine reports a numerical failure for the element.
void Poison(double* eta) { eta[0] = std::numeric_limits<double>::quiet_NaN(); }

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

  /// The message coming in from `slot` to factor n: q(slot) over what the node last sent it
  /// (η of q is (h, −Λ/2)).
  void Incoming(size_t n, int slot, const SlotView* q, Information* m) const {
    const int d = dims_[static_cast<size_t>(slot)];
    const double* eta = q[slot].NaturalAt(n);
    const double* sent = sent_.At(n, slot);
    m->h = ConstVectorMap(eta, d) - ConstVectorMap(sent, d);
    m->precision = -2.0 * ConstMatrixMap(eta + d, d, d) - ConstMatrixMap(sent + d, d, d);
  }

  /// H[q(slot)] of factor n's element; NaN when q is not proper.
  double Entropy(size_t n, int slot, const SlotView* q) const {
    const int d = dims_[static_cast<size_t>(slot)];
    const SmallMatrix precision = -2.0 * ConstMatrixMap(q[slot].NaturalAt(n) + d, d, d);
    double log_det = 0.0;
    if (!LogDet(precision, &log_det)) return std::numeric_limits<double>::quiet_NaN();
    return GaussianEntropy(d, log_det);
  }

  /// Sends message `m` of factor n to `slot`: keeps it and adds it to eta.
  void Send(size_t n, int slot, const Information& m, double* eta) const {
    sent_.Store(n, slot, m);
    AddToNatural(m, eta);
  }

 public:
  bool KeepsMessages() const override { return true; }
  void ForgetMessages() override { sent_.Clear(); }

 protected:
  void ResetMessages(size_t num_factors, std::vector<int> dims) {
    dims_ = std::move(dims);
    sent_.Reset(num_factors, dims_);
  }

  std::vector<int> dims_;
  // The messages sent, per factor and slot. Written by AccumulateMessage: factor n's message
  // to slot s only while s's element is updated, and read while the factor's other elements
  // are — never at the same time, since the schedulers update one variable at a time, and
  // elements that share a factor in different colours (parallel) or dependent blocks (async).
  mutable SentMessages sent_;
};

enum SumSlot { kSumOut = 0, kIn1 = 1, kIn2 = 2 };

/// out = in1 + in2 for Gaussian (or MvGaussian, one dimension D) variables.
class SumNode final : public DeterministicNode {
 public:
  const char* type() const override { return SumNodeType().name.c_str(); }
  std::vector<std::string> slot_names() const override { return SumNodeType().SlotNames(); }

  void Bind(const std::vector<SlotInfo>& slots, size_t num_factors,
            const std::string& where) override {
    const int d = slots[kSumOut].dim;
    for (int s : {kSumOut, kIn1, kIn2}) RequireHiddenGaussian(slots[s], d, where);
    if (slots[kIn1].family != slots[kSumOut].family || slots[kIn2].family != slots[kSumOut].family)
      throw GraphError(where + ": 'out', 'in1' and 'in2' must be of one family, got " +
                       FamilyName(slots[kSumOut].family) + ", " +
                       FamilyName(slots[kIn1].family) + " and " + FamilyName(slots[kIn2].family));
    ResetMessages(num_factors, {d, d, d});
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
      if (!Convolve(a, b, &m)) {
        Poison(eta);  // the messages in leave a direction without information
        return;
      }
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
      if (llt.info() != Eigen::Success) return std::numeric_limits<double>::quiet_NaN();
      const double log_det_top = 2.0 * llt.matrixLLT().diagonal().array().log().sum();
      const SmallMatrix schur =
          in2.precision + out.precision - out.precision * llt.solve(out.precision);
      double log_det_schur = 0.0;
      if (!LogDet(0.5 * (schur + schur.transpose()), &log_det_schur))
        return std::numeric_limits<double>::quiet_NaN();
      total += Entropy(n, kIn1, q) + Entropy(n, kIn2, q) + Entropy(n, kSumOut, q) -
               GaussianEntropy(2 * d, log_det_top + log_det_schur);
    }
    return total;
  }
};

enum ProductSlot { kProductOut = 0, kProductIn = 1 };

/// out = A·in for a constant M x D matrix A of rank M.
///
/// The message to out integrates the message from in over each fibre {x : A x = o}. With
/// A⁺ = Aᵀ(AAᵀ)⁻¹ and N an orthonormal basis of null(A), x = A⁺ o + N u maps (o, u) onto the
/// inputs one to one, and the message is the Schur complement over u of the incoming message
/// in those coordinates:
///   P_oo = A⁺ᵀΛA⁺, P_ou = A⁺ᵀΛN, P_uu = NᵀΛN, h_o = A⁺ᵀh, h_u = Nᵀh,
///   Λ_out = P_oo − P_ou P_uu⁻¹ P_uo,  h_out = h_o − P_ou P_uu⁻¹ h_u.
/// It needs the incoming message proper along null(A) only: for a square A, `in` needs no
/// prior of its own.
class MatrixProductNode final : public DeterministicNode {
 public:
  explicit MatrixProductNode(const Matrix& matrix) : matrix_(matrix) {}

  const char* type() const override { return MatrixProductNodeType().name.c_str(); }
  std::vector<std::string> slot_names() const override {
    return MatrixProductNodeType().SlotNames();
  }

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
    const Eigen::JacobiSVD<Matrix> svd(matrix_, Eigen::ComputeFullV);
    const Eigen::Index rank = svd.rank();
    if (m > d || rank < m)
      throw ModelError(where + ": the " + std::to_string(m) + "x" + std::to_string(d) +
                       " matrix has rank " + std::to_string(rank) +
                       "; out = A·in needs A of full row rank (rank " + std::to_string(m) +
                       ") so that out has a density (for a rank-deficient or tall A, use a "
                       "LinearGaussian node with a precision)");
    a_ = matrix_;
    const Matrix pinv = matrix_.transpose() * (matrix_ * matrix_.transpose()).inverse();
    pinv_ = pinv;
    null_ = svd.matrixV().rightCols(d - m);
    ResetMessages(num_factors, {m, d});
  }

  void AccumulateMessage(int slot, size_t begin, size_t end, const SlotView* q, double* eta,
                         Workspace&) const override {
    Information incoming, message;
    for (size_t n = begin; n < end; ++n) {
      if (slot == kProductIn) {
        Incoming(n, kProductOut, q, &incoming);
        message.h.noalias() = a_.transpose() * incoming.h;
        const SmallMatrix precision_a = incoming.precision * a_;
        message.precision.noalias() = a_.transpose() * precision_a;
        message.precision = 0.5 * (message.precision + message.precision.transpose()).eval();
      } else {
        Incoming(n, kProductIn, q, &incoming);
        const SmallMatrix precision_pinv = incoming.precision * pinv_;
        message.precision.noalias() = pinv_.transpose() * precision_pinv;
        message.h.noalias() = pinv_.transpose() * incoming.h;
        if (null_.cols() > 0) {
          const SmallMatrix precision_null = incoming.precision * null_;
          const SmallMatrix p_uu = null_.transpose() * precision_null;
          Eigen::LLT<SmallMatrix> llt(p_uu);
          if (llt.info() != Eigen::Success) {
            Poison(eta);  // the message from 'in' is improper along null(A)
            return;
          }
          const SmallMatrix p_uo = null_.transpose() * precision_pinv;
          const SmallVector h_u = null_.transpose() * incoming.h;
          message.precision.noalias() -= p_uo.transpose() * llt.solve(p_uo);
          message.h.noalias() -= p_uo.transpose() * llt.solve(h_u);
        }
        message.precision = 0.5 * (message.precision + message.precision.transpose()).eval();
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
      if (!LogDet(0.5 * (joint + joint.transpose()), &log_det))
        return std::numeric_limits<double>::quiet_NaN();
      total += Entropy(n, kProductIn, q) + Entropy(n, kProductOut, q) -
               GaussianEntropy(d, log_det);
    }
    return total;
  }

 private:
  Matrix matrix_;
  // The matrix, its pseudo-inverse and a basis of its null space, on the stack-sized type of
  // the messages.
  SmallMatrix a_, pinv_, null_;
};

}  // namespace

std::unique_ptr<Node> MakeSumNode() { return std::make_unique<SumNode>(); }

std::unique_ptr<Node> MakeMatrixProductNode(const Matrix& matrix) {
  return std::make_unique<MatrixProductNode>(matrix);
}


const NodeType& SumNodeType() {
  static const NodeType type = [] {
    using namespace declare;
    NodeType t;
    t.name = "Sum";
    t.summary = "out = in1 + in2 exactly: a deterministic node with sum-product messages";
    t.formula = "its share of F: Σ_slots H[q] − H[b(in1, in2)] (the Bethe terms)";
    const std::vector<Family> gaussian = {Family::kGaussian, Family::kMvGaussian};
    t.parameters = {NotConjugate(Variable("out", "the sum (hidden)", gaussian)),
                    NotConjugate(Variable("in1", "the first term (hidden)", gaussian)),
                    NotConjugate(Variable("in2", "the second term (hidden)", gaussian))};
    t.make = [](const NodeArguments&) { return MakeSumNode(); };
    t.pointwise_density = false;
    t.example = R"json({
  "format": "vfe-model/1",
  "variables": [
    {"name": "a", "family": "Gaussian"},
    {"name": "b", "family": "Gaussian"},
    {"name": "s", "family": "Gaussian"},
    {"name": "y", "observed": 1.5}
  ],
  "factors": [
    {"node": "Gaussian", "out": "a", "mean": 0.0, "precision": 1.0},
    {"node": "Gaussian", "out": "b", "mean": 1.0, "precision": 0.5},
    {"node": "Sum", "out": "s", "in1": "a", "in2": "b"},
    {"node": "Gaussian", "out": "y", "mean": "s", "precision": 4.0}
  ]
})json";
    return t;
  }();
  return type;
}

const NodeType& MatrixProductNodeType() {
  static const NodeType type = [] {
    using namespace declare;
    NodeType t;
    t.name = "MatrixProduct";
    t.summary = "out = matrix·in exactly (M x D of rank M ≤ D): deterministic, sum-product";
    t.formula = "its share of F: Σ_slots H[q] − H[b(in)] (the Bethe terms)";
    const std::vector<Family> gaussian = {Family::kGaussian, Family::kMvGaussian};
    t.parameters = {NotConjugate(Variable("out", "the M-vector (hidden)", gaussian)),
                    NotConjugate(Variable("in", "the D-vector (hidden)", gaussian)),
                    Constant("matrix", "A (M x D, rank M)", ConstantKind::kMatrix)};
    t.make = [](const NodeArguments& a) { return MakeMatrixProductNode(a.matrix("matrix")); };
    t.pointwise_density = false;
    t.example = R"json({
  "format": "vfe-model/1",
  "variables": [
    {"name": "x", "family": "MvGaussian", "dim": 2},
    {"name": "z", "family": "Gaussian"},
    {"name": "y", "observed": 0.8}
  ],
  "factors": [
    {"node": "MvGaussian", "out": "x", "mean": [0.0, 1.0], "precision": [[1.0, 0.2], [0.2, 2.0]]},
    {"node": "MatrixProduct", "out": "z", "in": "x", "matrix": [[1.0, -0.5]]},
    {"node": "Gaussian", "out": "y", "mean": "z", "precision": 2.0}
  ]
})json";
    return t;
  }();
  return type;
}

}  // namespace vfe
