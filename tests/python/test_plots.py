"""vfe.plot and python3 -m vfe: images are written (checked to be non-empty PNG files) and
bad input gives a message, not a traceback."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import vfe
from vfe import plot

SOURCE = os.environ.get("VFE_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
PNG = b"\x89PNG\r\n\x1a\n"


def is_png(path):
    with open(path, "rb") as f:
        head = f.read(8)
    return head == PNG and os.path.getsize(path) > 2000


def gaussian_result():
    g = vfe.load(os.path.join(SOURCE, "examples", "gaussian_mean_precision.json"))
    return vfe.result_dict(g, vfe.infer(g))


def test_trace_density_and_summary(tmp_path):
    result = gaussian_result()
    ax = plot.trace(result)
    assert len(ax.lines[0].get_xdata()) == result["iterations"]
    ax = plot.density(result, "mu", prior={"family": "Gaussian", "mean": 0.0, "variance": 100.0})
    assert len(ax.lines) == 2  # posterior and the dashed prior
    # The drawn density integrates to one.
    x, y = ax.lines[0].get_xdata(), ax.lines[0].get_ydata()
    assert abs(np.trapz(y, x) - 1) < 1e-3
    path = plot.summary(result, str(tmp_path / "gauss.png"))
    assert is_png(path)


def test_bands_and_hinton_diagrams(tmp_path):
    g = vfe.FactorGraph()
    x = g.variable("x", "Gaussian", shape=[20])
    z = g.variable("z", "Categorical", dim=3, shape=[4])
    g.factor("Gaussian", out=x, mean=0.0, precision=1.0)
    g.factor("Categorical", out=z, p=np.array([0.2, 0.3, 0.5]))
    result = vfe.result_dict(g, vfe.infer(g))
    ax = plot.band(result, "x")
    assert len(ax.lines[0].get_ydata()) == 20
    ax = plot.hinton(result, "z")
    assert len(ax.patches) == 12
    assert is_png(plot.summary(result, str(tmp_path / "arrays.png")))
    with pytest.raises(ValueError, match="'z' is an array; draw it with band"):
        plot.density(result, "z")
    with pytest.raises(ValueError, match="a Categorical posterior has no scalar density"):
        plot.density({"posteriors": {"c": {"family": "Categorical", "p": [0.5, 0.5]}}}, "c")
    with pytest.raises(KeyError, match="no posterior 'w'"):
        plot.band(result, "w")


def run_module(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "vfe", *args], capture_output=True, text=True,
                          timeout=300, cwd=cwd, env=dict(os.environ))


def test_run_and_plot_from_the_command_line(tmp_path):
    model = os.path.join(SOURCE, "examples", "tracking.json")
    out = tmp_path / "result.json"
    run = run_module("run", model, "-o", str(out))
    assert run.returncode == 0, run.stderr
    document = json.loads(out.read_text())
    assert document["format"] == "vfe-result/1" and document["converged"]
    image = tmp_path / "tracking.png"
    drawn = run_module("plot", str(out), "-o", str(image))
    assert drawn.returncode == 0, drawn.stderr
    assert is_png(image)
    summary = run_module("run", "--summary", os.path.join(SOURCE, "examples",
                                                          "gaussian_mean_precision.json"))
    assert summary.returncode == 0 and "F = " in summary.stdout


def test_command_line_errors_are_messages(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "vfe-model/1", "variables": []}')
    run = run_module("run", str(bad))
    assert run.returncode == 1
    assert "vfe: /variables: expected a non-empty array" in run.stderr
    assert "Traceback" not in run.stderr
    drawn = run_module("plot", str(bad), "-o", str(tmp_path / "x.png"))
    assert drawn.returncode == 1 and "expected a vfe-result/1 document" in drawn.stderr
    missing = run_module("plot", str(tmp_path / "none.json"), "-o", str(tmp_path / "x.png"))
    assert missing.returncode == 1 and "No such file" in missing.stderr


def test_agent_trace_draws_beliefs_per_step_and_the_actions(tmp_path):
    beliefs = [np.array([0.5, 0.5]), np.array([0.1, 0.9]), np.array([0.02, 0.98])]
    ax = plot.agent_trace(beliefs, [3, 2, 2], state_names=["right", "left"],
                          action_names=["centre", "right", "left", "cue"])
    image = ax.images[0].get_array()
    assert image.shape == (2, 3)  # states down, steps across
    np.testing.assert_array_equal(image[:, 1], [0.1, 0.9])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0\ncue", "1\nleft", "2\nleft"]
    ax.figure.savefig(tmp_path / "agent.png")
    assert is_png(tmp_path / "agent.png")
    with pytest.raises(ValueError, match="2 actions for 3 steps"):
        plot.agent_trace(beliefs, [0, 1])
