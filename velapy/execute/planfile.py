"""An emitted output folder (or the same files in memory) → an `ExecPlan` the executor runs.

The folder is run as reviewed: `plan.yaml` is checked against its schema, every object file it
names is read and its sha256 digest recomputed; a file that changed, vanished or does not parse
is refused (InputError, exit 2, naming the file). Nothing is re-rendered. Everything the executor
cannot run is refused here, before any cluster is contacted: a step type without an executor in
velapy (provider steps), an `if` outside the evaluated language (`conditions`), a bad timeout.
The plan's identity for run state is the sha256 of plan.yaml's bytes (it holds every digest).
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from velapy.bundle.emit import validate_plan_data
from velapy.bundle.layout import PLAN_FILE
from velapy.compile.plan import ObjectKey, digest_of, group_of
from velapy.errors import Diagnostic, InputError, Location, VelapyError
from velapy.execute.conditions import Condition, ConditionError, parse_condition
from velapy.execute.urls import spec_problem
from velapy.load.clusters import Identity
from velapy.load.yamlio import Document, load_documents
from velapy.review.diff import read_folder

RUNNABLE_STEPS = ("deploy", "apply-component", "suspend", "step-group", "notification", "webhook")

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)")
_UNIT = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def parse_duration(text: str) -> float:
    """A Go duration (`30m`, `1h30m`, `2m15s`, `500ms`) in seconds; ValueError when it is not one."""
    s = text.strip()
    if not s:
        raise ValueError("empty duration")
    if s == "0":
        return 0.0
    pos, total = 0, 0.0
    for m in _DURATION.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNIT[m.group(2)]
        pos = m.end()
    if pos != len(s):
        raise ValueError(f"not a duration: {text!r} (write e.g. 30s, 5m, 1h30m)")
    return total


@dataclass(frozen=True, order=True)
class ObjectRef(ObjectKey):
    """Identifies one object in one cluster (the API version does not count): the plan's key."""

    def text(self) -> str:
        return f"{self.describe()} in cluster {self.cluster}"


@dataclass(frozen=True)
class PlanObject:
    cluster: str
    file: str
    obj: dict[str, Any]
    digest: str
    component: str
    role: str
    trait: str = ""
    rules: Mapping[str, Any] = field(default_factory=dict)

    @property
    def api_version(self) -> str:
        return str(self.obj.get("apiVersion") or "")

    @property
    def kind(self) -> str:
        return str(self.obj.get("kind") or "")

    @property
    def name(self) -> str:
        return str((self.obj.get("metadata") or {}).get("name") or "")

    @property
    def namespace(self) -> str:
        return str((self.obj.get("metadata") or {}).get("namespace") or "")

    @functools.cached_property
    def ref(self) -> ObjectRef:  # computed once: the executor looks objects up by ref several times each
        return ObjectRef(self.cluster, group_of(self.api_version), self.kind, self.namespace, self.name)


@dataclass(frozen=True)
class Placement:
    cluster: str
    namespace: str
    objects: tuple[PlanObject, ...]


@dataclass(frozen=True)
class Gate:
    type: str  # approval | suspend
    message: str = ""
    duration: float | None = None


@dataclass(frozen=True)
class Step:
    name: str
    type: str
    depends_on: tuple[str, ...] = ()
    condition: Condition | None = None
    timeout: float | None = None
    timeout_text: str = ""
    gate: Gate | None = None
    parallelism: int = 5
    placements: tuple[Placement, ...] = ()
    mode: str = "DAG"
    sub_steps: tuple[Step, ...] = ()
    properties: Mapping[str, Any] = field(default_factory=dict)
    component_depends_on: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def objects(self) -> list[PlanObject]:
        out = [o for p in self.placements for o in p.objects]
        for s in self.sub_steps:
            out.extend(s.objects())
        return out


@dataclass(frozen=True)
class ClusterEntry:
    name: str
    kubeconfig: str = ""
    context: str = ""
    identity: Identity | None = None
    version: str = ""


@dataclass(frozen=True)
class ExecPlan:
    app_name: str
    app_namespace: str
    identity: Identity | None
    clusters: Mapping[str, ClusterEntry]
    steps: tuple[Step, ...]
    mode: str
    resource_policies: Mapping[str, Any]
    digest: str  # sha256 of plan.yaml
    folder: str  # the folder it was read from ("" when rendered in memory)
    files: Mapping[str, str] = field(default_factory=dict)  # relative path → text (for diffs)

    def all_steps(self) -> list[Step]:
        out: list[Step] = []
        for s in self.steps:
            out.append(s)
            out.extend(s.sub_steps)
        return out

    def objects(self) -> list[PlanObject]:
        """Every object once (the first step placing it wins), in step order (computed once; a new list)."""
        cached: list[PlanObject] | None = self.__dict__.get("_objects")
        if cached is None:
            seen: set[ObjectRef] = set()
            cached = []
            for s in self.steps:
                for o in s.objects():
                    if o.ref not in seen:
                        seen.add(o.ref)
                        cached.append(o)
            object.__setattr__(self, "_objects", cached)  # frozen: the plan never changes after loading
        return list(cached)


def _identity(data: Any) -> Identity | None:
    if not isinstance(data, dict) or not data:
        return None
    return Identity(str(data.get("user") or ""), tuple(str(g) for g in data.get("groups") or ()))


class _Loader:
    def __init__(self, files: Mapping[str, str], origin: str, doc: Document | None, plan_text: str = "",
                 plan_file: str = "") -> None:
        self.files = files
        self.origin = origin
        self._doc = doc  # None: the plan came from the cache; read with positions only to locate a problem
        self._plan = (plan_text, plan_file)
        self.problems: list[Diagnostic] = []
        self.names: list[str] = []
        self.cached: Mapping[str, Any] = {}  # rel → [sha256 of its text, the object] (see ObjectCache)
        self.fresh: dict[str, Any] = {}  # what the cache holds after this load
        self.misses = 0  # objects read from their file that the cache will hold

    def where(self, path: list[str | int]) -> Location:
        if self._doc is None:
            self._doc = load_documents(*self._plan)[0]
        return self._doc.location(path)

    def file_of(self, rel: str) -> str:
        return os.path.join(self.origin, rel) if self.origin else rel

    def obj(self, data: dict[str, Any], cluster: str, path: list[str | int]) -> PlanObject | None:
        rel = str(data["file"])
        text = self.files.get(rel)
        shown = self.file_of(rel)
        if text is None:
            self.problems.append(Diagnostic(f"{shown}: the plan names this file but it is missing",
                                            self.where([*path, "file"]), "render the folder again"))
            return None
        digest = str(data["digest"])
        text_sha = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
        hit = self.cached.get(rel)
        obj = hit[1] if isinstance(hit, list) and len(hit) == 2 and hit[0] == text_sha and \
            isinstance(hit[1], dict) else None
        if obj is None:
            obj = quick_object(text, digest)
            if obj is not None and not _is_secret(obj):
                self.fresh[rel] = [text_sha, obj]
                self.misses += 1
        else:
            self.fresh[rel] = hit
        if obj is None:  # not the object the plan names, read fast: the located reader says what is wrong
            found = self._located(text, shown)
            if found is None:
                return None
            obj = found
            digest = digest_of(obj)
        if digest != data["digest"]:
            self.problems.append(Diagnostic(
                f"{shown} changed after the plan was made (its digest is {digest[:19]}…, plan.yaml says "
                f"{str(data['digest'])[:19]}…): velapy applies a folder only as it was reviewed",
                Location(file=shown), "render the folder again (velapy render ... -o DIR) and review the change"))
            return None
        where = obj.get("metadata") or {}
        if (obj.get("kind"), where.get("name"), where.get("namespace") or "") != \
                (data["kind"], data["name"], data.get("namespace") or ""):
            self.problems.append(Diagnostic(f"{shown} does not hold the {data['kind']} {data['name']} the plan names",
                                            Location(file=shown)))
            return None
        return PlanObject(str(data.get("cluster") or cluster), rel, obj, digest, str(data.get("component") or ""),
                          str(data.get("role") or ""), str(data.get("trait") or ""), dict(data.get("rules") or {}))

    def _located(self, text: str, shown: str) -> dict[str, Any] | None:
        try:
            docs = load_documents(text, shown)
        except InputError as exc:
            self.problems.extend(exc.diagnostics)
            return None
        if len(docs) != 1 or not isinstance(docs[0].data, dict):
            self.problems.append(Diagnostic("an object file holds exactly one object", Location(file=shown, line=1)))
            return None
        return docs[0].data

    def step(self, data: dict[str, Any], path: list[str | int], names: Sequence[str]) -> Step:
        name, stype = str(data["name"]), str(data["type"])
        if stype not in RUNNABLE_STEPS:
            self.problems.append(Diagnostic(
                f"step {name} has type {stype}, which velapy apply cannot run (it needs a KubeVela provider)",
                self.where([*path, "type"]),
                "velapy runs " + ", ".join(RUNNABLE_STEPS) + "; run this application with KubeVela, or remove "
                "the step"))
        cond: Condition | None = None
        if data.get("if"):
            try:
                cond = parse_condition(str(data["if"]), names)
            except ConditionError as exc:
                self.problems.append(Diagnostic(f"step {name}: if: {data['if']}: {exc}", self.where([*path, "if"])))
        timeout: float | None = None
        if data.get("timeout"):
            try:
                timeout = parse_duration(str(data["timeout"]))
            except ValueError as exc:
                self.problems.append(Diagnostic(f"step {name}: timeout: {exc}", self.where([*path, "timeout"])))
        gate: Gate | None = None
        if data.get("gate"):
            g = data["gate"]
            duration: float | None = None
            if g.get("duration"):
                try:
                    duration = parse_duration(str(g["duration"]))
                except ValueError as exc:
                    self.problems.append(Diagnostic(f"step {name}: duration: {exc}",
                                                    self.where([*path, "gate", "duration"])))
            gate = Gate(str(g["type"]), str(g.get("message") or ""), duration)
        placements: list[Placement] = []
        for i, p in enumerate(data.get("placements") or []):
            objs = [self.obj(o, str(p["cluster"]), [*path, "placements", i, "objects", j])
                    for j, o in enumerate(p.get("objects") or [])]
            placements.append(Placement(str(p["cluster"]), str(p.get("namespace") or ""),
                                        tuple(o for o in objs if o is not None)))
        subs = tuple(self.step(s, [*path, "subSteps", k], names) for k, s in enumerate(data.get("subSteps") or []))
        props = dict(data.get("properties") or {})
        if stype in ("notification", "webhook"):
            _check_http_step(name, stype, props, lambda *sub: self.where([*path, "properties", *sub]), self.problems)
        return Step(name, stype, tuple(str(d) for d in data.get("dependsOn") or ()), cond, timeout,
                    str(data.get("timeout") or ""), gate, int(data.get("parallelism") or 5), tuple(placements),
                    str(data.get("mode") or "DAG"), subs, props,
                    {k: tuple(v) for k, v in (data.get("componentDependsOn") or {}).items()})


def quick_object(text: str, digest: str) -> dict[str, Any] | None:
    """An object file read by libyaml's plain loader (no locations: several times faster than the located
    reader), when what it reads has exactly the `digest` the plan records; None otherwise (a file that
    changed, or one the plain loader reads differently, e.g. a YAML 1.1 date): the caller then reads it with
    the located reader, which reports problems with their line. A match is the reviewed object itself."""
    try:
        data = yaml.load(text, Loader=_FAST_LOADER)
        if not isinstance(data, dict) or digest_of(data) != digest:
            return None
    except (yaml.YAMLError, TypeError, ValueError, RecursionError):
        return None
    return data


_FAST_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _is_secret(obj: Mapping[str, Any]) -> bool:
    return obj.get("kind") == "Secret"


class ObjectCache:
    """plan.yaml's data as read and checked against its schema, and the checked objects of that plan, by the
    sha256 of plan.yaml (which holds every object's digest), each object with the sha256 of its file's text;
    in the user's cache folder (`velapy.cue.cache`), in a sub-folder `plans/` trimmed to the same limit on
    its own. Loading the folder again then reads one JSON document instead of parsing plan.yaml and every
    object file: a file whose text hashes as recorded holds the object recorded, which matched the plan's
    digest when it was stored. A file that changed is read and checked as ever. Secrets are never stored
    (the cache is another place on disk; plan files hold none); an unreadable cache is a miss."""

    def __init__(self, plan_digest: str) -> None:
        from velapy.cue.cache import RenderCache, cache_root, digest  # light: the standard library only

        self.key = digest("velapy-plan-objects", OBJECT_CACHE_FORMAT, plan_digest)
        # a folder of its own (same limit, trimmed apart): large plans never evict the render cache's entries
        self.cache = RenderCache(cache_root() / "plans")

    def load(self) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        """(the plan's data, or None; rel → [text sha256, object])."""
        data = self.cache.get(self.key)
        if not isinstance(data, dict) or not isinstance(data.get("plan"), dict) or \
                not isinstance(data.get("objects"), dict):
            return None, {}
        return data["plan"], data["objects"]

    def store(self, plan: Mapping[str, Any], entries: Mapping[str, Any]) -> None:
        self.cache.put(self.key, {"plan": plan, "objects": dict(entries)})
        self.cache.close()


OBJECT_CACHE_FORMAT = "2"


def _check_http_step(name: str, stype: str, props: Mapping[str, Any], where: Callable[..., Location],
                     problems: list[Diagnostic]) -> None:
    """notification / webhook: refuse what velapy cannot send (email needs SMTP, a URL that is not
    one), never quoting a URL (it may hold a token). `where` is called only for a problem (it reads
    plan.yaml with positions)."""
    urls: list[tuple[tuple[str, ...], Any]] = [(("url",), props.get("url"))] if stype == "webhook" else \
        [((ch, "url"), props[ch].get("url")) for ch in ("slack", "dingding", "lark")
         if isinstance(props.get(ch), Mapping)]
    for sub, spec in urls:
        bad = spec_problem(spec)
        if bad:
            problems.append(Diagnostic(f"step {name}: {bad}", where(*sub)))
    if stype == "notification":
        if "email" in props:
            problems.append(Diagnostic(f"step {name}: notification by email is not sent by velapy apply "
                                       "(it needs an SMTP relay)", where(), "use slack, dingding or lark"))
        if not any(k in props for k in ("slack", "dingding", "lark", "email")):
            problems.append(Diagnostic(f"step {name}: notification names no channel (slack, dingding, lark)", where()))


def load_plan_files(files: Mapping[str, str], origin: str = "") -> ExecPlan:
    """Check and read a plan from its files ({relative path: text}); InputError lists every problem."""
    text = files.get(PLAN_FILE)
    plan_file = os.path.join(origin, PLAN_FILE) if origin else PLAN_FILE
    if text is None:
        raise InputError(f"{plan_file}: no plan here: give a folder written by `velapy render -o DIR`",
                         Location(file=plan_file))
    digest = "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()
    cache = ObjectCache(digest)
    cached_plan, cached = cache.load()
    doc: Document | None = None
    if cached_plan is not None:  # this very plan.yaml was read and passed its schema before
        data = cached_plan
    else:
        docs = load_documents(text, plan_file)
        if len(docs) != 1:
            raise InputError("plan.yaml holds one document", Location(file=plan_file, line=1))
        doc = docs[0]
        try:
            validate_plan_data(doc.data)
        except VelapyError as exc:
            raise InputError([Diagnostic(d.message, Location(file=plan_file, path=d.location.path))
                              for d in exc.diagnostics]) from None
        data = doc.data
    loader = _Loader(files, origin, doc, text, plan_file)
    loader.cached = cached
    names: list[str] = []
    for s in data["steps"]:
        names.append(str(s["name"]))
        names.extend(str(x["name"]) for x in s.get("subSteps") or [])
    steps = tuple(loader.step(s, ["steps", i], names) for i, s in enumerate(data["steps"]))
    if loader.problems:
        raise InputError(loader.problems)
    if cached_plan is None or loader.misses or len(loader.fresh) != len(loader.cached):
        cache.store(data, loader.fresh)
    clusters = {str(c["name"]): ClusterEntry(str(c["name"]), str(c.get("kubeconfig") or ""),
                                             str(c.get("context") or ""), _identity(c.get("identity")),
                                             str(c.get("version") or ""))
                for c in data["clusters"]}
    app = data["application"]
    return ExecPlan(str(app["name"]), str(app["namespace"]), _identity(app.get("identity")), clusters, steps,
                    str(data["workflow"]["mode"]["steps"]), dict(data.get("resourcePolicies") or {}), digest, origin,
                    dict(files))


def load_plan_folder(folder: str) -> ExecPlan:
    """`load_plan_files` on a folder written by `velapy render -o`."""
    path = Path(folder)
    if not (path / PLAN_FILE).is_file():
        raise InputError(f"{folder}: no plan.yaml here: give an Application file or a folder written by "
                         "`velapy render -o DIR`", Location(file=folder))
    files = read_folder(path)
    return load_plan_files(files, os.path.abspath(folder))


__all__ = ["RUNNABLE_STEPS", "ClusterEntry", "ExecPlan", "Gate", "ObjectRef", "Placement", "PlanObject", "Step",
           "load_plan_files", "load_plan_folder", "parse_duration"]
