// Agent files ("format": "vfe-agent/1") and the per-step trace of `vfe agent`.

#include <chrono>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <ostream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "agents/tensor_ops.h"
#include "io/input_file.h"
#include "io/json_reader.h"
#include "io/json_writer.h"
#include "vfe/agents/agent.h"
#include "vfe/core/format.h"

namespace vfe {
namespace agents {
namespace {

/// The trace is written with sorted keys.
using TraceJson = nlohmann::json;

/// The file reader, with the nested tensors of agent files.
class Reader : public JsonReader {
 public:
  using JsonReader::JsonReader;

  /// A nested list of numbers as a row-major tensor; every sub-list of one level must have the
  /// length of the first.
  Tensor NestedTensor(const Json& j, const std::string& pointer) const {
    Tensor t;
    const Json* probe = &j;
    while (probe->is_array()) {
      if (probe->empty()) Fail(pointer, "expected a nested array of numbers without empty lists");
      t.shape.push_back(static_cast<int>(probe->size()));
      probe = &(*probe)[0];
    }
    if (t.shape.empty()) Fail(pointer, "expected a nested array of numbers, found " + Found(j));
    Flatten(j, pointer, 0, t);
    return t;
  }

 private:
  void Flatten(const Json& j, const std::string& pointer, size_t level, Tensor& t) const {
    if (level == t.shape.size()) {
      t.data.push_back(Number(j, pointer));
      return;
    }
    if (!j.is_array())
      Fail(pointer, "expected an array of " + std::to_string(t.shape[level]) +
                        " (the shape set by the first entries), found " + Found(j));
    if (static_cast<int>(j.size()) != t.shape[level])
      Fail(pointer, "expected " + std::to_string(t.shape[level]) +
                        " entries (the shape set by the first entries), found " +
                        std::to_string(j.size()));
    for (size_t i = 0; i < j.size(); ++i) Flatten(j[i], pointer + "/" + std::to_string(i), level + 1, t);
  }
};

std::vector<Tensor> Tensors(const Reader& r, const Json& j, const std::string& pointer) {
  r.Array(j, pointer);
  std::vector<Tensor> out;
  for (size_t i = 0; i < j.size(); ++i) out.push_back(r.NestedTensor(j[i], pointer + "/" + std::to_string(i)));
  return out;
}

std::vector<Vector> Vectors(const Reader& r, const Json& j, const std::string& pointer) {
  r.Array(j, pointer);
  std::vector<Vector> out;
  for (size_t i = 0; i < j.size(); ++i) out.push_back(r.Numbers(j[i], pointer + "/" + std::to_string(i)));
  return out;
}

std::vector<std::vector<int>> IntegerLists(const Reader& r, const Json& j, const std::string& pointer) {
  r.Array(j, pointer);
  std::vector<std::vector<int>> out;
  for (size_t i = 0; i < j.size(); ++i) out.push_back(r.Integers(j[i], pointer + "/" + std::to_string(i)));
  return out;
}

GenerativeModel ReadModel(const Reader& r, const Json& j) {
  const std::string p = "/model";
  r.CheckKeys(j, p, {"A", "A_factor_list", "B", "B_factor_list", "C", "D", "E", "pA", "pB", "pD",
                     "policies"});
  GenerativeModel model;
  if (j.contains("A")) model.A = Tensors(r, j["A"], p + "/A");
  if (j.contains("pA")) model.pA = Tensors(r, j["pA"], p + "/pA");
  if (j.contains("B")) model.B = Tensors(r, j["B"], p + "/B");
  if (j.contains("pB")) model.pB = Tensors(r, j["pB"], p + "/pB");
  if (j.contains("A_factor_list")) model.A_factor_list = IntegerLists(r, j["A_factor_list"], p + "/A_factor_list");
  if (j.contains("B_factor_list")) model.B_factor_list = IntegerLists(r, j["B_factor_list"], p + "/B_factor_list");
  if (j.contains("C")) model.C = Vectors(r, j["C"], p + "/C");
  if (j.contains("D")) model.D = Vectors(r, j["D"], p + "/D");
  if (j.contains("pD")) model.pD = Vectors(r, j["pD"], p + "/pD");
  if (j.contains("E")) model.E = r.Numbers(j["E"], p + "/E");
  if (j.contains("policies")) {
    const Json& list = r.Array(j["policies"], p + "/policies");
    for (size_t i = 0; i < list.size(); ++i)
      model.policies.push_back(IntegerLists(r, list[i], p + "/policies/" + std::to_string(i)));
  }
  return model;
}

AgentSettings ReadSettings(const Reader& r, const Json& j) {
  const std::string p = "/settings";
  r.CheckKeys(j, p, {"policy_len", "gamma", "alpha", "action_selection", "seed", "use_utility",
                     "use_states_info_gain", "use_param_info_gain", "state_inference", "numerics",
                     "learning", "threads"});
  AgentSettings s;
  if (j.contains("policy_len")) s.policy_len = r.Integer<int>(j["policy_len"], p + "/policy_len");
  if (j.contains("gamma")) s.gamma = r.Number(j["gamma"], p + "/gamma");
  if (j.contains("alpha")) s.alpha = r.Number(j["alpha"], p + "/alpha");
  if (j.contains("seed")) {
    s.seed = r.Integer<uint64_t>(j["seed"], p + "/seed", "an integer >= 0");
  }
  if (j.contains("action_selection")) {
    s.action_selection = r.Choice(j["action_selection"], p + "/action_selection",
                                  {"deterministic", "stochastic"}) == 0
                             ? ActionSelection::kDeterministic
                             : ActionSelection::kStochastic;
  }
  if (j.contains("use_utility")) s.use_utility = r.Bool(j["use_utility"], p + "/use_utility");
  if (j.contains("use_states_info_gain"))
    s.use_states_info_gain = r.Bool(j["use_states_info_gain"], p + "/use_states_info_gain");
  if (j.contains("use_param_info_gain"))
    s.use_param_info_gain = r.Bool(j["use_param_info_gain"], p + "/use_param_info_gain");
  if (j.contains("numerics")) {
    s.numerics = r.Choice(j["numerics"], p + "/numerics", {"pymdp", "exact"}) == 0
                     ? Numerics::kPymdp
                     : Numerics::kExact;
  }
  if (j.contains("threads")) s.num_threads = r.Integer<int>(j["threads"], p + "/threads");
  if (j.contains("state_inference")) {
    const Json& k = j["state_inference"];
    const std::string q = p + "/state_inference";
    r.CheckKeys(k, q, {"method", "factor_update", "num_iter", "dF_tol"});
    if (k.contains("method")) {
      s.method = r.Choice(k["method"], q + "/method", {"fixed_point", "factor_graph"}) == 0
                     ? StateInferenceMethod::kFixedPoint
                     : StateInferenceMethod::kFactorGraph;
    }
    if (k.contains("factor_update")) {
      s.factor_update =
          r.Choice(k["factor_update"], q + "/factor_update", {"simultaneous", "sequential"}) == 0
              ? FactorUpdate::kSimultaneous
              : FactorUpdate::kSequential;
    }
    if (k.contains("num_iter")) s.num_iter = r.Integer<int>(k["num_iter"], q + "/num_iter");
    if (k.contains("dF_tol")) s.dF_tol = r.Number(k["dF_tol"], q + "/dF_tol");
  }
  if (j.contains("learning")) {
    const Json& k = j["learning"];
    const std::string q = p + "/learning";
    r.CheckKeys(k, q,
                {"A", "B", "D", "lr_pA", "lr_pB", "lr_pD", "modalities", "factors", "every", "when"});
    if (k.contains("when")) {
      s.learn_when = r.Choice(k["when"], q + "/when", {"after_action", "before_planning"}) == 0
                         ? LearningTime::kAfterAction
                         : LearningTime::kBeforePlanning;
    }
    if (k.contains("every")) {
      s.learn_every = r.Choice(k["every"], q + "/every", {"step", "episode"}) == 0
                          ? LearningSchedule::kStep
                          : LearningSchedule::kEpisode;
    }
    if (k.contains("A")) s.learn_A = r.Bool(k["A"], q + "/A");
    if (k.contains("B")) s.learn_B = r.Bool(k["B"], q + "/B");
    if (k.contains("D")) s.learn_D = r.Bool(k["D"], q + "/D");
    if (k.contains("lr_pA")) s.lr_pA = r.Number(k["lr_pA"], q + "/lr_pA");
    if (k.contains("lr_pB")) s.lr_pB = r.Number(k["lr_pB"], q + "/lr_pB");
    if (k.contains("lr_pD")) s.lr_pD = r.Number(k["lr_pD"], q + "/lr_pD");
    if (k.contains("modalities")) s.modalities_to_learn = r.Integers(k["modalities"], q + "/modalities");
    if (k.contains("factors")) s.factors_to_learn = r.Integers(k["factors"], q + "/factors");
  }
  try {
    s.Validate();
  } catch (const OptionsError& e) {
    // Validate() names the field ("lr_pA: ..."): point at it in the file.
    const std::string message = e.what();
    const std::string field = message.substr(0, message.find(':'));
    const std::map<std::string, std::string> pointers = {
        {"policy_len", "/policy_len"}, {"gamma", "/gamma"}, {"alpha", "/alpha"},
        {"num_iter", "/state_inference/num_iter"}, {"dF_tol", "/state_inference/dF_tol"},
        {"factor_update", "/state_inference/factor_update"}, {"lr_pA", "/learning/lr_pA"},
        {"lr_pB", "/learning/lr_pB"}, {"lr_pD", "/learning/lr_pD"}, {"num_threads", "/threads"}};
    const auto it = pointers.find(field);
    if (it == pointers.end()) r.Fail(p, message);
    r.Fail(p + it->second, message.substr(field.size() + 2));
  }
  return s;
}

TraceJson VectorsJson(const std::vector<Vector>& vs) {
  TraceJson out = TraceJson::array();
  for (const Vector& v : vs) out.push_back(VectorJson<TraceJson>(v));
  return out;
}

/// A list of `count` names at `pointer`.
std::vector<std::string> Names(const Reader& r, const Json& value, const std::string& pointer,
                               size_t count, const std::string& what) {
  if (!value.is_array() || value.size() != count)
    r.Fail(pointer,
           "expected " + std::to_string(count) + " names (" + what + "), found " + r.Found(value));
  std::vector<std::string> names;
  for (size_t i = 0; i < value.size(); ++i)
    names.push_back(r.String(value[i], pointer + "/" + std::to_string(i)));
  return names;
}

/// One list of names per modality or factor, each of that one's size.
std::vector<std::vector<std::string>> NameLists(const Reader& r, const Json& value,
                                                const std::string& pointer,
                                                const std::vector<int>& sizes,
                                                const std::string& one, const std::string& what) {
  if (!value.is_array() || value.size() != sizes.size())
    r.Fail(pointer, "expected " + std::to_string(sizes.size()) + " lists of names (one per " + one +
                        "), found " + r.Found(value));
  std::vector<std::vector<std::string>> lists;
  for (size_t i = 0; i < sizes.size(); ++i)
    lists.push_back(Names(r, value[i], pointer + "/" + std::to_string(i),
                          static_cast<size_t>(sizes[i]),
                          what + " of " + one + " " + std::to_string(i)));
  return lists;
}

AgentLabels ReadLabels(const Reader& r, const Json& k, const GenerativeModel& model) {
  const std::string p = "/labels";
  r.RequireObject(k, p, "an object of names");
  r.CheckKeys(k, p, {"modalities", "observations", "factors", "states", "controls"});
  std::vector<int> num_obs, num_states, num_controls;
  for (const Tensor& a : model.A) num_obs.push_back(a.shape[0]);
  for (const Tensor& b : model.B) {
    num_states.push_back(b.shape[0]);
    num_controls.push_back(b.shape.back());
  }
  AgentLabels labels;
  if (k.contains("modalities"))
    labels.modalities = Names(r, k["modalities"], p + "/modalities", num_obs.size(),
                              "one per observation modality");
  if (k.contains("observations"))
    labels.observations =
        NameLists(r, k["observations"], p + "/observations", num_obs, "modality", "the outcomes");
  if (k.contains("factors"))
    labels.factors =
        Names(r, k["factors"], p + "/factors", num_states.size(), "one per hidden state factor");
  if (k.contains("states"))
    labels.states = NameLists(r, k["states"], p + "/states", num_states, "factor", "the states");
  if (k.contains("controls"))
    labels.controls =
        NameLists(r, k["controls"], p + "/controls", num_controls, "factor", "the actions");
  return labels;
}

}  // namespace

std::string AgentSummaryLine(const AgentLabels& labels, int episode, int t,
                             const StepResult& step) {
  auto name = [](const std::vector<std::string>& names, size_t i, const std::string& prefix) {
    return i < names.size() ? names[i] : prefix + std::to_string(i);
  };
  auto value = [](const std::vector<std::vector<std::string>>& names, size_t i, int v) {
    return i < names.size() ? names[i][static_cast<size_t>(v)] : std::to_string(v);
  };
  std::string line =
      "episode " + std::to_string(episode) + " step " + std::to_string(t) + ": observed ";
  for (size_t m = 0; m < step.observation.size(); ++m)
    line += (m ? ", " : "") + name(labels.modalities, m, "o") + " = " +
            value(labels.observations, m, step.observation[m]);
  line += " | most probable: ";
  for (size_t f = 0; f < step.qs.size(); ++f) {
    Eigen::Index best = 0;
    step.qs[f].maxCoeff(&best);
    char probability[16];
    std::snprintf(probability, sizeof probability, "%.2f", step.qs[f](best));
    line += (f ? ", " : "") + name(labels.factors, f, "s") + " = " +
            value(labels.states, f, static_cast<int>(best)) + " (" + probability + ")";
  }
  line += " | action: ";
  for (size_t f = 0; f < step.action.size(); ++f)
    line += (f ? ", " : "") + name(labels.factors, f, "u") + " = " +
            value(labels.controls, f, step.action[f]);
  return line;
}

AgentFile ParseAgentJson(const std::string& text, const std::string& where) {
  Reader r(where);
  const Json j = r.Parse(text);
  r.CheckKeys(j, "",
              {"format", "description", "model", "settings", "environment", "run", "labels"});
  if (r.Required(j, "format", "") != "vfe-agent/1")
    r.Expected(j["format"], "/format", "\"vfe-agent/1\"");
  if (j.contains("description")) r.String(j["description"], "/description");
  r.Required(j, "model", "");
  AgentFile file;
  file.path = where;
  file.model = ReadModel(r, j["model"]);
  if (j.contains("settings")) file.settings = ReadSettings(r, j["settings"]);
  try {
    CompleteModel(file.model, file.settings.policy_len);
  } catch (const ModelError& e) {
    r.Fail("/model", e.what());
  }
  try {
    Agent check(file.model, file.settings);  // the checks that need model and settings together
  } catch (const OptionsError& e) {
    r.Fail("/settings/learning", e.what());
  } catch (const ModelError& e) {
    r.Fail("/model", e.what());
  }
  if (j.contains("environment")) {
    const Json& k = j["environment"];
    r.CheckKeys(k, "/environment", {"A", "B", "initial_state", "seed"});
    file.has_environment = true;
    if (k.contains("A")) file.env_A = Tensors(r, k["A"], "/environment/A");
    if (k.contains("B")) file.env_B = Tensors(r, k["B"], "/environment/B");
    file.env_initial_state = r.Integers(r.Required(k, "initial_state", "/environment"),
                                        "/environment/initial_state");
    if (k.contains("seed")) {
      file.env_seed = r.Integer<uint64_t>(k["seed"], "/environment/seed", "an integer >= 0");
    }
    try {
      Environment check(file.env_A.empty() ? file.model.A : file.env_A, file.model.A_factor_list,
                        file.env_B.empty() ? file.model.B : file.env_B, file.model.B_factor_list,
                        file.env_initial_state, 0);
    } catch (const ModelError& e) {
      r.Fail("/environment", e.what());
    }
  }
  if (j.contains("labels")) file.labels = ReadLabels(r, j["labels"], file.model);
  if (j.contains("run")) {
    const Json& k = j["run"];
    r.CheckKeys(k, "/run", {"steps", "episodes"});
    if (k.contains("steps"))
      file.steps = r.Integer<int>(k["steps"], "/run/steps", "an integer >= 1", 1);
    if (k.contains("episodes"))
      file.episodes = r.Integer<int>(k["episodes"], "/run/episodes", "an integer >= 1", 1);
  }
  return file;
}

AgentFile LoadAgentFile(const std::string& path) {
  return ParseAgentJson(ReadInputFile(path, "agent file"), path);
}

void LoadObservations(const std::string& path, std::vector<std::vector<int>>& observations,
                      std::vector<std::vector<int>>& actions) {
  Reader r(path);
  const Json j = r.Parse(ReadInputFile(path, "observations file"));
  observations.clear();
  actions.clear();
  if (j.is_array()) {
    observations = IntegerLists(r, j, "");
    return;
  }
  r.CheckKeys(j, "", {"observations", "actions"});
  observations = IntegerLists(r, r.Required(j, "observations", ""), "/observations");
  if (j.contains("actions")) actions = IntegerLists(r, j["actions"], "/actions");
}

void RunAgent(const AgentFile& file, int steps, const std::vector<std::vector<int>>* observations,
              const std::vector<std::vector<int>>* actions, std::ostream& out, bool summary) {
  using Clock = std::chrono::steady_clock;
  Agent agent(file.model, file.settings);
  TraceJson trace;
  trace["format"] = "vfe-agent-trace/1";
  trace["num_obs"] = agent.num_obs();
  trace["num_states"] = agent.num_states();
  trace["num_controls"] = agent.num_controls();
  trace["policies"] = agent.policies();
  trace["sign_convention"] =
      "G is pymdp's negative expected free energy (higher is better): G = utility + "
      "state_info_gain (+ pA_info_gain + pB_info_gain with novelty); efe = -G; "
      "q_pi = softmax(gamma * G + ln E)";
  double step_ms = 0.0;
  size_t step_count = 0;

  int episode_number = 0;
  // One step in the order the settings ask for; `imposed` (replayed actions) replaces the
  // agent's choice, which the step then records as "chosen_action".
  const bool before_planning = file.settings.learn_when == LearningTime::kBeforePlanning;
  std::vector<int> chosen;
  bool was_imposed = false;
  auto step_once = [&](const std::vector<int>& observation, const std::vector<int>* imposed) {
    const Clock::time_point start = Clock::now();  // a whole step, learning included
    agent.InferStates(observation);
    if (before_planning) agent.Learn();
    agent.InferPolicies();
    chosen = agent.SelectAction();
    was_imposed = imposed != nullptr;
    if (imposed) agent.SetAction(*imposed);
    if (!before_planning) agent.Learn();
    step_ms += std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    ++step_count;
  };
  auto record = [&](const StepResult& s, int t) {
    if (summary) out << AgentSummaryLine(file.labels, episode_number, t, s) << "\n";
    TraceJson step;
    step["t"] = t;
    step["observation"] = s.observation;
    step["qs"] = VectorsJson(s.qs);
    step["free_energy"] = s.free_energy;
    step["fpi_iterations"] = s.fpi_iterations;
    const PolicyEvaluation& e = s.policies;
    step["G"] = VectorJson<TraceJson>(e.neg_efe);
    step["efe"] = VectorJson<TraceJson>(-e.neg_efe);
    step["risk"] = VectorJson<TraceJson>(e.risk);
    step["ambiguity"] = VectorJson<TraceJson>(e.ambiguity);
    step["utility"] = VectorJson<TraceJson>(e.utility);
    step["state_info_gain"] = VectorJson<TraceJson>(e.state_info_gain);
    if (!agent.model().pA.empty()) step["pA_info_gain"] = VectorJson<TraceJson>(e.pA_info_gain);
    if (!agent.model().pB.empty()) step["pB_info_gain"] = VectorJson<TraceJson>(e.pB_info_gain);
    step["q_pi"] = VectorJson<TraceJson>(e.q_pi);
    step["action_marginals"] = VectorsJson(s.action_marginals);
    step["action"] = s.action;
    if (was_imposed) step["chosen_action"] = chosen;
    return step;
  };

  TraceJson episodes = TraceJson::array();
  if (observations) {
    TraceJson episode;
    episode["steps"] = TraceJson::array();
    for (size_t t = 0; t < observations->size(); ++t) {
      try {
        step_once((*observations)[t], actions && t < actions->size() ? &(*actions)[t] : nullptr);
      } catch (const ModelError& e) {
        throw ModelError("step " + std::to_string(t) + ": " + e.what());
      }
      episode["steps"].push_back(record(agent.result(), static_cast<int>(t)));
    }
    agent.EndEpisode();
    episodes.push_back(episode);
  } else {
    if (!file.has_environment)
      throw ModelError(file.path + ": /environment: missing; give an environment (at least its "
                       "initial_state) or replay observations with --observations");
    Environment environment(file.env_A.empty() ? agent.model().A : file.env_A,
                            agent.model().A_factor_list,
                            file.env_B.empty() ? agent.model().B : file.env_B,
                            agent.model().B_factor_list, file.env_initial_state, file.env_seed);
    for (int e = 0; e < file.episodes; ++e) {
      environment.Reset();
      TraceJson episode;
      episode["steps"] = TraceJson::array();
      for (int t = 0; t < steps; ++t) {
        const std::vector<int> state = environment.state();
        const std::vector<int> observation = environment.Observe();
        step_once(observation, nullptr);
        TraceJson step = record(agent.result(), t);
        step["true_state"] = state;
        episode["steps"].push_back(step);
        environment.Act(agent.result().action);
      }
      agent.EndEpisode();
      episodes.push_back(episode);
      ++episode_number;
    }
  }
  if (summary) return;
  trace["episodes"] = episodes;
  const GenerativeModel& model = agent.model();
  if (!model.pA.empty() || !model.pB.empty() || !model.pD.empty()) {
    TraceJson learned;
    auto tensors = [](const std::vector<Tensor>& ts) {
      TraceJson list = TraceJson::array();
      for (const Tensor& t : ts) list.push_back({{"shape", t.shape}, {"data", t.data}});
      return list;
    };
    if (!model.pA.empty()) learned["pA"] = tensors(model.pA);
    if (!model.pB.empty()) learned["pB"] = tensors(model.pB);
    if (!model.pD.empty()) learned["pD"] = VectorsJson(model.pD);
    trace["learned"] = learned;
  }
  trace["timing_ms"] = {{"steps", step_count},
                        {"mean_step", step_count ? step_ms / step_count : 0.0}};
  // One line per key and one line per step: readable, and diffable step by step.
  const TraceJson all_episodes = std::move(trace["episodes"]);
  trace.erase("episodes");
  out << "{\n";
  for (auto it = trace.begin(); it != trace.end(); ++it)
    out << " " << TraceJson(it.key()).dump() << ": " << it.value().dump() << ",\n";
  out << " \"episodes\": [";
  for (size_t e = 0; e < all_episodes.size(); ++e) {
    out << (e ? ",\n  " : "\n  ") << "{\"steps\": [";
    const TraceJson& steps_of = all_episodes[e]["steps"];
    for (size_t t = 0; t < steps_of.size(); ++t) out << (t ? ",\n   " : "\n   ") << steps_of[t].dump();
    out << "\n  ]}";
  }
  out << "\n ]\n}\n";
}

}  // namespace agents
}  // namespace vfe
