"""Whether an output folder already holds what `render -o` would write: inputs' bytes → yes/no.

After `render -o OUT` writes a folder, the render cache (`velapy.cue.cache`) keeps one small entry
under a key made of everything the render read — the bytes of the application, `-f` files,
`--clusters`, `--resources`, every definition file (velapy's own and `-d`), every option, the
absolute paths, velapy's whole source and schemas, and the engine's identity — holding the
SHA-256 of the folder's owned files, the per-cluster object counts and the warnings. When an
unchanged render or `--check` finds the same key and the folder hashes to the same value, it
answers without rendering. Anything else (a changed input, an edited folder, no entry) renders.
Renders that hold a Secret are never remembered (a hash of a folder with Secret values is left out
like the values themselves).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from velapy.cue.cache import RenderCache, digest

_PACKAGE = Path(__file__).resolve().parent.parent  # velapy/
_PROJECT = _PACKAGE.parent


@dataclass(frozen=True)
class Remembered:
    counts: str  # "cluster n, ..." as `render -o` reports it
    warnings: tuple[str, ...]


def _walk(path: Path) -> Iterator[Path]:
    if path.is_file():
        yield path
        return
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames.sort()
        for name in sorted(filenames):
            yield Path(dirpath) / name


def _tree_digest(h: Any, path: Path) -> None:
    h.update(f"\0path {os.path.abspath(path)}\0".encode())
    if not path.exists():
        h.update(b"absent")
        return
    for f in _walk(path):
        h.update(f"\0file {f}\0".encode())
        try:
            h.update(f.read_bytes())
        except OSError as exc:
            h.update(f"unreadable {exc.errno}".encode())


@functools.cache
def _own_code() -> str:
    h = hashlib.sha256()
    for sub in ("velapy", "definitions", "schemas"):
        _tree_digest(h, _PROJECT / sub)
    return h.hexdigest()


def input_key(fields: Mapping[str, Any], paths: list[str], definition_dirs: list[str], out: str,
              engine: str) -> str:
    """The key of one render: its options, the bytes of every file it reads, velapy and the engine."""
    h = hashlib.sha256()
    h.update(json.dumps({**fields, "cwd": os.getcwd(), "out": os.path.abspath(out), "engine": engine,
                         "code": _own_code()}, sort_keys=True, default=str).encode())
    for p in [*paths, *definition_dirs]:
        if p:
            _tree_digest(h, Path(p))
    return digest("output", h.hexdigest())


def folder_digest(files: Mapping[str, str]) -> str:
    h = hashlib.sha256()
    for rel in sorted(files):
        h.update(f"\0{rel}\0".encode())
        h.update(files[rel].encode("utf-8", "surrogatepass"))
    return h.hexdigest()


def recall(cache: RenderCache, key: str, current: Mapping[str, str]) -> Remembered | None:
    """What the render of `key` reported, when the folder (its owned files) is what it wrote."""
    data = cache.get(key)
    if not isinstance(data, dict) or data.get("folder") != folder_digest(current):
        return None
    return Remembered(str(data.get("counts", "")), tuple(str(w) for w in data.get("warnings") or ()))


def remember(cache: RenderCache, key: str, files: Mapping[str, str], counts: str, warnings: list[str],
             holds_secret: bool) -> None:
    if holds_secret:
        return
    cache.put(key, {"folder": folder_digest(files), "counts": counts, "warnings": warnings})
