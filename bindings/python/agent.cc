// vfe.Agent: the active inference agent in pymdp's vocabulary, so that a pymdp script runs
// with `import vfe` for `from pymdp.agent import Agent`: A, B, C, D (and E, pA, pB, pD,
// factor lists, policies) as numpy arrays or pymdp's object arrays; infer_states(obs),
// infer_policies() -> (q_pi, G), sample_action().

#include <pybind11/stl.h>

#include <optional>
#include <string>
#include <vector>

#include "bindings/python/common.h"
#include "vfe/agents/agent.h"

namespace vfe {
namespace python {
namespace {

using agents::Agent;
using agents::AgentSettings;
using agents::GenerativeModel;
using agents::Tensor;

/// One array as a Tensor (row-major, its numpy shape).
Tensor ToTensor(const py::handle& value, const std::string& what) {
  const auto a = Float64Array(value, what);
  std::vector<int> shape;
  for (py::ssize_t d = 0; d < a.ndim(); ++d) shape.push_back(static_cast<int>(a.shape(d)));
  return Tensor(shape, std::vector<double>(a.data(), a.data() + a.size()));
}

/// The parts of a pymdp argument: an object array or a list of arrays; a single numeric array
/// stands for a list of one (pymdp's to_obj_array).
std::vector<py::object> Parts(const py::handle& value) {
  std::vector<py::object> parts;
  if (py::isinstance<py::array>(value) &&
      value.cast<py::array>().dtype().kind() != 'O') {
    parts.push_back(py::reinterpret_borrow<py::object>(value));
    return parts;
  }
  for (const py::handle item : value) parts.push_back(py::reinterpret_borrow<py::object>(item));
  return parts;
}

/// Each part of a pymdp argument converted by `convert(part, "name[i]")`.
template <class Convert>
auto EachPart(const py::handle& value, const std::string& name, Convert convert) {
  std::vector<decltype(convert(value, name))> out;
  const std::vector<py::object> parts = Parts(value);
  for (size_t i = 0; i < parts.size(); ++i)
    out.push_back(convert(parts[i], name + "[" + std::to_string(i) + "]"));
  return out;
}

std::vector<Tensor> Tensors(const py::handle& value, const std::string& name) {
  return EachPart(value, name, ToTensor);
}

Vector ToVector(const py::handle& value, const std::string& what) {
  const auto a = Float64Array(value, what);
  if (a.ndim() != 1)
    throw ModelError(what + ": expected a 1-D array, found " + std::to_string(a.ndim()) +
                     " dimensions");
  return Eigen::Map<const Vector>(a.data(), a.shape(0));
}

std::vector<Vector> Vectors(const py::handle& value, const std::string& name) {
  return EachPart(value, name, ToVector);
}

std::vector<int> Integers(const py::handle& value, const std::string& what) {
  std::vector<int> out;
  const auto a = Float64Array(value, what);
  for (py::ssize_t i = 0; i < a.size(); ++i) {
    const double x = a.data()[i];
    if (x != static_cast<int>(x))
      throw ModelError(what + ": expected integers, found " + std::to_string(x));
    out.push_back(static_cast<int>(x));
  }
  return out;
}

std::vector<std::vector<int>> IntegerLists(const py::handle& value, const std::string& name) {
  std::vector<std::vector<int>> out;
  size_t i = 0;
  for (const py::handle item : value)
    out.push_back(Integers(item, name + "[" + std::to_string(i++) + "]"));
  return out;
}

/// "all" or a list of indices.
std::vector<int> Selection(const py::object& value, const std::string& what) {
  if (value.is_none()) return {};
  if (py::isinstance<py::str>(value)) {
    if (value.cast<std::string>() == "all") return {};
    throw OptionsError(what + ": expected \"all\" or a list of indices, found \"" +
                       value.cast<std::string>() + "\"");
  }
  return Integers(value, what);
}

py::object ObjectArray(const std::vector<Vector>& vectors) {
  // As pymdp's utils.obj_array: numpy.empty(n, dtype=object), filled.
  py::object out = py::module_::import("numpy").attr("empty")(vectors.size(), "object");
  for (size_t i = 0; i < vectors.size(); ++i) {
    py::array_t<double> a(vectors[i].size());
    std::copy(vectors[i].data(), vectors[i].data() + vectors[i].size(), a.mutable_data());
    out.attr("__setitem__")(i, a);
  }
  return out;
}

/// Tensors as pymdp's object arrays of numpy arrays, each in its shape.
py::object TensorArray(const std::vector<Tensor>& tensors) {
  py::object out = py::module_::import("numpy").attr("empty")(tensors.size(), "object");
  for (size_t i = 0; i < tensors.size(); ++i) {
    std::vector<py::ssize_t> shape(tensors[i].shape.begin(), tensors[i].shape.end());
    py::array_t<double> a(shape);
    std::copy(tensors[i].data.begin(), tensors[i].data.end(), a.mutable_data());
    out.attr("__setitem__")(i, a);
  }
  return out;
}

py::array_t<double> VectorArray(const Vector& v) {
  return ToArray(std::vector<double>(v.data(), v.data() + v.size()));
}

}  // namespace

void BindAgents(py::module_& m) {
  py::class_<Agent>(m, "Agent",
                    "An active inference agent with pymdp's arguments and methods (pymdp's "
                    "legacy Agent, fixed-point state inference).")
      .def(py::init([](const py::object& A, const py::object& B, const py::object& C,
                       const py::object& D, const py::object& E, const py::object& pA,
                       const py::object& pB, const py::object& pD,
                       const py::object& A_factor_list, const py::object& B_factor_list,
                       const py::object& policies, int policy_len, double gamma, double alpha,
                       const std::string& action_selection, bool use_utility,
                       bool use_states_info_gain, bool use_param_info_gain,
                       const py::object& inference_params, double lr_pA, double lr_pB,
                       double lr_pD, const py::object& modalities_to_learn,
                       const py::object& factors_to_learn, uint64_t seed,
                       const std::string& numerics, int num_threads) {
             GenerativeModel model;
             if (!A.is_none()) model.A = Tensors(A, "A");
             if (!B.is_none()) model.B = Tensors(B, "B");
             if (!C.is_none()) model.C = Vectors(C, "C");
             if (!D.is_none()) model.D = Vectors(D, "D");
             if (!E.is_none()) model.E = ToVector(E, "E");
             if (!pA.is_none()) model.pA = Tensors(pA, "pA");
             if (!pB.is_none()) model.pB = Tensors(pB, "pB");
             if (!pD.is_none()) model.pD = Vectors(pD, "pD");
             if (!A_factor_list.is_none())
               model.A_factor_list = IntegerLists(A_factor_list, "A_factor_list");
             if (!B_factor_list.is_none())
               model.B_factor_list = IntegerLists(B_factor_list, "B_factor_list");
             if (!policies.is_none()) {
               size_t p = 0;
               for (const py::handle policy : policies)
                 model.policies.push_back(
                     IntegerLists(policy, "policies[" + std::to_string(p++) + "]"));
             }
             AgentSettings s;
             s.policy_len = policy_len;
             s.gamma = gamma;
             s.alpha = alpha;
             if (action_selection == "stochastic") {
               s.action_selection = agents::ActionSelection::kStochastic;
             } else if (action_selection != "deterministic") {
               throw OptionsError("action_selection: expected \"deterministic\" or "
                                  "\"stochastic\", found \"" + action_selection + "\"");
             }
             s.use_utility = use_utility;
             s.use_states_info_gain = use_states_info_gain;
             s.use_param_info_gain = use_param_info_gain;
             if (!inference_params.is_none()) {
               const py::dict params = inference_params.cast<py::dict>();
               for (const auto& [key, value] : params) {
                 const std::string k = key.cast<std::string>();
                 if (k == "num_iter") s.num_iter = value.cast<int>();
                 else if (k == "dF_tol") s.dF_tol = value.cast<double>();
                 else if (k != "dF" && k != "compute_vfe")
                   throw OptionsError("inference_params: unknown key '" + k +
                                      "'; expected 'num_iter', 'dF', 'dF_tol', 'compute_vfe'");
               }
             }
             s.lr_pA = lr_pA;
             s.lr_pB = lr_pB;
             s.lr_pD = lr_pD;
             s.modalities_to_learn = Selection(modalities_to_learn, "modalities_to_learn");
             s.factors_to_learn = Selection(factors_to_learn, "factors_to_learn");
             s.seed = seed;
             if (numerics == "exact") {
               s.numerics = agents::Numerics::kExact;
             } else if (numerics != "pymdp") {
               throw OptionsError("numerics: expected \"pymdp\" or \"exact\", found \"" +
                                  numerics + "\"");
             }
             s.num_threads = num_threads;
             return Agent(std::move(model), s);
           }),
           py::arg("A") = py::none(), py::arg("B") = py::none(), py::arg("C") = py::none(),
           py::arg("D") = py::none(), py::kw_only(), py::arg("E") = py::none(),
           py::arg("pA") = py::none(), py::arg("pB") = py::none(), py::arg("pD") = py::none(),
           py::arg("A_factor_list") = py::none(), py::arg("B_factor_list") = py::none(),
           py::arg("policies") = py::none(), py::arg("policy_len") = 1,
           py::arg("gamma") = 16.0, py::arg("alpha") = 16.0,
           py::arg("action_selection") = "deterministic", py::arg("use_utility") = true,
           py::arg("use_states_info_gain") = true, py::arg("use_param_info_gain") = false,
           py::arg("inference_params") = py::none(), py::arg("lr_pA") = 1.0,
           py::arg("lr_pB") = 1.0, py::arg("lr_pD") = 1.0,
           py::arg("modalities_to_learn") = "all", py::arg("factors_to_learn") = "all",
           py::arg("seed") = 0, py::arg("numerics") = "pymdp", py::arg("num_threads") = 1)
      .def(
          "infer_states",
          [](Agent& agent, const py::object& observation) {
            agent.InferStates(Integers(observation, "observation"));
            return ObjectArray(agent.result().qs);
          },
          py::arg("observation"),
          "The posterior over each hidden state factor given one observation per modality "
          "(an object array of vectors, as pymdp's).")
      .def(
          "infer_policies",
          [](Agent& agent) {
            agent.InferPolicies();
            const agents::PolicyEvaluation& e = agent.result().policies;
            return py::make_tuple(VectorArray(e.q_pi), VectorArray(e.neg_efe));
          },
          "q(pi) and G (pymdp's: the negative expected free energy) of every policy.")
      .def(
          "sample_action",
          [](Agent& agent) {
            const std::vector<int>& action = agent.SelectAction();
            return ToArray(std::vector<double>(action.begin(), action.end()));
          },
          "The action of each factor (floats, as pymdp returns them): the argmax of its "
          "marginal (lowest index among ties), or a draw with action_selection='stochastic'.")
      .def(
          "set_action",
          [](Agent& agent, const py::object& action) {
            agent.SetAction(Integers(action, "action"));
          },
          py::arg("action"), "Replaces the selected action (replaying another agent's choices).")
      .def("learn", &Agent::Learn,
           "Updates pA and pB from this step (pymdp's update_A and update_B together).")
      .def(
          "update_A",
          [](Agent& agent, const py::object& obs) {
            if (!obs.is_none()) {
              const std::vector<int> o = Integers(obs, "update_A: obs");
              if (o != agent.result().observation)
                throw ModelError("update_A: obs must be the observation of the last "
                                 "infer_states, which the posterior over states is of");
            }
            agent.LearnA();
            return TensorArray(agent.model().pA);
          },
          py::arg("obs") = py::none(),
          "pymdp's update_A: pA += lr_pA * (obs ⊗ q(s)) where A > 0, from the last "
          "infer_states; returns pA (an object array). Needs pA.")
      .def(
          "update_B",
          [](Agent& agent, const py::object& qs_prev) {
            if (qs_prev.is_none()) {
              agent.LearnB();
            } else {
              agent.LearnB(Vectors(qs_prev, "qs_prev"));
            }
            return TensorArray(agent.model().pB);
          },
          py::arg("qs_prev") = py::none(),
          "pymdp's update_B: pB[..., u] += lr_pB * (q(s) ⊗ qs_prev) where B > 0, u the last "
          "action; qs_prev defaults to the posterior of the step before. Returns pB.")
      .def("reset", &Agent::Reset, "Starts a new episode (learned counts are kept).")
      .def("end_episode", &Agent::EndEpisode, "Deferred learning and pD, then reset().")
      .def(
          "step",
          [](Agent& agent, const py::object& observation) {
            const std::vector<int>& action = agent.Step(Integers(observation, "observation")).action;
            return ToArray(std::vector<double>(action.begin(), action.end()));
          },
          py::arg("observation"), "infer_states, infer_policies, sample_action and learn.")
      .def_property_readonly("qs", [](const Agent& a) { return ObjectArray(a.result().qs); })
      .def_property_readonly("q_pi",
                             [](const Agent& a) { return VectorArray(a.result().policies.q_pi); })
      .def_property_readonly(
          "G", [](const Agent& a) { return VectorArray(a.result().policies.neg_efe); })
      .def_property_readonly("F", [](const Agent& a) { return a.result().free_energy; })
      .def_property_readonly("action_marginals",
                             [](const Agent& a) { return ObjectArray(a.result().action_marginals); })
      .def_property_readonly("A", [](const Agent& a) { return TensorArray(a.model().A); })
      .def_property_readonly("B", [](const Agent& a) { return TensorArray(a.model().B); })
      .def_property_readonly("pA", [](const Agent& a) { return TensorArray(a.model().pA); })
      .def_property_readonly("pB", [](const Agent& a) { return TensorArray(a.model().pB); })
      .def_property_readonly("num_obs", &Agent::num_obs)
      .def_property_readonly("num_states", &Agent::num_states)
      .def_property_readonly("num_controls", &Agent::num_controls)
      .def_property_readonly("policies", &Agent::policies);
}

}  // namespace python
}  // namespace vfe
