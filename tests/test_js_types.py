"""The JavaScript client's TypeScript types (client/static/*.d.ts): a small app's use of the module and the
element (tests/js/usage.ts) type-checks with ``tsc --noEmit --strict``, and a wrong use does not. The folder is
an npm package whose tarball holds the module, the element and their types.

TypeScript comes from npm's cache (``npx --offline``; the tests run with loopback only): fetch it once with
``npx -y -p typescript@5 tsc --version``. Without it these tests are skipped with the reason."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STATIC = ROOT / "client" / "static"
USAGE = ROOT / "tests" / "js" / "usage.ts"
TSC = ["npx", "--offline", "-y", "-p", "typescript@5", "tsc"]
OPTIONS = ["--noEmit", "--strict", "--target", "es2022", "--module", "es2022", "--moduleResolution", "bundler",
           "--lib", "es2022,dom,dom.iterable"]  # fmt: skip


def tsc(*files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TSC, *OPTIONS, *map(str, files)], capture_output=True, text=True, timeout=300, cwd=ROOT)


@pytest.fixture(scope="module")
def typescript() -> None:
    if shutil.which("npx") is None:
        pytest.skip("npx is missing (apt-get install npm)")
    version = subprocess.run([*TSC, "--version"], capture_output=True, text=True, timeout=300, cwd=ROOT)
    if version.returncode != 0:
        pytest.skip(f"TypeScript is not in npm's cache: {version.stderr.strip()[-200:]}")


def test_an_apps_use_of_the_module_and_the_element_type_checks(typescript: None) -> None:
    checked = tsc(USAGE)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_wrong_use_is_refused_by_the_types(typescript: None, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.ts"
    wrong.write_text(
        f'import {{ connect }} from "{STATIC / "parley.js"}";\n'
        'const call = await connect({ mode: "karaoke" });\n'  # no such mode
        'call.on("transcript", (e) => e.speaker);\n'  # a transcript has a role, not a speaker
        'call.on("message", (m) => { if (m.type === "caption") m.heard; });\n'  # heard is interrupted's
        "export {};\n"
    )
    checked = tsc(wrong)
    out = checked.stdout
    assert checked.returncode != 0
    assert '"karaoke"' in out and "'speaker' does not exist" in out and "'heard' does not exist" in out, out


def test_the_folder_packs_as_an_npm_package_with_its_types() -> None:
    if shutil.which("npm") is None:
        pytest.skip("npm is missing (apt-get install npm)")
    package = json.loads((STATIC / "package.json").read_text())
    assert package["type"] == "module" and package["exports"]["."]["types"] == "./parley.d.ts"
    packed = subprocess.run(["npm", "pack", "--dry-run", "--json"], capture_output=True, text=True, timeout=120,
                            cwd=STATIC)  # fmt: skip
    assert packed.returncode == 0, packed.stderr
    files = {f["path"] for f in json.loads(packed.stdout)[0]["files"]}
    assert {"parley.js", "parley.d.ts", "parley-call.js", "parley-call.d.ts", "transcript.js", "README.md"} <= files
    assert not files & {"app.js", "index.html", "style.css"}  # the call page is the server's, not the package's
