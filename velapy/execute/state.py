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
import hashlib
import json
import os
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, fields
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
    # ref → entry, built on first lookup; rebuilt when `inventory` was changed behind `add`/`drop`
    _index: dict[ObjectRef, Entry] = field(default_factory=dict, init=False, repr=False, compare=False)
    _indexed: int = field(default=-1, init=False, repr=False, compare=False)

    def step(self, name: str) -> StepState | None:
        return next((s for s in self.steps if s.name == name), None)

    def _lookup(self) -> dict[ObjectRef, Entry]:
        if self._indexed != len(self.inventory):
            index: dict[ObjectRef, Entry] = {}
            for e in self.inventory:
                index.setdefault(e.ref, e)  # the first of two entries for one object wins, as a scan would
            self._index, self._indexed = index, len(self.inventory)
        return self._index

    def entry(self, ref: ObjectRef) -> Entry | None:
        """The inventory entry of `ref` (a dict lookup: this runs once or twice per object)."""
        return self._lookup().get(ref)

    def add(self, e: Entry) -> None:
        """Append an entry to the inventory (and to the index)."""
        index = self._lookup()
        self.inventory.append(e)
        index.setdefault(e.ref, e)
        self._indexed = len(self.inventory)

    def drop(self, entries: Iterable[Entry]) -> None:
        """Remove these entries (by identity) from the inventory in one pass."""
        gone = {id(e) for e in entries}
        if gone:
            self.inventory = [e for e in self.inventory if id(e) not in gone]
            self._indexed = -1

    def to_dict(self) -> dict[str, Any]:
        """The serialised form (plain data; the steps' and entries' own dicts, not copies)."""
        data: dict[str, Any] = {"apiVersion": STATE_API_VERSION, "kind": STATE_KIND}
        for f in fields(self):
            if f.name not in _NOT_SERIALISED:
                data[f.name] = getattr(self, f.name)
        data["steps"] = [vars(s) for s in self.steps]
        data["inventory"] = [vars(e) for e in self.inventory]
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @staticmethod
    def from_json(text: str, where: str) -> RunState:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise _unreadable(where, exc) from None
        return RunState.from_data(data, where)

    @staticmethod
    def from_data(data: Any, where: str) -> RunState:
        """The state of `to_dict`'s form (a sharded state's header has `inventoryShards` instead of entries)."""
        try:
            if not isinstance(data, dict) or data.get("kind") != STATE_KIND:
                raise ValueError("not a RunState")
            data = dict(data)
            data.pop("apiVersion", None)
            data.pop("kind", None)
            data.pop("inventoryShards", None)
            steps = [StepState(**s) for s in data.pop("steps", [])]
            inventory = [Entry(**e) for e in data.pop("inventory", [])]
            return RunState(**data, steps=steps, inventory=inventory)
        except (ValueError, TypeError, AttributeError) as exc:
            raise _unreadable(where, exc) from None


def _unreadable(where: str, exc: Exception) -> ClusterError:
    return ClusterError(f"{where}: unreadable run state ({type(exc).__name__}); delete it to start afresh",
                        Location(file=where))


_NOT_SERIALISED = frozenset({"resourceVersion", "_index", "_indexed", "steps", "inventory"})


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
    """ConfigMap `velapy-<app>-state` in the app's namespace on the hub, locked by resourceVersion, and the
    inventory in shards beside it.

    A real API server refuses a ConfigMap over 1 MiB; a whole inventory in one would cap an app at some
    ten thousand objects. So, as KubeVela keeps one ResourceTracker per app and cluster, the header
    ConfigMap holds everything but the inventory, and each cluster's entries go to their own ConfigMaps
    `velapy-<app>-state-<hash of the cluster>-<part>` (at most SHARD_ENTRIES entries each, gzipped above
    256 KiB), labelled `velapy.dev/state-shard-of: <app>`.

    * A save writes the header first, with the resourceVersion it read: of two concurrent runs one wins,
      the other gets `StateConflict` before it wrote anything. Then only the shards whose content changed
      are written (each with its own resourceVersion: a run that lost the race in between gets
      `StateConflict` too), then shards no longer needed are deleted. So a step's state write costs one
      request per cluster whose entries changed, plus the header.
    * A load reads the header, then the shards it names with ONE labelled LIST (a GET each when the
      identity may not list ConfigMaps). The header, written first, names every shard its save may have
      written, so a save interrupted between the two loses nothing it had recorded.
    * A state written by an earlier velapy (the inventory inside the header) is read as ever and sharded
      by its next save.
    """

    def __init__(self, client: Client) -> None:
        self.client = client
        # (namespace, app) → shard name → (resourceVersion, sha256 of its content): what the hub holds
        self._shards: dict[tuple[str, str], dict[str, tuple[str, str]]] = {}

    def describe(self) -> str:
        return f"ConfigMap on cluster {self.client.cluster}"

    @staticmethod
    def cm_name(name: str) -> str:
        return f"velapy-{name}-state"

    @staticmethod
    def shard_name(name: str, cluster: str, part: int) -> str:
        tag = hashlib.sha256(cluster.encode("utf-8")).hexdigest()[:10]
        return f"velapy-{name}-state-{tag}-{part}"

    def _where(self, namespace: str, cm: str) -> str:
        return f"ConfigMap {namespace}/{cm} on cluster {self.client.cluster}"

    def load(self, namespace: str, name: str) -> RunState | None:
        cm = self.client.get(_CM, namespace, self.cm_name(name))
        if cm is None:
            return None
        where = self._where(namespace, self.cm_name(name))
        try:
            data = json.loads(_decode(cm, where, self.client.cluster))
        except ValueError as exc:
            raise _unreadable(where, exc) from None
        sharded = isinstance(data, dict) and "inventoryShards" in data
        state = RunState.from_data(data, where)
        state.resourceVersion = str((cm.get("metadata") or {}).get("resourceVersion") or "")
        known: dict[str, tuple[str, str]] = {}
        if sharded:
            listed = [str(n) for n in data.get("inventoryShards") or [] if isinstance(n, str)]
            rank = {n: i for i, n in enumerate(listed)}
            for shard in sorted(self._read_shards(namespace, name, listed), key=lambda c: rank[_name_of(c)]):
                meta = shard.get("metadata") or {}
                sname = _name_of(shard)
                swhere = self._where(namespace, sname)
                text = _decode(shard, swhere, self.client.cluster)
                try:
                    entries = json.loads(text).get("entries") or []
                    state.inventory.extend(Entry(**e) for e in entries)
                except (ValueError, TypeError, AttributeError) as exc:
                    raise _unreadable(swhere, exc) from None
                known[sname] = (str(meta.get("resourceVersion") or ""), _sha(text))
        self._shards[(namespace, name)] = known
        return state

    def _read_shards(self, namespace: str, name: str, listed: list[str]) -> list[dict[str, Any]]:
        """The shards the header names (it is written first, so it names every shard a save may have
        written; one that is absent was never written): one labelled LIST, or a GET each when the identity
        may not list ConfigMaps."""
        wanted = set(listed)
        try:
            found = self.client.list(_CM, namespace, f"{L_SHARD_OF}={name}")
        except ApiError as exc:
            if exc.status not in (403, 405):
                raise
            found = [cm for n in listed if (cm := self.client.get(_CM, namespace, n)) is not None]
        return [cm for cm in found if _name_of(cm) in wanted]

    def _ensure_namespace(self, namespace: str) -> None:
        ns_rt = ResourceType("", "v1", "Namespace", "namespaces", False)
        if self.client.get(ns_rt, "", namespace) is None:
            try:
                self.client.create(ns_rt, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
            except ApiError as exc:
                if exc.status != 409:
                    raise

    def _cm(self, state: RunState, cm_name: str, text: str, labels: dict[str, str]) -> dict[str, Any]:
        cm: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap",
                              "metadata": {"name": cm_name, "namespace": state.namespace, "labels": labels}}
        if len(text) > _INLINE_LIMIT:
            cm["binaryData"] = {"state.json.gz": base64.b64encode(gzip.compress(text.encode("utf-8"))).decode()}
        else:
            cm["data"] = {"state.json": text}
        return cm

    def _committed(self, namespace: str, cm_name: str, own: Callable[[str], bool]) -> dict[str, Any] | None:
        """The ConfigMap `cm_name` as the hub holds it, when `own` recognises its content as this write's."""
        try:
            cm = self.client.get(_CM, namespace, cm_name)
            return cm if cm is not None and own(_decode(cm, self._where(namespace, cm_name), self.client.cluster)) \
                else None
        except ClusterError:
            return None

    def _write(self, state: RunState, cm: dict[str, Any], rv: str, own: Callable[[str], bool]) -> dict[str, Any]:
        """PUT with `rv` (or POST when empty); StateConflict on 409. A write whose answer was lost (it committed,
        the retry was refused or never answered) is recognised by `own` on what the hub holds, and succeeds."""
        try:
            if rv:
                cm["metadata"]["resourceVersion"] = rv
                return self.client.replace(_CM, cm)
            return self.client.create(_CM, cm)
        except ClusterError as exc:
            # a write that committed but whose answer was lost comes back as 409 on the retry (or as no answer):
            # what the hub holds now tells whether it is this write
            if not isinstance(exc, ApiError) or exc.status in (409, 500, 503, 504):
                committed = self._committed(state.namespace, cm["metadata"]["name"], own)
                if committed is not None:
                    return committed
            if isinstance(exc, ApiError) and exc.status == 409:
                raise _conflict(state, self._where(state.namespace, cm["metadata"]["name"])) from None
            raise

    def shards(self, state: RunState) -> dict[str, str]:
        """Shard name → its content (JSON text): each cluster's entries, SHARD_ENTRIES at most per shard."""
        by_cluster: dict[str, list[Entry]] = {}
        for e in state.inventory:
            by_cluster.setdefault(e.cluster, []).append(e)
        out: dict[str, str] = {}
        for cluster, entries in by_cluster.items():
            for part, start in enumerate(range(0, len(entries), SHARD_ENTRIES)):
                chunk = entries[start:start + SHARD_ENTRIES]
                out[self.shard_name(state.name, cluster, part)] = json.dumps(
                    {"cluster": cluster, "entries": [vars(e) for e in chunk]}, sort_keys=True, separators=(",", ":"))
        return out

    def save(self, state: RunState) -> None:
        key = (state.namespace, state.name)
        shards = self.shards(state)
        header = state.to_dict()
        header.pop("inventory")
        header["inventoryShards"] = list(shards)  # in inventory order (of each cluster's first entry)
        state.generation += 1
        state.store = "hub"
        state.writeId = uuid.uuid4().hex[:12]  # this write's own id: recognised if its answer is lost
        header.update(generation=state.generation, store=state.store, writeId=state.writeId)
        labels = {"app.kubernetes.io/managed-by": "velapy", L_STATE_OF: state.name}
        cm = self._cm(state, self.cm_name(state.name), json.dumps(header, sort_keys=True, separators=(",", ":")),
                      labels)
        try:
            if not state.resourceVersion:
                self._ensure_namespace(state.namespace)
            out = self._write(state, cm, state.resourceVersion, _has_write_id(state.writeId))
        except BaseException:
            state.generation -= 1
            raise
        state.resourceVersion = str((out.get("metadata") or {}).get("resourceVersion") or "")
        known = self._shards.setdefault(key, {})
        shard_labels = {"app.kubernetes.io/managed-by": "velapy", L_SHARD_OF: state.name}
        for sname, text in shards.items():
            digest = _sha(text)
            rv, had = known.get(sname, ("", ""))
            if had == digest:
                continue  # this cluster's entries did not change
            written = self._write(state, self._cm(state, sname, text, shard_labels), rv, _has_digest(digest))
            known[sname] = (str((written.get("metadata") or {}).get("resourceVersion") or ""), digest)
        for sname in [n for n in known if n not in shards]:
            self._delete(state.namespace, sname)
            known.pop(sname)

    def _delete(self, namespace: str, cm_name: str) -> None:
        try:
            self.client.delete(_CM, namespace, cm_name)
        except ApiError as exc:
            if exc.status != 404:
                raise

    def remove(self, state: RunState) -> None:
        self._delete(state.namespace, self.cm_name(state.name))
        names = set(self._shards.pop((state.namespace, state.name), {}))
        try:  # and any a crashed save left behind
            names |= {_name_of(c) for c in self.client.list(_CM, state.namespace, f"{L_SHARD_OF}={state.name}")}
        except ApiError as exc:
            if exc.status not in (403, 405):
                raise
        for sname in sorted(names):
            self._delete(state.namespace, sname)


SHARD_ENTRIES = 2000  # entries per shard ConfigMap (~0.8 MB of JSON, far less gzipped: under the 1 MiB limit)
L_STATE_OF = "velapy.dev/state-of"
L_SHARD_OF = "velapy.dev/state-shard-of"


def _name_of(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


def _has_write_id(write_id: str) -> Callable[[str], bool]:
    def own(held: str) -> bool:
        try:
            data = json.loads(held)
        except ValueError:
            return False
        return isinstance(data, dict) and data.get("writeId") == write_id
    return own


def _has_digest(digest: str) -> Callable[[str], bool]:
    def own(held: str) -> bool:
        return _sha(held) == digest
    return own


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _decode(cm: dict[str, Any], where: str, cluster: str) -> str:
    data = cm.get("data") or {}
    if "state.json" in data:
        return str(data["state.json"])
    raw = (cm.get("binaryData") or {}).get("state.json.gz")
    if raw is None:
        raise ClusterError(f"{where}: holds no run state", Location(cluster=cluster))
    try:
        return gzip.decompress(base64.b64decode(raw)).decode("utf-8")
    except (ValueError, OSError, EOFError) as exc:
        raise _unreadable(where, exc) from None


__all__ = ["ConfigMapStore", "Entry", "FileStore", "RunState", "StateConflict", "StateStore", "StepState"]
