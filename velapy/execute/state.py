"""Run state of one application ↔ JSON in a hub ConfigMap or a local file, with optimistic locking.

One `RunState` per app (namespace/name): the plan digest of the current run, its phase, the
suspend flag and step, each step's phase, and the inventory of every object velapy may have
created for the app (written BEFORE each apply, so a crash never orphans an object), with what
garbage collection needs (uid, digest, policy). It never holds object contents, so no Secret
data: objects appear as apiVersion/kind/namespace/name and a digest.

Stores:
* `ConfigMapStore`: ConfigMap `velapy-<app>-state` in the app's namespace on the hub (`local`);
  every write sends the resourceVersion it read, so of two concurrent runs one wins and the
  other gets `StateConflict` ("state changed").
* `FileStore`: `.velapy/state/<namespace>/<app>.json`, written atomically (temporary file,
  fsync, rename) under an `fcntl` lock, with a generation counter playing the resourceVersion.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import gzip
import json
import os
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from velapy.compile.plan import group_of
from velapy.errors import ClusterError, Location
from velapy.execute.planfile import ObjectRef
from velapy.kube import ApiError, Client, ResourceType

STATE_API_VERSION = "velapy.dev/v1alpha1"
STATE_KIND = "RunState"
_CM = ResourceType("", "v1", "ConfigMap", "configmaps", True)
_INLINE_LIMIT = 256 * 1024  # larger state is gzipped into binaryData (ConfigMaps hold at most 1 MiB)


class StateConflict(ClusterError):
    """Another run changed the state since this one read it."""


@dataclass
class StepState:
    name: str
    type: str
    phase: str = "pending"  # pending | running | succeeded | failed | skipped | suspending
    message: str = ""
    reason: str = ""
    attempts: int = 0
    startedAt: str = ""
    finishedAt: str = ""
    clusters: dict[str, str] = field(default_factory=dict)  # cluster → phase of its placement


@dataclass
class Entry:
    """One object velapy applied (or is about to apply) for the app."""

    cluster: str
    apiVersion: str
    kind: str
    namespace: str
    name: str
    uid: str = ""
    resourceVersion: str = ""
    digest: str = ""
    state: str = "pending"  # pending (intent recorded) | applied | kept (left by GC policy)
    step: str = ""
    component: str = ""
    gc: dict[str, str] = field(default_factory=dict)  # strategy, propagation
    shared: bool = False
    readOnly: bool = False
    order: int = 0  # apply order within the plan (GC deletes in reverse)

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef(self.cluster, group_of(self.apiVersion), self.kind, self.namespace, self.name)


@dataclass
class RunState:
    name: str
    namespace: str
    planDigest: str = ""
    runId: str = ""
    generation: int = 0  # bumped by every write (the file store's resourceVersion)
    phase: str = "running"  # running | suspended | failed | succeeded | deleted | terminated
    mode: str = "apply"  # apply: a new plan; keep: the finished plan again (drift correction)
    suspend: bool = False
    suspendedStep: str = ""
    message: str = ""
    startedAt: str = ""
    finishedAt: str = ""
    updatedAt: str = ""
    executorVersion: str = ""
    source: dict[str, Any] = field(default_factory=dict)  # how to get the plan again (folder or app inputs)
    clusters: dict[str, dict[str, Any]] = field(default_factory=dict)  # kubeconfig, context, identity (no secrets)
    requestedBy: dict[str, Any] = field(default_factory=dict)  # the authenticated caller: user, groups, source
    store: str = ""  # where this state lives: hub | file (decided once, by configuration)
    writeId: str = ""  # a fresh id per write: a retried write whose answer was lost is recognised as its own
    steps: list[StepState] = field(default_factory=list)
    inventory: list[Entry] = field(default_factory=list)
    resourceVersion: str = ""  # the hub ConfigMap's, not serialised

    def step(self, name: str) -> StepState | None:
        return next((s for s in self.steps if s.name == name), None)

    def entry(self, ref: ObjectRef) -> Entry | None:
        return next((e for e in self.inventory if e.ref == ref), None)

    def to_json(self) -> str:
        data = asdict(self)
        data.pop("resourceVersion")
        return json.dumps({"apiVersion": STATE_API_VERSION, "kind": STATE_KIND, **data}, sort_keys=True,
                          separators=(",", ":"))

    @staticmethod
    def from_json(text: str, where: str) -> RunState:
        try:
            data = json.loads(text)
            if data.get("kind") != STATE_KIND:
                raise ValueError("not a RunState")
            data.pop("apiVersion", None)
            data.pop("kind", None)
            steps = [StepState(**s) for s in data.pop("steps", [])]
            inventory = [Entry(**e) for e in data.pop("inventory", [])]
            return RunState(**data, steps=steps, inventory=inventory)
        except (ValueError, TypeError, AttributeError) as exc:
            raise ClusterError(f"{where}: unreadable run state ({type(exc).__name__}); delete it to start afresh",
                               Location(file=where)) from None


class StateStore(Protocol):
    def describe(self) -> str: ...

    def load(self, namespace: str, name: str) -> RunState | None: ...

    def save(self, state: RunState) -> None:
        """Write `state` if nobody wrote since it was loaded (StateConflict otherwise); bumps its generation."""

    def remove(self, state: RunState) -> None: ...


def _conflict(state: RunState, where: str) -> StateConflict:
    return StateConflict(
        f"state changed: another velapy run for app {state.namespace}/{state.name} wrote its run state ({where}) "
        "since this one read it; nothing more was done by this run. See `velapy status`, then run again.")


class FileStore:
    """`<root>/<namespace>/<app>.json` with a generation counter, atomic writes and an fcntl lock."""

    def __init__(self, root: str | os.PathLike[str] = ".velapy/state") -> None:
        self.root = Path(root)

    def describe(self) -> str:
        return f"file {self.root}"

    def path(self, namespace: str, name: str) -> Path:
        return self.root / namespace / f"{name}.json"

    @contextlib.contextmanager
    def _locked(self, namespace: str, name: str) -> Iterator[None]:
        lock = self.root / namespace / f".{name}.lock"
        lock.parent.mkdir(parents=True, exist_ok=True)
        with open(lock, "a+") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def _read(self, namespace: str, name: str) -> RunState | None:
        p = self.path(namespace, name)
        try:
            text = p.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        return RunState.from_json(text, str(p))

    def load(self, namespace: str, name: str) -> RunState | None:
        if not self.path(namespace, name).exists():
            return None  # reading creates nothing
        with self._locked(namespace, name):
            return self._read(namespace, name)

    def save(self, state: RunState) -> None:
        with self._locked(state.namespace, state.name):
            current = self._read(state.namespace, state.name)
            if (current.generation if current else 0) != state.generation:
                raise _conflict(state, str(self.path(state.namespace, state.name)))
            state.generation += 1
            state.store = "file"
            state.writeId = uuid.uuid4().hex[:12]
            target = self.path(state.namespace, state.name)
            fd, tmp = tempfile.mkstemp(prefix=".state-", dir=target.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    fh.write(state.to_json())
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, target)
            except BaseException:
                state.generation -= 1
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise

    def remove(self, state: RunState) -> None:
        with self._locked(state.namespace, state.name), contextlib.suppress(FileNotFoundError):
            self.path(state.namespace, state.name).unlink()


class ConfigMapStore:
    """ConfigMap `velapy-<app>-state` in the app's namespace on the hub, locked by resourceVersion."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def describe(self) -> str:
        return f"ConfigMap on cluster {self.client.cluster}"

    @staticmethod
    def cm_name(name: str) -> str:
        return f"velapy-{name}-state"

    def load(self, namespace: str, name: str) -> RunState | None:
        cm = self.client.get(_CM, namespace, self.cm_name(name))
        if cm is None:
            return None
        where = f"ConfigMap {namespace}/{self.cm_name(name)} on cluster {self.client.cluster}"
        data = cm.get("data") or {}
        if "state.json" in data:
            text = str(data["state.json"])
        else:
            raw = (cm.get("binaryData") or {}).get("state.json.gz")
            if raw is None:
                raise ClusterError(f"{where}: holds no run state", Location(cluster=self.client.cluster))
            text = gzip.decompress(base64.b64decode(raw)).decode("utf-8")
        state = RunState.from_json(text, where)
        state.resourceVersion = str((cm.get("metadata") or {}).get("resourceVersion") or "")
        return state

    def _ensure_namespace(self, namespace: str) -> None:
        ns_rt = ResourceType("", "v1", "Namespace", "namespaces", False)
        if self.client.get(ns_rt, "", namespace) is None:
            try:
                self.client.create(ns_rt, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
            except ApiError as exc:
                if exc.status != 409:
                    raise

    def _own_write(self, state: RunState) -> bool:
        """Did the write of `state` commit although its answer was lost (and the retry was refused)?"""
        try:
            now = self.load(state.namespace, state.name)
        except (ApiError, ClusterError):
            return False
        if now is not None and now.writeId == state.writeId:
            state.resourceVersion = now.resourceVersion
            return True
        return False

    def save(self, state: RunState) -> None:
        state.generation += 1
        state.store = "hub"
        state.writeId = uuid.uuid4().hex[:12]
        text = state.to_json()
        cm: dict[str, Any] = {
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": self.cm_name(state.name), "namespace": state.namespace,
                         "labels": {"app.kubernetes.io/managed-by": "velapy", "velapy.dev/state-of": state.name}},
        }
        if len(text) > _INLINE_LIMIT:
            cm["binaryData"] = {"state.json.gz": base64.b64encode(gzip.compress(text.encode("utf-8"))).decode()}
        else:
            cm["data"] = {"state.json": text}
        try:
            if state.resourceVersion:
                cm["metadata"]["resourceVersion"] = state.resourceVersion
                out = self.client.replace(_CM, cm)
            else:
                self._ensure_namespace(state.namespace)
                out = self.client.create(_CM, cm)
        except ClusterError as exc:
            # a write that committed but whose answer was lost comes back as 409 on the retry (or as no answer)
            if (not isinstance(exc, ApiError) or exc.status in (409, 500, 503, 504)) and self._own_write(state):
                return
            state.generation -= 1
            if isinstance(exc, ApiError) and exc.status == 409:
                raise _conflict(state, f"ConfigMap {state.namespace}/{self.cm_name(state.name)} on cluster "
                                       f"{self.client.cluster}") from None
            raise
        except BaseException:
            state.generation -= 1
            raise
        state.resourceVersion = str((out.get("metadata") or {}).get("resourceVersion") or "")

    def remove(self, state: RunState) -> None:
        try:
            self.client.delete(_CM, state.namespace, self.cm_name(state.name))
        except ApiError as exc:
            if exc.status != 404:
                raise


__all__ = ["ConfigMapStore", "Entry", "FileStore", "RunState", "StateConflict", "StateStore", "StepState"]
