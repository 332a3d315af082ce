"""Every run an app starts → a numbered revision kept where its run state lives → `velapy history`
and what `rollback` / `restart` re-apply.

A revision records what ran (plan digest, the app file's git commit and whether the work tree was
dirty, the images, whether it was an apply, a rollback or a restart), who ran it (the caller the
kubeconfig authenticates and the identity it impersonated: `who_ran`), when, and how it ended per
step and cluster. It also keeps the rendered plan itself (the files of `velapy render -o`, gzipped),
so that a rollback re-applies exactly what ran, digests checked, without the git checkout or the
definitions it was rendered with. Where:

* on the hub (the state is in a ConfigMap there): one object per revision,
  `velapy-<app>-rev-<N>` in the app's namespace, labelled `velapy.dev/revision-of=<app>`: a
  ConfigMap when the plan holds no Secret, else a Secret (type `velapy.dev/revision`), so Secret
  data never lands in a ConfigMap;
* else next to the file state: `<state-dir>/<namespace>/<app>.revisions/<N>.json` (mode 0600).

Only the last `limit` revisions are kept (default 10); the one the current run belongs to is never
removed. A plan larger than a hub object can hold is recorded without its objects (it cannot be
rolled back to, and says so).
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from velapy.errors import ClusterError, InputError, Location, VelapyError
from velapy.execute.identity import Caller
from velapy.execute.planfile import ExecPlan, load_plan_files
from velapy.execute.state import ConfigMapStore, FileStore, RunState, StateStore
from velapy.kube import Access, ApiError, Client, ResourceType
from velapy.kube.kubeconfig import load_context
from velapy.load.clusters import HUB

if TYPE_CHECKING:
    from velapy.execute.progress import Reporter
    from velapy.execute.session import RunHistory, Session

DEFAULT_LIMIT = 10
LABEL = "velapy.dev/revision-of"
SECRET_TYPE = "velapy.dev/revision"
_CM = ResourceType("", "v1", "ConfigMap", "configmaps", True)
_SECRET = ResourceType("", "v1", "Secret", "secrets", True)
_MAX_PLAN = 900 * 1024  # a hub object holds at most 1 MiB


@dataclass
class Revision:
    number: int
    runId: str
    planDigest: str
    kind: str = "apply"  # apply | reapply (the finished plan again: drift correction) | rollback | restart
    rollbackTo: int = 0  # for a rollback: the revision whose plan it applies
    restarts: int = 0
    source: str = ""  # the app file or folder the plan came from
    git: dict[str, Any] = field(default_factory=dict)  # commit, dirty
    who: dict[str, Any] = field(default_factory=dict)  # caller, user, groups
    images: list[str] = field(default_factory=list)
    phase: str = "running"
    startedAt: str = ""
    finishedAt: str = ""
    message: str = ""
    steps: list[dict[str, Any]] = field(default_factory=list)  # name, phase, clusters {cluster: phase}
    objects: str = ""  # where the plan is kept: ConfigMap | Secret | file | "" (not kept)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_dict(data: Mapping[str, Any], where: str) -> Revision:
        known = {f.name for f in fields(Revision)}  # fields a later velapy added are ignored, not fatal
        try:
            return Revision(**{k: v for k, v in data.items() if k in known})
        except TypeError:
            raise ClusterError(f"{where}: unreadable revision record", Location(file=where)) from None

    def what(self) -> str:
        """One line: how the plan came about, from which source and commit."""
        how = {"rollback": f"rollback to {self.rollbackTo}", "restart": "restart",
               "reapply": "re-apply (drift)"}.get(self.kind, "apply")
        if self.restarts and self.kind != "restart":
            how += f" (restarted {self.restarts}x)"
        src = os.path.basename(self.source.rstrip("/")) if self.source else ""
        if self.git.get("commit"):
            src += f"@{str(self.git['commit'])[:7]}" + ("+dirty" if self.git.get("dirty") else "")
        return " ".join(p for p in (how, src, f"plan {self.planDigest[7:19]}") if p)

    def who_text(self) -> str:
        caller = str(self.who.get("caller") or "?")
        user = str(self.who.get("user") or "")
        return f"{caller} as {user}" if user and user != caller else caller


class RevisionStore(Protocol):
    def describe(self) -> str: ...

    def list(self, namespace: str, name: str) -> list[Revision]: ...

    def save(self, namespace: str, name: str, rev: Revision, plan: ExecPlan | None) -> None:
        """Create (with `plan`) or update (`plan` None: the record only) revision `rev.number`."""

    def plan(self, namespace: str, name: str, number: int) -> ExecPlan: ...

    def remove(self, namespace: str, name: str, number: int) -> None: ...


def _plan_files(plan: ExecPlan) -> bytes:
    return gzip.compress(json.dumps(dict(plan.files), sort_keys=True).encode("utf-8"), mtime=0)


def _plan_from(raw: bytes, where: str) -> ExecPlan:
    try:
        files = json.loads(gzip.decompress(raw).decode("utf-8"))
    except (OSError, ValueError):
        raise ClusterError(f"{where}: the kept plan is unreadable", Location(file=where)) from None
    return load_plan_files(files, "")


def _has_secret(plan: ExecPlan) -> bool:
    return any(o.kind == "Secret" and o.api_version == "v1" for o in plan.objects())


class HubRevisions:
    """One ConfigMap (or Secret, when the plan holds Secrets) per revision, in the app's namespace on the hub."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def describe(self) -> str:
        return f"cluster {self.client.cluster} (the hub)"

    @staticmethod
    def object_name(name: str, number: int) -> str:
        return f"velapy-{name}-rev-{number}"

    def _objects(self, namespace: str, name: str) -> list[dict[str, Any]]:
        sel = f"{LABEL}={name}"
        return self.client.list(_CM, namespace, sel) + self.client.list(_SECRET, namespace, sel)

    @staticmethod
    def _record_text(obj: Mapping[str, Any]) -> str:
        data = obj.get("data") or {}
        raw = str(data.get("revision.json") or "")
        return base64.b64decode(raw).decode("utf-8") if obj.get("kind") == "Secret" else raw

    def list(self, namespace: str, name: str) -> list[Revision]:
        out = []
        for obj in self._objects(namespace, name):
            where = f"{obj.get('kind')} {namespace}/{(obj.get('metadata') or {}).get('name')} on cluster " \
                    f"{self.client.cluster}"
            try:
                out.append(Revision.from_dict(json.loads(self._record_text(obj)), where))
            except ValueError:
                raise ClusterError(f"{where}: unreadable revision record", Location(cluster=self.client.cluster)) \
                    from None
        return sorted(out, key=lambda r: r.number)

    def _get(self, namespace: str, name: str, number: int) -> dict[str, Any] | None:
        oname = self.object_name(name, number)
        return self.client.get(_CM, namespace, oname) or self.client.get(_SECRET, namespace, oname)

    def save(self, namespace: str, name: str, rev: Revision, plan: ExecPlan | None) -> None:
        text = json.dumps(rev.to_dict(), sort_keys=True, separators=(",", ":"))
        if plan is None:  # the record only: one merge patch (no read) of the kind the revision was kept as
            oname = self.object_name(name, rev.number)
            secret_kept = rev.objects == "Secret"
            value = base64.b64encode(text.encode()).decode() if secret_kept else text
            try:
                self.client.merge_patch(_SECRET if secret_kept else _CM, namespace, oname,
                                        {"data": {"revision.json": value}})
            except ApiError as exc:
                if exc.status != 404:  # removed meanwhile (pruned by another run): nothing to update
                    raise
            return
        packed = _plan_files(plan)
        keep = len(packed) <= _MAX_PLAN
        secret = keep and _has_secret(plan)  # without the plan the record holds no Secret data
        rev.objects = ("Secret" if secret else "ConfigMap") if keep else ""
        text = json.dumps(rev.to_dict(), sort_keys=True, separators=(",", ":"))
        meta = {"name": self.object_name(name, rev.number), "namespace": namespace,
                "labels": {"app.kubernetes.io/managed-by": "velapy", LABEL: name,
                           "velapy.dev/revision": str(rev.number)}}
        b64 = base64.b64encode(packed).decode()
        if secret:
            rt, body = _SECRET, {"apiVersion": "v1", "kind": "Secret", "type": SECRET_TYPE, "metadata": meta,
                                 "data": {"revision.json": base64.b64encode(text.encode()).decode(),
                                          **({"plan.json.gz": b64} if keep else {})}}
        else:
            rt, body = _CM, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"revision.json": text},
                             **({"binaryData": {"plan.json.gz": b64}} if keep else {})}
        try:
            self.client.create(rt, body)
        except ApiError as exc:
            if exc.status != 404:
                raise
            ConfigMapStore(self.client)._ensure_namespace(namespace)  # the first revision may come before any state
            self.client.create(rt, body)

    def plan(self, namespace: str, name: str, number: int) -> ExecPlan:
        live = self._get(namespace, name, number)
        where = f"revision {number} of app {namespace}/{name} on cluster {self.client.cluster}"
        if live is None:
            raise InputError(f"{where}: not found")
        key = "data" if live.get("kind") == "Secret" else "binaryData"
        raw = (live.get(key) or {}).get("plan.json.gz")
        if not raw:
            raise InputError(f"{where}: its plan was too large to keep, so it cannot be re-applied; apply its "
                             "app file instead")
        return _plan_from(base64.b64decode(raw), where)

    def remove(self, namespace: str, name: str, number: int) -> None:
        oname = self.object_name(name, number)
        for rt in (_CM, _SECRET):
            try:
                self.client.delete(rt, namespace, oname)
            except ApiError as exc:
                if exc.status != 404:
                    raise


class FileRevisions:
    """`<root>/<namespace>/<app>.revisions/<N>.json`, readable by the owner only."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def describe(self) -> str:
        return f"file {self.root}"

    def folder(self, namespace: str, name: str) -> Path:
        return self.root / namespace / f"{name}.revisions"

    def _read(self, path: Path) -> dict[str, Any]:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise ClusterError(f"{path}: unreadable revision file", Location(file=str(path))) from None
        if not isinstance(data, dict):
            raise ClusterError(f"{path}: unreadable revision file", Location(file=str(path)))
        return data

    def list(self, namespace: str, name: str) -> list[Revision]:
        folder = self.folder(namespace, name)
        if not folder.is_dir():
            return []
        out = [Revision.from_dict(self._read(p).get("revision") or {}, str(p)) for p in folder.glob("*.json")]
        return sorted(out, key=lambda r: r.number)

    def _write(self, path: Path, data: Mapping[str, Any]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".rev-", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(data, fh, sort_keys=True)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def save(self, namespace: str, name: str, rev: Revision, plan: ExecPlan | None) -> None:
        path = self.folder(namespace, name) / f"{rev.number}.json"
        if plan is None:
            if not path.exists():
                return
            data = self._read(path)
        else:
            rev.objects = "file"
            data = {"plan": base64.b64encode(_plan_files(plan)).decode()}
        data["revision"] = rev.to_dict()
        self._write(path, data)

    def plan(self, namespace: str, name: str, number: int) -> ExecPlan:
        path = self.folder(namespace, name) / f"{number}.json"
        if not path.exists():
            raise InputError(f"revision {number} of app {namespace}/{name}: not found in {self.root}")
        raw = str(self._read(path).get("plan") or "")
        return _plan_from(base64.b64decode(raw), str(path))

    def remove(self, namespace: str, name: str, number: int) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.folder(namespace, name) / f"{number}.json").unlink()


def revisions_for(store: StateStore) -> RevisionStore:
    """The revisions live where the run state does."""
    if isinstance(store, ConfigMapStore):
        return HubRevisions(store.client)
    if isinstance(store, FileStore):
        return FileRevisions(store.root)
    raise TypeError(f"no revision store next to {store.describe()}")


def who_ran(hub: Access | None, accesses: Mapping[str, Access], authenticated: Caller | None = None) \
        -> dict[str, Any]:
    """Who runs: the authenticated caller (the session's SelfSubjectReview answer, velapy.execute.identity;
    without one the kubeconfig user of the hub's context, else of the first cluster's) and the
    identity it impersonates."""
    first = hub or next(iter(accesses.values()), None)
    if first is None:
        return {"caller": authenticated.identity.user} if authenticated is not None else {}
    caller = authenticated.identity.user if authenticated is not None else ""
    if not caller:
        with contextlib.suppress(InputError, OSError):
            caller = load_context(first.kubeconfig, first.context).user
    ident = first.identity
    out: dict[str, Any] = {"caller": caller}
    if ident is not None:
        out["user"] = ident.user
        if ident.groups:
            out["groups"] = list(ident.groups)
    return out


def images_of(plan: ExecPlan) -> list[str]:
    """The container images the plan's workloads run (sorted, once each)."""
    found: set[str] = set()

    def walk(value: Any, key: str = "") -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, k)
        elif isinstance(value, list):
            for v in value:
                if key in ("containers", "initContainers") and isinstance(v, dict) and isinstance(v.get("image"), str):
                    found.add(v["image"])
                walk(v)

    for o in plan.objects():
        if o.kind != "Secret":
            walk(o.obj.get("spec"))
    return sorted(found)


def git_of(source: Mapping[str, Any]) -> dict[str, Any]:
    """The git commit of the app file (or folder) the plan came from, and whether it has local changes."""
    from velapy.review.gitrev import commit_of

    path = str(source.get("path") or "")
    if not path or not os.path.exists(path):
        return {}
    paths = [path, *[str(f) for f in source.get("files") or ()]]
    found = commit_of(paths)
    return {"commit": found[0], "dirty": found[1]} if found else {}


def outcome(state: RunState) -> list[dict[str, Any]]:
    return [{"name": s.name, "phase": s.phase, "clusters": dict(s.clusters)} for s in state.steps]


def prune(store: RevisionStore, namespace: str, name: str, limit: int, keep: Sequence[int],
          revs: Sequence[Revision] | None = None) -> list[int]:
    """Remove the oldest revisions beyond `limit` (never those in `keep`); the numbers removed.
    `revs`: the revisions, when the caller just listed them."""
    revs = sorted(revs, key=lambda r: r.number) if revs is not None else store.list(namespace, name)
    extra = len(revs) - max(limit, 1)
    gone = []
    for r in revs:
        if extra <= 0:
            break
        if r.number in keep:
            continue
        store.remove(namespace, name, r.number)
        gone.append(r.number)
        extra -= 1
    return gone


class Recorder:
    """A run's revision: created when a run starts (or found again when it continues), its outcome
    written when it stops. A revision that cannot be written is a warning, never a failed rollout."""

    def __init__(self, session: Session, how: RunHistory, source: Mapping[str, Any],
                 reporter: Reporter | None) -> None:
        self.session = session
        self.how = how
        self.source = source
        self.rep = reporter
        self.store = revisions_for(session.store)
        self.rev: Revision | None = None

    def _warn(self, exc: VelapyError) -> None:
        self.rev = None
        if self.rep is not None:
            self.rep.say(f"warning: the run is not recorded in the history ({self.store.describe()}): "
                         f"{exc.diagnostics[0].message}")

    def begin(self, state: RunState) -> None:
        plan = self.session.plan
        ns, name = plan.app_namespace, plan.app_name
        try:
            revs = self.store.list(ns, name)
            cur = next((r for r in revs if r.runId == state.runId), None)
            if cur is None and self.how.kind == "restart":
                cur = find(revs, self.how.restart_of, f"{ns}/{name}")
                cur.runId, cur.restarts, cur.startedAt, cur.finishedAt = state.runId, cur.restarts + 1, \
                    state.startedAt, ""
            if cur is not None:
                cur.phase, cur.message = "running", ""
                self.store.save(ns, name, cur, None)
                self.rev = cur
                return
            number = max((r.number for r in revs), default=0) + 1
            git = git_of(self.source)
            src = str(self.source.get("path") or "")
            if self.how.kind == "rollback":
                target = find(revs, self.how.rollback_to, f"{ns}/{name}")
                git, src = dict(target.git), target.source
            kind = "reapply" if self.how.kind == "apply" and state.mode == "keep" else self.how.kind
            self.rev = Revision(number, state.runId, plan.digest, kind, self.how.rollback_to, source=src,
                                git=git, who=who_ran(self.session.pool.accesses.get(HUB),
                                                     self.session.pool.accesses, self.session.caller),
                                images=images_of(plan), startedAt=state.startedAt)
            self.store.save(ns, name, self.rev, plan)
            prune(self.store, ns, name, self.how.limit, [number, self.how.rollback_to], [*revs, self.rev])
        except VelapyError as exc:
            self._warn(exc)

    def end(self, state: RunState) -> None:
        if self.rev is None:
            return
        self.rev.phase, self.rev.message = state.phase, state.message
        self.rev.finishedAt = state.finishedAt if state.phase in ("succeeded", "failed") else ""
        self.rev.steps = outcome(state)
        try:
            self.store.save(self.session.plan.app_namespace, self.session.plan.app_name, self.rev, None)
        except VelapyError as exc:
            self._warn(exc)


def set_phase(store: RevisionStore, state: RunState, phase: str) -> None:
    """Mirror a run's new phase (terminated) into its revision, when it has one."""
    for r in store.list(state.namespace, state.name):
        if r.runId == state.runId:
            r.phase, r.message, r.finishedAt = phase, state.message, state.finishedAt
            r.steps = outcome(state)
            store.save(state.namespace, state.name, r, None)


def find(revs: Sequence[Revision], number: int, ident: str) -> Revision:
    for r in revs:
        if r.number == number:
            return r
    known = ", ".join(str(r.number) for r in revs) or "none"
    raise InputError(f"app {ident}: no revision {number} (revisions kept: {known}; see `velapy history`)")


def history_data(revs: Sequence[Revision], current_run: str) -> list[dict[str, Any]]:
    return [{**r.to_dict(), "current": r.runId == current_run} for r in reversed(revs)]


def format_history(rows: Sequence[Mapping[str, Any]], fmt: str = "table") -> str:
    from velapy.deflib import format_table
    from velapy.load.yamlio import dump_yaml

    if fmt == "json":
        return json.dumps(list(rows), indent=2, sort_keys=True) + "\n"
    if fmt == "yaml":
        return dump_yaml(list(rows))
    table = []
    for d in rows:
        r = Revision.from_dict({k: v for k, v in d.items() if k != "current"}, "history")
        table.append([str(r.number) + (" *" if d.get("current") else ""), r.startedAt, r.phase, r.who_text(),
                      ", ".join(i.rsplit("/", 1)[-1] for i in r.images), r.what()])
    return format_table(["REVISION", "STARTED", "PHASE", "WHO", "IMAGES", "WHAT"], table)


__all__ = ["DEFAULT_LIMIT", "FileRevisions", "HubRevisions", "Recorder", "Revision", "RevisionStore", "find",
           "format_history", "git_of", "history_data", "images_of", "outcome", "prune", "revisions_for", "set_phase",
           "who_ran"]
