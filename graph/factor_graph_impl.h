#ifndef VFE_GRAPH_FACTOR_GRAPH_IMPL_H_
#define VFE_GRAPH_FACTOR_GRAPH_IMPL_H_

// Private state of FactorGraph, shared by the files of graph/ only.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/graph/adjacency_list.hpp>

#include "vfe/graph/factor_graph.h"

namespace vfe {

/// A declared variable (or an anonymous constant), and where its elements live in the flat
/// arrays once the graph is finalised.
struct VariableInfo {
  std::string name;  ///< for a constant: the factor and slot it belongs to
  Family family = Family::kGaussian;
  bool family_known = false;  ///< observed variables learn their family from the factors
  int dim = 1;
  std::vector<size_t> shape;  ///< empty for a single element
  size_t size = 1;            ///< number of elements
  bool observed = false;
  bool constant = false;
  // Observed values: element i is the value_rows x value_cols block at i·rows·cols.
  std::vector<double> values;
  int value_rows = 1;
  int value_cols = 1;
  bool scalar_values = false;
  // Set by Finalize.
  int stat_size = 0;
  size_t moment_offset = 0;   ///< into moments
  size_t natural_offset = 0;  ///< into natural (hidden only)
  size_t hidden_ordinal = 0;  ///< index of element 0 among all hidden elements
};

/// Which elements one slot of a plate reads: `begin` for every factor when shared, else
/// begin + n for factor n.
struct Binding {
  uint32_t variable = 0;
  size_t begin = 0;
  bool shared = true;
};

struct Plate {
  std::string name;
  std::unique_ptr<Node> node;
  size_t size = 1;
  std::vector<Binding> bindings;  ///< one per slot
  /// One per slot, then the view of the pair moments (empty unless the plate joins pairs of
  /// a cluster); set by Finalize.
  std::vector<SlotView> views;
  /// Slots a < b through which the plate joins two elements of a cluster, or −1.
  int pair_slot_a = -1;
  int pair_slot_b = -1;
  /// Messages to elements shared by all factors are multiplied by this (SetPlateWeight).
  double weight = 1.0;
  size_t pair_stat = 0;              ///< numbers per factor in pair_moments
  std::vector<double> pair_moments;  ///< the joint moments of each factor's pair (Node docs)
};

/// The state of a Gaussian chain solved by the parallel scan (graph/cluster_parallel_scan.cc):
/// per-step smoothing elements, per-block totals and per-thread scratch, sized at first use.
struct ChainScanWork;
struct ChainScanWorkDeleter {
  void operator()(ChainScanWork* work) const;
};

/// The state of a Categorical chain solved by the parallel scan
/// (graph/cluster_parallel_scan_categorical.cc): per-block products of the forward steps, the
/// messages at the block boundaries, per-block sums and per-thread scratch, sized at first use.
struct CategoricalScanWork;
struct CategoricalScanWorkDeleter {
  void operator()(CategoricalScanWork* work) const;
};

/// A tree-shaped cluster: the elements of one variable with a joint posterior, solved by
/// sum-product along a rooted spanning forest of the factors that join them (graph/clusters.cc).
struct Cluster {
  uint32_t variable = 0;
  ClusterSolver solver = ClusterSolver::kSequential;
  int dim = 1;           ///< categories, or the Gaussian dimension
  size_t size = 0;       ///< elements
  std::vector<size_t> order;  ///< every element, each after its parent (roots first)
  static constexpr size_t kNoParent = SIZE_MAX;
  std::vector<size_t> parent;         ///< by element: its parent, or kNoParent
  std::vector<uint32_t> edge_plate;   ///< by child element: the factor joining it to its parent
  std::vector<size_t> edge_factor;
  std::vector<char> child_in_slot_a;  ///< by child element: it fills the plate's slot a
  std::vector<size_t> child_offsets;  ///< CSR of the children of each element
  std::vector<size_t> children;
  // Buffers of one update, sized at Finalize (no allocation during sweeps).
  std::vector<double> unary, below, down, up, cavity, potential, belief, belief_moments,
      information;
  // Categorical clusters: the outside messages η, the pairs' log-tables T and
  // ψ = exp(T − max T) (K x K per child element; a plate whose factors share one table keeps
  // it once, at its first child of a run of the schedule, and the others point there).
  std::vector<double> unary_log, log_table, psi;
  std::vector<const double*> log_table_of, psi_of;
  // Gaussian clusters: the pair potential of each child element (its own, in `potential`, or
  // one of `shared_potential`, computed from the factor of element `shared_first[s]` for a
  // plate whose factors share it: one per plate and orientation).
  std::vector<const double*> potential_of;
  std::vector<char> potential_shared;
  std::vector<double> shared_potential;
  std::vector<size_t> shared_first;
  // Sequential Gaussian clusters, by element: the upward gain K⁻¹Λ_cp with K = Λ^ψ_cc +
  // Λ_below, log|K|, and the belief's covariance and log-determinant of its precision.
  std::vector<double> up_gain, up_log_det, covariance, belief_log_det;
  std::unique_ptr<ChainScanWork, ChainScanWorkDeleter> scan;  ///< kParallelScan, Gaussian
  /// kParallelScan, Categorical.
  std::unique_ptr<CategoricalScanWork, CategoricalScanWorkDeleter> categorical_scan;
};

/// Factors [begin, end) of `plate` send a message to a hidden element through `slot`.
/// The plate's node and views are copied in, so that a message costs one load chain fewer.
struct AdjacencyEntry {
  uint32_t plate;
  uint32_t slot;
  size_t begin;
  size_t end;
  const Node* node;
  const SlotView* views;
};

/// A vertex of the bipartite structure graph: a declared variable or a plate of factors.
struct StructureVertex {
  bool is_plate = false;
  uint32_t index = 0;  ///< variable id or plate id
};
/// An edge: which slot of the plate the variable fills.
struct StructureEdge {
  uint32_t slot = 0;
};
/// The factor graph's structure for traversal, colouring and export (Boost.Graph): one vertex
/// per declared variable (constants belong to their factor) and per plate, an edge per
/// connection. The hot loops use the flat arrays instead.
using StructureGraph = boost::adjacency_list<boost::vecS, boost::vecS, boost::undirectedS,
                                             StructureVertex, StructureEdge>;

/// A term of the free energy: the average energy of factors [begin, end) of a plate, or the
/// entropy of elements [begin, end) of a hidden variable. F is summed from these blocks in a
/// fixed order, so that it is the same whether they are evaluated by one thread or many.
struct EnergyBlock {
  bool entropy = false;
  uint32_t index = 0;  ///< plate id, or variable id for an entropy block
  size_t begin = 0;
  size_t end = 0;
};

struct FactorGraph::Impl {
  std::vector<VariableInfo> variables;
  std::unordered_map<std::string, uint32_t> by_name;
  std::vector<Plate> plates;
  bool finalized = false;
  std::vector<std::string> warnings;  ///< FactorGraph::warnings, set by Finalize
  StructureGraph structure;  ///< set by Finalize

  // Flat state, set by Finalize.
  std::vector<double> moments;  ///< E[T] of every element (observed: T(value))
  std::vector<double> natural;  ///< η of every hidden element
  std::vector<size_t> adjacency_offsets;  ///< CSR over hidden ordinals
  std::vector<AdjacencyEntry> adjacency;
  std::vector<uint32_t> hidden_ids;  ///< hidden variables in declaration order
  /// By variable: its elements can be updated in blocks (see FactorGraph::UpdateElements).
  std::vector<char> updates_in_blocks;
  /// By variable: a node sends it natural-gradient messages (Node::StepsOnFreeEnergy), so
  /// its updates are steps that backtrack on F (StepOnFreeEnergy), one element at a time.
  std::vector<char> steps_on_free_energy;
  /// For each element of such a variable: 1 when its last step was refused at every step
  /// length (FactorGraph::RefusedSteps). One byte per element, written only by the thread that
  /// updates the element.
  std::vector<std::vector<uint8_t>> step_refused;
  /// By variable: a message to it depends on its own posterior (Node::MessageReadsOwnSlot).
  std::vector<char> reads_itself;
  /// By hidden ordinal: the element's colour among the elements of its variable (elements
  /// that share a factor never share a colour); by variable: the number of colours.
  std::vector<uint32_t> element_colour;
  std::vector<uint32_t> num_colours;
  /// By hidden ordinal: where the element stands in its colour run. A colour run is a
  /// stretch of a colour class (its elements in index order) whose elements are `step` apart
  /// and connected alike: each through the same plates and slots, one factor each, so that
  /// their factors are `step` apart too (every other square of a grid's row). Its elements
  /// are updated together (UpdateRun). `left` counts the run's elements from this one on,
  /// itself included (1 for an element in no run).
  struct ColourRunPlace {
    uint32_t left = 1;
    uint32_t step = 1;
  };
  std::vector<ColourRunPlace> colour_run;
  /// The largest statistic size of a variable updated in blocks or in colour runs.
  size_t run_stat = 0;
  std::vector<EnergyBlock> free_energy_blocks;
  std::vector<Cluster> clusters;
  std::vector<int> cluster_of;  ///< by variable: index into clusters, or −1
  /// By hidden ordinal: the share of a cluster's multi-information Σ H[q_i] − H[q] booked on
  /// the element (Gaussian clusters: I(x_c; x_parent) on each child; Categorical ones: all of
  /// it on element 0), 0 elsewhere; the cluster's entropy is Σ H[q_i] minus their sum (the
  /// Bethe entropy, exact on a tree).
  std::vector<double> mutual_information;
  /// By variable: its version (SlotView::version), advanced by Touch when some plate tracks
  /// the variable's changes (`tracked`); set by BuildViews.
  std::unique_ptr<std::atomic<uint64_t>[]> versions;
  std::vector<char> tracked;
  /// Records that variable `v` changed (any of its elements, posterior or observed value).
  void Touch(uint32_t v) {
    if (tracked[v]) versions[v].fetch_add(1, std::memory_order_relaxed);
  }
  std::vector<int> dims_in_use;      ///< event dimensions of the matrix families
  size_t num_hidden_elements = 0;
  int max_dim = 1;
  int max_stat = 1;

  uint32_t Declare(VariableInfo info);
  std::string PlateLabel(PlateId p) const;
  std::string ElementName(uint32_t id, size_t index) const;
  std::string Describe(uint32_t id) const;
  /// Throws GraphError unless `v` is a run of elements of a variable of this graph; `what`,
  /// if given, names the call in the message. Inline and without strings on success: the
  /// async scheduler reads Moments() per element.
  const Variable& Checked(const Variable& v, const char* what = nullptr) const {
    // Written so that begin + size cannot wrap around.
    if (!v.valid() || v.id() >= variables.size() || v.begin() > variables[v.id()].size ||
        v.size() > variables[v.id()].size - v.begin())
      ThrowNotAVariable(v, what);
    return v;
  }
  [[noreturn]] void ThrowNotAVariable(const Variable& v, const char* what) const;
  /// Throws GraphError unless `plate` is a plate of this graph; `what` names the call.
  const Plate& CheckedPlate(PlateId plate, const char* what) const;
  /// Throws GraphError unless `id` is a declared variable (or constant) of this graph.
  void CheckVariableId(uint32_t id, const char* what) const {
    if (id >= variables.size()) ThrowBadVariableId(id, what);
  }
  /// Throws GraphError before Finalize; `what` names the call.
  void CheckFinalized(const char* what) const {
    if (!finalized) ThrowNotFinalized(what);
  }
  /// Throws GraphError unless `scratch` came from MakeScratch of this graph since its sizes
  /// last changed (one compare: a key of 0 is never a graph's).
  void CheckScratch(const Scratch& scratch, const char* what) const {
    if (scratch.made_for != scratch_key) ThrowBadScratch(scratch, what);
  }
  [[noreturn]] void ThrowBadScratch(const Scratch& scratch, const char* what) const;
  /// A new key for the scratch sizes (Finalize, and whenever they grow): unique in the process.
  void NewScratchKey();
  uint64_t scratch_key = 0;
  size_t memory_budget = 0;  ///< bytes; 0: the machine's physical memory
  /// Throws GraphError when the flat storage LayOut would make exceeds the budget.
  void CheckMemoryBudget() const;
  // The checks of the engine interface, which schedulers call in their loops: a few compares
  // on the way in, and the message is built only when one fails.
  /// Throws GraphError unless the graph is finalised, `variable` is a hidden variable of it
  /// and begin <= end <= its number of elements; `what` names the call.
  void CheckHiddenRange(uint32_t variable, size_t begin, size_t end, const char* what) const {
    if (!finalized || variable >= variables.size() || variables[variable].observed ||
        begin > end || end > variables[variable].size)
      ThrowBadHidden(variable, begin, end, /*one_element=*/false, what);
  }
  /// The same for element `index` of `variable`.
  void CheckHiddenElement(uint32_t variable, size_t index, const char* what) const {
    if (!finalized || variable >= variables.size() || variables[variable].observed ||
        index >= variables[variable].size)
      ThrowBadHidden(variable, index, index + 1, /*one_element=*/true, what);
  }
  /// The messages of the checks above (graph/factor_graph.cc).
  [[noreturn]] void ThrowBadVariableId(uint32_t id, const char* what) const;
  [[noreturn]] void ThrowNotFinalized(const char* what) const;
  [[noreturn]] void ThrowBadHidden(uint32_t variable, size_t begin, size_t end, bool one_element,
                                   const char* what) const;
  /// Throws GraphError for free-energy block `block`, out of range or asked for before
  /// Finalize.
  [[noreturn]] void ThrowBadBlock(size_t block, const char* what) const;
  /// "elements [b, e) of variable 'x', which has N elements": for a handle from another graph.
  std::string OutOfRange(const Variable& v) const;
  PointMass ObservedValue(const VariableInfo& info, size_t index) const;
  uint32_t HiddenVariableOf(size_t ordinal) const;

  // Finalize, in order.
  /// Fills `warnings` with the hidden variables that have no prior (graph/warnings.cc);
  /// after the adjacency is built.
  void FindMissingPriors();
  void InferObservedFamilies();
  void CheckEveryElementConnected() const;
  void CheckNoDoubleConnection() const;
  void BindNodes();
  void LayOut();
  void WriteObservedMoments();
  void BuildViews();
  void BuildAdjacency();
  void BuildStructure();
  void FindBlockUpdates();
  /// After hidden_ids and the adjacency; `processes` stacked processes' blocks (RowShard).
  void SizePartialSums(size_t processes = 1);
  void ColourElements();           // graph/coloring.cc
  void FindColourRuns();           // graph/coloring.cc, after ColourElements
  /// The colour classes of elements [begin, end) of hidden variable `v`, each in index order
  /// (FactorGraph::ColourClasses).
  std::vector<std::vector<size_t>> ColourClassesOf(uint32_t v, size_t begin, size_t end) const;
  // graph/clusters.cc
  void FindClusterPairs();       // before BuildViews
  void BuildClusterSchedules();  // after LayOut
  /// Throws GraphError unless the cluster's tree is one chain (ClusterSolver::kParallelScan).
  void CheckChain(const Cluster& cluster) const;
  /// Sets every pair of the cluster to the product of its marginals (no dependence).
  void ResetClusterPairs(Cluster& cluster);
  /// Sum-product over the whole cluster; returns the element at fault, or SIZE_MAX.
  size_t UpdateCluster(Cluster& cluster, Scratch& scratch);
  size_t UpdateCategoricalCluster(Cluster& cluster, Scratch& scratch);
  size_t UpdateGaussianCluster(Cluster& cluster, Scratch& scratch);
  /// The same result for a Gaussian chain by the parallel scan (ClusterSolver::kParallelScan).
  size_t UpdateGaussianChainScan(Cluster& cluster, Scratch& scratch);
  /// Its passes for elements of dimension N (or Eigen::Dynamic, at most MaxN).
  template <int N, int MaxN>
  size_t RunChainScan(Cluster& cluster, ChainScanWork& work);
  /// The same result as UpdateCategoricalCluster for a Categorical chain by the parallel scan
  /// (ClusterSolver::kParallelScan; graph/cluster_parallel_scan_categorical.cc).
  size_t UpdateCategoricalChainScan(Cluster& cluster, Scratch& scratch);
  /// UpdateGaussianCluster for elements of dimension N (or Eigen::Dynamic, at most MaxN).
  template <int N, int MaxN>
  size_t SolveGaussianTree(Cluster& cluster, Scratch& scratch);
  /// Computes the cluster's shared pair potentials (Cluster::shared_potential); returns the
  /// element at fault, or SIZE_MAX.
  size_t ComputeSharedPotentials(Cluster& cluster, Scratch& scratch);
  /// Computes the own pair potential of child element i into Cluster::potential, over
  /// (x_i, x_parent); false when it is not finite.
  bool ComputeOwnPotential(Cluster& cluster, size_t i, Scratch& scratch) const;
  /// Copies the beliefs, moments, cross moments and mutual information of elements
  /// [begin, end) of a Gaussian cluster from its buffers into the graph.
  void CommitGaussianCluster(Cluster& cluster, size_t begin, size_t end);
  /// Adds the messages of the factors that are not pairs of the cluster to `eta`.
  void AddOutsideMessages(const Cluster& cluster, size_t element, double* eta,
                          Scratch& scratch) const;
  /// Calls Prepare again on every plate that reads variable `id` (its data changed).
  void ReprepareReaders(uint32_t id);
  /// Node::Prepare of plate p; a ModelError it throws is named by the plate.
  void Prepare(PlateId p);
  /// ForgetMessages on every plate that keeps messages and binds `variable` (its posterior
  /// was set from outside).
  void ForgetKeptMessages(uint32_t variable);
  /// True when a plate that keeps its messages binds `variable`; its label into plate_label.
  bool KeptMessagesReach(uint32_t variable, std::string* plate_label) const;
  /// Throws GraphError unless variable `id` is observed data (not a constant); `what` names
  /// the call.
  void RequireObserved(uint32_t id, const char* what) const;
  void SplitFreeEnergyBlocks();
  /// Plates and variables larger than this are split into free-energy blocks.
  static constexpr size_t kFreeEnergyBlockSize = 8192;
  double EvaluateBlock(const EnergyBlock& block, Scratch& scratch) const;
  /// F from the values of free_energy_blocks (value(b) of block b), in their order:
  /// Σ_plates (Σ of the plate's blocks) − Σ entropy blocks. Plate sums go to `plate_energy`
  /// and the entropy to `entropy` when they are not null. (Defined in free_energy.cc.)
  template <class Value>
  double CombineBlocks(Value value, std::vector<double>* plate_energy, double* entropy) const;
  void Initialise(Scratch& scratch);

  /// Sets element `index` of hidden variable `v` from the sum of its incoming messages (only
  /// those through "out" slots when `out_only`); false if there are none or the sum is
  /// improper, in which case nothing changes.
  bool SetFromMessages(uint32_t v, size_t index, bool out_only, Scratch& scratch,
                       const BlockRunner* runner = nullptr);
  /// Moves element `index` of `v` from its posterior towards the natural parameters `target`
  /// (the sum of its messages): η ← (1 − ρ)η + ρ·target with ρ = 1, halved until the proper
  /// posterior it gives does not raise the element's share of F (LocalFreeEnergy), at most
  /// kMaxHalvings times; the element stays as it was when no step qualifies. Returns true.
  /// `runner`, if given, runs the blocks of its large energy sums (as those of the messages).
  bool StepOnFreeEnergy(uint32_t v, size_t index, const double* target, Scratch& scratch,
                        const BlockRunner* runner);
  /// The terms of F that depend on element `index` of `v`: the average energies of the
  /// factors it joins (shared elements: times their plate's weight) minus its entropy. The
  /// energy of a long plate range is summed in the blocks of its messages, each block's sum
  /// run by `runner` (or here, when null) and the block sums added in order.
  double LocalFreeEnergy(uint32_t v, size_t index, Scratch& scratch, const BlockRunner* runner);
  static constexpr int kMaxHalvings = 30;
  size_t max_partial = 0;  ///< the largest (blocks × statistic size) of one message sum
  /// Fills partial[b·width …] for blocks b in [0, count) of entry `e`'s factors with `body`:
  /// on `runner` (or here), and in a sharded run, for a sharded plate, only this process's
  /// blocks, the others' exchanged in (SetRowShard). Returns the blocks in `partial` to add:
  /// `count`, or every process's (ranks × count) in a stacked run.
  size_t RunMessageBlocks(const AdjacencyEntry& e, size_t count, size_t width, double* partial,
                        const BlockRunner::Body& body, Scratch& scratch,
                        const BlockRunner* runner);
  /// True when entry `e`'s messages are summed in blocks: more than one factor (or a sharded
  /// plate), unless the node reads cached sums.
  bool SumsInBlocks(const AdjacencyEntry& e) const;
  /// True in a sharded run for an entry of a sharded plate to a shared element.
  bool ShardedEntry(const AdjacencyEntry& e) const;
  RowShard row_shard;  ///< empty sharded_plates: not sharded
  std::vector<size_t> shard_counts;  ///< numbers per process of one exchange (reused)
  /// Updates elements first, first + step, … (`count` of them) of variable `v`, elements that
  /// no factor joins to one another and that are connected alike, the factors of each
  /// connection `step` apart (the elements of a variable that updates in blocks, step 1, or
  /// of a colour run): their messages are computed together, block by block, and each
  /// element ends as SetFromMessages would leave it, bit for bit. Returns the first element
  /// whose update failed (left unchanged), or SIZE_MAX; with `stop_at_failure` the elements
  /// after it are left unchanged too, otherwise they are updated.
  size_t UpdateRun(uint32_t v, size_t first, size_t step, size_t count, bool stop_at_failure,
                   Scratch& scratch);
  /// Elements updated together by UpdateRun (their messages fit in scratch.block_eta).
  static constexpr size_t kBlockSize = 256;
  /// The workspace for updates of `info`'s family (sized for the matrix families; the others
  /// ignore it).
  static Workspace& WorkspaceFor(const VariableInfo& info, Scratch& scratch) {
    return scratch.by_dim[IsMultivariate(info.family) ? info.dim : 0];
  }
};

}  // namespace vfe

#endif  // VFE_GRAPH_FACTOR_GRAPH_IMPL_H_
