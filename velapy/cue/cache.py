"""The render cache: a content key (text) → JSON data, in files under the user's cache folder.

The engine's evaluator stores what each template instance evaluated to under a key made of
everything that result depends on (`engine.Evaluator` builds it: the template text, its
parameter, the context fields the template reads, the engine's identity and version, velapy's
version and the code that talks to the engine), so an unchanged instance is never evaluated again,
in this run or a later one.

- Where: `$VELAPY_CACHE_DIR`, else `$XDG_CACHE_HOME/velapy`, else `~/.cache/velapy`.
- Safe under concurrent runs: an entry is written to a temporary file and renamed into place, so
  a reader sees a whole entry or none; an unreadable entry is a miss.
- Bounded: when a run has written something and the folder holds more than the limit
  (`$VELAPY_CACHE_MAX_MB`, default 256 MiB), the entries used least recently (by modification
  time, refreshed on every hit) are removed until it holds 3/4 of the limit.
- Secrets never enter it: the evaluator does not store a result that holds a Secret object.
- `--no-cache` on render, plan, diff and golden bypasses it (neither read nor written).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

DEFAULT_MAX_MB = 256
FORMAT = "v1"  # the layout of entries; a change starts a new sub-folder


def cache_root(env: dict[str, str] | None = None) -> Path:
    """The cache folder the environment names (not created here)."""
    env = dict(os.environ if env is None else env)
    if env.get("VELAPY_CACHE_DIR"):
        return Path(env["VELAPY_CACHE_DIR"])
    base = env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "velapy"


def digest(*parts: str) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode("utf-8", "surrogatepass"))
        h.update(b"\0")
    return h.hexdigest()


class RenderCache:
    """Entries under `root/v1/<2 hex>/<key>.json`; `get`/`put` never raise for I/O trouble."""

    def __init__(self, root: Path | None = None, max_bytes: int | None = None) -> None:
        self.root = (root if root is not None else cache_root()) / FORMAT
        if max_bytes is None:
            try:
                max_bytes = int(float(os.environ.get("VELAPY_CACHE_MAX_MB", DEFAULT_MAX_MB)) * 2**20)
            except ValueError:
                max_bytes = DEFAULT_MAX_MB * 2**20
        self.max_bytes = max_bytes
        self.hits = 0
        self.misses = 0
        self.written = 0

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> Any | None:
        path = self._path(key)
        try:
            with open(path, encoding="utf-8") as fh:
                data = json.load(fh)
            os.utime(path)  # recently used: evicted last
        except (OSError, ValueError):
            self.misses += 1
            return None
        self.hits += 1
        return data

    def put(self, key: str, data: Any) -> None:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
            try:
                text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))  # C encoder; dump() is not
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    fh.write(text)
                os.replace(tmp, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        except OSError:
            return  # a cache that cannot be written only costs speed
        self.written += 1

    def close(self) -> None:
        """Keep the folder within its limit (only when this run added entries)."""
        if self.written:
            self.evict()

    def evict(self) -> None:
        entries: list[tuple[float, int, str]] = []
        total = 0
        try:
            subs = list(os.scandir(self.root))
        except OSError:
            return
        for sub in subs:
            if not sub.is_dir():
                continue
            try:
                for e in os.scandir(sub.path):
                    try:
                        st = e.stat()
                    except OSError:
                        continue
                    entries.append((st.st_mtime, st.st_size, e.path))
                    total += st.st_size
            except OSError:
                continue
        if total <= self.max_bytes:
            return
        target = self.max_bytes * 3 // 4
        for _mtime, size, path in sorted(entries):
            if total <= target:
                break
            with contextlib.suppress(OSError):
                os.unlink(path)
            total -= size

