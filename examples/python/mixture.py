"""A K = 5 Gaussian mixture of 2-D points from Python: the model of
examples/gaussian_mixture.json (the same 2,000 points and starting q(z)), with a plot of the
points coloured by their most probable component and each component's mean and 2-sd ellipse.

Run: PYTHONPATH=build/release/python /usr/bin/python3 examples/python/mixture.py [clusters.png]
"""

import os
import sys

import numpy as np
import vfe

here = os.path.dirname(os.path.abspath(__file__))
data = np.genfromtxt(os.path.join(here, "..", "data", "mixture_N2000.csv"), delimiter=",",
                     names=True)
Y = np.column_stack([data["y0"], data["y1"]])
start = np.column_stack([data[f"z{k}"] for k in range(5)])

g = vfe.FactorGraph()
mu = g.variable("mu", "MvGaussian", dim=2, shape=[5])
Lambda = g.variable("Lambda", "Wishart", dim=2, shape=[5])
weights = g.variable("weights", "Dirichlet", dim=5)
z = g.variable("z", "Categorical", dim=5, shape=[len(Y)])
y = g.observed("y", Y)
g.factor("MvGaussian", out=mu, mean=np.zeros(2), precision=0.01 * np.eye(2))
g.factor("Wishart", out=Lambda, dof=3, scale=np.eye(2))
g.factor("Dirichlet", out=weights, alpha=np.ones(5))
g.factor("Categorical", out=z, p=weights)
g.factor("GaussianMixture", out=y, switch=z, means=mu, precisions=Lambda)
g.set_posterior(z, p=start)  # a warm start: the nearest of 5 well-spread points
result = vfe.infer(g, iterations=500, tolerance=1e-8, order=[mu, Lambda, weights, z])

print(result.message, f"F = {result.free_energy[-1]:.6f}")
means = g.posterior(mu).mean                            # (5, 2)
covariances = np.linalg.inv(g.posterior(Lambda).mean)   # E[Lambda]^-1, (5, 2, 2)
share = g.posterior(weights).mean
labels = g.posterior(z).p.argmax(axis=1)
for k in range(5):
    print(f"component {k}: weight {share[k]:.3f}, mean {np.round(means[k], 3)}, "
          f"{np.sum(labels == k)} points")

if len(sys.argv) > 1:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 5))
    ax.scatter(Y[:, 0], Y[:, 1], c=labels, s=4, cmap="tab10", vmin=0, vmax=9)
    angles = np.linspace(0, 2 * np.pi, 100)
    circle = np.stack([np.cos(angles), np.sin(angles)])
    for k in range(5):
        ellipse = means[k][:, None] + 2 * np.linalg.cholesky(covariances[k]) @ circle
        ax.plot(ellipse[0], ellipse[1], color="black", linewidth=1)
        ax.plot(*means[k], marker="x", color="black")
    ax.set_title(f"Gaussian mixture, K = 5: F = {result.free_energy[-1]:.1f}")
    fig.tight_layout()
    fig.savefig(sys.argv[1])
    print("plot:", sys.argv[1])
