"""2-D tracking from Python: the linear Gaussian state-space model of examples/tracking.json
(the same 2,000 measured positions), its states under one joint posterior (g.cluster: a Kalman
filter and RTS smoother inside every sweep) and the observation noise precision learned. With
a file name, draws the smoothed trajectory with its ±2 sd band against the true one.

Run: PYTHONPATH=build/release/python /usr/bin/python3 examples/python/tracking.py [track.png]
"""

import os
import sys

import numpy as np
import vfe

here = os.path.dirname(os.path.abspath(__file__))
data = np.genfromtxt(os.path.join(here, "..", "data", "tracking_T2000.csv"), delimiter=",",
                     names=True)
Y = np.column_stack([data["y0"], data["y1"]])
T = len(Y)
F = np.array([[0.99, 0, 0.1, 0], [0, 0.99, 0, 0.1], [0, 0, 0.95, 0], [0, 0, 0, 0.95]])
H = np.array([[1.0, 0, 0, 0], [0, 1.0, 0, 0]])

g = vfe.FactorGraph()
x = g.variable("x", "MvGaussian", dim=4, shape=[T])
R = g.variable("R", "Wishart", dim=2)
y = g.observed("y", Y)
g.factor("Wishart", name="noise prior", out=R, dof=4, scale=0.25 * np.eye(2))
g.factor("MvGaussian", name="initial", out=x[0], mean=np.zeros(4), precision=np.eye(4))
g.factor("LinearGaussian", name="dynamics", out=x[1:], in_=x[:-1], matrix=F,
         precision=np.diag([1000.0, 1000.0, 100.0, 100.0]))
g.factor("LinearGaussian", name="sensor", out=y, in_=x, matrix=H, precision=R)
g.cluster(x)  # one joint posterior over the trajectory
result = vfe.infer(g, iterations=200, tolerance=1e-10)

q = g.posterior(x)                      # mean (T, 4), covariance (T, 4, 4)
truth = np.column_stack([data["x0"], data["x1"]])
rmse_smoothed = np.sqrt(np.mean((q.mean[:, :2] - truth) ** 2))
rmse_measured = np.sqrt(np.mean((Y - truth) ** 2))
print(result.message, f"F = {result.free_energy[-1]:.6f}")
print(f"position error (rms): measured {rmse_measured:.4f}, smoothed {rmse_smoothed:.4f}")
print("E[R]^-1 (the noise covariance):", np.round(np.linalg.inv(g.posterior(R).mean), 4).tolist())

if len(sys.argv) > 1:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = np.arange(T)[:300]
    fig, axes = plt.subplots(2, 1, figsize=(7, 5), sharex=True)
    for i, ax in enumerate(axes):
        sd = np.sqrt(q.covariance[:300, i, i])
        ax.plot(t, Y[:300, i], ".", markersize=2, color="grey", label="measured")
        ax.plot(t, truth[:300, i], color="black", linewidth=1, label="true")
        ax.plot(t, q.mean[:300, i], color="tab:blue", label="smoothed")
        ax.fill_between(t, q.mean[:300, i] - 2 * sd, q.mean[:300, i] + 2 * sd, alpha=0.3)
        ax.set_ylabel(f"position {i}")
    axes[0].legend(loc="upper right", fontsize=8)
    axes[1].set_xlabel("step (the first 300)")
    fig.tight_layout()
    fig.savefig(sys.argv[1])
    print("plot:", sys.argv[1])
