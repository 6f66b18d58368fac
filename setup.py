"""Builds the extension vfe._vfe with CMake (pyproject.toml says how to call it).

The CMake build directory is build/wheel, or $VFE_CMAKE_BUILD_DIR (an existing build with
VFE_PYTHON on is reused as it is configured); only the target vfe_python is built.
"""

import os
import pathlib
import shutil
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

SOURCE = pathlib.Path(__file__).parent.resolve()


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        build = pathlib.Path(os.environ.get("VFE_CMAKE_BUILD_DIR", SOURCE / "build" / "wheel"))
        if not (build / "CMakeCache.txt").exists():
            subprocess.check_call([
                "cmake", "-S", str(SOURCE), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release",
                "-DVFE_PYTHON=ON", f"-DPython3_EXECUTABLE={sys.executable}",
                "-DVFE_BUILD_TESTS=OFF", "-DVFE_BUILD_BENCHMARKS=OFF",
                "-DVFE_BUILD_EXAMPLES=OFF"])
        subprocess.check_call(["cmake", "--build", str(build), "--target", "vfe_python",
                               "-j", str(os.cpu_count() or 1)])
        built = sorted((build / "python" / "vfe").glob("_vfe*.so"))
        if not built:
            raise RuntimeError(f"the CMake build in {build} made no vfe/_vfe*.so")
        target = pathlib.Path(self.get_ext_fullpath(ext.name))
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(built[0], target)


setup(ext_modules=[Extension("vfe._vfe", sources=[])], cmdclass={"build_ext": CMakeBuild})
