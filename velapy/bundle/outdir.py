"""{relative path: text} → an output folder on disk that velapy owns: written whole, locked, atomic.

The rules (README "Safety"):

- **Ownership.** Every write records the files it wrote in `OUT/.velapy-manifest` (one relative
  path a line, sorted; committed with the output so the next clone knows them). The next write
  replaces or removes only those. Anything else found where velapy writes (under the top-level
  entries it writes, `plan.yaml` and `clusters/`, or that the manifest names) is *foreign*: the
  write is refused (InputError, exit 2) naming the first foreign path, before anything changes.
  Other top-level entries of OUT (a README, the app itself with `-o .`) are never touched.
  A folder without a manifest that already holds `plan.yaml` or `clusters/` (e.g. written by an
  older velapy) is refused too, unless `force`: then it is taken over if every file there is one
  its own velapy `plan.yaml` lists or one velapy is about to write with the very same bytes.
  `force` never lets velapy delete or change any other file.
- **Lock.** The writer holds an exclusive `flock` on the OUT directory itself for the whole write;
  a second writer waits up to `lock_timeout` seconds (env `VELAPY_LOCK_TIMEOUT`, default 30) and
  then fails with exit 5. After acquiring, the lock is re-checked against the path (the directory
  may have been swapped meanwhile).
- **Atomic as a whole.** The new tree is written into a temporary folder first. When OUT holds
  nothing but velapy's output, the new tree is *exchanged* with OUT in one `renameat2
  (RENAME_EXCHANGE)` call: readers see all-old or all-new, `plan.yaml` and `clusters/` together.
  When OUT also holds the user's files (e.g. `-o .` in a repository), OUT itself cannot move: each
  velapy entry is exchanged in place, `clusters/` first, then `plan.yaml`, then the manifest. The
  residual window is between those exchanges (microseconds, no entry ever missing); a journal
  records the swap, and a crash inside it is completed by the next write of that folder.
- **Temporaries.** They live in a work folder `.velapy-work/` next to OUT (inside OUT when OUT
  holds user files) that carries a `.gitignore` of `*`, so a crash (kill -9) leaves nothing git
  would add; the next write of the same folder deletes what a dead writer left.
- **Secret files** (an object file of a v1 Secret) are created 0600, readable by their owner only;
  every write builds a new tree, so a Secret file an older velapy (or a git checkout) left 0644
  is replaced by a 0600 one, and `tighten` makes those of a folder left as it was private again.
  Modes are not compared by checks and diffs: git does not record them.
- **Failures of the machine** (disk full, permissions, read-only file system) are
  EnvironmentFailure (exit 5), never "invalid input".
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import fcntl
import json
import os
import re
import secrets
import shutil
import stat
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from velapy.bundle.layout import KUSTOMIZATION, PLAN_FILE
from velapy.errors import Diagnostic, EnvironmentFailure, InputError, Location, VelapyError

MANIFEST = ".velapy-manifest"
WORK_DIR = ".velapy-work"
JOURNAL = "journal.json"
LOCK_TIMEOUT_ENV = "VELAPY_LOCK_TIMEOUT"
DEFAULT_LOCK_TIMEOUT = 30.0
_MANIFEST_HEAD = "# written by velapy: the files it owns in this folder (it replaces or removes only these)\n"
_TEMP_NAME = re.compile(r"[0-9a-f]{12}")
_GITIGNORE = "# velapy's temporaries: never commit them\n*\n"

Pause = Callable[[str], None]


class _Layout(VelapyError):
    """`files` names a path velapy must never write (absolute, `..`, hidden): a velapy bug (exit 4)."""


# ----------------------------------------------------------------------------------------------
# the rename that swaps two paths at once


def _load_renameat2() -> Any:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


_RENAMEAT2 = _load_renameat2()
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def exchange(a: str, b: str) -> bool:
    """Swap the paths `a` and `b` (both exist) in one step; False where the system cannot."""
    if _RENAMEAT2 is None:
        return False
    if _RENAMEAT2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EXDEV, errno.EBUSY, errno.EPERM):
        return False
    raise OSError(err, os.strerror(err), b)


# ----------------------------------------------------------------------------------------------
# the manifest


def manifest_text(paths: Iterable[str]) -> str:
    """The manifest of a folder holding `paths` (deterministic: sorted, no time stamps)."""
    return _MANIFEST_HEAD + "".join(p + "\n" for p in sorted(paths))


def _check_rel(rel: str) -> bool:
    parts = rel.split("/")
    return bool(rel) and not rel.startswith("/") and all(p and p not in (".", "..") for p in parts) \
        and not parts[0].startswith(".") and "\0" not in rel and "\\" not in rel


def read_manifest(root: str) -> list[str] | None:
    """The paths `root/.velapy-manifest` lists, None when there is none; a manifest naming a path
    outside the folder (or hidden, or absolute) is an InputError, never followed."""
    path = os.path.join(root, MANIFEST)
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().split("\n")
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise InputError(f"{MANIFEST} is a folder: velapy keeps the list of files it wrote there",
                         Location(file=path)) from None
    except UnicodeDecodeError:
        raise InputError(f"{MANIFEST} is not UTF-8 text: was it edited by hand?", Location(file=path)) from None
    except OSError as exc:
        raise EnvironmentFailure(f"cannot read {MANIFEST}: {exc.strerror or exc}", Location(file=path)) from None
    out: list[str] = []
    for n, line in enumerate(lines, 1):
        if not line or line.startswith("#"):
            continue
        if not _check_rel(line):
            raise InputError(f"{MANIFEST} names {json.dumps(line)}: not a path inside this folder "
                             "(velapy follows no such path)", Location(file=path, line=n, column=1),
                             ) from None
        out.append(line)
    return out


def _plan_listed(root: str) -> set[str]:
    """The files an existing velapy `plan.yaml` in `root` says velapy wrote (for `force`)."""
    from velapy.load.yamlio import load_file  # local: yamlio is heavy and only needed here

    path = os.path.join(root, PLAN_FILE)
    if not os.path.isfile(path) or os.path.islink(path):
        return set()
    try:
        docs = load_file(path)
    except VelapyError:
        return set()
    if len(docs) != 1 or not isinstance(docs[0].data, dict):
        return set()
    data = docs[0].data
    if data.get("apiVersion") != "velapy.dev/v1alpha1" or data.get("kind") != "Plan":
        return set()
    out = {PLAN_FILE}
    for c in data.get("clusters") or []:
        if isinstance(c, dict) and isinstance(c.get("bundle"), str):
            out.add(c["bundle"].rstrip("/") + "/" + KUSTOMIZATION)

    def walk(steps: Any) -> None:
        for s in steps or []:
            if not isinstance(s, dict):
                continue
            for p in s.get("placements") or []:
                for o in (p.get("objects") or []) if isinstance(p, dict) else []:
                    if isinstance(o, dict) and isinstance(o.get("file"), str):
                        out.add(o["file"])
            walk(s.get("subSteps"))

    walk(data.get("steps"))
    return {p for p in out if _check_rel(p)}


def _same_content(root: str, files: Mapping[str, str]) -> set[str]:
    """The files of `files` that `root` already holds byte for byte (rewriting them loses nothing)."""
    out: set[str] = set()
    for rel, text in files.items():
        path = os.path.join(root, rel)
        try:
            if not os.path.islink(path) and os.path.isfile(path) and \
                    os.path.getsize(path) == len(text.encode("utf-8")):
                with open(path, "rb") as fh:
                    if fh.read() == text.encode("utf-8"):
                        out.add(rel)
        except OSError:
            continue
    return out


# ----------------------------------------------------------------------------------------------
# ownership


def _ancestors(paths: Iterable[str]) -> set[str]:
    out: set[str] = set()
    for p in paths:
        parts = p.split("/")
        out.update("/".join(parts[:k]) for k in range(1, len(parts)))
    return out


def foreign_paths(root: str, owned: set[str], tops: Iterable[str]) -> list[str]:
    """Paths under the entries `tops` of `root` that are not velapy's: files not in `owned`,
    folders that hold none of `owned`, links and other special files. Foreign files first."""
    dirs = _ancestors(owned)
    files: list[str] = []
    others: list[str] = []
    for top in sorted(set(tops)):
        start = os.path.join(root, top)
        if not os.path.lexists(start):
            continue
        stack = [top]
        while stack:
            rel = stack.pop()
            full = os.path.join(root, rel)
            st = os.lstat(full)
            if stat.S_ISDIR(st.st_mode):
                if rel not in dirs:
                    others.append(rel)
                try:
                    names = sorted(os.listdir(full), reverse=True)
                except OSError as exc:
                    raise EnvironmentFailure(f"cannot list the folder: {exc.strerror or exc}",
                                             Location(file=full)) from None
                stack.extend(f"{rel}/{n}" for n in names)
            elif stat.S_ISREG(st.st_mode) and rel in owned:
                continue
            elif stat.S_ISREG(st.st_mode):
                files.append(rel)
            else:
                others.append(rel)
    return sorted(files) + sorted(others)


def _refuse(out: str, foreign: list[str], *, manifest: bool, force: bool, takeover: bool) -> InputError:
    first = foreign[0]
    more = f" (and {len(foreign) - 1} more)" if len(foreign) > 1 else ""
    shown = os.path.join(out, first)
    full_kind = "folder" if os.path.isdir(shown) and not os.path.islink(shown) else "file"
    if manifest or force or not takeover:
        msg = f"velapy did not write this {full_kind}{more}: refusing to write the output folder over it"
        hint = "move it out of the way, or give -o a folder of its own (velapy never deletes files it did not write)"
    else:
        msg = (f"this {full_kind}{more} is in the way and the folder has no {MANIFEST}: velapy cannot tell "
               "that it wrote it")
        hint = ("if this folder holds only output of an older velapy, --force takes it over (files its plan.yaml "
                "does not list are still never deleted)")
    return InputError([Diagnostic(msg, Location(file=shown), hint)])


# ----------------------------------------------------------------------------------------------
# the lock


@dataclass
class _Lock:
    fd: int

    def release(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)  # closing drops the flock


def lock_timeout_from_env() -> float:
    raw = os.environ.get(LOCK_TIMEOUT_ENV, "")
    if not raw:
        return DEFAULT_LOCK_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        raise InputError(f"{LOCK_TIMEOUT_ENV}={raw!r}: expected a number of seconds") from None
    if value < 0:
        raise InputError(f"{LOCK_TIMEOUT_ENV}={raw!r}: expected a number of seconds, 0 or more")
    return value


def lock_folder(real: str, timeout: float, on_wait: Callable[[str], None] | None = None) -> _Lock:
    """An exclusive lock on the directory `real` (created when missing); waits up to `timeout` s."""
    deadline = time.monotonic() + timeout
    told = False
    while True:
        try:
            os.makedirs(real, exist_ok=True)
            fd = os.open(real, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise _machine(real, "cannot create the output folder", exc) from None
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise EnvironmentFailure([Diagnostic(
                        f"another velapy is writing this folder; gave up after {timeout:g} s",
                        Location(file=real),
                        f"wait for it to finish, or raise the wait with --lock-timeout / {LOCK_TIMEOUT_ENV}")]) \
                        from None
                if not told and on_wait is not None:
                    on_wait(f"{real}: another velapy is writing this folder; waiting up to {timeout:g} s")
                    told = True
                time.sleep(0.05)
            except OSError as exc:
                os.close(fd)
                raise _machine(real, "cannot lock the output folder", exc) from None
        try:
            here, held = os.stat(real), os.fstat(fd)
            if (here.st_dev, here.st_ino) == (held.st_dev, held.st_ino):
                return _Lock(fd)
        except FileNotFoundError:
            pass
        os.close(fd)  # the folder was swapped while we waited: lock the new one


def _machine(path: str, what: str, exc: OSError) -> EnvironmentFailure:
    reason = exc.strerror or str(exc)
    if exc.errno == errno.ENOSPC:
        reason = "no space left on the device"
    elif exc.errno == errno.EROFS:
        reason = "the file system is read-only"
    elif exc.errno in (errno.EACCES, errno.EPERM):
        reason = "permission denied"
    elif exc.errno == errno.EDQUOT:
        reason = "disk quota exceeded"
    return EnvironmentFailure(f"{what}: {reason}", Location(file=path))


# ----------------------------------------------------------------------------------------------
# temporaries


def _work_area(folder: str) -> str:
    work = os.path.join(folder, WORK_DIR)
    os.makedirs(work, exist_ok=True)
    ignore = os.path.join(work, ".gitignore")
    if not os.path.exists(ignore):
        with open(ignore, "w", encoding="utf-8") as fh:
            fh.write(_GITIGNORE)
    return work


def _new_temp(work: str, prefix: str) -> str:
    tmp = os.path.join(work, f"{prefix}{secrets.token_hex(6)}")
    os.mkdir(tmp)
    with open(os.path.join(tmp, ".gitignore"), "w", encoding="utf-8") as fh:
        fh.write(_GITIGNORE)  # ignored even if the work area's own .gitignore goes missing
    return tmp


def _drop_work_area(folder: str) -> None:
    """Remove the work area when nothing but its .gitignore is left."""
    work = os.path.join(folder, WORK_DIR)
    try:
        if set(os.listdir(work)) <= {".gitignore"}:
            os.unlink(os.path.join(work, ".gitignore"))
            os.rmdir(work)
    except OSError:
        pass


def _temps(real: str) -> list[str]:
    """Temporaries of earlier writes of `real` (ours to clean: we hold its lock)."""
    found: list[str] = []
    inner = os.path.join(real, WORK_DIR)
    outer = os.path.join(os.path.dirname(real), WORK_DIR)
    mine = re.compile(re.escape(os.path.basename(real)) + r"\.[0-9a-f]{12}")
    for work, pattern in ((inner, _TEMP_NAME), (outer, mine)):
        try:
            names = os.listdir(work)
        except OSError:
            continue
        found.extend(os.path.join(work, n) for n in sorted(names) if pattern.fullmatch(n))
    return found


def recover(real: str) -> None:
    """Finish a swap a crashed writer journalled, then delete what dead writers left (lock held)."""
    for tmp in _temps(real):
        journal = os.path.join(tmp, JOURNAL)
        if os.path.isfile(journal):
            try:
                with open(journal, encoding="utf-8") as fh:
                    steps = json.load(fh)
                _swap_entries(real, tmp, [(str(e), int(i)) for e, i in steps["entries"]], steps["remove"])
            except (OSError, ValueError, KeyError, TypeError):
                pass  # a journal that was being written: the swap had not started
        shutil.rmtree(tmp, ignore_errors=True)
    _drop_work_area(real)
    _drop_work_area(os.path.dirname(real))


# ----------------------------------------------------------------------------------------------
# writing


_SECRET_FILE = re.compile(r"(?m)^kind: Secret$")
_CORE_V1 = re.compile(r"(?m)^apiVersion: v1$")
PRIVATE_MODE = 0o600


def private(rel: str, text: str) -> bool:
    """Whether the file holds a Secret (an object file under clusters/ whose top level says `kind:
    Secret`, `apiVersion: v1`): written readable by its owner only, like a kubeconfig."""
    return rel.startswith("clusters/") and bool(_SECRET_FILE.search(text)) and bool(_CORE_V1.search(text))


def tighten(out: str | os.PathLike[str], files: Mapping[str, str]) -> list[str]:
    """Make the Secret files of an output folder that velapy did not rewrite (it was up to date)
    private again (a git checkout writes every file 0644); the paths changed."""
    changed: list[str] = []
    for rel, text in files.items():
        if not private(rel, text):
            continue
        path = os.path.join(out, rel)
        try:
            st = os.lstat(path)
            if stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) & 0o077:
                os.chmod(path, PRIVATE_MODE)
                changed.append(rel)
        except OSError:
            continue
    return changed


def _write_tree(base: str, files: Mapping[str, str]) -> None:
    made: set[str] = set()
    for rel, text in files.items():
        target = os.path.join(base, rel)
        parent = os.path.dirname(target)
        if parent not in made:
            os.makedirs(parent, exist_ok=True)
            made.add(parent)
        data = text.encode("utf-8")  # os-level calls: a text file object per file cost more than the write
        mode = PRIVATE_MODE if private(rel, text) else 0o666  # (a fresh tree: the mode is set at creation)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)


def _swap_entries(real: str, tmp: str, entries: list[tuple[str, int]], remove: list[str],
                  pause: Pause | None = None) -> None:
    """Move each new entry in (idempotent: an entry whose inode is already in place is done),
    then move the entries no longer written out of the way."""
    new, old = os.path.join(tmp, "new"), os.path.join(tmp, "old")
    os.makedirs(old, exist_ok=True)
    for name, inode in entries:
        target, src = os.path.join(real, name), os.path.join(new, name)
        if os.path.lexists(target) and os.lstat(target).st_ino == inode:
            continue
        if not os.path.lexists(src):
            continue
        if os.path.lexists(target):
            if not exchange(src, target):
                os.rename(target, os.path.join(old, name))
                os.rename(src, target)
        else:
            os.rename(src, target)
        if pause is not None:
            pause(f"swapped {name}")
    for name in remove:
        target = os.path.join(real, name)
        if os.path.lexists(target):
            os.rename(target, os.path.join(old, name))


def _check_files(files: Mapping[str, str]) -> None:
    bad = [rel for rel in files if not _check_rel(rel)]
    if bad:
        raise _Layout(f"velapy tried to write {bad[0]!r}: not a plain relative path")
    clash = sorted(_ancestors(files) & set(files))
    if clash:
        raise _Layout(f"velapy tried to write {clash[0]!r} both as a file and as a folder")


def write_folder(out: str | os.PathLike[str], files: Mapping[str, str], *, force: bool = False,
                 lock_timeout: float | None = None, on_wait: Callable[[str], None] | None = None,
                 pause: Pause | None = None) -> None:
    """Write `files` under `out` as described in the module docstring.

    `pause(stage)` is called at the points a crash test kills a writer (`written`: the new tree
    is complete, nothing swapped; `swapped <entry>`): a test hook, None in normal use.
    """
    _check_files(files)
    shown = os.fspath(out)
    if os.path.lexists(shown) and not os.path.isdir(shown):
        raise InputError(f"-o {shown}: exists and is not a folder", Location(file=shown))
    real = os.path.realpath(shown)
    timeout = lock_timeout if lock_timeout is not None else lock_timeout_from_env()
    lock = lock_folder(real, timeout, on_wait)
    try:
        try:
            recover(real)
            _write_locked(shown, real, files, force, pause)
        except OSError as exc:
            raise _machine(getattr(exc, "filename", None) or shown, "cannot write the output", exc) from None
    finally:
        lock.release()


def _write_locked(shown: str, real: str, files: Mapping[str, str], force: bool, pause: Pause | None) -> None:
    manifest = read_manifest(real)
    owned = set(manifest or ())
    tops = {rel.split("/", 1)[0] for rel in [*files, *owned]}
    present = [t for t in sorted(tops) if os.path.lexists(os.path.join(real, t))]
    takeover = manifest is None and bool(present)
    if takeover and force:
        owned |= _plan_listed(real) | _same_content(real, files)
    foreign = foreign_paths(real, owned, tops)
    adoptable = False
    if takeover and not force:
        adoptable = not foreign_paths(real, _plan_listed(real), tops)  # --force would take it over
        foreign = foreign or present
    if foreign:
        raise _refuse(shown, foreign, manifest=manifest is not None, force=force, takeover=adoptable)

    entries = sorted(os.listdir(real))
    mine = tops | {MANIFEST, WORK_DIR}
    whole = all(e in mine for e in entries) and real != os.path.realpath(os.getcwd()) \
        and not os.path.ismount(real)
    if whole and _write_whole(real, files, pause):
        return
    _write_per_entry(real, files, tops, pause)


def _write_whole(real: str, files: Mapping[str, str], pause: Pause | None) -> bool:
    """OUT holds only velapy's output: build the new OUT beside it and exchange the two at once."""
    parent = os.path.dirname(real)
    try:
        if os.stat(parent).st_dev != os.stat(real).st_dev:
            return False
        work = _work_area(parent)
    except OSError:
        return False  # no room beside OUT (read-only parent): swap inside it instead
    tmp = _new_temp(work, os.path.basename(real) + ".")
    try:
        new = os.path.join(tmp, "new")
        os.mkdir(new)
        _write_tree(new, files)
        _write_tree(new, {MANIFEST: manifest_text(files)})
        os.chmod(new, stat.S_IMODE(os.stat(real).st_mode))
        if pause is not None:
            pause("written")
        if not exchange(new, real):
            return False
        if pause is not None:
            pause("swapped")
        return True
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        _drop_work_area(parent)


def _write_per_entry(real: str, files: Mapping[str, str], tops: set[str], pause: Pause | None) -> None:
    """OUT also holds the user's files: exchange velapy's entries one by one, the plan last, the
    manifest after it; a journal lets the next write finish a swap a crash interrupted."""
    work = _work_area(real)
    tmp = _new_temp(work, "")
    try:
        new = os.path.join(tmp, "new")
        os.mkdir(new)
        _write_tree(new, files)
        _write_tree(new, {MANIFEST: manifest_text(files)})
        written = {rel.split("/", 1)[0] for rel in files}
        order = sorted(written - {PLAN_FILE}) + ([PLAN_FILE] if PLAN_FILE in written else []) + [MANIFEST]
        entries = [(name, os.lstat(os.path.join(new, name)).st_ino) for name in order]
        remove = sorted(tops - written)
        journal = os.path.join(tmp, JOURNAL)
        with open(journal + ".part", "w", encoding="utf-8") as fh:
            json.dump({"entries": entries, "remove": remove}, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.rename(journal + ".part", journal)
        if pause is not None:
            pause("written")
        _swap_entries(real, tmp, entries, remove, pause)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        _drop_work_area(real)


__all__ = ["DEFAULT_LOCK_TIMEOUT", "LOCK_TIMEOUT_ENV", "MANIFEST", "PRIVATE_MODE", "WORK_DIR", "exchange",
           "foreign_paths", "lock_folder", "manifest_text", "private", "read_manifest", "recover", "tighten",
           "write_folder"]
