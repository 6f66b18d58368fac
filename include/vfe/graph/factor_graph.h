#ifndef VFE_GRAPH_FACTOR_GRAPH_H_
#define VFE_GRAPH_FACTOR_GRAPH_H_

#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "vfe/core/error.h"
#include "vfe/core/types.h"
#include "vfe/distributions/distributions.h"
#include "vfe/nodes/node.h"
#include "vfe/nodes/registry.h"

namespace vfe {

class FactorGraph;

/// Handle to a declared variable, to one of its elements, or to a contiguous run of the
/// elements of an array variable (row-major for multi-dimensional shapes).
class Variable {
 public:
  Variable() = default;
  /// Index of the declared variable in its graph.
  uint32_t id() const { return id_; }
  /// First element covered.
  size_t begin() const { return begin_; }
  /// Number of elements covered.
  size_t size() const { return size_; }
  bool valid() const { return id_ != kInvalid; }
  /// Element i of the run; throws GraphError when out of range.
  Variable operator[](size_t i) const;
  /// Elements [begin, end) of the run; throws GraphError when out of range.
  Variable Slice(size_t begin, size_t end) const;

 private:
  friend class FactorGraph;
  static constexpr uint32_t kInvalid = UINT32_MAX;
  Variable(uint32_t id, size_t begin, size_t size) : id_(id), begin_(begin), size_(size) {}
  uint32_t id_ = kInvalid;
  size_t begin_ = 0;
  size_t size_ = 0;
};

/// An argument of a factor: a variable (a single element, shared by every factor of a plate,
/// or a run with one element per factor) or a constant (scalar, vector or matrix).
class Argument {
 public:
  Argument(Variable variable) : variable_(variable) {}  // NOLINT: implicit by design
  Argument(double value) : constant_(PointMass(value)) {}  // NOLINT
  Argument(int value) : constant_(PointMass(static_cast<double>(value))) {}  // NOLINT
  Argument(const Vector& value) : constant_(PointMass(value)) {}  // NOLINT
  Argument(const Matrix& value) : constant_(PointMass(value)) {}  // NOLINT
  bool is_constant() const { return constant_.has_value(); }
  const Variable& variable() const { return variable_; }
  const PointMass& constant() const { return *constant_; }

 private:
  Variable variable_;
  std::optional<PointMass> constant_;
};

/// A value given to a parameter of a registered node type (FactorGraph::AddFactor by type
/// name): a variable (one element shared by every factor, a run with one element per factor,
/// or, for a parameter that takes a whole array, all of its elements), a list of variables,
/// or a constant (a number, a vector, a matrix, a name, or rows of data per factor).
class ParameterValue {
 public:
  enum class VariableKind { kNone, kOne, kList, kGather };
  ParameterValue(const Variable& variable);          // NOLINT: implicit by design
  ParameterValue(std::vector<Variable> variables);   // NOLINT
  ParameterValue(double value);                      // NOLINT
  ParameterValue(int value);                         // NOLINT
  ParameterValue(const Vector& value);               // NOLINT
  ParameterValue(const std::vector<double>& value);  // NOLINT
  ParameterValue(const Matrix& value);               // NOLINT
  ParameterValue(const std::string& name);           // NOLINT
  ParameterValue(const char* name);                  // NOLINT
  ParameterValue(ConstantValue constant);            // NOLINT
  /// One row of data per factor (Parameter::rows_per_factor): row n is factor n's.
  static ParameterValue Rows(const Matrix& rows);
  /// Indexing by data: factor n reads element elements[n] of `array` (grouped data: the
  /// parameter of each observation's group, "p[group[n]]" in JSON). The factors are then as
  /// many as `elements`; messages to element k sum over the factors that chose k. AddFactor
  /// splits the factors into plates in which the gathered element is constant or steps by one
  /// (sorted groups give one plate per group).
  static ParameterValue Gather(const Variable& array, std::vector<size_t> elements);

  bool is_variable() const { return variable_kind_ != VariableKind::kNone; }
  VariableKind variable_kind() const { return variable_kind_; }
  const std::vector<Variable>& variables() const { return variables_; }
  /// The elements of a gather (kGather), one per factor.
  const std::vector<size_t>& gathered() const { return gathered_; }
  const ConstantValue& constant() const { return constant_; }

 private:
  VariableKind variable_kind_ = VariableKind::kNone;
  std::vector<Variable> variables_;
  std::vector<size_t> gathered_;
  ConstantValue constant_;
};

/// An argument of a factor by name: {"precision", tau}.
struct NamedArgument {
  std::string name;
  ParameterValue value;
};

/// Index of a plate of factors in its graph.
using PlateId = uint32_t;

/// How the sum-product inside a cluster (FactorGraph::AddCluster) is run.
enum class ClusterSolver {
  /// Forward–backward over the cluster's tree on the calling thread: any tree, Categorical or
  /// Gaussian elements.
  kSequential,
  /// Chains only (every element joined to at most one later element, one connected chain)
  /// of Gaussian, MvGaussian or Categorical elements, solved by a parallel scan over fixed
  /// blocks of steps: a reduction per block (tbb::parallel_for, in the caller's task arena),
  /// a sequential scan over the block totals, then a final pass per block. The blocks do not
  /// depend on the number of threads, so neither does the result, bit for bit.
  /// Gaussian chains: the parallel-in-time smoother of Särkkä and García-Fernández,
  /// "Temporal parallelization of Bayesian smoothers", IEEE TAC 66(1), 2021, in information
  /// form: filtering elements (the potential of a run of steps over its two end states) and
  /// smoothing elements (E, g, L) with p(x_k | x_{k+1}, y_{0:k}) = N(E x_{k+1} + g, L),
  /// combined by their associative operators.
  /// Categorical chains (hidden Markov chains): the forward–backward recursions as products
  /// of the K x K matrices diag(φ_t) Ψ_t (evidence times pair potential), which associate: a
  /// block's product carries the forward message across it and its transpose the backward
  /// one; every column is scaled by a power of two with its exponent kept, so that a chain of
  /// any length neither underflows nor overflows.
  /// It does more arithmetic than the sequential solver (bench/RESULTS.md: Categorical
  /// chains K³ per step for the products against K² for forward–backward) and pays off on
  /// two threads or more for long chains.
  kParallelScan,
};

/// Per-thread scratch space of the engine: one Workspace per event dimension in the graph, one
/// of the largest dimension for nodes, and a natural-parameter accumulator. Only
/// FactorGraph::MakeScratch makes a usable one: every call that takes a Scratch checks that it
/// came from that graph (and was made after the last change of the graph's sizes), and throws
/// GraphError otherwise (a default-constructed Scratch, another graph's).
struct Scratch {
  uint64_t made_for = 0;          ///< the key of the graph sizes it was made for (0: none)
  std::vector<Workspace> by_dim;  ///< by_dim[d] is sized for dimension d
  Workspace node;                 ///< sized for the largest dimension
  std::vector<double> eta;        ///< the largest statistic size
  std::vector<double> block_eta;  ///< a block of elements updated together
  std::vector<double> block_moments;  ///< their moments, when the elements are not consecutive
  std::vector<double> partial;    ///< partial message sums of a large plate, one per block
  std::vector<double> weighted;   ///< the messages of a weighted plate (SetPlateWeight)
  std::vector<double> previous;   ///< η before a natural-gradient step
  std::vector<double> previous_moments;  ///< and the moments
};

/// Evaluates the blocks of a large sum: Run calls body(b, scratch) once for every b in
/// [0, count), in any order and on any threads, each call with a Scratch of its own thread
/// (never one in use by the caller). The sum itself is then taken in block order, so the result
/// does not depend on how the blocks were run.
class BlockRunner {
 public:
  class Body {
   public:
    virtual void operator()(size_t block, Scratch& scratch) const = 0;

   protected:
    ~Body() = default;
  };
  virtual void Run(size_t count, const Body& body) const = 0;

 protected:
  ~BlockRunner() = default;
};

/// What the processes of a run split by rows of its data exchange (ShardedScheduler; the MPI
/// layer implements it with MPI_Allgatherv): numbers placed, never added, so the sums built
/// from them are the same whatever the number of processes.
class ShardExchange {
 public:
  virtual int rank() const = 0;   ///< this process, in [0, ranks())
  virtual int ranks() const = 0;  ///< the processes of the run
  /// Called by every process with the same `counts` (process q's numbers): process q's
  /// numbers are at offset counts[0] + … + counts[q − 1] of `buffer`; this process's are
  /// there already, and the others' are copied in from their processes.
  virtual void AllGatherInPlace(double* buffer, const std::vector<size_t>& counts) const = 0;

 protected:
  ~ShardExchange() = default;
};

/// The rows of a run split over processes (FactorGraph::SetRowShard): process q owns rows
/// [bounds[q], bounds[q + 1]), each bound a multiple of FactorGraph::kRowGrain (the last is the
/// number of rows). In a sharded plate factor n reads row n: the messages it sends to elements
/// shared by its factors (the global variables) are summed by each process over its own rows
/// in blocks of kRowGrain factors, and the blocks exchanged, so every process adds the same
/// blocks in the same order as one process alone does.
///
/// Stacked (SVI over processes): each process's graph holds rows of its own (a minibatch), and
/// a sharded plate's rows are the processes' plates one after another in process order: every
/// process sums all of its blocks, and the blocks of every process are exchanged and added in
/// process order (bounds unused; every process's plate must have as many blocks).
struct RowShard {
  std::vector<size_t> bounds;        ///< ranks() + 1 row bounds, from 0
  std::vector<char> sharded_plates;  ///< by plate id: 1 for a plate whose factor n reads row n
  const ShardExchange* exchange = nullptr;
  bool stacked = false;
};

/// A factor graph: variables (hidden or observed) and plates of factors, with the flat
/// arrays the hot loops run over (moments E[T] of every element, natural parameters of every
/// hidden element, a compressed adjacency from hidden elements to factor ranges).
///
/// Build it with the Add* methods, call Finalize() (which validates everything and sets every
/// posterior to its starting point), then run a scheduler on it. The graph holds the current
/// posteriors, so Posterior() reads the result of the last run.
class FactorGraph {
 public:
  FactorGraph();
  ~FactorGraph();
  FactorGraph(FactorGraph&&) noexcept;
  FactorGraph& operator=(FactorGraph&&) noexcept;

  // ---- Variables ------------------------------------------------------------------------

  // Every Add* method throws GraphError after Finalize, naming what it was adding.

  /// A hidden variable with one element of `family` (event dimension `dim` for MvGaussian and
  /// Wishart). Names must be unique and non-empty; GraphError for a repeated or empty name or a
  /// dimension the family does not take.
  Variable AddVariable(const std::string& name, Family family, int dim = 1);
  /// A hidden array variable of the given shape ([N] or [N, M]): N·M independent elements;
  /// GraphError for a shape with no elements.
  Variable AddVariableArray(const std::string& name, Family family,
                            const std::vector<size_t>& shape, int dim = 1);
  // Observed data: GraphError for no values, ModelError naming the element (and the entry of
  // a vector or matrix) for a NaN or an infinity. Finalize checks the rest of each family's
  // support (a Gamma value > 0, ...), once the factors have told the family.

  /// An observed scalar.
  Variable AddObserved(const std::string& name, double value);
  /// An observed array of scalars (shape [N]).
  Variable AddObserved(const std::string& name, const std::vector<double>& values);
  /// An observed vector or matrix (one element): a column vector is read as an MvGaussian
  /// value, a square matrix as a Wishart value.
  Variable AddObserved(const std::string& name, const Matrix& value);
  /// Observed categorical data (shape [N]): outcomes in 0..num_categories−1 (ModelError naming
  /// the element otherwise; GraphError for num_categories < 1).
  Variable AddObservedCategorical(const std::string& name, const std::vector<int>& outcomes,
                                  int num_categories);
  /// An observed array of vectors (shape [rows]): row n is the value of element n.
  Variable AddObservedRows(const std::string& name, const Matrix& rows);

  // ---- Factors --------------------------------------------------------------------------

  /// Adds a plate of factors of `node`'s type, one per element of the longest argument:
  /// arguments with one element are shared by every factor, arguments with N elements give
  /// factor n their element n. Returns the plate's id. `name` (optional) is used in errors.
  /// Throws GraphError, leaving the graph as it was, after Finalize, for a wrong number of
  /// arguments, or for an argument that is not a variable of this graph or has neither one
  /// element nor one per factor. The helpers below build a node and call AddFactor: they throw
  /// as it does, and ModelError for a bad constant.
  PlateId AddFactor(std::unique_ptr<Node> node, const std::vector<Argument>& args,
                    const std::string& name = "");
  /// Adds a plate of factors of the registered node type `type` (NodeTypes(); the JSON
  /// node names), its arguments by name as the type declares them:
  ///   graph.AddFactor("Gaussian", {{"out", y}, {"mean", mu}, {"precision", tau}});
  /// Each argument is checked against its parameter (families of hidden variables, kinds and
  /// values of constants), the type's factory builds the node and the arguments become its
  /// slots; one factor per element of the longest element argument, as above. Throws
  /// GraphError for an unknown type, ParameterError naming the parameter for a bad argument
  /// (an unknown or missing name, a wrong family, an invalid constant). With a gathered
  /// argument (ParameterValue::Gather) the factors go to several plates, added all or none;
  /// the first one's id is returned and the others follow it.
  PlateId AddFactor(const std::string& type, const std::vector<NamedArgument>& arguments,
                    const std::string& name = "");
  /// A gated factor (Minka & Winn, "Gates", 2008): a mixture of K factors of the registered
  /// type `type`, components[k] the arguments of component k, chosen by the Categorical
  /// variable `gate` (K outcomes; one element per factor or shared):
  ///   p(out | gate = k, θ_k) = f(out; θ_k)
  /// Every component must have the same "out"; arguments that components share (the same
  /// variable) are one slot. Under mean field the selector receives −U_k from component k and
  /// a component's slots its messages weighted by E[gate = k]. Mixtures of Bernoullis,
  /// Categoricals, Poissons or linear regressions (mixtures of experts) need no node of their
  /// own. For example, a mixture of K Bernoullis:
  ///   graph.AddGatedFactor("Bernoulli", z, {{{"out", x}, {"p", theta[0]}},
  ///                                         {{"out", x}, {"p", theta[1]}}});
  /// Throws as AddFactor does, and ParameterError when the components' "out" differ.
  PlateId AddGatedFactor(const std::string& type, const Variable& gate,
                         const std::vector<std::vector<NamedArgument>>& components,
                         const std::string& name = "");
  /// out ~ N(mean, 1/precision): scalar Gaussian; precision a Gamma variable or a constant.
  PlateId AddGaussian(Argument out, Argument mean, Argument precision,
                      const std::string& name = "");
  /// out ~ N(mean, precision⁻¹): D-vectors; precision a Wishart variable, a Gamma variable
  /// (isotropic τ·I) or a constant matrix.
  PlateId AddMvGaussian(Argument out, Argument mean, Argument precision,
                        const std::string& name = "");
  /// out ~ N(matrix · in, precision⁻¹), one constant matrix (M x K) for every factor.
  /// `in` is MvGaussian (K) or Gaussian (K = 1); `out` MvGaussian (M) or Gaussian (M = 1);
  /// precision Gamma (τ·I), Wishart (M x M), or a constant.
  PlateId AddLinearGaussian(Argument out, Argument in, const Matrix& matrix, Argument precision,
                            const std::string& name = "");
  /// out = in1 + in2 exactly (a deterministic node with sum-product messages): three hidden
  /// Gaussian variables, or MvGaussian of one dimension. See MakeSumNode.
  PlateId AddSum(Argument out, Argument in1, Argument in2, const std::string& name = "");
  /// out = matrix · in exactly (deterministic, sum-product): a constant M x D matrix of rank
  /// M ≤ D, in MvGaussian (D) or Gaussian (D = 1), out MvGaussian (M) or Gaussian (M = 1).
  PlateId AddMatrixProduct(Argument out, const Matrix& matrix, Argument in,
                           const std::string& name = "");
  /// Linear regression y_n ~ N(x_nᵀ w, 1/τ): a LinearGaussian plate whose factor n has the
  /// 1 x K matrix `design.row(n)`.
  PlateId AddLinearRegression(Argument out, Argument weights, const Matrix& design,
                              Argument precision, const std::string& name = "");
  /// out ~ Gamma(shape, rate): shape a positive constant, rate a Gamma variable or constant.
  PlateId AddGamma(Argument out, double shape, Argument rate, const std::string& name = "");
  /// out ~ Wishart(dof, scale), both constants.
  PlateId AddWishart(Argument out, double dof, const Matrix& scale, const std::string& name = "");
  /// out ~ Beta(a, b), both constants.
  PlateId AddBeta(Argument out, double a, double b, const std::string& name = "");
  /// out ~ Dirichlet(alpha), a constant vector.
  PlateId AddDirichlet(Argument out, const Vector& alpha, const std::string& name = "");
  /// out ~ Bernoulli(p): p a Beta variable or a constant probability.
  PlateId AddBernoulli(Argument out, Argument p, const std::string& name = "");
  /// out ~ Categorical(p): p a Dirichlet variable or constant probabilities (a vector).
  PlateId AddCategorical(Argument out, Argument p, const std::string& name = "");
  /// out ~ N(means[k], precisions[k]⁻¹) with k ~ switch: `means` and `precisions` are arrays of
  /// K elements (MvGaussian and Wishart, or Gaussian and Gamma), shared by every factor; the
  /// switch is Categorical with K outcomes.
  PlateId AddGaussianMixture(Argument out, Argument component, const Variable& means,
                             const Variable& precisions, const std::string& name = "");
  /// p(out = j | in = k) = matrix(j, k) for Categorical out and in (columns sum to one): a
  /// hidden Markov chain with a known transition matrix.
  PlateId AddTransition(Argument out, Argument in, const Matrix& matrix,
                        const std::string& name = "");
  /// p(out = j | in = k) = A[j][k] with a learned matrix: `matrix` is an array of L Dirichlet
  /// variables of dimension K, the columns of A (see AddMatrixDirichlet), out Categorical with
  /// K outcomes and in with L; every factor of the plate shares the matrix.
  PlateId AddTransition(Argument out, Argument in, const Variable& matrix,
                        const std::string& name = "");
  /// matrix ~ MatrixDirichlet(alpha): column k of the K x L matrix, the Dirichlet variable
  /// matrix[k] (of dimension K), gets the prior Dirichlet(alpha.col(k)); one factor over the
  /// L columns (MakeMatrixDirichletNode).
  PlateId AddMatrixDirichlet(const Variable& matrix, const Matrix& alpha,
                             const std::string& name = "");
  /// exp log_table[x_1, …, x_n] over Categorical variables (row-major, the last variable
  /// fastest; −∞ for impossible configurations): one table shared by the plate, or the
  /// tables of its factors one after another (Ising couplings J_ij, one per edge).
  PlateId AddPotential(const std::vector<Argument>& variables, const std::vector<double>& log_table,
                       const std::string& name = "");

  // ---- Data and weights (minibatch and streaming inference) ------------------------------
  /// Replaces the values of the observed variable `v` (a run of it), one number per element
  /// as AddObserved and AddObservedCategorical take them. After Finalize they are validated as
  /// Finalize does and the nodes that cache sums of their data recompute them, so that the
  /// same graph serves minibatch after minibatch. Throws GraphError for a hidden variable, a
  /// handle of another graph or a count that differs from v.size(), ModelError for a value
  /// outside the family's support, or before Finalize for a NaN or an infinity (nothing
  /// changes then).
  void SetObservedValues(const Variable& v, const std::vector<double>& values);
  /// The same for an observed array of vectors: row n of `rows` is element v.begin() + n.
  void SetObservedRows(const Variable& v, const Matrix& rows);
  /// Lets plate `p` stand for `weight` copies of itself, each with its own copies of the
  /// elements it binds one per factor (a minibatch of B data points standing for all N, with
  /// weight N/B): its messages to elements that all of its factors share (global parameters)
  /// are multiplied by `weight`; its messages to one factor's own elements (local variables)
  /// are not. The free energy is not weighted (FreeEnergyParts gives the terms to weight).
  /// Cluster updates ignore the weight. Default 1; throws GraphError for a plate out of range
  /// and unless weight > 0 and finite.
  void SetPlateWeight(PlateId p, double weight);
  /// The weight of plate `p`; GraphError for a plate out of range.
  double plate_weight(PlateId p) const;

  // ---- Factorisation --------------------------------------------------------------------

  /// Gives the elements of the hidden array variable `v` (Categorical, Gaussian or
  /// MvGaussian) one joint posterior q(v[0], …, v[N−1]) instead of independent ones: the
  /// factors that join two of its elements (Transition, a two-variable Potential,
  /// LinearGaussian or MvGaussian with out = v[t] and in = v[t−1]) must form a tree, which
  /// is solved exactly by sum-product (forward–backward on a chain, the Kalman filter and RTS
  /// smoother for Gaussian states), with VMP messages from everything outside it. The free
  /// energy then uses the pairs' joint posteriors (the Bethe form, exact on a tree). Call
  /// before Finalize (GraphError after it, and for an observed variable, a part of one, a
  /// family other than those three, or a variable already clustered); Finalize throws
  /// GraphError naming a cycle, or a factor that cannot join two elements.
  ///
  /// `solver` chooses how the sum-product of the cluster runs (see ClusterSolver); both give
  /// the same posteriors, pairs and free energy.
  void AddCluster(const Variable& v, ClusterSolver solver = ClusterSolver::kSequential);

  /// Validates the graph and sets up the flat storage; throws GraphError or ModelError naming
  /// the variable or factor at fault. Starts every hidden variable at its prior: the product
  /// of the messages of the factors that have it as "out", with their other arguments at their
  /// starting values (ancestral order); a variable no such factor reaches starts at the
  /// standard density of its family (N(0, 1), N(0, I), Gamma(1, 1), Wishart(D, I)). Throws
  /// GraphError when called a second time.
  void Finalize();
  bool finalized() const;
  /// The most memory Finalize may lay out, in bytes: a graph whose flat storage would need
  /// more (the moments of every element, and the natural parameters and the update's copies
  /// of every hidden one) is refused with GraphError giving the estimate and the largest
  /// variables. Default 0: the machine's physical memory.
  void set_memory_budget(size_t bytes);
  size_t memory_budget() const;
  /// What Finalize found legal but probably a mistake, each naming its variable: a hidden
  /// variable some of whose elements no factor has as its "out" (nor joins undirected), so
  /// that nothing acts as its prior and it has the implicit flat prior of its family (improper
  /// for Gaussian, MvGaussian, Gamma and Wishart variables; uniform for the others). The
  /// schedulers copy them into Result::warnings.
  const std::vector<std::string>& warnings() const;
  /// Mixture components that have collapsed: for each plate of a mixture node
  /// (Node::ComponentSlots: GaussianMixture, gated factors) and each pair of components whose
  /// posteriors are identical in every one of their own slots (natural parameters equal to
  /// 1e-9 relative), a warning naming the plate, the components and their elements. The
  /// schedulers add them to Result::warnings at the end of a run.
  std::vector<std::string> CollapsedComponents() const;
  /// Variables updated by natural-gradient steps (Node::StepsOnFreeEnergy) some of whose
  /// elements had their last step refused at every step length — the step left q improper
  /// (an overflow, an indefinite precision) or raised F even at ρ = 2⁻³⁰ — so that they kept
  /// their posterior and the run may have stopped short of the fixed point: a warning naming
  /// each such variable and its elements. The schedulers add them to Result::warnings at the
  /// end of a run.
  std::vector<std::string> RefusedSteps() const;
  /// A random starting posterior for every element of `v`, the same for a given seed:
  /// Categorical elements get responsibilities drawn from Dirichlet(1, ..., 1); Gaussian and
  /// MvGaussian elements keep their spread and move their mean to a draw from their current
  /// posterior (after Finalize: the prior's). Breaks the symmetry of a mixture whose
  /// components start alike. Throws GraphError as SetPosterior does, and for other families.
  void SetRandomPosterior(const Variable& v, uint64_t seed);

  // ---- Queries --------------------------------------------------------------------------

  /// The declared variable called `name`; throws GraphError listing nothing if unknown.
  Variable Find(const std::string& name) const;
  size_t num_variables() const;
  size_t num_plates() const;
  /// Total number of factors over all plates.
  size_t num_factors() const;
  // The queries that take a Variable throw GraphError unless it is a run of elements of a
  // variable of this graph, naming the call; those that take a plate, for a plate out of range.

  /// The name of declared variable `id` (GraphError for an id out of range), and of one
  /// element ("x[3]", "x[1][2]"; GraphError for a run of another size).
  const std::string& variable_name(uint32_t id) const;
  std::string ElementName(const Variable& element) const;
  /// Every element of variable `id` (declared or a factor's constant); GraphError for an id
  /// out of range.
  Variable WholeVariable(uint32_t id) const;
  Family family(const Variable& v) const;
  int dim(const Variable& v) const;
  bool observed(const Variable& v) const;
  /// True when `v`'s variable has a joint posterior over its elements (AddCluster): its
  /// elements are updated together, by UpdateElements over all of them.
  bool clustered(const Variable& v) const;
  /// Hidden declared variables in order of declaration (constants excluded).
  std::vector<Variable> HiddenVariables() const;
  const Node& node(PlateId plate) const;
  const std::string& plate_name(PlateId plate) const;
  size_t plate_size(PlateId plate) const;

  /// The current posterior of one hidden element, as family `D` (Gaussian, MvGaussian,
  /// Gamma, Wishart); throws GraphError if the family differs or `element` is not one element.
  template <class D>
  D Posterior(const Variable& element) const {
    return D::FromFlat(CheckedDim(element, D::kFamily), PosteriorNatural(element));
  }
  /// Sets the posterior of every element of `v` to `q` (a starting point for a run). Throws
  /// GraphError before Finalize, for an observed variable, or when `q` is of another family
  /// or dimension.
  template <class D>
  void SetPosterior(const Variable& v, const D& q) {
    std::vector<double> eta(StatSize(D::kFamily, q.dim()));
    q.WriteNatural(eta.data());
    SetPosteriorNatural(v, D::kFamily, q.dim(), eta.data());
  }
  /// A human-readable posterior ("Gaussian(mean=..., variance=...)").
  std::string DescribePosterior(const Variable& element) const;

  /// Posterior predictive means for new data: E[out_k] = ∫ E[out | a_k] q(in) d(in) for a
  /// factor of type `type` (a node type that declares them, NodeType::predictive_means:
  /// Logistic and Probit give P(out_k = 1), Poisson the expected count) at the predictors
  ///   a_k = rows.row(k) · in + offset_k     (`in` one MvGaussian element of dimension
  ///                                          rows.cols(), or one Gaussian with one column),
  ///   a_k = in[k] + offset_k                (`rows` empty: each element of a Gaussian `in`),
  /// under the current posterior of `in`, which the new data do not change: a_k ~ N(rᵀm, rᵀΣr).
  /// `offsets` has 0, 1 or one entry per prediction. Throws GraphError before Finalize, for a
  /// type without predictive means, an observed `in`, and rows or offsets that do not fit.
  std::vector<double> PredictiveMeans(const std::string& type, const Variable& in,
                                      const Matrix& rows, const Vector& offsets = Vector()) const;

  /// Writes the graph in Graphviz DOT (via Boost.Graph): variables as circles (observed
  /// shaded), factors as boxes; plates are drawn as one box each. Throws GraphError before
  /// Finalize.
  void WriteGraphviz(std::ostream& out) const;

  // ---- Engine interface (for schedulers) -------------------------------------------------

  // The updates below check their arguments with a few integer compares, so that schedulers
  // call them in their loops: each throws GraphError, naming the call and the variable, before
  // Finalize, for a variable id out of range, an observed variable (no posterior to update), or
  // elements out of range, or for a Scratch that MakeScratch of this graph did not make (a
  // default-constructed one, another graph's, or one made before SetRowShard resized them).

  /// Scratch space sized for this graph (allocates; make one per thread, outside sweeps).
  /// Throws GraphError before Finalize.
  Scratch MakeScratch() const;
  /// The VMP update of one hidden element: η = Σ incoming messages, then its moments.
  /// Returns false, leaving the element unchanged, if η is not a proper density. Throws
  /// GraphError for an element of a cluster (update the cluster with UpdateElements).
  bool UpdateElement(uint32_t variable, size_t index, Scratch& scratch);
  /// The same update, with the blocks of its large message sums (plates of more than 16384
  /// factors that send it one sum, as N observations to a global mean), and of the energy
  /// sums of a natural-gradient step's checks on F, run by `runner`: the result is bitwise
  /// that of UpdateElement.
  bool UpdateElement(uint32_t variable, size_t index, Scratch& scratch,
                     const BlockRunner& runner);
  /// UpdateElement(variable, elements[i], scratch) for i = 0 … count − 1, in that order, bit
  /// for bit, except that a failed update does not stop the others: returns the smallest
  /// index whose update failed (that element unchanged), or SIZE_MAX. Stretches of the list
  /// that are runs of one colour class (ColourClasses), elements at one step and connected
  /// alike, such as every other square of a grid's row, are updated together: their
  /// connections are read once, and nodes compute the messages of the run in one call. A
  /// colour class in index order is the list that gains most. `runner`, if given, runs the
  /// blocks of large message sums, as in UpdateElement. An element out of range throws when
  /// the list reaches it, the ones before it updated.
  size_t UpdateListedElements(uint32_t variable, const size_t* elements, size_t count,
                              Scratch& scratch, const BlockRunner* runner = nullptr);
  /// UpdateElement for elements [begin, end) of `variable`, in index order; returns the index
  /// of the first update that failed (that element and the ones after it are unchanged), or
  /// `end`. When no factor joins two elements of the variable and all of them are connected
  /// alike (a plate of independent elements, like the labels of a mixture), their messages
  /// are computed in blocks, so that nodes share work between factors; the result is the
  /// same, bit for bit. The elements of a cluster are updated together by sum-product over
  /// the whole cluster: [begin, end) must cover them all (GraphError otherwise), and on
  /// failure none of them changes. GraphError for begin > end.
  size_t UpdateElements(uint32_t variable, size_t begin, size_t end, Scratch& scratch);
  /// The stochastic natural-gradient step of SVI for elements [begin, end): η ← (1 − step)·η
  /// + step·η̂, where η̂ is the VMP update (the sum of the incoming messages, plate weights
  /// applied) — step 1 is UpdateElement. A convex combination of proper natural parameters
  /// is proper, so the step fails only where the update itself does. Returns the first failed
  /// index (it and the ones after it unchanged) or `end`. Throws GraphError for a cluster or
  /// a step outside (0, 1].
  size_t UpdateElementsNaturalGradient(uint32_t variable, size_t begin, size_t end, double step,
                                       Scratch& scratch);
  /// The natural parameters of the posteriors of `v`'s elements, one after another (the flat
  /// layouts of family.h), and their replacement: a way to carry posteriors between graphs
  /// of one model (a minibatch graph and a full one). SetNaturalParameters throws GraphError
  /// for a size mismatch or an observed variable, ModelError for an improper density.
  std::vector<double> NaturalParameters(const Variable& v) const;
  void SetNaturalParameters(const Variable& v, const std::vector<double>& eta);
  /// True when UpdateElements updates `v`'s elements in blocks (set by Finalize; GraphError
  /// before).
  bool updates_in_blocks(const Variable& v) const;
  /// True when a message to `v` depends on `v`'s own posterior (Node::MessageReadsOwnSlot), so
  /// that updating `v` again may move it although no neighbour moved (set by Finalize;
  /// GraphError before).
  bool reads_itself(const Variable& v) const;
  // The free-energy methods throw GraphError before Finalize, and for a block out of range.

  /// F = Σ_plates Σ_n U_n − Σ_hidden H[q]: the variational free energy (deterministic order).
  double FreeEnergy(Scratch& scratch) const;
  /// F as a sum of blocks (the average energy of up to 8192 factors of a plate, or the
  /// entropy of up to 8192 elements of a variable) combined in a fixed order: evaluating the
  /// blocks concurrently (each thread with its own Scratch) and combining them with
  /// FreeEnergyFromBlocks gives FreeEnergy() bit for bit (GraphError unless it is given one
  /// value per block).
  /// Rows of a run split over processes are split in multiples of this: the factors of one
  /// block of a message sum (messages to an element from more factors than one are summed in
  /// blocks of this many, each block from zero, the blocks added in order).
  static constexpr size_t kRowGrain = 16384;
  /// Splits the message sums of the sharded plates over the processes of `shard` (see
  /// RowShard); an empty `sharded_plates` ends it. From then on, an element shared by the
  /// factors of a sharded plate must be updated by every process at once, one element at a
  /// time (each update exchanges blocks): ShardedScheduler does that. Throws GraphError for
  /// bounds that are not multiples of kRowGrain or do not end at a sharded plate's size, and
  /// for a message range of a sharded plate that does not start at a multiple of kRowGrain.
  void SetRowShard(RowShard shard);
  /// The free-energy block `block` (num_free_energy_blocks): the average energy of factors
  /// [begin, end) of plate `index`, or (entropy) the entropy of elements [begin, end) of
  /// variable `index`.
  struct FreeEnergyBlockSpan {
    bool entropy = false;
    uint32_t index = 0;
    size_t begin = 0, end = 0;
  };
  FreeEnergyBlockSpan FreeEnergyBlockSpanOf(size_t block) const;
  size_t num_free_energy_blocks() const;
  double FreeEnergyBlock(size_t block, Scratch& scratch) const;
  double FreeEnergyFromBlocks(const std::vector<double>& values) const;
  /// Where the elements a free-energy block reads lie in their variable, in [0, 1): the
  /// middle element of the block's first hidden slot not shared by its factors (else of a
  /// data slot, else 0) over the variable's size; for an entropy block, its middle element.
  /// A threaded scheduler gives the block to the thread that updates those elements, so that
  /// they are still in that thread's cache.
  double FreeEnergyBlockPosition(size_t block) const;
  /// The colours of `v`'s elements (elements that share a factor never share one), as
  /// classes of element indices in increasing order, restricted to v's run; a colour's
  /// elements can be updated concurrently, with the result of updating them one by one. None
  /// for an observed variable. GraphError before Finalize.
  std::vector<std::vector<size_t>> ColourClasses(const Variable& v) const;
  /// The number of colours of the elements of `v`'s variable (1 when no factor joins two, 0
  /// for an observed variable). GraphError before Finalize.
  size_t num_colours(const Variable& v) const;
  /// The plates' average energies and the entropy sum that make up FreeEnergy().
  struct FreeEnergyTerms {
    std::vector<double> plate_energy;  ///< Σ_n U_n of each plate
    double entropy = 0.0;              ///< Σ_hidden H[q]
    /// By declared variable: its share of the entropy (0 for observed ones); they sum to
    /// `entropy` up to rounding.
    std::vector<double> variable_entropy;
  };
  FreeEnergyTerms FreeEnergyParts(Scratch& scratch) const;

  /// A Monte Carlo estimate of F = E_q[log q(x) − log p(y, x)] at the current posteriors.
  struct MonteCarloEstimate {
    double free_energy = 0.0;     ///< the mean of log q − log p over the draws
    double standard_error = 0.0;  ///< its standard error (sample deviation / √samples)
    std::vector<double> plate_energy;        ///< by plate: the mean of −Σ_n log f_n
    std::vector<double> plate_energy_error;  ///< and its standard error
    double entropy = 0.0;        ///< the mean of −log q(x)
    double entropy_error = 0.0;  ///< and its standard error
    size_t samples = 0;
  };
  /// Estimates F from `samples` independent draws of q (a cluster drawn jointly along its
  /// tree, from its pairs' joint posteriors) using only log-densities — each factor's
  /// Node::LogFactor and each posterior's LogDensity, never the average-energy or entropy
  /// formulas — so that it checks them: F, and each plate's average energy, must agree with
  /// FreeEnergyParts within a few standard errors. Draw s depends on `seed` and s only, so the
  /// estimate is the same for any number of threads. Throws GraphError before Finalize or for
  /// fewer than 2 samples, ModelError naming a plate whose node has no pointwise density.
  MonteCarloEstimate MonteCarloFreeEnergy(size_t samples, uint64_t seed = 0) const;

  // ---- Structure, read-only (for schedulers that pass their own messages, such as loopy
  // belief propagation). Each throws GraphError before Finalize or for an index out of range.

  /// The element that factor n of `plate` reads at `slot` (slots as in the node's
  /// slot_names()): a hidden or observed element, or a constant, which is a one-element
  /// observed variable of its own (family(), dim() and Moments() describe it).
  Variable FactorArgument(PlateId plate, size_t n, size_t slot) const;
  /// E[T(x)] of one element: the moments of a hidden element's current posterior, T(value) of
  /// an observed element or a constant (a Categorical's probabilities, one-hot when observed;
  /// a Dirichlet constant's log p).
  const double* Moments(const Variable& element) const;
  /// Node::LogTable of factor n of `plate`: log f_n over the node's Categorical slots, or
  /// nullptr when the factor is not a fixed discrete table.
  const double* FactorLogTable(PlateId plate, size_t n) const;

  /// Elements [begin, end) of declared variable `variable`.
  struct ElementRange {
    uint32_t variable = 0;
    size_t begin = 0;
    size_t end = 0;
  };
  /// The hidden elements that share a factor with an element of `v` (a run of one hidden
  /// variable): those whose moments an update of v reads, and those whose updates read v's.
  /// Observed elements and constants are left out. No element is its own neighbour, but
  /// elements of the run that a factor joins to another of its elements are listed. Ranges
  /// may overlap; they are
  /// sorted by (variable, begin, end), without repeats. Two updates may run at the same time
  /// only if neither element is in the other's list (the async scheduler's dependencies).
  std::vector<ElementRange> HiddenNeighbours(const Variable& v) const;

 private:
  struct Impl;
  int CheckedDim(const Variable& element, Family family) const;
  /// AddFactor with a gathered argument: one AddFactor per run of factors.
  PlateId AddGathered(const std::string& type, const std::vector<NamedArgument>& arguments,
                      const std::string& name);
  /// The node of registered type `type` from named arguments, checked as AddFactor does
  /// (errors start with `where`), and its slots' arguments in `slots`.
  std::unique_ptr<Node> BuildNode(const std::string& type,
                                  const std::vector<NamedArgument>& arguments,
                                  const std::string& where, std::vector<Argument>& slots) const;
  const double* PosteriorNatural(const Variable& element) const;
  void SetPosteriorNatural(const Variable& v, Family family, int dim, const double* eta);
  std::unique_ptr<Impl> impl_;
};

}  // namespace vfe

#endif  // VFE_GRAPH_FACTOR_GRAPH_H_
