"""Model files: joined from package parts in order, verified by sha256, with errors that say what to do."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from server.providers.local import weights


@pytest.fixture
def fake_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    data = tmp_path / "site" / "demo_model_part1" / "data"
    data.mkdir(parents=True)
    (data / "part01.bin").write_bytes(b"hello ")
    (data / "part02.bin").write_bytes(b"world")
    (data.parent / "__init__.py").write_text("raise RuntimeError('model packages are never imported')\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    return data


def model(sha: str) -> weights.ModelFile:
    parts = (("demo_model_part1", "part01.bin"), ("demo_model_part1", "part02.bin"))
    return weights.ModelFile("demo/model.bin", parts, sha)


def test_parts_are_joined_in_order_and_verified_once(fake_package: Path, tmp_path: Path):
    sha = hashlib.sha256(b"hello world").hexdigest()
    path = weights.ensure(model(sha), tmp_path / "cache")
    assert path.read_bytes() == b"hello world"
    (fake_package / "part01.bin").unlink()  # a second call trusts the verified copy
    assert weights.ensure(model(sha), tmp_path / "cache") == path


def test_a_wrong_hash_names_the_package_to_reinstall(fake_package: Path, tmp_path: Path):
    with pytest.raises(weights.ModelFileError, match="reinstall demo-model-part1"):
        weights.ensure(model("0" * 64), tmp_path / "cache")
    assert not (tmp_path / "cache" / "demo" / "model.bin").exists()


def test_a_missing_package_says_how_to_install_it(tmp_path: Path):
    missing = weights.ModelFile("x.bin", (("no_such_model_package", "x.bin"),), "0" * 64)
    with pytest.raises(weights.ModelFileError, match="no-such-model-package is not installed"):
        weights.ensure(missing, tmp_path)
