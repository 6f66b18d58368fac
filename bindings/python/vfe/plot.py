"""Plots of vfe results with matplotlib (Debian's python3-matplotlib).

Every function takes a result as `vfe.result_dict(graph, result)` gives it, or the dict of a
result file `vfe run` wrote (the vfe-result/1 document), and draws on a matplotlib Axes (a new
figure when none is given), returning the Axes:

    trace(result)              F per sweep, the sweep of convergence marked
    density(result, "mu")      the posterior density of a scalar variable (Gaussian, Gamma,
                               Beta), with a prior (a dict of the same form) dashed if given
    band(result, "x")          means and ±1 sd of a Gaussian array (a trajectory with its band)
    hinton(result, "z")        a Categorical or Dirichlet array as a Hinton diagram (p or mean)
    summary(result, path)      the trace and every variable's marginals in one figure, saved

and one function draws an agent's run (vfe.Agent) rather than a result:

    agent_trace(beliefs, actions)  q(s_t) of one hidden-state factor per step as a heat map,
                                   the action taken at each step beneath

`python3 -m vfe plot result.json -o plot.png` calls summary() on a result file.
"""

import math

import matplotlib

matplotlib.use("Agg")  # files only: no display is needed
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402


def _axes(ax):
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    return ax


def _posterior(result, name):
    posteriors = result.get("posteriors", {})
    if name not in posteriors:
        raise KeyError(f"no posterior '{name}' in the result; it has {sorted(posteriors)}")
    return posteriors[name]


def trace(result, ax=None):
    """F after every sweep (the result must hold its trace: not --no-trace)."""
    ax = _axes(ax)
    f = np.asarray(result.get("free_energy", []), dtype=float)
    if f.size == 0:
        raise ValueError("the result has no free-energy trace (written with --no-trace?)")
    sweeps = np.arange(1, f.size + 1)
    ax.plot(sweeps, f, marker="o", markersize=3)
    if result.get("converged"):
        ax.axvline(f.size, color="grey", linestyle=":", label=f"converged, sweep {f.size}")
        ax.legend()
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.ticklabel_format(axis="y", useOffset=False)
    ax.set_xlabel("sweep")
    ax.set_ylabel("free energy F")
    ax.set_title("F = " + f"{f[-1]:.6g}")
    return ax


def _gamma_log_pdf(x, shape, rate):
    return shape * math.log(rate) - math.lgamma(shape) + (shape - 1) * np.log(x) - rate * x


def _beta_log_pdf(x, a, b):
    return ((a - 1) * np.log(x) + (b - 1) * np.log1p(-x)
            - (math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)))


def _density_curve(q, grid=None):
    family = q.get("family")
    if family == "Gaussian":
        m, sd = q["mean"], math.sqrt(q["variance"])
        x = grid if grid is not None else np.linspace(m - 4 * sd, m + 4 * sd, 400)
        return x, np.exp(-0.5 * ((x - m) / sd) ** 2) / (sd * math.sqrt(2 * math.pi))
    if family == "Gamma":
        shape, rate = q["shape"], q["rate"]
        m, sd = shape / rate, math.sqrt(shape) / rate
        x = grid if grid is not None else np.linspace(max(m - 4 * sd, m * 1e-3), m + 4 * sd, 400)
        return x, np.exp(_gamma_log_pdf(x, shape, rate))
    if family == "Beta":
        x = grid if grid is not None else np.linspace(1e-4, 1 - 1e-4, 400)
        return x, np.exp(_beta_log_pdf(x, q["a"], q["b"]))
    raise ValueError(f"density: a {family} posterior has no scalar density to draw "
                     "(Gaussian, Gamma and Beta do)")


def density(result, name, prior=None, ax=None):
    """The posterior density of scalar variable `name`; `prior` (same form) dashed."""
    ax = _axes(ax)
    q = _posterior(result, name)
    if isinstance(q, list):
        raise ValueError(f"density: '{name}' is an array; draw it with band() or hinton()")
    x, y = _density_curve(q)
    ax.plot(x, y, label="posterior")
    if prior is not None:
        _, p = _density_curve(prior, x)
        ax.plot(x, p, linestyle="--", label="prior")
        ax.legend()
    ax.set_xlabel(name)
    ax.set_ylabel("density")
    return ax


def band(result, name, ax=None):
    """Means ± 1 sd of a Gaussian array (or one component of an MvGaussian array: its first)."""
    ax = _axes(ax)
    q = _posterior(result, name)
    if not isinstance(q, list) or not q:
        raise ValueError(f"band: '{name}' is not an array variable")
    if q[0].get("family") == "Gaussian":
        mean = np.array([e["mean"] for e in q])
        sd = np.sqrt([e["variance"] for e in q])
    elif q[0].get("family") == "MvGaussian":
        mean = np.array([e["mean"][0] for e in q])
        sd = np.sqrt([e["covariance"][0][0] for e in q])
    else:
        raise ValueError(f"band: '{name}' is {q[0].get('family')}; expected Gaussian elements")
    t = np.arange(mean.size)
    ax.plot(t, mean, label="posterior mean")
    ax.fill_between(t, mean - sd, mean + sd, alpha=0.3, label="± 1 sd")
    ax.set_xlabel(f"{name} index")
    ax.legend()
    return ax


def hinton(result, name, ax=None, max_elements=50):
    """A Categorical (p) or Dirichlet (mean) array: one row per element (the first
    `max_elements`), a square per outcome whose area is its probability."""
    ax = _axes(ax)
    q = _posterior(result, name)
    elements = (q if isinstance(q, list) else [q])[:max_elements]
    key = "p" if elements[0].get("family") == "Categorical" else "mean"
    if elements[0].get("family") not in ("Categorical", "Dirichlet"):
        raise ValueError(f"hinton: '{name}' is {elements[0].get('family')}; expected "
                         "Categorical or Dirichlet")
    p = np.array([e[key] for e in elements], dtype=float)
    for (i, j), value in np.ndenumerate(p):
        side = math.sqrt(max(value, 0.0))
        ax.add_patch(plt.Rectangle((j - side / 2, i - side / 2), side, side, color="tab:blue"))
    ax.set_xlim(-0.5, p.shape[1] - 0.5)
    ax.set_ylim(p.shape[0] - 0.5, -0.5)
    ax.set_aspect("equal")
    ax.set_xlabel("outcome")
    shown = len(q) if isinstance(q, list) else 1
    ax.set_ylabel(f"{name} element" + (f" (first {p.shape[0]} of {shown})"
                                        if shown > p.shape[0] else ""))
    return ax


def agent_trace(beliefs, actions=None, state_names=None, action_names=None, ax=None):
    """An agent's beliefs over time: `beliefs[t]` is q(s_t) of one hidden-state factor (the
    vector agent.infer_states returns for it at step t), drawn as a column of a heat map
    (states down, steps across, probability as shade and number); `actions[t]`, the action
    taken at step t, labels the step beneath (by `action_names` when given)."""
    ax = _axes(ax)
    q = np.array([np.asarray(b, dtype=float).ravel() for b in beliefs])
    if q.ndim != 2 or q.shape[0] == 0:
        raise ValueError("agent_trace: expected one probability vector per step, all of one size")
    steps, states = q.shape
    if actions is not None and len(actions) != steps:
        raise ValueError(f"agent_trace: {len(actions)} actions for {steps} steps of beliefs")
    image = ax.imshow(q.T, aspect="auto", cmap="Blues", vmin=0.0, vmax=1.0)
    for (t, s), value in np.ndenumerate(q):
        ax.text(t, s, f"{value:.2f}", ha="center", va="center", fontsize=8,
                color="white" if value > 0.6 else "black")
    ax.figure.colorbar(image, ax=ax, label="q(state)")
    ax.set_yticks(range(states))
    ax.set_yticklabels(state_names if state_names is not None else range(states))
    ax.set_xticks(range(steps))
    if actions is None:
        ax.set_xticklabels(range(steps))
        ax.set_xlabel("step")
    else:
        labels = [action_names[int(a)] if action_names is not None else str(int(a))
                  for a in actions]
        ax.set_xticklabels([f"{t}\n{label}" for t, label in enumerate(labels)], fontsize=8)
        ax.set_xlabel("step and action taken")
    ax.set_ylabel("state")
    return ax


def summary(result, path):
    """The trace and a panel per posterior (density, band or Hinton diagram), saved to path."""
    panels = []
    for name, q in result.get("posteriors", {}).items():
        family = (q[0] if isinstance(q, list) and q else q).get("family")
        if isinstance(q, list) and family in ("Gaussian", "MvGaussian"):
            panels.append((band, name))
        elif family in ("Categorical", "Dirichlet"):
            panels.append((hinton, name))
        elif not isinstance(q, list) and family in ("Gaussian", "Gamma", "Beta"):
            panels.append((density, name))
    count = 1 + len(panels)
    columns = min(count, 3)
    rows = math.ceil(count / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(5 * columns, 3.6 * rows), squeeze=False)
    flat = axes.ravel()
    trace(result, flat[0])
    for ax, (draw, name) in zip(flat[1:], panels):
        draw(result, name, ax=ax)
        ax.set_title(name)
    for ax in flat[count:]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
