"""The T-maze of pymdp's tutorials, written as a pymdp user writes it, with vfe.Agent in
place of pymdp's Agent (the same arguments and methods). The agent starts in the centre, does
not know which arm is rewarded, visits the cue first, then goes to the arm the cue points at.

Run: PYTHONPATH=build/release/python /usr/bin/python3 examples/python/tmaze.py [trace.png]
"""

import sys

import numpy as np
import vfe

LOCATIONS = ["centre", "right arm", "left arm", "cue location"]
CONDITIONS = ["reward right", "reward left"]
REWARDS = ["none", "reward", "loss"]
CUES = ["cue right", "cue left"]
P_REWARD = 0.98


def obj_array(n):  # pymdp's utils.obj_array
    return np.empty(n, dtype=object)


# A[m][o, location, condition]: what each modality reports in each state.
A = obj_array(3)
A[0] = np.zeros((4, 4, 2))
for loc in range(4):
    A[0][loc, loc, :] = 1.0                       # location is seen as it is
A[1] = np.zeros((3, 4, 2))
A[1][0, [0, 3], :] = 1.0                          # no reward in the centre or at the cue
for arm, rewarded_condition in ((1, 0), (2, 1)):
    for condition in range(2):
        p = P_REWARD if condition == rewarded_condition else 1 - P_REWARD
        A[1][1, arm, condition] = p               # reward
        A[1][2, arm, condition] = 1 - p           # loss
A[2] = np.full((2, 4, 2), 0.5)                    # the cue says nothing away from it...
A[2][:, 3, :] = np.eye(2)                         # ...and the condition at the cue location

# B[f][s', s, u]: the agent moves where it chooses; the condition never changes.
B = obj_array(2)
B[0] = np.zeros((4, 4, 4))
for action in range(4):
    B[0][action, :, action] = 1.0
B[1] = np.eye(2)[:, :, None]

C = obj_array(3)
C[0], C[1], C[2] = np.zeros(4), np.array([0.0, 3.0, -3.0]), np.zeros(2)
D = obj_array(2)
D[0], D[1] = np.array([1.0, 0.0, 0.0, 0.0]), np.array([0.5, 0.5])

agent = vfe.Agent(A=A, B=B, C=C, D=D, policy_len=1, gamma=16.0,
                  inference_params={"num_iter": 10, "dF_tol": 0.001})

# The world: the same A and B, the reward on the left this time.
rng = np.random.default_rng(7)
state = [0, 1]
beliefs, actions = [], []
for t in range(4):
    obs = [int(rng.choice(A[m].shape[0], p=A[m][:, state[0], state[1]])) for m in range(3)]
    qs = agent.infer_states(obs)
    q_pi, G = agent.infer_policies()
    action = agent.sample_action()
    beliefs.append(qs[1])
    actions.append(int(action[0]))
    print(f"t={t}: sees {LOCATIONS[obs[0]]}, {REWARDS[obs[1]]}, {CUES[obs[2]]}; "
          f"believes {CONDITIONS[0]} with p = {qs[1][0]:.3f}; goes to {LOCATIONS[int(action[0])]}")
    state = [int(action[0]), state[1]]

if len(sys.argv) > 1:
    import vfe.plot  # before pyplot: it selects the file-only backend
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3))
    vfe.plot.agent_trace(beliefs, actions, state_names=CONDITIONS, action_names=LOCATIONS, ax=ax)
    ax.set_title("T-maze: belief about the rewarded arm, and the action taken")
    fig.tight_layout()
    fig.savefig(sys.argv[1])
    print("plot:", sys.argv[1])
