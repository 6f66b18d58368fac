"""Surprise in a volatile binary environment: examples/binary_perception_stream.json run by
`vfe stream` on the 320 outcomes of data/volatile_binary_T320.csv, fed through a pipe one row
at a time. Each step's free energy F_t is the surprise of its outcome; it peaks where the
outcome probability switches. Prints the mean surprise just after the switches and elsewhere;
with a file name, plots F_t and the inferred P(y = 1) = sigmoid(E[x_t]) against the true one.

Run: /usr/bin/python3 examples/python/surprise.py [surprise.png]
(the vfe program: $VFE_PROGRAM, else $VFE_BUILD_DIR/vfe, else build/release/vfe)
"""

import json
import os
import subprocess
import sys

import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.join(here, "..", "..")
program = os.environ.get("VFE_PROGRAM") or os.path.join(
    os.environ.get("VFE_BUILD_DIR", os.path.join(root, "build", "release")), "vfe")
data = np.genfromtxt(os.path.join(here, "..", "data", "volatile_binary_T320.csv"),
                     delimiter=",", names=True)
rows = "".join(f"{int(y)}\n" for y in data["y"])
run = subprocess.run([program, "stream", os.path.join(here, "..", "binary_perception_stream.json")],
                     input=rows, capture_output=True, text=True, check=True)
steps = [json.loads(line) for line in run.stdout.splitlines()]
surprise = np.array([s["free_energy"] for s in steps])
belief = 1 / (1 + np.exp(-np.array([s["posteriors"]["x[1]"]["mean"] for s in steps])))
switches = np.flatnonzero(np.diff(data["p"])) + 1
after = np.zeros(len(steps), dtype=bool)
for s in switches:
    after[s:s + 5] = True
print(f"{len(steps)} steps, {len(switches)} switches of P(y = 1)")
print(f"mean surprise: {surprise[after].mean():.3f} in the 5 steps after a switch, "
      f"{surprise[~after].mean():.3f} elsewhere")
print(f"P(y = 1) inferred at the last step: {belief[-1]:.3f} (true {data['p'][-1]:.1f})")

if len(sys.argv) > 1:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = np.arange(1, len(steps) + 1)
    fig, axes = plt.subplots(2, 1, figsize=(7, 5), sharex=True)
    axes[0].plot(t, surprise, color="tab:red", linewidth=1)
    axes[0].set_ylabel("surprise F_t (nats)")
    for s in switches:
        for ax in axes:
            ax.axvline(s + 1, color="grey", linewidth=0.5, linestyle=":")
    axes[1].plot(t, data["p"], color="black", linewidth=1, label="true P(y = 1)")
    axes[1].plot(t, belief, color="tab:blue", label="inferred sigmoid(E[x_t])")
    axes[1].plot(t, data["y"], ".", markersize=2, color="grey", label="outcome")
    axes[1].set_ylabel("P(y = 1)")
    axes[1].set_xlabel("step")
    axes[1].legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, fontsize=8,
                   frameon=False)
    fig.tight_layout()
    fig.savefig(sys.argv[1])
    print("plot:", sys.argv[1])
