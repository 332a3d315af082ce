"""Fuzzer: the golden inputs, mutated → velapy must answer with exit 0 or 2 only, every error
located, and no Secret value anywhere but the object files it renders.

Each case takes a golden case (`golden/<case>/`), plants a Secret holding SENTINEL in it (a
`k8s-objects` component of the app, and a hub object when the case has `resources/`), then
applies one to three mutations drawn by hypothesis: text edits (delete, duplicate or re-indent a
line, insert YAML punctuation, tags, anchors and aliases, cut the file) and data edits (a value
replaced by another of any shape, a key deleted or renamed, metadata / labels / annotations given
another shape, the Secret's value tagged). It runs
the compile pipeline in-process on one shared CUE engine and checks:

- the outcome is a plan (exit 0) or an InputError (exit 2): never another VelapyError (exit 4,
  an internal error) nor any other exception (a traceback);
- every error names the file it is about;
- SENTINEL appears in no error, no warning, no `plan.yaml`, and no diff of the result against the
  unmutated case (text, unified, JSON, Markdown) — only in the Secret's own object file.

Seeded and derandomized, so a run is reproducible. `make test` runs FUZZ_CASES (tests/test_fuzz.py),
stopping at the first finding (hypothesis shrinks it); more on demand:

    .venv/bin/python tests/fuzz_inputs.py --cases 10000 [--seed N]

The counting mode (`make fuzz`: `--count --cases 10000`) runs every case and prints how many
rendered, were rejected, and how many of each kind of finding (KINDS) it met, every `--progress`
cases and at the end (also when stopped by Ctrl-C or SIGTERM); the exit code is 1 when there
was any finding. Each finding is recorded in a folder under `--findings` that reproduces it:

    finding.yaml     kind, message, golden case, case number, seed, the engine's state (processes,
                     cache, how many engine calls came before, which templates the evaluator had
                     learnt to write into each instance), and the outcome of the case replayed
                     alone on a new engine
    inputs/          the mutated input files
    engine-batches/  every CUE batch the engine ran for this case (`cue export FILE` repeats a crash)

    .venv/bin/python tests/fuzz_inputs.py --replay build/fuzz-findings/00042-exit-4

A case over `--case-timeout` seconds (120) is a hang; the engine is then replaced. The counting
run's engine is one process with an empty render cache of its own, so what a case does depends on
the cases before it only through that evaluator's memory (recorded), never on the machine's load
or an earlier run's cache.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from goldens import Case, cases  # noqa: E402

from velapy.cue.engine import Evaluator  # noqa: E402
from velapy.errors import EXIT_INVALID, REASON_ENGINE_CRASH, VelapyError  # noqa: E402
from velapy.load import redact  # noqa: E402
from velapy.load.definitions import Registry, load_registry  # noqa: E402
from velapy.pipeline import Inputs, compile_app, output_files  # noqa: E402
from velapy.review.diff import compare_folders, format_json, format_markdown, format_text, format_unified  # noqa: E402

SENTINEL = "fuzz-SENTINEL-7c1e9a0b"
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: the fuzzer's own parsing
_DUMPER: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_BASE: Any = getattr(yaml, "CBaseLoader", yaml.BaseLoader)
FUZZ_CASES = 200  # in `make test`
SECRET_COMPONENT = {
    "name": "fuzz-secret",
    "type": "k8s-objects",
    "properties": {"objects": [{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "fuzz-db"},
                                "stringData": {"password": SENTINEL}, "type": "Opaque"}]},
}
HUB_SECRET = (f"apiVersion: v1\nkind: Secret\nmetadata: {{name: fuzz-hub, namespace: default}}\n"
              f"stringData:\n  token: {SENTINEL}\n")
PUNCTUATION = [": ", "- ", "[", "]", "{", "}", ",", "&a ", "*a", "!!int ", "!!bool ", "!!float ", "!!str ",
               "!!binary ", "<<: *a", "~", "null", "'", '"', "|", ">", "#", "\t", "\n", "---\n", "...\n",
               "1e999", "0x1F", "-0", ".inf", "2024-01-01", "yes", "on", "\\u0000", "%YAML 1.2\n", "? ",
               "\ufeff", "é", "\u202e", "  ", "x" * 300]


# ------------------------------------------------------------------------------------------
# the seed inputs


@dataclass(frozen=True)
class Seed:
    case: Case
    files: dict[str, str]  # relative path → text (app.yaml, clusters.yaml, resources/..., -f files)
    inputs: Inputs  # relative paths; resolved against the folder a run copies the files to


def _plant(app_text: str) -> str:
    try:
        docs = list(yaml.load_all(app_text, Loader=_LOADER))
    except yaml.YAMLError:
        return app_text
    for d in docs:
        if isinstance(d, dict) and d.get("kind") == "Application" and isinstance(d.get("spec"), dict) \
                and isinstance(d["spec"].get("components"), list):
            d["spec"]["components"].append(SECRET_COMPONENT)
            return yaml.dump_all(docs, Dumper=_DUMPER, sort_keys=False, allow_unicode=True)
    return app_text


def load_seeds() -> list[Seed]:
    out = []
    for case in cases():
        inp = case.inputs()
        files: dict[str, str] = {}
        for p in sorted(case.path.rglob("*")):
            rel = p.relative_to(case.path).as_posix()
            if p.is_file() and not rel.startswith(("expected/", "definitions/")) and rel != "case.yaml":
                files[rel] = p.read_text(encoding="utf-8")
        files["app.yaml"] = _plant(files["app.yaml"])
        if inp.resources:
            files["resources/fuzz-secret.yaml"] = HUB_SECRET

        def relative(path: str, home: Path = case.path) -> str:
            return Path(path).relative_to(home).as_posix() if path else ""

        out.append(Seed(case, files, Inputs(
            "app.yaml", tuple(relative(f) for f in inp.files), inp.definition_dirs, relative(inp.resources),
            inp.namespace, relative(inp.clusters), inp.allow_unknown_parameters)))
    return out


# ------------------------------------------------------------------------------------------
# mutations


def _json_values() -> st.SearchStrategy[Any]:
    scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2 ** 70), max_value=2 ** 70),
                        st.floats(allow_nan=False), st.text(max_size=20), st.sampled_from(["", "x" * 300]))
    return st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                         st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                        max_leaves=6)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out.extend(_paths(v, (*prefix, k)))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out.extend(_paths(v, (*prefix, i)))
    return out


def _text_op(draw: st.DrawFn, text: str) -> str:
    lines = text.split("\n")
    op = draw(st.sampled_from(["delete", "duplicate", "indent", "insert", "cut", "tag-secret"]))
    i = draw(st.integers(0, max(0, len(lines) - 1)))
    if op == "delete":
        del lines[i:i + 1]
    elif op == "duplicate":
        lines.insert(i, lines[i] if lines else "")
    elif op == "indent":
        delta = draw(st.sampled_from([-4, -2, -1, 1, 2, 4]))
        lines[i] = " " * delta + lines[i] if delta > 0 else lines[i][-delta:]
    elif op == "insert":
        pos = draw(st.integers(0, len(lines[i]) if lines else 0))
        piece = draw(st.one_of(st.sampled_from(PUNCTUATION), st.text(max_size=5)))
        lines[i] = lines[i][:pos] + piece + lines[i][pos:]
    elif op == "cut":
        return text[:draw(st.integers(0, len(text)))]
    else:
        tag = draw(st.sampled_from(["!!int ", "!!bool ", "!!float ", "!!null ", "!!timestamp ", "!!binary ", "&s "]))
        return text.replace(SENTINEL, tag + SENTINEL, 1)
    return "\n".join(lines)


def _at(node: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        node = node[step]
    return node


def _data_op(draw: st.DrawFn, text: str) -> str:
    try:
        docs = list(yaml.load_all(text, Loader=_LOADER))
    except Exception:
        return text
    if not docs:
        return text
    d = draw(st.integers(0, len(docs) - 1))
    paths = _paths(docs[d])
    path = draw(st.sampled_from(paths))
    op = draw(st.sampled_from(["tweak", "tweak", "tweak", "replace", "delete", "rename", "shape"]))
    if op == "shape":  # metadata, labels or annotations of another shape (issue 18: every stage assumed mappings)
        meta = [p for p in paths if p and p[-1] in ("metadata", "labels", "annotations")]
        meta += [(*p, key) for p in paths if p and p[-1] == "metadata" and isinstance(_at(docs[d], p), dict)
                 for key in ("labels", "annotations")]
        if not meta:
            return text
        path = draw(st.sampled_from(meta))
        _at(docs[d], path[:-1])[path[-1]] = draw(st.sampled_from(["abc", ["a", "b"], 7, {"k": {"x": "y"}}, [{}]]))
        op = "done"
    if op == "tweak":  # same shape, another value: the input mostly stays valid and renders
        scalars = [p for p in paths if p and not isinstance(_at(docs[d], p), dict | list)]
        if not scalars:
            return text
        path = draw(st.sampled_from(scalars))
        old = _at(docs[d], path)
        new: Any = draw(st.integers(-3, 70000)) if isinstance(old, int) and not isinstance(old, bool) else \
            draw(st.booleans()) if isinstance(old, bool) else \
            draw(st.sampled_from([f"{old}x", f"{old}-2", str(old).upper(), str(old)[:1], f"{old}.{old}"]))
        _at(docs[d], path[:-1])[path[-1]] = new
        op = "done"
    if op == "done":
        pass
    elif not path:
        docs[d] = draw(_json_values())
    else:
        parent = docs[d]
        for step in path[:-1]:
            parent = parent[step]
        last = path[-1]
        if op == "replace":
            parent[last] = draw(_json_values())
        elif op == "delete":
            del parent[last]
        elif isinstance(parent, dict):
            parent[str(last) + draw(st.sampled_from(["x", "_", "s", ""]))] = parent.pop(last)
    try:
        return yaml.dump_all(docs, Dumper=_DUMPER, sort_keys=False, allow_unicode=True)
    except (yaml.YAMLError, ValueError):
        return text


@st.composite
def mutated(draw: st.DrawFn, seeds: list[Seed]) -> tuple[Seed, dict[str, str]]:
    valid = [x for x in seeds if not x.case.name.startswith(("err-", "fleet-err-"))]
    s = draw(st.one_of(st.sampled_from(valid), st.sampled_from(valid), st.sampled_from(seeds)))
    files = dict(s.files)
    names = sorted(files)
    for _ in range(draw(st.sampled_from([1, 1, 1, 2, 3]))):
        target = draw(st.sampled_from(["app.yaml"] * 3 + names))
        op = draw(st.sampled_from([_text_op, _data_op]))
        files[target] = op(draw, files[target])
    return s, files


# ------------------------------------------------------------------------------------------
# one run and its checks


class Finding(AssertionError):
    """A case velapy got wrong; `kind` is one of KINDS."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


# what the counting mode counts besides "rendered" and "rejected", in the order it prints them
KINDS = {
    "traceback": "tracebacks (an exception other than a velapy error)",
    "exit 4": "exit 4 (a velapy internal error)",
    "hang": "hangs (a case over the time limit)",
    "leak": "leaks (a Secret value outside its object file)",
    "unlocated": "unlocated errors (exit 2 naming no file)",
    "unreadable": "outputs velapy cannot read back",
    "engine crash": "engine crashes (a Go panic of the CUE engine: exit 4, not velapy's code)",
}


def _check_no_leak(where: str, text: str) -> None:
    if SENTINEL in text:
        at = text.index(SENTINEL)
        raise Finding("leak", f"the Secret value leaked into {where}: ...{text[max(0, at - 200):at + 40]!r}")


def _only_in_secrets(files: dict[str, str]) -> bool:
    """Whether every SENTINEL of the inputs is still a Secret's data/stringData value (a mutation
    may have moved it elsewhere: then it is no secret, and printing it is no leak). A file that
    does not parse counts as yes: its errors must not quote anything of it."""
    for text in files.values():
        if SENTINEL not in text:
            continue
        try:
            docs = list(yaml.load_all(text, Loader=_BASE))
        except Exception:
            continue
        inside = sum(1 for d in docs for v in redact.secret_strings(d) if SENTINEL in v)
        everywhere = sum(1 for d in docs for v in _scalars(d) if SENTINEL in v)
        if everywhere > inside:
            return False
    return True


def _scalars(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [*node.keys(), *(x for v in node.values() for x in _scalars(v))]
    if isinstance(node, list):
        return [x for v in node for x in _scalars(v)]
    return [str(node)] if node is not None else []


def run_case(s: Seed, files: dict[str, str], evaluator: Evaluator,
             baseline: Callable[[], dict[str, str] | None], registry: Registry | None = None) -> str:
    """Run one case; raise Finding when velapy misbehaves. Returns "rendered" or "rejected"."""
    with tempfile.TemporaryDirectory(prefix="velapy-fuzz-") as tmp:
        base = Path(tmp)
        for rel, text in files.items():
            (base / rel).parent.mkdir(parents=True, exist_ok=True)
            (base / rel).write_text(text, encoding="utf-8")

        def at(rel: str) -> str:
            return str(base / rel) if rel else ""

        inputs = replace(s.inputs, app=at(s.inputs.app), files=tuple(at(f) for f in s.inputs.files),
                         resources=at(s.inputs.resources), clusters=at(s.inputs.clusters))
        check_leaks = _only_in_secrets(files)
        try:
            plan = compile_app(inputs, evaluator, registry)
            rendered = output_files(plan)
        except VelapyError as exc:
            text = exc.render()
            if check_leaks:
                _check_no_leak("an error message", text)
            if exc.exit_code != EXIT_INVALID:
                crash = any(d.reason == REASON_ENGINE_CRASH for d in exc.diagnostics)
                raise Finding("engine crash" if crash else "exit 4",
                              f"exit {exc.exit_code} (not an input error) for {s.case.name}: {text[:2000]}") from None
            unlocated = [d for d in exc.diagnostics if not d.location.file]
            if unlocated:
                raise Finding("unlocated",
                              f"an error without a location ({s.case.name}): {unlocated[0].render()}") from None
            return "rejected"
        except Exception as exc:  # a traceback a user would see
            raise Finding("traceback", f"{type(exc).__name__} for {s.case.name}: {exc}") from exc
        if not check_leaks:
            return "rendered"
        for w in plan.warnings:
            _check_no_leak("a warning", w.render())
        _check_no_leak("plan.yaml", rendered.get("plan.yaml", ""))
        before = baseline()  # rendered once per golden case, only when a mutation of it renders
        if before is not None:
            try:
                cmp = compare_folders(before, rendered, old_origin="before", new_origin="after")
            except VelapyError as exc:
                raise Finding("unreadable", f"velapy wrote a folder it cannot read back ({s.case.name}): "
                                            f"{exc.render()}") from None
            for name, out in (("diff text", format_text(cmp, with_files=True)), ("unified", format_unified(cmp)),
                              ("json", format_json(cmp)), ("markdown", format_markdown([("app", cmp)]))):
                _check_no_leak(f"the {name} diff", out)
        return "rendered"


# ------------------------------------------------------------------------------------------
# the runner


class _Hang(BaseException):
    """A case ran over its time limit (a BaseException: no `except Exception` of velapy catches it)."""


@contextlib.contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """Raise _Hang in the main thread when the block takes longer than `seconds` (0: no limit)."""
    if seconds <= 0 or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expired(_sig: int, _frame: object) -> None:
        raise _Hang()

    old = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@contextlib.contextmanager
def _engine_trace(on: bool) -> Iterator[Path | None]:
    """While on: every CUE batch the engine runs is copied into a fresh folder (VELAPY_ENGINE_TRACE),
    so that an engine crash is recorded with the exact source the engine crashed on."""
    if not on:
        yield None
        return
    folder = Path(tempfile.mkdtemp(prefix="velapy-fuzz-trace-"))
    old = os.environ.get("VELAPY_ENGINE_TRACE")
    os.environ["VELAPY_ENGINE_TRACE"] = str(folder)
    try:
        yield folder
    finally:
        if old is None:
            os.environ.pop("VELAPY_ENGINE_TRACE", None)
        else:
            os.environ["VELAPY_ENGINE_TRACE"] = old
        shutil.rmtree(folder, ignore_errors=True)


def fresh_evaluator(cache_dir: Path) -> Evaluator:
    """The counting mode's engine: one process, the render cache in a new empty folder. A case's
    result then depends on the cases before it only through the evaluator's own memory (which
    templates it inlines), recorded with every engine finding; never on the machine's load (the
    number of engine processes a large round is split over) or a cache left by an earlier run."""
    from velapy.cue.cache import RenderCache
    from velapy.cue.engine import select_runner

    return Evaluator(select_runner(), parallel=1, cache=RenderCache(Path(tempfile.mkdtemp(dir=cache_dir))))


@dataclass
class Fuzz:
    evaluator: Evaluator
    seeds: list[Seed]
    baselines: dict[str, dict[str, str] | None]
    counts: Counter[str]
    registries: dict[tuple[str, ...], Registry | None]
    findings: Path | None = None  # counting mode: record each finding here and go on
    case_timeout: float = 0.0
    seed_value: int | None = None
    renew: Callable[[], Evaluator] | None = None  # a new engine after a hang (counting mode)
    recorded: list[Path] = field(default_factory=list)
    progress: int = 0  # print the counts to stderr every this many cases (0: never)
    started: float = field(default_factory=time.monotonic)

    def registry(self, s: Seed) -> Registry | None:
        """Definitions are inputs the fuzzer does not mutate: load each set once (None when they
        are invalid on purpose: then every run loads them and reports that, as velapy would)."""
        dirs = s.inputs.definition_dirs
        if dirs not in self.registries:
            try:
                self.registries[dirs] = load_registry(dirs)
            except VelapyError:
                self.registries[dirs] = None
        return self.registries[dirs]

    def baseline(self, s: Seed) -> dict[str, str] | None:
        if s.case.name not in self.baselines:
            try:
                with tempfile.TemporaryDirectory(prefix="velapy-fuzz-") as tmp:
                    for rel, text in s.files.items():
                        (Path(tmp) / rel).parent.mkdir(parents=True, exist_ok=True)
                        (Path(tmp) / rel).write_text(text, encoding="utf-8")
                    t = Path(tmp)
                    inputs = replace(s.inputs, app=str(t / s.inputs.app),
                                     files=tuple(str(t / f) for f in s.inputs.files),
                                     resources=str(t / s.inputs.resources) if s.inputs.resources else "",
                                     clusters=str(t / s.inputs.clusters) if s.inputs.clusters else "")
                    self.baselines[s.case.name] = output_files(compile_app(inputs, self.evaluator,
                                                                           self.registry(s)))
            except VelapyError:
                self.baselines[s.case.name] = None
        return self.baselines[s.case.name]

    def one(self, s: Seed, files: dict[str, str]) -> str:
        """One case → its outcome ("rendered", "rejected" or a finding's kind). Outside the counting
        mode a finding is raised (hypothesis then shrinks it)."""
        number = sum(self.counts.values()) + 1
        engine_calls = self.evaluator.calls
        inlined = sorted(t.name for t in self.evaluator._inline)
        registry = self.registry(s)  # (loaded once per set of definitions, outside the case's time limit)
        with _engine_trace(self.findings is not None) as trace:
            try:
                with _time_limit(self.case_timeout):
                    return run_case(s, files, self.evaluator, lambda: self.baseline(s), registry)
            except _Hang:
                finding = Finding("hang", f"{s.case.name}: no answer within {self.case_timeout:g} s")
                if self.findings is None:
                    raise finding from None
                if self.renew is not None:  # the engine may be stuck mid-answer: start another
                    self.evaluator.close()
                    self.evaluator = self.renew()
            except Finding as exc:
                if self.findings is None:
                    raise
                finding = exc
            self._record(number, s, files, finding, trace, {"engineCallsBefore": engine_calls,
                                                            "inlinedTemplates": inlined})
            return finding.kind

    def _record(self, number: int, s: Seed, files: dict[str, str], finding: Finding, trace: Path | None,
                engine: dict[str, Any]) -> None:
        """A finding → a folder that reproduces it: the mutated inputs, what was said, the seed and
        case number, the engine's state (how many processes, the cache, which templates it inlines,
        the CUE batches it ran on this case), and whether the case does the same alone on a new engine."""
        assert self.findings is not None
        folder = self.findings / f"{number:05d}-{finding.kind.replace(' ', '-')}"
        shutil.rmtree(folder, ignore_errors=True)
        for rel, text in files.items():
            (folder / "inputs" / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / "inputs" / rel).write_text(text, encoding="utf-8")
        if trace is not None and any(trace.iterdir()):
            shutil.copytree(trace, folder / "engine-batches")
        info: dict[str, Any] = {
            "kind": finding.kind, "golden": s.case.name, "case": number,
            "seed": "fixed (derandomized)" if self.seed_value is None else self.seed_value,
            "message": str(finding),
            "inputs": {"app": s.inputs.app, "files": list(s.inputs.files), "resources": s.inputs.resources,
                       "clusters": s.inputs.clusters, "definitions": list(s.inputs.definition_dirs),
                       "namespace": s.inputs.namespace},
            "engine": {"processes": self.evaluator.parallel, "cache": self.evaluator.cache is not None, **engine},
        }
        if finding.kind in ("exit 4", "engine crash", "hang", "traceback"):
            info["alone on a new engine"] = replay(folder / "inputs", s, self.case_timeout)
        (folder / "finding.yaml").write_text(yaml.safe_dump(info, sort_keys=False, allow_unicode=True),
                                             encoding="utf-8")
        self.recorded.append(folder)

    def run(self, cases: int, seed_value: int | None = None) -> Counter[str]:
        @settings(max_examples=cases, derandomize=seed_value is None, database=None, deadline=None,
                  suppress_health_check=list(HealthCheck), print_blob=True)
        @given(mutated(self.seeds))
        def one(case: tuple[Seed, dict[str, str]]) -> None:
            s, files = case
            self.counts[self.one(s, files)] += 1
            done = sum(self.counts.values())
            if self.progress and done % self.progress == 0:
                print(f"[{time.strftime('%H:%M:%S')}] {summary(self.counts, time.monotonic() - self.started)}",
                      file=sys.stderr, flush=True)

        self.seed_value = seed_value
        if seed_value is not None:
            one = seed(seed_value)(one)
        one()
        return self.counts


def replay(inputs_folder: Path, s: Seed, case_timeout: float = 0.0) -> str:
    """Run a recorded case alone, on a new engine with no cache: its outcome, or the finding's text."""
    files = {p.relative_to(inputs_folder).as_posix(): p.read_text(encoding="utf-8")
             for p in sorted(inputs_folder.rglob("*")) if p.is_file()}
    from velapy.cue.engine import select_runner

    ev = Evaluator(select_runner(), parallel=1)
    try:
        with _time_limit(case_timeout):
            return run_case(s, files, ev, lambda: None, None)
    except Finding as exc:
        return f"{exc.kind}: {str(exc)[:500]}"
    except _Hang:
        return f"hang: no answer within {case_timeout:g} s"
    finally:
        ev.close()


def fuzz(evaluator: Evaluator, cases: int, seed_value: int | None = None) -> Counter[str]:
    """Run `cases` mutated inputs; raise Finding (after hypothesis shrank it) on the first failure."""
    return Fuzz(evaluator, load_seeds(), {}, Counter(), {}).run(cases, seed_value)


def count(cases: int, seed_value: int | None, findings: Path, case_timeout: float = 120.0,
          make_evaluator: Callable[[], Evaluator] | None = None, progress: int = 0) -> Fuzz:
    """The counting mode: run every case, record each finding under `findings`, count outcomes."""
    with tempfile.TemporaryDirectory(prefix="velapy-fuzz-cache-") as caches:
        make = make_evaluator or (lambda: fresh_evaluator(Path(caches)))
        run = Fuzz(make(), load_seeds(), {}, Counter(), {}, findings=findings, case_timeout=case_timeout,
                   renew=make, progress=progress)
        try:
            run.run(cases, seed_value)
        except KeyboardInterrupt:  # (SIGINT, SIGTERM) the counts so far are still worth printing
            print("interrupted: the counts of the cases run so far", file=sys.stderr)
        finally:
            run.evaluator.close()
    return run


def summary(counts: Counter[str], seconds: float) -> str:
    total = sum(counts.values())
    lines = [f"fuzzed {total} cases in {seconds:.0f} s: {counts['rendered']} rendered, "
             f"{counts['rejected']} rejected with a located error (exit 2)"]
    lines += [f"  {counts[k]:6d}  {label}" for k, label in KINDS.items()]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=FUZZ_CASES, help="how many mutated inputs to run")
    parser.add_argument("--seed", type=int, default=None, help="a seed other than the fixed one")
    parser.add_argument("--count", action="store_true",
                        help="run every case and count the outcomes (default: stop at the first finding)")
    parser.add_argument("--findings", default="build/fuzz-findings",
                        help="where --count records each finding (one folder per finding; emptied first)")
    parser.add_argument("--case-timeout", type=float, default=120.0, help="seconds after which a case is a hang")
    parser.add_argument("--progress", type=int, default=500, help="--count: print the counts every N cases")
    parser.add_argument("--replay", default="", help="run one recorded finding folder again, alone")
    args = parser.parse_args()
    start = time.monotonic()
    if args.replay:
        folder = Path(args.replay)
        info = yaml.safe_load((folder / "finding.yaml").read_text(encoding="utf-8"))
        s = next(x for x in load_seeds() if x.case.name == info["golden"])
        print(replay(folder / "inputs", s, args.case_timeout))
        return 0
    if args.count:
        findings = Path(args.findings)
        shutil.rmtree(findings, ignore_errors=True)
        findings.mkdir(parents=True)
        signal.signal(signal.SIGTERM, signal.default_int_handler)  # kill PID: stop, print the counts so far
        run = count(args.cases, args.seed, findings, args.case_timeout, progress=args.progress)
        print(summary(run.counts, time.monotonic() - start))
        if run.recorded:
            print(f"{len(run.recorded)} findings recorded in {findings}/ (finding.yaml, inputs/, engine-batches/); "
                  f"replay one with: python tests/fuzz_inputs.py --replay {run.recorded[0]}")
        return 1 if run.recorded else 0
    from velapy.pipeline import open_evaluator

    with open_evaluator() as ev:
        counts = fuzz(ev, args.cases, args.seed)
    total = sum(counts.values())
    print(f"fuzzed {total} cases in {time.monotonic() - start:.0f} s: {counts['rendered']} rendered, "
          f"{counts['rejected']} rejected with a located error (exit 2); no traceback, no internal error, "
          "no Secret value leaked")
    return 0


if __name__ == "__main__":
    sys.exit(main())
