"""Every registered node type through the Python bindings: each type's example model (the
registry's declaration, vfe.node_type(name)["example"]) is built from Python with the
ecosystem's calls and against the same model built in C++ by the JSON loader gives the same
free energy after every sweep, bit for bit. The graph written back by to_json, and a pickled
graph, rebuild the same model: the same trace again, and the posteriors kept by pickling.
A node type added to the registry without a case here fails the first test."""

import json
import pickle

import numpy as np
import pytest

import vfe

SWEEPS = 30


def bernoulli(g):
    p = g.variable("p", "Beta")
    b = g.variable("b", "Bernoulli")
    x = g.observed("x", [1, 0, 1, 1, 0, 1])
    g.factor("Beta", out=p, a=2.0, b=3.0)
    g.factor("Bernoulli", out=b, p=p)
    g.factor("Bernoulli", out=x, p=p)


def categorical(g):
    pi = g.variable("pi", "Dirichlet", dim=3)
    z = g.variable("z", "Categorical", dim=3, shape=[2])
    c = g.observed("c", [0, 2, 2, 1, 2], categories=3)
    g.factor("Dirichlet", out=pi, alpha=[1.0, 2.0, 1.5])
    g.factor("Categorical", out=z, p=pi)
    g.factor("Categorical", out=c, p=pi)


def delta(g):
    x = g.variable("x", "Gaussian")
    tau = g.variable("tau", "Gamma")
    y = g.observed("y", [0.4, 0.9, 0.6])
    g.factor("Gaussian", out=x, mean=0.0, precision=1.0)
    g.factor("Gamma", out=tau, shape=4.0, rate=1.0)
    g.factor("Delta", out=y, in_=x, precision=tau, function="tanh", matrix=[[1.5]], offset=0.2)


def sum_node(g):
    a = g.variable("a", "Gaussian")
    b = g.variable("b", "Gaussian")
    s = g.variable("s", "Gaussian")
    y = g.observed("y", 1.5)
    g.factor("Gaussian", out=a, mean=0.0, precision=1.0)
    g.factor("Gaussian", out=b, mean=1.0, precision=0.5)
    g.factor("Sum", out=s, in1=a, in2=b)
    g.factor("Gaussian", out=y, mean=s, precision=4.0)


def matrix_product(g):
    x = g.variable("x", "MvGaussian", dim=2)
    z = g.variable("z", "Gaussian")
    y = g.observed("y", 0.8)
    g.factor("MvGaussian", out=x, mean=[0.0, 1.0], precision=[[1.0, 0.2], [0.2, 2.0]])
    g.factor("MatrixProduct", out=z, in_=x, matrix=[[1.0, -0.5]])
    g.factor("Gaussian", out=y, mean=z, precision=2.0)


def gamma(g):
    rate = g.variable("rate", "Gamma")
    tau = g.variable("tau", "Gamma")
    y = g.observed("y", [0.3, -1.1, 0.8, 2.0, -0.4])
    g.factor("Gamma", out=rate, shape=1.0, rate=1.0)
    g.factor("Gamma", out=tau, shape=2.0, rate=rate)
    g.factor("Gaussian", out=y, mean=0.0, precision=tau)


def gaussian(g):
    mu = g.variable("mu", "Gaussian")
    tau = g.variable("tau", "Gamma")
    y = g.observed("y", np.array([1.2, 0.7, 1.9, 1.1]))
    g.factor("Gaussian", out=mu, mean=0.0, precision=0.01)
    g.factor("Gamma", out=tau, shape=2.0, rate=1.0)
    g.factor("Gaussian", out=y, mean=mu, precision=tau)


def gaussian_mixture(g):
    pi = g.variable("pi", "Dirichlet", dim=2)
    mu = g.variable("mu", "Gaussian", shape=[2])
    tau = g.variable("tau", "Gamma", shape=[2])
    z = g.variable("z", "Categorical", dim=2, shape=[6])
    y = g.observed("y", [-2.1, -1.8, -2.4, 1.9, 2.3, 2.0])
    g.factor("Dirichlet", out=pi, alpha=[1.0, 1.0])
    g.factor("Gaussian", out=mu, mean=0.0, precision=0.1)
    g.factor("Gamma", out=tau, shape=2.0, rate=1.0)
    g.factor("Categorical", out=z, p=pi)
    g.factor("GaussianMixture", out=y, switch=z, means=mu, precisions=tau)
    first = np.array([0.9, 0.8, 0.7, 0.3, 0.2, 0.1])
    g.set_posterior(z, p=np.column_stack([first, 1 - first]))


def mv_gaussian(g):
    x = g.variable("x", "MvGaussian", dim=2)
    W = g.variable("W", "Wishart", dim=2)
    y = g.observed("y", np.array([[0.5, -0.2], [1.1, 0.4], [-0.3, 0.9]]))
    g.factor("MvGaussian", out=x, mean=np.zeros(2), precision=np.eye(2))
    g.factor("Wishart", out=W, dof=3.0, scale=np.eye(2))
    g.factor("MvGaussian", out=y, mean=x, precision=W)


def linear_gaussian(g):
    w = g.variable("w", "MvGaussian", dim=2)
    tau = g.variable("tau", "Gamma")
    X = np.array([[1.0, 0.5], [1.0, -1.0], [1.0, 2.0], [1.0, 0.0]])
    y = g.observed("y", [1.3, -0.4, 2.9, 0.8])
    g.factor("MvGaussian", out=w, mean=[0.0, 0.0], precision=0.1 * np.eye(2))
    g.factor("Gamma", out=tau, shape=1.0, rate=1.0)
    g.factor("LinearGaussian", out=y, in_=w, matrix=vfe.rows(X), precision=tau)


def binary_regression(node):
    def build(g):
        w = g.variable("w", "MvGaussian", dim=2)
        X = np.array([[1, -2.0], [1, -1.0], [1, -0.5], [1, 0.5], [1, 1.0], [1, 2.0]])
        y = g.observed("y", [0, 0, 1, 0, 1, 1])
        y_new = g.variable("y_new", "Bernoulli")
        g.factor("MvGaussian", out=w, mean=[0, 0], precision=np.eye(2))
        g.factor(node, out=y, in_=w, matrix=vfe.rows(X))
        g.factor(node, out=y_new, in_=w, matrix=[[1, 1.5]])
    return build


def poisson(g):
    rate = g.variable("rate", "Gamma")
    y = g.observed("y", [3, 1, 4, 1, 5, 9, 2])
    w = g.variable("w", "MvGaussian", dim=2)
    X = np.array([[1, 0], [1, 0.5], [1, 1], [1, 1.5], [1, 2]])
    counts = g.observed("counts", [1, 2, 6, 4, 12])
    g.factor("Gamma", out=rate, shape=2.0, rate=0.5)
    g.factor("Poisson", out=y, rate=rate)
    g.factor("MvGaussian", out=w, mean=[0, 0], precision=np.eye(2))
    g.factor("Poisson", out=counts, in_=w, matrix=vfe.rows(X),
             offset=vfe.rows([0, 0, 0.7, 0, 0.7]))


def potential(g):
    s = g.variable("s", "Categorical", dim=2, shape=[2, 2])
    coupling = np.array([[0.5, -0.5], [-0.5, 0.5]])
    g.factor("Potential", variables=[s[0], s[1]], log_table=coupling)
    g.factor("Potential", variables=[s[2], s[3]], log_table=coupling)
    g.factor("Potential", variables=[s[0:2], s[2:4]],
             log_tables=np.array([[[0.8, -0.8], [-0.8, 0.8]], [[-0.3, 0.3], [0.3, -0.3]]]))
    g.factor("Potential", variables=[s], log_table=[0.2, -0.2])


def wishart(g):
    W = g.variable("W", "Wishart", dim=2)
    y = g.observed("y", np.array([[0.5, -0.2], [1.1, 0.4], [-0.3, 0.9]]))
    g.factor("Wishart", out=W, dof=3.0, scale=[[1.0, 0.2], [0.2, 0.5]])
    g.factor("MvGaussian", out=y, mean=[0.0, 0.0], precision=W)


def softmax(g):
    W = g.variable("W", "MvGaussian", dim=2, shape=[2])
    X = np.array([[1, -2.0], [1, -1.5], [1, 0.0], [1, 0.3], [1, 1.6], [1, 2.2]])
    y = g.observed("y", [0, 0, 1, 1, 2, 2], categories=3)
    y_new = g.variable("y_new", "Categorical", dim=3)
    g.factor("MvGaussian", out=W, mean=[0, 0], precision=np.eye(2))
    g.factor("Softmax", out=y, weights=W, matrix=vfe.rows(X))
    g.factor("Softmax", out=y_new, weights=W, matrix=[[1, 1.0]])


def transition(g):
    # A MatrixDirichlet variable in JSON is, from Python as from C++, an array of Dirichlet
    # columns.
    A = g.variable("A", "Dirichlet", dim=2, shape=[2])
    x = g.variable("x", "Categorical", dim=2, shape=[4])
    y = g.observed("y", [0, 2, 2, 1], categories=3)
    g.factor("MatrixDirichlet", out=A, alpha=[[2.0, 1.0], [1.0, 2.0]])
    g.factor("Categorical", out=x[0], p=[0.5, 0.5])
    g.factor("Transition", out=x[1:], in_=x[:3], matrix=A)
    g.factor("Transition", out=y, in_=x, matrix=[[0.7, 0.1], [0.2, 0.2], [0.1, 0.7]])


CASES = {
    "Bernoulli": bernoulli, "Beta": bernoulli, "Categorical": categorical,
    "Dirichlet": categorical, "Delta": delta, "Sum": sum_node, "MatrixProduct": matrix_product,
    "Gamma": gamma, "Gaussian": gaussian, "GaussianMixture": gaussian_mixture,
    "MvGaussian": mv_gaussian, "LinearGaussian": linear_gaussian,
    "Logistic": binary_regression("Logistic"), "Probit": binary_regression("Probit"),
    "Poisson": poisson, "Potential": potential, "Wishart": wishart, "Softmax": softmax,
    "Transition": transition, "MatrixDirichlet": transition,
}


def test_every_registered_node_type_has_a_case():
    assert sorted(CASES) == sorted(vfe.node_types())


def trace(graph):
    result = vfe.infer(graph, iterations=SWEEPS, tolerance=0.0)
    assert np.all(np.isfinite(result.free_energy)), result.message
    return result.free_energy


def example_graph(node):
    return vfe.parse(vfe.node_type(node)["example"])


def python_graph(node):
    g = vfe.FactorGraph()
    CASES[node](g)
    return g


@pytest.mark.parametrize("node", sorted(CASES))
def test_the_example_built_from_python_equals_the_json_model_bit_for_bit(node):
    declaration = vfe.node_type(node)
    assert declaration["name"] == node and declaration["formula"] and declaration["parameters"]
    uses = [f["node"] for f in json.loads(declaration["example"])["factors"]]
    assert node in uses or node in ("Beta", "Dirichlet", "MatrixDirichlet"), uses
    expected = trace(example_graph(node))
    assert len(expected) == SWEEPS
    np.testing.assert_array_equal(trace(python_graph(node)), expected)


@pytest.mark.parametrize("node", sorted(CASES))
def test_to_json_and_from_json_rebuild_the_same_model(node):
    g = python_graph(node)
    text = g.to_json(indent=1)
    document = json.loads(text)
    assert document["format"] == "vfe-model/1"
    again = vfe.from_json(text)
    if node == "GaussianMixture":  # starting posteriors are not part of the document
        again.set_posterior(again["z"], p=g.posterior("z").p)
    expected = trace(g)
    np.testing.assert_array_equal(trace(again), expected)
    # A loaded model writes the document it was read from, and that rebuilds it too.
    loaded = example_graph(node)
    np.testing.assert_array_equal(trace(vfe.from_json(loaded.to_json())), trace(example_graph(node)))


def test_save_and_load_through_a_file(tmp_path):
    g = python_graph("Transition")
    g.save(str(tmp_path / "model.json"))
    np.testing.assert_array_equal(trace(vfe.load(str(tmp_path / "model.json"))), trace(g))


@pytest.mark.parametrize("node", ["Gaussian", "GaussianMixture", "Transition", "Softmax"])
def test_pickling_keeps_the_model_and_its_posteriors(node):
    g = python_graph(node)
    trace(g)
    copy = pickle.loads(pickle.dumps(g))
    for name in json.loads(g.to_json())["variables"]:
        if "observed" in name:
            continue
        q, r = g.posterior(name["name"]), copy.posterior(name["name"])
        assert q.family == r.family
        for key, value in vars(q).items():
            if key != "family":
                np.testing.assert_array_equal(value, getattr(r, key), err_msg=key)
    # The copy goes on from where the original stopped, as the original does.
    np.testing.assert_array_equal(trace(copy), trace(g))


def test_gated_factors_from_python_equal_the_json_gate():
    document = {
        "format": "vfe-model/1",
        "variables": [
            {"name": "theta", "family": "Beta", "shape": [2]},
            {"name": "pi", "family": "Dirichlet", "dim": 2},
            {"name": "z", "family": "Categorical", "dim": 2, "shape": [8]},
            {"name": "x", "shape": [8], "observed": [1, 1, 0, 1, 0, 0, 0, 1]}],
        "factors": [
            {"node": "Beta", "out": "theta[0]", "a": 3.0, "b": 1.0},
            {"node": "Beta", "out": "theta[1]", "a": 1.0, "b": 3.0},
            {"node": "Dirichlet", "out": "pi", "alpha": [1.0, 1.0]},
            {"node": "Categorical", "for": {"n": [0, 8]}, "out": "z[n]", "p": "pi"},
            {"node": "Bernoulli", "for": {"n": [0, 8]}, "gate": "z[n]",
             "components": {"k": [0, 2]}, "out": "x[n]", "p": "theta[k]"}]}
    g = vfe.FactorGraph()
    theta = g.variable("theta", "Beta", shape=[2])
    pi = g.variable("pi", "Dirichlet", dim=2)
    z = g.variable("z", "Categorical", dim=2, shape=[8])
    x = g.observed("x", [1, 1, 0, 1, 0, 0, 0, 1])
    g.factor("Beta", out=theta[0], a=3.0, b=1.0)
    g.factor("Beta", out=theta[1], a=1.0, b=3.0)
    g.factor("Dirichlet", out=pi, alpha=[1.0, 1.0])
    g.factor("Categorical", out=z, p=pi)
    g.gated_factor("Bernoulli", gate=z, components=[dict(out=x, p=theta[k]) for k in range(2)])
    expected = trace(vfe.parse(json.dumps(document)))
    np.testing.assert_array_equal(trace(g), expected)
    written = json.loads(g.to_json())
    assert written["factors"][-1]["p"] == "theta[k]" and written["factors"][-1]["gate"] == "z[n]"
    np.testing.assert_array_equal(trace(vfe.from_json(g.to_json())), expected)
    with pytest.raises(vfe.ModelError, match="component 1: expected a dict"):
        g.gated_factor("Bernoulli", gate=z, components=[dict(out=x, p=theta[0]), [x]])


def test_what_json_cannot_say_is_an_error_at_to_json():
    g = vfe.FactorGraph()
    s = g.variable("s", "Gaussian", shape=[2, 3])
    y = g.observed("y", [1.0, 2.0])
    g.factor("Gaussian", out=s, mean=0.0, precision=1.0)  # every element: loops over i and j
    g.factor("Gaussian", out=y, mean=s[2:4], precision=1.0)  # crosses the end of row 0
    vfe.infer(g, iterations=2)  # the graph itself is fine
    with pytest.raises(vfe.ModelError, match="to_json: factor 1 .'Gaussian'.: argument 'mean'"):
        g.to_json()


def test_set_posterior_takes_every_family():
    g = vfe.FactorGraph()
    x = g.variable("x", "MvGaussian", dim=2, shape=[3])
    W = g.variable("W", "Wishart", dim=2)
    p = g.variable("p", "Beta")
    b = g.variable("b", "Bernoulli", shape=[2])
    g.factor("MvGaussian", out=x, mean=[0, 0], precision=W)
    g.factor("Wishart", out=W, dof=4.0, scale=np.eye(2))
    g.factor("Beta", out=p, a=1.0, b=1.0)
    g.factor("Bernoulli", out=b, p=p)
    covariance = np.array([[2.0, 0.3], [0.3, 0.5]])
    g.set_posterior(x, mean=[1.0, -1.0], covariance=covariance)
    np.testing.assert_allclose(g.posterior(x).covariance[2], covariance, rtol=1e-14)
    np.testing.assert_allclose(g.posterior(x).mean[1], [1.0, -1.0], rtol=1e-14)
    g.set_posterior(x, mean=np.arange(6.0).reshape(3, 2), covariance=np.stack([covariance] * 3))
    np.testing.assert_allclose(g.posterior(x).mean[2], [4.0, 5.0], rtol=1e-14)
    g.set_posterior(W, dof=5.0, scale=[[1.0, 0.2], [0.2, 2.0]])
    assert g.posterior(W).dof == 5.0
    np.testing.assert_allclose(g.posterior(W).mean, 5.0 * np.array([[1.0, 0.2], [0.2, 2.0]]),
                               rtol=1e-14)
    g.set_posterior(p, a=2.0, b=6.0)
    assert g.posterior(p).mean == pytest.approx(0.25, rel=1e-15)
    g.set_posterior(b, p=[0.1, 0.7])
    np.testing.assert_allclose(g.posterior(b).p, [0.1, 0.7], rtol=1e-14)
    with pytest.raises(vfe.ModelError, match="'covariance' is missing"):
        g.set_posterior(x, mean=[0, 0])
    with pytest.raises(vfe.ModelError, match="unknown parameter 'variance' for a MvGaussian"):
        g.set_posterior(x, mean=[0, 0], variance=1.0)
    with pytest.raises(vfe.ModelError, match="'mean' must have 2 numbers for every element, or 6"):
        g.set_posterior(x, mean=[0, 0, 0], covariance=covariance)
    with pytest.raises(vfe.ModelError, match="element 0: the covariance must be symmetric"):
        g.set_posterior(x, mean=[0, 0], covariance=[[1.0, 2.0], [2.0, 1.0]])
    with pytest.raises(vfe.ModelError, match="element 0: Beta: a must be > 0"):
        g.set_posterior(p, a=-1.0, b=1.0)


def test_to_json_writes_vectors_gathers_and_shared_elements():
    g = vfe.FactorGraph()
    x = g.variable("x", "MvGaussian", dim=2)
    theta = g.variable("theta", "Gaussian", shape=[3])
    s = g.variable("s", "Gamma", shape=[2, 2])
    v = g.observed_matrix("v", [0.3, -0.2])
    y = g.observed("y", [0.1, 0.4, 1.2, 2.1, 1.9, 0.8])
    g.factor("MvGaussian", out=x, mean=[0.0, 0.0], precision=np.eye(2))
    g.factor("MvGaussian", out=v, mean=x, precision=[[2.0, 0.5], [0.5, 1.0]])
    g.factor("Gamma", out=s, shape=2.0, rate=1.0)
    g.factor("Gaussian", out=theta, mean=0.0, precision=s[3])  # element [1][1], shared
    g.factor("Gaussian", out=y, mean=vfe.gather(theta, [0, 0, 1, 2, 2, 1]), precision=s[0])
    text = g.to_json()
    factors = json.loads(text)["factors"]
    assert factors[3]["precision"] == "s[1][1]"
    assert factors[4]["mean"] == "theta[theta_index[n]]"
    np.testing.assert_array_equal(trace(vfe.from_json(text)), trace(g))
