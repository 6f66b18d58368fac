"""A Gaussian with unknown mean and precision from Python: the model of
examples/gaussian_mean_precision.json (the same 1,000 draws of N(3, 2^2)).

Run: PYTHONPATH=build/release/python /usr/bin/python3 examples/python/gaussian_mean_precision.py
[plot.png]  (with a file name, also draws F per sweep and the posteriors of mu and tau)
"""

import os
import sys

import numpy as np
import vfe

here = os.path.dirname(os.path.abspath(__file__))
data = np.loadtxt(os.path.join(here, "..", "data", "gauss_N1000.csv"), skiprows=1)

g = vfe.FactorGraph()
mu = g.variable("mu", "Gaussian"); tau = g.variable("tau", "Gamma")
y = g.observed("y", data)
g.factor("Gaussian", out=mu, mean=0.0, precision=1e-2)
g.factor("Gamma", out=tau, shape=1e-3, rate=1e-3)
g.factor("Gaussian", out=y, mean=mu, precision=tau)
result = vfe.infer(g, tolerance=1e-8)

print(result.message)
print("F per sweep:", np.array2string(result.free_energy, precision=6))
q_mu, q_tau = g.posterior(mu), g.posterior(tau)
print(f"q(mu):  mean {q_mu.mean:.6f}, sd {np.sqrt(q_mu.variance):.6f}")
print(f"q(tau): mean {q_tau.mean:.6f} (sd of the data {1 / np.sqrt(q_tau.mean):.6f})")

if len(sys.argv) > 1:
    from vfe import plot

    plot.summary(vfe.result_dict(g, result), sys.argv[1])
    print("plot:", sys.argv[1])
