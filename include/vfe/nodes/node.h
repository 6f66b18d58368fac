#ifndef VFE_NODES_NODE_H_
#define VFE_NODES_NODE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "vfe/core/types.h"
#include "vfe/distributions/family.h"
#include "vfe/distributions/point_mass.h"

namespace vfe {

/// Where the factors of one plate read the moments E[T(x)] of the variable at one interface
/// (slot): factor n reads `At(n)`. Shared variables have stride 0; contiguous runs of an array
/// are affine; anything else goes through an offset per factor.
struct SlotView {
  const double* data = nullptr;
  size_t stride = 0;
  const uint64_t* offsets = nullptr;
  /// The natural parameters η of the same elements (the same layout, stride and offsets), for
  /// hidden variables; null for observed ones and constants. Sum-product nodes read q in
  /// this form: a covariance recovered from moments, E[xxᵀ] − E[x]E[x]ᵀ, loses every digit
  /// when the variance is small next to the squared mean.
  const double* natural = nullptr;
  /// For a slot the node asked about (Node::TracksChanges): a counter that the graph
  /// advances whenever any element the view reads changes (posterior, observed value), so
  /// that a node may keep sums over its factors and know when they are stale. Null for other
  /// slots and for views the graph did not build (hand-made views, Monte Carlo draws): no
  /// caching then.
  const std::atomic<uint64_t>* version = nullptr;
  const double* At(size_t n) const { return offsets ? data + offsets[n] : data + n * stride; }
  const double* NaturalAt(size_t n) const {
    return offsets ? natural + offsets[n] : natural + n * stride;
  }
};

/// What a plate connects to one slot, as its node sees it when the graph is finalised.
struct SlotInfo {
  std::string name;   ///< the slot's name ("out", "mean", ...)
  Family family;      ///< family of the connected variable(s)
  int dim = 1;        ///< event dimension of the connected variable(s)
  bool shared = false;    ///< every factor of the plate sees the same element
  bool observed = false;  ///< every connected element is observed or constant
  std::string variable;   ///< how errors name the connected variable ("variable 'mu'")
};

/// A plate of factors of one type: N repeated terms f_n of the joint, each connected to one
/// element per slot. A node knows its VMP message rules and its average energy, and nothing
/// about graphs, order or threads (all methods but Bind, Prepare and ForgetMessages are const
/// and allocation-free, so plates can be evaluated concurrently over disjoint factor ranges;
/// the only state a const method may change is the per-factor record of KeepsMessages and
/// the node's own caches of sums over factors, each part of which belongs to a range of
/// factors that a call writes only when it covers the whole range; see TracksChanges).
class Node {
 public:
  virtual ~Node() = default;
  /// The node type as written in models ("Gaussian", ...).
  virtual const char* type() const = 0;
  /// The slot names in order; slot 0 is always "out".
  virtual std::vector<std::string> slot_names() const = 0;
  /// The family in which `slot` reads an observed value or constant of this shape (for
  /// example a scalar at a Gaussian's precision is read as a Gamma point mass).
  virtual Family ObservedFamily(int slot, const PointMass& value) const = 0;
  /// Checks the families and dimensions connected to each slot and the node's own constants;
  /// throws GraphError or ModelError with a message that starts with `where`.
  virtual void Bind(const std::vector<SlotInfo>& slots, size_t num_factors,
                    const std::string& where) = 0;
  /// True when the factor is a density of "out" given the other slots, so that the message to
  /// out at the parents' starting values is a sensible start for out (the prior). Undirected
  /// potentials say false: their variables start at the standard density (uniform).
  virtual bool IsDirected() const { return true; }
  /// True when `slot` is an output of the factor's density: Finalize starts the variable there
  /// from this factor's message, with the other slots (its parents) at their starting values.
  /// Slot 0 of a directed node by default; every slot of a joint prior with constant
  /// parameters (MatrixDirichlet, the columns of one matrix).
  virtual bool IsOutput(int slot) const { return slot == 0 && IsDirected(); }
  /// For a mixture: each component's own slots, aligned (entry i of every component is the
  /// same argument of its component: a mean, a precision). Components whose posteriors are
  /// identical in every such slot after a run have collapsed into one
  /// (FactorGraph::CollapsedComponents). Empty for other nodes.
  virtual std::vector<std::vector<int>> ComponentSlots() const { return {}; }
  /// Called once the moments of observed variables are in place: a node may cache sufficient
  /// statistics of observed data here.
  virtual void Prepare(const SlotView* /*q*/, size_t /*num_factors*/) {}
  /// True when the node keeps sums over its factors that depend on the variable at `slot`:
  /// the graph then fills SlotView::version for that slot and advances it whenever the
  /// variable changes. Asked once, when the graph is finalised.
  virtual bool TracksChanges(int /*slot*/) const { return false; }
  /// True when the messages and the energy of the whole plate, [0, size), come from sums
  /// cached by Prepare in constant time: the graph then never splits the plate into blocks.
  virtual bool SumsCached() const { return false; }
  /// Adds Σ_{n ∈ [begin, end)} m_{n→slot}, the natural parameters of exp E_{q\x}[log f_n] as a
  /// function of the variable at `slot`, to `eta`.
  virtual void AccumulateMessage(int slot, size_t begin, size_t end, const SlotView* q,
                                 double* eta, Workspace& ws) const = 0;
  /// The messages of factors begin, begin + step, … (those below end) to `slot` one by one:
  /// the j-th factor's is added to eta + j·stride. The graph calls it to update a run of
  /// elements that no factor joins to one another (each element's messages are then
  /// independent of the others'): consecutive elements (step 1), or every other square of a
  /// grid's row (step 2). A node can share work between factors or save the call per factor.
  /// It must give what AccumulateMessage gives for [n, n + 1), bit for bit; the default calls
  /// it once per factor.
  virtual void AccumulateMessages(int slot, size_t begin, size_t end, size_t step,
                                  const SlotView* q, double* eta, size_t stride,
                                  Workspace& ws) const {
    for (size_t n = begin; n < end; n += step, eta += stride)
      AccumulateMessage(slot, n, n + 1, q, eta, ws);
  }
  /// True when the message to `slot` is the natural gradient of E_q[log f] at the slot's
  /// current posterior (a conjugate-computation variational inference message, Khan & Lin
  /// 2017), rather than a message that does not depend on that posterior: the engine then
  /// takes the update η ← (1 − ρ)η + ρ·(Σ messages) as a natural-gradient step, with ρ = 1
  /// where that does not raise F and ρ halved until F does not rise (and q stays proper)
  /// where it does. Only for slots of Gaussian and MvGaussian variables.
  virtual bool StepsOnFreeEnergy(int /*slot*/) const { return false; }
  /// True when the message to `slot` depends on the posterior of the variable at `slot`
  /// itself (an expansion point, a natural-gradient message), so that a variable whose
  /// neighbours have not moved may still move when updated again: schedulers that update a
  /// variable only after a neighbour changed (the async scheduler) update such a variable again
  /// after it moved itself.
  virtual bool MessageReadsOwnSlot(int slot) const { return StepsOnFreeEnergy(slot); }
  /// True for nodes that keep the messages they send (the deterministic Sum and
  /// MatrixProduct, whose sum-product messages divide the last message sent to a slot out of
  /// the slot's posterior): AccumulateMessage then records factor n's message to `slot`, and
  /// the engine makes sure that every message so recorded becomes part of the element's
  /// posterior — it refuses plate weights and partial natural-gradient steps for such plates,
  /// and calls ForgetMessages when a posterior is set from outside (a warm start), after which
  /// the messages start again from none sent. Factor n's record for one slot is written only
  /// while that slot's element is updated, so disjoint factor ranges stay independent.
  virtual bool KeepsMessages() const { return false; }
  virtual void ForgetMessages() {}
  /// Σ_{n ∈ [begin, end)} U_n with U_n = −E_q[log f_n], the node's share of the free energy.
  virtual double AverageEnergy(size_t begin, size_t end, const SlotView* q,
                               Workspace& ws) const = 0;
  /// For belief propagation: log f_n as a fixed table over the node's Categorical slots (in
  /// slot order, row-major, the last slot fastest; −∞ for impossible configurations), or
  /// nullptr when factor n is not a fixed discrete table (continuous nodes, learned
  /// matrices). `q` are the plate's views, where a constant parameter such as Categorical's
  /// p lives (its statistic log p is the table). The pointer stays valid while the graph
  /// lives.
  virtual const double* LogTable(size_t /*n*/, const SlotView* /*q*/) const { return nullptr; }
  /// log f_n at one point, for the Monte Carlo free energy: every view holds the statistics
  /// T(x) of a single value (a sample from q, an observed value or a constant), from which the
  /// node reads the values back (x = T₀ for Gaussian, Gamma and MvGaussian, the one-hot index
  /// for Categorical, exp T for Beta and Dirichlet, the leading D² numbers for Wishart) and
  /// evaluates the density with the families' LogDensity — not with its average-energy
  /// formula, which the estimate is there to check. The pair view is unused. NaN when the node
  /// has no pointwise density (the estimator then refuses the model, naming the node).
  virtual double LogFactor(size_t /*n*/, const SlotView* /*q*/, Workspace& /*ws*/) const {
    return std::numeric_limits<double>::quiet_NaN();
  }

  // ---- Tree-shaped clusters (a joint posterior over the elements of one variable) --------
  //
  // When a plate joins two elements of one cluster through slots a < b (the transitions of a
  // chain), the graph solves the cluster by sum-product and asks the node for PairPotential
  // instead of messages to those slots. The pair's joint moments then replace the product of
  // its marginals everywhere else (average energy, messages to the other slots): they are
  // in q[slot_names().size()], the view after the last slot, whose data is null when the
  // plate joins no pair. Their layout: for Categorical pairs, the K_a x K_b table
  // E[x_a,i x_b,j] (row-major, x_a the row); for Gaussian pairs, E[x_a x_bᵀ] (D_a x D_b,
  // column-major).

  /// True when factors of this node can join two cluster elements through slots a < b.
  virtual bool JoinsPair(int /*slot_a*/, int /*slot_b*/) const { return false; }
  /// log ψ_n(x_a, x_b) = E_{q of the other slots}[log f_n] as a function of the pair, up to a
  /// constant: for Categorical pairs the K_a x K_b table (row-major, −∞ for impossible
  /// pairs); for Gaussian pairs the natural parameters of z = (x_a, x_b) in the MvGaussian
  /// layout (η₁ = h, η₂ = −P/2 of log ψ = hᵀz − ½ zᵀPz, D_a + D_b entries then the
  /// (D_a + D_b)² matrix). Called only when JoinsPair(a, b).
  virtual void PairPotential(size_t /*n*/, int /*slot_a*/, int /*slot_b*/, const SlotView* /*q*/,
                             double* /*out*/, Workspace& /*ws*/) const {}
  /// True when PairPotential is the same for every factor of the plate (one table, or
  /// parameters shared by all factors): the graph then asks once per cluster update.
  virtual bool PairPotentialShared() const { return false; }
};

}  // namespace vfe

#endif  // VFE_NODES_NODE_H_
