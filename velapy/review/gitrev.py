"""Files and folders as they were at a git revision → a temporary copy. The one module that runs git.

`velapy diff APP --git-base REV` renders the app as it was at REV: the app file and every file or
folder it is rendered with (`-f`, `--clusters`, `-d`, `--resources`) are taken from REV with one
`git ls-tree` and one `git archive`, and unpacked under a temporary folder with the same layout
relative to the repository root. Paths that did not exist at REV are reported, not invented.
"""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from velapy.errors import Diagnostic, InputError, Location

__all__ = ["Snapshot", "checkout_paths", "commit_of", "listed_files", "origin_url", "repo_root"]


class _GitFailed(InputError):
    """git ran and failed (the callers turn this into what it means for them)."""


def _git(args: Sequence[str], cwd: str) -> bytes:
    """Run git; a missing git is an InputError, a failing command a _GitFailed carrying git's own words."""
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=False)
    except FileNotFoundError:
        raise InputError("--git-base needs git, and git is not installed", Location(file=cwd)) from None
    if done.returncode != 0:
        msg = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise _GitFailed(f"git {args[0]} failed: {msg[-1] if msg else f'exit code {done.returncode}'}",
                         Location(file=cwd))
    return done.stdout


def repo_root(path: str) -> str:
    """The top folder of the git work tree holding `path`; InputError outside a repository."""
    start = Path(path).resolve()
    folder = start if start.is_dir() else start.parent
    while not folder.exists():  # a path that is gone from the work tree: ask from its parent
        folder = folder.parent
    try:
        out = _git(["rev-parse", "--show-toplevel"], str(folder))
    except _GitFailed:
        raise InputError([Diagnostic("not inside a git repository", Location(file=path),
                                     "--git-base compares with a git revision: run it in a git work tree")]) from None
    return os.path.realpath(out.decode().strip())


def origin_url(root: str) -> str:
    """The URL of the `origin` remote of the repository at `root` ("" when it has none or git is missing)."""
    try:
        return _git(["remote", "get-url", "origin"], root).decode("utf-8", "replace").strip()
    except InputError:
        return ""


def listed_files(root: str, patterns: Sequence[str]) -> list[str]:
    """Files of the work tree at `root` (tracked, or new and not ignored) matching git pathspecs, relative
    to `root`; [] when git cannot say."""
    try:
        out = _git(["ls-files", "-co", "--exclude-standard", "-z", "--", *patterns], root)
    except InputError:
        return []
    return [p for p in out.decode("utf-8", "replace").split("\0") if p]


@dataclass(frozen=True)
class Snapshot:
    """What `checkout_paths` copied: each asked path → its copy (absent when it did not exist at
    the revision), under `folder`."""

    revision: str
    folder: str
    copies: dict[str, str]
    missing: tuple[str, ...]


def checkout_paths(root: str, revision: str, paths: Sequence[str], folder: str) -> Snapshot:
    """Copy `paths` (files or folders inside the work tree at `root`) as they were at `revision`
    into `folder`, keeping their layout relative to `root`."""
    try:
        _git(["rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}"], root)
    except _GitFailed:
        raise InputError([Diagnostic(f"unknown git revision {revision!r}", Location(file=root),
                                     "name a commit, branch or tag, e.g. --git-base origin/main")]) from None
    rels: dict[str, str] = {}
    problems: list[Diagnostic] = []
    for p in paths:
        real = os.path.realpath(p)
        if real != root and not real.startswith(root.rstrip(os.sep) + os.sep):
            problems.append(Diagnostic(f"{p} is outside the git repository {root}", Location(file=p)))
            continue
        rels[p] = Path(os.path.relpath(real, root)).as_posix()
    if problems:
        raise InputError(problems)
    listed = _git(["ls-tree", "-r", "-z", "--name-only", "--full-tree", revision, "--", *rels.values()], root)
    present = {name for name in listed.decode("utf-8", "surrogateescape").split("\0") if name}
    existing = [r for r in dict.fromkeys(rels.values())
                if r in present or any(name.startswith(r.rstrip("/") + "/") for name in present)]
    if existing:
        archive = _git(["archive", "--format=tar", revision, "--", *existing], root)
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(folder, filter="data")
    copies = {p: str(Path(folder, r)) for p, r in rels.items() if r in existing}
    missing = tuple(p for p in rels if rels[p] not in existing)
    return Snapshot(revision, folder, copies, missing)


def commit_of(paths: Sequence[str]) -> tuple[str, bool] | None:
    """(HEAD commit, dirty) of the git work tree holding the first of `paths`, dirty when any of them
    has changes not committed (or is not tracked); None outside a work tree or without git."""
    if not paths:
        return None
    first = Path(paths[0]).resolve()
    folder = str(first if first.is_dir() else first.parent)
    try:
        head = _git(["rev-parse", "HEAD"], folder).decode().strip()
        changed = _git(["status", "--porcelain", "--untracked-files=all", "--", *[os.path.abspath(p) for p in paths]],
                       folder)
    except InputError:
        return None
    return head, bool(changed.strip())
