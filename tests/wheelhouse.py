"""An offline wheelhouse for installing into fresh virtual environments from the tests.

The tests run in a network namespace with loopback only (scripts/test.sh), so pip cannot reach an index there.
The distributions a fresh environment needs are already installed in the test's own environment: each is
zipped back into the wheel it was installed from (its files as RECORD lists them, its own ``WHEEL`` tag), and
pip then installs from that folder with ``--no-index --find-links`` and resolves the dependencies itself.

The model packages are not installed (the setup removes them once their files are joined): the wheelhouse holds
stand-ins under their pinned names and versions that carry, where the real package does, the one file Parley
reads, copied from the joined and verified cache, so ``parley models`` downloads, joins and checks real bytes.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata as metadata
import zipfile
from collections.abc import Iterable
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from server.providers.local import fetch, weights


def _tag(wheel_file: str) -> str:
    """The compressed tag set of a WHEEL file's ``Tag:`` lines (py2-none-any, py3-none-any: py2.py3-none-any)."""
    tags = [line.split(":", 1)[1].strip().split("-") for line in wheel_file.splitlines() if line.startswith("Tag:")]
    return "-".join(".".join(dict.fromkeys(tag[i] for tag in tags)) for i in range(3))


def repack(dist: metadata.Distribution, out: Path) -> Path:
    """``dist`` as a wheel in ``out``, from its installed files (bytecode and console scripts left out)."""
    name = str(dist.metadata["Name"]).replace("-", "_").replace(".", "_")
    wheel = out / f"{name}-{dist.version}-{_tag(dist.read_text('WHEEL') or '')}.whl"
    if wheel.exists():
        return wheel
    partial = wheel.with_suffix(".partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_STORED) as archive:
        for file in dist.files or ():
            if file.parts[0] == ".." or "__pycache__" in file.parts or file.name == "direct_url.json":
                continue
            path = Path(str(dist.locate_file(file)))
            if path.is_file():
                archive.write(path, file.as_posix())
    partial.rename(wheel)
    return wheel


def closure(requirements: Iterable[str]) -> list[metadata.Distribution]:
    """The installed distributions that ``requirements`` need, transitively (markers evaluated here)."""
    found: dict[str, metadata.Distribution] = {}
    pending = [(Requirement(r), "") for r in requirements]
    while pending:
        requirement, extra = pending.pop()
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": extra}):
            continue
        key = canonicalize_name(requirement.name)
        for wanted in requirement.extras:  # an extra of a dependency: its own conditional requirements
            dist = metadata.distribution(requirement.name)
            pending.extend((Requirement(r), wanted) for r in dist.requires or ())
        if key in found:
            continue
        dist = metadata.distribution(requirement.name)
        found[key] = dist
        pending.extend((Requirement(r), "") for r in dist.requires or ())
    return list(found.values())


def model_package(model: weights.ModelFile, cache: Path, pins: dict[str, str], out: Path) -> Path:
    """A stand-in for the pinned package that holds ``model`` (one part): its name, version and data file."""
    ((package, name),) = model.parts
    dist = weights.distribution(package)
    version = pins[dist].split("==", 1)[1]
    stem = f"{dist.replace('-', '_')}-{version}"
    wheel = out / f"{stem}-py3-none-any.whl"
    files = {
        f"{package}/__init__.py": b"",
        f"{package}/{model.folder}/{name}": (cache / model.name).read_bytes(),
        f"{stem}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n".encode(),
        f"{stem}.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: tests/wheelhouse.py\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
    }
    record = [f"{path},sha256={_digest(data)},{len(data)}" for path, data in files.items()]
    files[f"{stem}.dist-info/RECORD"] = ("\n".join([*record, f"{stem}.dist-info/RECORD,,"]) + "\n").encode()
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_STORED) as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    return wheel


def _digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def build(requirements: Iterable[str], out: Path, models: Iterable[weights.ModelFile] = ()) -> Path:
    """A folder of wheels that holds everything ``requirements`` need, and stand-ins for the model packages of
    ``models`` (from the real cache, read only: a test without it is skipped)."""
    missing = [model.name for model in models if not weights.is_ready(model)]
    if missing:
        pytest.skip(f"{', '.join(missing)} not joined in {weights.cache_dir()} (make test's setup does it)")
    out.mkdir(parents=True, exist_ok=True)
    for dist in closure(requirements):
        repack(dist, out)
    pins = fetch.read_pins(weights.PINS)
    for model in models:
        model_package(model, weights.cache_dir(), pins, out)
    return out
