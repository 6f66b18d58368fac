"""The Python module's overhead (issue: Python bindings), medians of repetitions:

1. Per sweep, on the N = 10^5 Gaussian mixture (K = 5, D = 2, the model of
   bench/RESULTS.md's mixture rows): the wall time of vfe.infer(g, tolerance=0, iterations=S)
   measured in Python, against the C++ time of the same run (result.inference_ms, the
   scheduler's own clock): the ratio is the whole cost of the call from Python.
2. Building a 10^6-observation model from a numpy array: g.observed (copying the array),
   the likelihood plate and finalize(), against nothing (the goal is under 50 ms).

Run: PYTHONPATH=build/release/python /usr/bin/python3 bench/python_overhead.py [out.json]
"""

import json
import os
import statistics
import sys
import time

import numpy as np

import vfe

REPETITIONS = 7


def mixture(n, seed=1):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 6, size=(5, 2))
    labels = rng.integers(0, 5, size=n)
    Y = centres[labels] + rng.standard_normal((n, 2))
    g = vfe.FactorGraph()
    mu = g.variable("mu", "MvGaussian", dim=2, shape=[5])
    Lambda = g.variable("Lambda", "Wishart", dim=2, shape=[5])
    weights = g.variable("weights", "Dirichlet", dim=5)
    z = g.variable("z", "Categorical", dim=5, shape=[n])
    y = g.observed("y", Y)
    g.factor("MvGaussian", out=mu, mean=np.zeros(2), precision=0.01 * np.eye(2))
    g.factor("Wishart", out=Lambda, dof=3, scale=np.eye(2))
    g.factor("Dirichlet", out=weights, alpha=np.ones(5))
    g.factor("Categorical", out=z, p=weights)
    g.factor("GaussianMixture", out=y, switch=z, means=mu, precisions=Lambda)
    g.set_posterior(z, p=np.eye(5)[labels])
    return g, [mu, Lambda, weights, z]


def sweep_overhead(sweeps=20):
    g, order = mixture(100_000)
    vfe.infer(g, tolerance=0, iterations=2, order=order)  # warm up
    python_ms, engine_ms = [], []
    for _ in range(REPETITIONS):
        start = time.perf_counter()
        result = vfe.infer(g, tolerance=0, iterations=sweeps, order=order)
        python_ms.append((time.perf_counter() - start) * 1e3 / sweeps)
        engine_ms.append(result.inference_ms / sweeps)
    return {"python_ms_per_sweep": statistics.median(python_ms),
            "engine_ms_per_sweep": statistics.median(engine_ms),
            "ratio": statistics.median(p / e for p, e in zip(python_ms, engine_ms)),
            "python_ms": python_ms, "engine_ms": engine_ms}


def build_time(n=1_000_000):
    data = np.random.default_rng(2).standard_normal(n)
    times = []
    for _ in range(REPETITIONS):
        start = time.perf_counter()
        g = vfe.FactorGraph()
        mu = g.variable("mu", "Gaussian")
        tau = g.variable("tau", "Gamma")
        y = g.observed("y", data)
        g.factor("Gaussian", out=mu, mean=0.0, precision=1e-2)
        g.factor("Gamma", out=tau, shape=1e-3, rate=1e-3)
        g.factor("Gaussian", out=y, mean=mu, precision=tau)
        g.finalize()
        times.append((time.perf_counter() - start) * 1e3)
    return {"median_ms": statistics.median(times), "ms": times}


def main():
    load = os.getloadavg()
    report = {"load_before": load, "sweep": sweep_overhead(), "build_1e6": build_time(),
              "load_after": os.getloadavg()}
    text = json.dumps(report, indent=2)
    print(text)
    if len(sys.argv) > 1:
        with open(sys.argv[1], "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
