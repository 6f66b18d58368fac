"""vfe.Agent written as a pymdp user writes pymdp's Agent: the T-maze of the pymdp reference
cases (tests/data/reference/pymdp, recorded from pymdp itself) replayed step by step, each
step's posterior, G, q(pi), action marginals and action equal to pymdp's to 1e-6."""

import json
import os

import numpy as np
import pytest

import vfe

SOURCE = os.environ.get("VFE_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
REFERENCE = os.path.join(SOURCE, "tests", "data", "reference", "pymdp")


def obj_array(parts):
    """pymdp's utils.obj_array, filled."""
    out = np.empty(len(parts), dtype=object)
    for i, part in enumerate(parts):
        out[i] = np.array(part, dtype=float)
    return out


def make_agent(reference):
    m, s = reference["model"], reference["settings"]
    pA = obj_array(m["pA"]) if m["pA"] is not None else None
    return vfe.Agent(
        A=obj_array(m["A"]), B=obj_array(m["B"]), C=obj_array(m["C"]), D=obj_array(m["D"]),
        E=np.array(m["E"]), pA=pA, A_factor_list=m["A_factor_list"],
        B_factor_list=m["B_factor_list"], policies=[np.array(p) for p in m["policies"]],
        policy_len=s["policy_len"], gamma=s["gamma"], alpha=s["alpha"],
        use_utility=s["use_utility"], use_states_info_gain=s["use_states_info_gain"],
        use_param_info_gain=s["use_param_info_gain"], inference_params=s["inference_params"],
        lr_pA=s["lr_pA"], lr_pB=s["lr_pB"], modalities_to_learn=s["modalities_to_learn"])


@pytest.mark.parametrize("case, split", [("tmaze_fpi.json", False),
                                         ("tmaze_learning.json", False),
                                         ("tmaze_learning.json", True)])
def test_tmaze_replays_the_pymdp_reference(case, split):
    """split: learning as pymdp's loop writes it, update_A(obs) and update_B(qs_prev)."""
    with open(os.path.join(REFERENCE, case)) as f:
        reference = json.load(f)
    steps = 0
    for episode in reference["episodes"]:
        agent = make_agent(reference)
        for step in episode["steps"]:
            qs = agent.infer_states(step["obs"])
            assert qs.dtype == object and len(qs) == len(step["qs"])
            for f, q in enumerate(qs):
                np.testing.assert_allclose(q, step["qs"][f], rtol=0, atol=1e-6)
            q_pi, G = agent.infer_policies()
            np.testing.assert_allclose(G, step["G_neg_efe"], rtol=0, atol=1e-6)
            np.testing.assert_allclose(q_pi, step["q_pi"], rtol=0, atol=1e-6)
            action = agent.sample_action()
            assert action.dtype == np.float64
            for f, ties in enumerate(step["argmax_action_ties"]):
                np.testing.assert_allclose(agent.action_marginals[f], step["action_marginals"][f],
                                           rtol=0, atol=1e-6)
                assert int(action[f]) == ties[0]  # pymdp breaks ties at random, vfe lowest
            agent.set_action(step["action"])
            if split:
                agent.update_A(step["obs"])
                agent.update_B()
            else:
                agent.learn()
            steps += 1
    assert steps >= 8


def test_agent_errors_name_the_part():
    with open(os.path.join(REFERENCE, "tmaze_fpi.json")) as f:
        m = json.load(f)["model"]
    bad_A = obj_array(m["A"])
    bad_A[0] = bad_A[0] * 2  # columns no longer sum to one
    with pytest.raises(vfe.ModelError, match=r"A\[0\]"):
        vfe.Agent(A=bad_A, B=obj_array(m["B"]), C=obj_array(m["C"]), D=obj_array(m["D"]))
    agent = vfe.Agent(A=obj_array(m["A"]), B=obj_array(m["B"]), C=obj_array(m["C"]),
                      D=obj_array(m["D"]))
    with pytest.raises(vfe.ModelError):
        agent.infer_states([9, 0, 0])  # outside location's 4 outcomes
    with pytest.raises(vfe.OptionsError, match="action_selection"):
        vfe.Agent(A=obj_array(m["A"]), B=obj_array(m["B"]), action_selection="greedy")
    with pytest.raises(vfe.OptionsError, match="inference_params: unknown key 'iters'"):
        vfe.Agent(A=obj_array(m["A"]), B=obj_array(m["B"]), inference_params={"iters": 3})


def test_update_A_and_update_B_add_the_outer_products_of_the_posteriors():
    # One modality, one factor of 2 states and 2 controls (stay, swap), pA and pB learned.
    A = obj_array([[[0.9, 0.2], [0.1, 0.8]]])
    B = obj_array([np.stack([np.eye(2), np.array([[0.0, 1.0], [1.0, 0.0]])], axis=2)])
    agent = vfe.Agent(A=A, B=B, C=obj_array([[0.0, 1.0]]), D=obj_array([[0.6, 0.4]]),
                      pA=obj_array([10.0 * A[0]]), pB=obj_array([4.0 * B[0]]),
                      lr_pA=0.5, lr_pB=2.0)
    qs0 = agent.infer_states([0])[0]
    pA = agent.update_A([0])
    # pymdp: pA += lr * (one-hot(o) ⊗ q(s)) where A > 0 (here everywhere).
    np.testing.assert_allclose(pA[0], 10.0 * A[0] + 0.5 * np.outer([1.0, 0.0], qs0), rtol=1e-14)
    np.testing.assert_allclose(agent.pA[0], pA[0], rtol=0)
    np.testing.assert_allclose(agent.update_B()[0], 4.0 * B[0], rtol=0)  # no step before
    agent.infer_policies()
    agent.set_action([1])
    qs1 = agent.infer_states([1])[0]
    pB = agent.update_B(obj_array([qs0]))
    # pymdp: pB[..., u] += lr * (q(s_t) ⊗ q(s_t-1)) where B[..., u] > 0, u the action taken.
    expected = 4.0 * B[0]
    expected[:, :, 1] += 2.0 * np.outer(qs1, qs0) * (B[0][:, :, 1] > 0)
    np.testing.assert_allclose(pB[0], expected, rtol=1e-14)
    with pytest.raises(vfe.ModelError, match="update_A: obs must be the observation of the last"):
        agent.update_A([0])
    with pytest.raises(vfe.ModelError, match=r"qs_prev\[0\]: expected 2 probabilities, found 3"):
        agent.update_B(obj_array([[0.2, 0.3, 0.5]]))
