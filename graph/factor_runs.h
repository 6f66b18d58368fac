#ifndef VFE_GRAPH_FACTOR_RUNS_H_
#define VFE_GRAPH_FACTOR_RUNS_H_

// Splitting a loop of factors into plates: a plate's argument is one element shared by its
// factors or a run of consecutive elements, so factors whose elements follow no such pattern
// (a data-indexed gather "p[group[n]]", a strided index "x[2*n]") go to several plates. Used by
// FactorGraph::AddFactor for gathered arguments and by the JSON loader. Private to the library.

#include <cstddef>
#include <vector>

namespace vfe {

/// Factors [first, last) of a loop in which each per-factor element list is constant
/// (step 0; also for a run of one factor) or steps by one (step 1).
struct FactorRun {
  size_t first = 0, last = 0;
  std::vector<long> steps;  ///< by list, 0 or 1
};

/// The maximal runs, in order, of `count` factors where factor n reads element
/// (*elements[s])[n] of list s.
inline std::vector<FactorRun> SplitIntoRuns(const std::vector<const std::vector<size_t>*>& elements,
                                            size_t count) {
  std::vector<FactorRun> runs;
  size_t first = 0;
  while (first < count) {
    FactorRun run;
    run.first = first;
    run.steps.assign(elements.size(), -1);  // unknown until the run's second factor
    size_t last = first + 1;
    for (; last < count; ++last) {
      bool fits = true;
      for (size_t s = 0; s < elements.size() && fits; ++s) {
        const long delta =
            static_cast<long>((*elements[s])[last]) - static_cast<long>((*elements[s])[first]);
        const long length = static_cast<long>(last - first);
        fits = run.steps[s] < 0 ? (delta == 0 || delta == 1) : delta == run.steps[s] * length;
      }
      if (!fits) break;
      if (last == first + 1)
        for (size_t s = 0; s < elements.size(); ++s)
          run.steps[s] =
              static_cast<long>((*elements[s])[last]) - static_cast<long>((*elements[s])[first]);
    }
    for (long& step : run.steps) step = step < 0 ? 0 : step;
    run.last = last;
    runs.push_back(std::move(run));
    first = last;
  }
  return runs;
}

}  // namespace vfe

#endif  // VFE_GRAPH_FACTOR_RUNS_H_
