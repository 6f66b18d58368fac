"""vfe: variational message passing on factor graphs, at C++ speed.

    import numpy as np, vfe
    g = vfe.FactorGraph()
    mu = g.variable("mu", "Gaussian"); tau = g.variable("tau", "Gamma")
    y = g.observed("y", data)
    g.factor("Gaussian", out=mu, mean=0.0, precision=1e-2)
    g.factor("Gamma", out=tau, shape=1e-3, rate=1e-3)
    g.factor("Gaussian", out=y, mean=mu, precision=tau)
    result = vfe.infer(g, tolerance=1e-9)
    result.free_energy, g.posterior(mu).mean, g.posterior(tau).mean

Every registered node type is a factor by its name (vfe.node_types(); vfe.describe_node(name)
gives its formula and arguments), with the same slot names as the JSON format
(docs/json-format.md); `in` is written `in_`. Errors are vfe.Error and its subclasses
(ModelError, ParameterError, GraphError, OptionsError), with the library's messages.
g.to_json() writes a graph (built from Python or loaded) as one vfe-model/1 document and
vfe.from_json(text) builds it again (g.save(path) and vfe.load(path) through a file);
pickling keeps the posteriors too.
vfe.Agent is an active inference agent with pymdp's arguments and methods.
"""

import json as _json

from ._vfe import (Agent, Error, FactorGraph, Gather, GraphError, ModelError, OptionsError,
                   ParameterError, Result, Rows, Variable, describe_node, gather, infer, load,
                   node_type, node_types, parse, rows)

__all__ = ["Agent", "Error", "FactorGraph", "Gather", "GraphError", "ModelError", "OptionsError",
           "ParameterError", "Result", "Rows", "Variable", "describe_node", "gather", "infer",
           "from_json", "load", "node_type", "node_types", "parse", "result_dict", "rows"]


def result_dict(graph, result, trace=True):
    """The result as the dict of its vfe-result/1 document (what `vfe run` writes)."""
    return _json.loads(graph.result_json(result, trace=trace))


def from_json(text, base_directory="."):
    """The graph of a vfe-model/1 document given as text (FactorGraph.to_json's inverse);
    CSV paths are relative to base_directory."""
    return parse(text, base_directory)


def _save(graph, path, indent=2):
    """Writes the model as one vfe-model/1 document (to_json) to `path`; vfe.load reads it
    back, and `vfe run path` runs it."""
    with open(path, "w") as f:
        f.write(graph.to_json(indent=indent))
        f.write("\n")


FactorGraph.save = _save
