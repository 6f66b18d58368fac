"""The Python module against the C++ engine: the same models built from Python and loaded
from JSON by the C++ loader give the same free energies bit for bit; numpy in and out;
errors as exceptions with the library's messages; the GIL released during inference."""

import json
import os
import threading
import time

import numpy as np
import pytest

import vfe

SOURCE = os.environ.get("VFE_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
EXAMPLES = os.path.join(SOURCE, "examples")


def example(name):
    return os.path.join(EXAMPLES, name)


def gauss_data():
    return np.loadtxt(example("data/gauss_N1000.csv"), skiprows=1)


def gaussian_model(data):
    g = vfe.FactorGraph()
    mu = g.variable("mu", "Gaussian")
    tau = g.variable("tau", "Gamma")
    y = g.observed("y", data)
    g.factor("Gaussian", name="mu_prior", out=mu, mean=0.0, precision=0.01)
    g.factor("Gamma", name="tau_prior", out=tau, shape=1e-3, rate=1e-3)
    g.factor("Gaussian", name="likelihood", out=y, mean=mu, precision=tau)
    return g, mu, tau


def test_gaussian_model_from_python_equals_the_json_model_bit_for_bit():
    data = gauss_data()
    assert data.shape == (1000,)
    g, mu, tau = gaussian_model(data)
    result = vfe.infer(g, iterations=100, tolerance=1e-8, order=[mu, tau])
    loaded = vfe.load(example("gaussian_mean_precision.json"))
    reference = vfe.infer(loaded)
    assert result.converged and reference.converged
    assert isinstance(result.free_energy, np.ndarray)
    assert result.free_energy.dtype == np.float64
    np.testing.assert_array_equal(result.free_energy, reference.free_energy)
    assert g.posterior(mu).mean == loaded.posterior("mu").mean
    assert g.posterior("tau").rate == loaded.posterior("tau").rate
    # The closed forms of the fixed point: E[mu] near the sample mean, E[tau] near 1/variance.
    assert abs(g.posterior(mu).mean - data.mean()) < 1e-3
    assert abs(1.0 / g.posterior(tau).mean - data.var()) / data.var() < 5e-3


def test_result_dict_matches_the_result_document():
    g, mu, tau = gaussian_model(gauss_data())
    result = vfe.infer(g, order=[mu, tau])
    d = vfe.result_dict(g, result)
    assert d["format"] == "vfe-result/1"
    assert d["iterations"] == result.iterations
    assert d["final_free_energy"] == result.free_energy[-1]
    assert d["posteriors"]["mu"]["mean"] == g.posterior(mu).mean
    assert d["posteriors"]["tau"]["family"] == "Gamma"


def test_arrays_of_posteriors_are_numpy_arrays_with_the_element_shape():
    g = vfe.FactorGraph()
    x = g.variable("x", "Gaussian", shape=[4])
    w = g.variable("w", "MvGaussian", dim=2)
    z = g.variable("z", "Categorical", dim=3, shape=[2, 5])
    g.factor("Gaussian", out=x, mean=np.arange(4.0)[0], precision=2.0)
    g.factor("MvGaussian", out=w, mean=np.array([1.0, -1.0]), precision=np.eye(2) * 4)
    g.factor("Categorical", out=z, p=np.array([0.2, 0.3, 0.5]))
    vfe.infer(g)
    qx = g.posterior(x)
    assert qx.mean.shape == (4,) and qx.variance.shape == (4,)
    np.testing.assert_allclose(qx.variance, 0.5, rtol=1e-14)
    qw = g.posterior(w)
    assert qw.mean.shape == (2,) and qw.covariance.shape == (2, 2)
    np.testing.assert_allclose(qw.covariance, np.eye(2) / 4, rtol=1e-14)
    qz = g.posterior(z)
    assert qz.p.shape == (2, 5, 3)
    np.testing.assert_allclose(qz.p[1, 3], [0.2, 0.3, 0.5], rtol=1e-14)
    assert g.posterior(x[2]).mean == 0.0  # one element: scalars
    assert g.posterior(x[1:3]).mean.shape == (2,)
    assert len(x) == 4 and len(x[1:]) == 3 and x[-1].name == "x[3]"


def test_logistic_regression_with_rows_and_predictive_means():
    rng = np.random.default_rng(3)
    X = np.column_stack([np.ones(200), rng.standard_normal(200)])
    y = (rng.random(200) < 1 / (1 + np.exp(-(X @ [0.5, 2.0])))).astype(float)
    g = vfe.FactorGraph()
    w = g.variable("w", "MvGaussian", dim=2)
    labels = g.observed("y", y)
    g.factor("MvGaussian", out=w, mean=np.zeros(2), precision=np.eye(2))
    g.factor("Logistic", out=labels, in_=w, matrix=vfe.rows(X))
    result = vfe.infer(g, iterations=200, tolerance=1e-12)
    assert result.converged, result.message
    q = g.posterior(w)
    new = np.array([[1.0, 0.0], [1.0, 1.5]])
    p = g.predictive_means("Logistic", w, new)
    # Against a trapezoid sum of sigmoid over a ~ N(r m, r S r).
    z = np.linspace(-12, 12, 4801)
    phi = np.exp(-0.5 * z * z) / np.sqrt(2 * np.pi) * (z[1] - z[0])
    for k, r in enumerate(new):
        m, s = r @ q.mean, np.sqrt(r @ q.covariance @ r)
        assert abs(p[k] - np.sum(phi / (1 + np.exp(-(m + s * z))))) < 1e-9
    # The same model from JSON: the same F, bit for bit.
    doc = {
        "format": "vfe-model/1",
        "variables": [{"name": "w", "family": "MvGaussian", "dim": 2},
                      {"name": "X", "shape": [200], "dim": 2, "observed": X.tolist()},
                      {"name": "y", "shape": [200], "observed": y.tolist()}],
        "factors": [{"node": "MvGaussian", "out": "w", "mean": [0, 0],
                     "precision": [[1, 0], [0, 1]]},
                    {"node": "Logistic", "for": {"n": [0, 200]}, "out": "y[n]", "in": "w",
                     "matrix": "X[n]"}],
        "inference": {"iterations": 200, "tolerance": 1e-12}}
    loaded = vfe.parse(json.dumps(doc))
    np.testing.assert_array_equal(vfe.infer(loaded).free_energy, result.free_energy)


def test_every_node_type_is_reachable_and_described():
    names = vfe.node_types()
    for expected in ("Gaussian", "Gamma", "Logistic", "Softmax", "Poisson", "GaussianMixture"):
        assert expected in names
    assert "U =" in vfe.describe_node("Gaussian")
    with pytest.raises(vfe.GraphError, match="unknown node type \"Gausian\".*did you mean"):
        vfe.describe_node("Gausian")


def test_errors_are_the_library_exceptions_with_its_messages():
    assert issubclass(vfe.ParameterError, vfe.ModelError)
    assert issubclass(vfe.ModelError, vfe.Error) and issubclass(vfe.GraphError, vfe.Error)
    g = vfe.FactorGraph()
    mu = g.variable("mu", "Gaussian")
    with pytest.raises(vfe.ModelError, match="unknown family \"Gausian\""):
        g.variable("nu", "Gausian")
    with pytest.raises(vfe.ParameterError, match="precision"):
        g.factor("Gaussian", out=mu, mean=0.0, precision=-1.0)
    with pytest.raises(vfe.GraphError, match="unknown node type"):
        g.factor("Gausian", out=mu, mean=0.0, precision=1.0)
    with pytest.raises(vfe.ModelError, match="expected an array of numbers, found dtype"):
        g.observed("s", np.array(["a", "b"]))
    with pytest.raises(vfe.ModelError, match="string"):
        g.observed("s", "abc")
    with pytest.raises(vfe.ModelError, match="3 dimensions"):
        g.observed("cube", np.zeros((2, 2, 2)))
    with pytest.raises(vfe.ModelError, match="NaN|not finite|finite"):
        g.observed("bad", np.array([1.0, np.nan]))
    with pytest.raises(vfe.ModelError, match="found a bool"):
        g.factor("Gaussian", out=mu, mean=True, precision=1.0)
    other = vfe.FactorGraph()
    x = other.variable("x", "Gaussian")
    with pytest.raises(vfe.GraphError, match="belongs to another graph"):
        g.factor("Gaussian", out=mu, mean=x, precision=1.0)
    with pytest.raises(IndexError):
        mu[1]
    g.factor("Gaussian", out=mu, mean=0.0, precision=1.0)
    with pytest.raises(vfe.OptionsError, match="unknown scheduler \"paralel\""):
        vfe.infer(g, scheduler="paralel")
    with pytest.raises(vfe.ModelError, match="/factors/0/precision"):
        vfe.parse('{"format": "vfe-model/1", "variables": [{"name": "x", "family": "Gaussian"}],'
                  ' "factors": [{"node": "Gaussian", "out": "x", "mean": 0, "precision": -1}]}')


def test_callback_sees_every_sweep_and_stops_the_run():
    g, mu, tau = gaussian_model(gauss_data())
    seen = []

    def callback(info):
        seen.append(info.free_energy)
        return info.iteration < 3

    result = vfe.infer(g, tolerance=0, iterations=50, callback=callback, order=[mu, tau])
    assert result.termination == "stopped"
    assert result.iterations == 3
    assert seen == list(result.free_energy)
    # An exception in the callback ends the run and reaches the caller.
    with pytest.raises(ZeroDivisionError):
        vfe.infer(g, callback=lambda info: 1 / 0)
    # The keywords held for those runs only: the graph's own settings (100 sweeps at most,
    # tolerance 1e-8) run it to convergence.
    again = vfe.infer(g)
    assert again.converged and again.termination == "converged"


def test_the_gil_is_released_while_inference_runs():
    # A long run: a logistic regression on 10^5 rows (a quadrature pass per row and sweep),
    # 20 sweeps without stopping.
    rng = np.random.default_rng(0)
    X = np.column_stack([np.ones(100_000), rng.standard_normal(100_000)])
    g = vfe.FactorGraph()
    w = g.variable("w", "MvGaussian", dim=2)
    labels = g.observed("y", (rng.random(100_000) < 0.5).astype(float))
    g.factor("MvGaussian", out=w, mean=np.zeros(2), precision=np.eye(2))
    g.factor("Logistic", out=labels, in_=w, matrix=vfe.rows(X))
    ticks = []
    done = threading.Event()

    def tick():
        while not done.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.001)

    thread = threading.Thread(target=tick)
    thread.start()
    try:
        time.sleep(0.01)
        before = len(ticks)
        start = time.perf_counter()
        vfe.infer(g, tolerance=0, iterations=20)
        elapsed = time.perf_counter() - start
        during = len([t for t in ticks if start <= t <= start + elapsed])
    finally:
        done.set()
        thread.join()
    assert before > 0
    # With the GIL held the other thread could not tick at all during the run.
    assert elapsed > 0.05, "the run is too short to tell"
    assert during >= 5


def test_warm_start_and_set_posterior():
    g, mu, tau = gaussian_model(gauss_data())
    data = gauss_data()
    g.set_posterior(tau, shape=10.0, rate=40.0)
    result = vfe.infer(g, order=[mu], iterations=1, tolerance=0)
    assert result.iterations == 1
    assert any("tau" in w for w in result.warnings)  # left out of the order: named
    # One update of mu from the set q(tau), E[tau] = 0.25: the conjugate closed form.
    precision = 0.01 + 0.25 * len(data)
    q = g.posterior(mu)
    assert abs(q.variance * precision - 1) < 1e-12
    assert abs(q.mean - 0.25 * data.sum() / precision) < 1e-12
    with pytest.raises(vfe.ModelError, match="needs shape, rate; 'rate' is missing"):
        g.set_posterior(tau, shape=1.0)
    with pytest.raises(vfe.ModelError, match="unknown parameter 'p' for a Gaussian posterior; "
                                             "expected mean, variance"):
        g.set_posterior(mu, p=[0.5, 0.5])


def test_many_graphs_do_not_leak():
    import resource

    def build():
        g, mu, tau = gaussian_model(np.arange(10.0))
        vfe.infer(g, order=[mu, tau])
        return g.posterior(mu).mean

    for _ in range(500):
        build()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for _ in range(10_000):
        build()
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # ru_maxrss is in KiB: 10,000 leaked graphs of a few KiB each would add tens of MiB.
    assert after - before < 8 * 1024, (before, after)


@pytest.mark.parametrize("script, expected", [
    ("gaussian_mean_precision.py", ["converged", "q(mu):  mean 3.12"]),
    # The agent visits the cue, which points left, then goes left.
    ("tmaze.py", ["t=0: sees centre", "goes to cue location", "t=1: sees cue location, none, "
                  "cue left; believes reward right with p = 0.000; goes to left arm"]),
    # Five components of 400 points each (the data's clusters).
    ("mixture.py", ["converged", "component 0: weight 0.200", "400 points"]),
    # The smoother's positions are nearer the truth than the measurements.
    ("tracking.py", ["converged after 9 sweeps", "position error (rms): measured 0.2522, "
                     "smoothed 0.07"]),
    # `vfe stream` through a pipe: one line per outcome.
    ("surprise.py", ["320 steps, 7 switches of P(y = 1)"]),
])
def test_the_python_examples_run(tmp_path, script, expected):
    import subprocess
    import sys

    image = tmp_path / "plot.png"
    run = subprocess.run([sys.executable, example("python/" + script), str(image)],
                         capture_output=True, text=True, timeout=120, env=dict(os.environ))
    assert run.returncode == 0, run.stderr
    for text in expected:
        assert text in run.stdout, run.stdout
    with open(image, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert os.path.getsize(image) > 2000


def read_csv(name):
    data = np.genfromtxt(example(f"data/{name}"), delimiter=",", names=True)
    return data


def test_bayespy_regression_from_python_equals_the_json_model_bit_for_bit():
    data = read_csv("regression_N2000.csv")
    X = np.column_stack([data[f"x{i}"] for i in range(5)])
    g = vfe.FactorGraph()
    w = g.variable("w", "MvGaussian", dim=5)
    tau = g.variable("tau", "Gamma")
    y = g.observed("y", data["y"])
    g.factor("MvGaussian", out=w, mean=np.zeros(5), precision=0.01 * np.eye(5))
    g.factor("Gamma", out=tau, shape=1e-3, rate=1e-3)
    g.factor("LinearGaussian", out=y, in_=w, matrix=vfe.rows(X), precision=tau)
    result = vfe.infer(g)
    loaded = vfe.load(example("linear_regression.json"))
    reference = vfe.infer(loaded)
    assert result.converged
    np.testing.assert_array_equal(result.free_energy, reference.free_energy)
    np.testing.assert_array_equal(g.posterior(w).mean, loaded.posterior("w").mean)


def test_bayespy_mixture_from_python_equals_the_json_model_bit_for_bit(monkeypatch):
    # The model as examples/python/mixture.py builds it: MvGaussian and Wishart arrays, a
    # Dirichlet, 2,000 labels with a warm start of q(z), the GaussianMixture node.
    import runpy

    monkeypatch.setattr("sys.argv", ["mixture.py"])
    built = runpy.run_path(example("python/mixture.py"))
    g, result = built["g"], built["result"]
    loaded = vfe.load(example("gaussian_mixture.json"))
    reference = vfe.infer(loaded)
    assert result.converged, result.message
    np.testing.assert_array_equal(result.free_energy, reference.free_energy)
    np.testing.assert_array_equal(g.posterior(built["z"]).p, loaded.posterior("z").p)
    assert g.posterior(built["mu"]).mean.shape == (5, 2)
    assert g.posterior(built["Lambda"]).mean.shape == (5, 2, 2)


def test_tracking_from_python_equals_the_json_model_bit_for_bit(monkeypatch):
    # Slices (x[1:], x[:-1]), a cluster and a Wishart noise precision, built in the example.
    import runpy

    monkeypatch.setattr("sys.argv", ["tracking.py"])
    built = runpy.run_path(example("python/tracking.py"))
    loaded = vfe.load(example("tracking.json"))
    reference = vfe.infer(loaded)
    np.testing.assert_array_equal(built["result"].free_energy, reference.free_energy)
    np.testing.assert_array_equal(built["q"].mean, loaded.posterior("x").mean)

