"""pyproject.toml: pip builds a wheel of vfe with what Debian ships (python3-pip and
python3-setuptools, no download), from a copy of the package's sources and reusing this
build's CMake tree; installed into an empty folder, the wheel imports and runs a model from
another directory, without the build tree on the path."""

import os
import shutil
import subprocess
import sys

SOURCE = os.environ.get("VFE_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))


def run(command, **kwargs):
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, **kwargs)
    assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_pip_builds_a_wheel_that_installs_and_imports(tmp_path):
    build = os.environ["VFE_BUILD_DIR"]  # set by ctest
    source = tmp_path / "source"
    for name in ("pyproject.toml", "setup.py", "docs/python.md", "bindings/python/vfe"):
        target = source / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if os.path.isdir(os.path.join(SOURCE, name)):
            shutil.copytree(os.path.join(SOURCE, name), target)
        else:
            shutil.copyfile(os.path.join(SOURCE, name), target)
    env = dict(os.environ, VFE_CMAKE_BUILD_DIR=build)
    env.pop("PYTHONPATH", None)
    run([sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps", "--no-index",
         "-w", str(tmp_path / "dist"), str(source)], env=env)
    wheels = list((tmp_path / "dist").glob("vfe-*.whl"))
    assert len(wheels) == 1, wheels
    run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--target",
         str(tmp_path / "site"), str(wheels[0])], env=env)
    code = ("import vfe, vfe.plot\n"
            "assert vfe.__file__.startswith(%r), vfe.__file__\n"
            "g = vfe.FactorGraph()\n"
            "mu = g.variable('mu', 'Gaussian')\n"
            "y = g.observed('y', [1.0, 2.0, 3.0])\n"
            "g.factor('Gaussian', out=mu, mean=0.0, precision=1.0)\n"
            "g.factor('Gaussian', out=y, mean=mu, precision=1.0)\n"
            "vfe.infer(g)\n"
            "print(g.posterior(mu).mean)\n") % str(tmp_path / "site")
    out = run([sys.executable, "-c", code], cwd=str(tmp_path),
              env=dict(env, PYTHONPATH=str(tmp_path / "site")))
    # The conjugate closed form: precision 1 + 3, mean (0 + 6) / 4.
    assert abs(float(out) - 1.5) < 1e-12
