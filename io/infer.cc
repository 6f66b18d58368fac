// One call runs a loaded model with the scheduler its settings name.

#include "vfe/core/error.h"
#include "vfe/io/model_json.h"
#include "vfe/schedulers/async.h"
#include "vfe/schedulers/belief_propagation.h"
#include "vfe/schedulers/parallel.h"
#include "vfe/schedulers/sequential.h"

namespace vfe {

const char* SchedulerName(SchedulerKind scheduler) {
  switch (scheduler) {
    case SchedulerKind::kSequential:
      return "sequential";
    case SchedulerKind::kParallel:
      return "parallel";
    case SchedulerKind::kAsync:
      return "async";
  }
  return "?";
}

std::optional<SchedulerKind> ParseSchedulerKind(const std::string& name) {
  for (SchedulerKind s :
       {SchedulerKind::kSequential, SchedulerKind::kParallel, SchedulerKind::kAsync})
    if (name == SchedulerName(s)) return s;
  return std::nullopt;
}

const char* AlgorithmName(Algorithm algorithm) {
  return algorithm == Algorithm::kBeliefPropagation ? "bp" : "vmp";
}

std::optional<Algorithm> ParseAlgorithm(const std::string& name) {
  for (Algorithm a : {Algorithm::kVariationalMessagePassing, Algorithm::kBeliefPropagation})
    if (name == AlgorithmName(a)) return a;
  return std::nullopt;
}

Result Infer(Model& model) {
  const InferenceSettings& settings = model.inference;
  if (settings.algorithm == Algorithm::kBeliefPropagation) {
    if (settings.scheduler == SchedulerKind::kAsync)
      throw OptionsError(
          "belief propagation runs on the sequential or the parallel (flooding) "
          "scheduler, not async");
    BeliefPropagationOptions bp;
    bp.schedule = settings.scheduler == SchedulerKind::kParallel ? BpSchedule::kFlooding
                                                                 : BpSchedule::kSequential;
    bp.max_iterations = settings.options.max_iterations;
    bp.tolerance = settings.options.tolerance;
    bp.threads = settings.threads;
    bp.damping = settings.damping;
    bp.callback = settings.options.callback;
    return BeliefPropagation(bp).Run(model.graph);
  }
  switch (settings.scheduler) {
    case SchedulerKind::kSequential:
      return SequentialScheduler(settings.options).Run(model.graph);
    case SchedulerKind::kParallel:
      return ParallelScheduler(settings.options, settings.threads).Run(model.graph);
    case SchedulerKind::kAsync: {
      AsyncOptions async;
      async.threads = settings.threads;
      async.threshold = settings.threshold;
      return AsyncScheduler(settings.options, async).Run(model.graph);
    }
  }
  throw OptionsError("unknown scheduler");
}

}  // namespace vfe
