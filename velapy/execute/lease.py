"""One app + where its state lives → the run lease: one `apply` / `resume` / `delete` of an app at a time.

* With the state on the hub: a `coordination.k8s.io/v1` Lease `velapy-<app>-run` beside the state
  ConfigMap (the app's namespace on the hub), as Kubernetes leader election uses one:
  `holderIdentity` (the authenticated user, host and pid), `acquireTime`, `renewTime`,
  `leaseDurationSeconds`. Taking it is a create (or an update under the resourceVersion that was
  read), so of two runs exactly one gets it; the holder renews it every third of its duration
  while it runs, and clears the holder when it ends. A lease not renewed for its duration belongs
  to a run that died, and so does one whose holder ran on this host in a process that no longer
  exists (`kill -9`): either is taken over with a warning. `--steal-lease` takes a live one.
* With the state in a file: an exclusive `flock` on `<state-dir>/<ns>/.<app>.run`, held by the
  process for the run (the kernel releases it when the process dies, so it is never stale), with
  the holder written into the file for the message the next run shows.

A refused run (`LeaseHeld`, exit 3) names the holder and how long ago it started and last renewed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import re
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Protocol

from velapy.errors import ClusterError, Location
from velapy.kube import ApiError, Client, KubeError, ResourceType

LEASE = ResourceType("coordination.k8s.io", "v1", "Lease", "leases", True)
NS = ResourceType("", "v1", "Namespace", "namespaces", False)
DURATION = 30  # seconds without renewal after which a lease is stale (renewed every 10 s)


class LeaseHeld(ClusterError):
    """Another run of the same app holds the lease (exit 3, before any write)."""


def holder_text(user: str, pid: int | None = None) -> str:
    return f"{user} on {socket.gethostname()} pid {pid if pid is not None else os.getpid()}"


def _dead_here(holder: str) -> bool:
    """A holder `user on HOST pid N` of this host whose process no longer exists (a run killed with -9)."""
    m = re.fullmatch(r".* on (\S+) pid (\d+)", holder)
    if m is None or m.group(1) != socket.gethostname():
        return False
    try:
        os.kill(int(m.group(2)), 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _micro(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(text: str) -> dt.datetime | None:
    for fmt in ("%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ"):
        try:
            return dt.datetime.strptime(text, fmt).replace(tzinfo=dt.UTC)
        except ValueError:
            continue
    return None


def _ago(t: dt.datetime | None) -> str:
    if t is None:
        return "an unknown time"
    secs = max(0, int((_now() - t).total_seconds()))
    return f"{secs}s" if secs < 120 else f"{secs // 60}m" if secs < 7200 else f"{secs // 3600}h"


class RunLease(Protocol):
    def acquire(self) -> None: ...

    def release(self, *, remove: bool = False) -> None: ...

    def describe(self) -> str: ...


class HubLease:
    """The Lease beside the state ConfigMap on the hub."""

    def __init__(self, client: Client, namespace: str, app: str, holder: str, *, steal: bool = False,
                 warn: Callable[[str], None] = lambda _s: None, duration: int = DURATION) -> None:
        self.client = client
        self.namespace = namespace
        self.app = app
        self.holder = holder
        self.steal = steal
        self.warn = warn
        self.duration = duration
        self.lost = False
        self._rv = ""
        self._acquired = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @staticmethod
    def name_for(app: str) -> str:
        return f"velapy-{app}-run"

    @property
    def name(self) -> str:
        return self.name_for(self.app)

    def describe(self) -> str:
        return f"Lease {self.namespace}/{self.name} on cluster {self.client.cluster}"

    def _body(self, rv: str, holder: str, acquired: str, renewed: str) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": self.name, "namespace": self.namespace,
                                "labels": {"app.kubernetes.io/managed-by": "velapy", "velapy.dev/lease-of": self.app}}
        if rv:
            meta["resourceVersion"] = rv
        spec: dict[str, Any] = {"holderIdentity": holder, "leaseDurationSeconds": self.duration}
        if acquired:
            spec["acquireTime"] = acquired
        if renewed:
            spec["renewTime"] = renewed
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta, "spec": spec}

    def _held(self, live: dict[str, Any], why: str = "") -> LeaseHeld:
        spec = live.get("spec") or {}
        start = _parse(str(spec.get("acquireTime") or ""))
        renew = _parse(str(spec.get("renewTime") or ""))
        return LeaseHeld(
            f"app {self.namespace}/{self.app} is being applied by another run: {spec.get('holderIdentity')}, "
            f"started {_ago(start)} ago, last renewed {_ago(renew)} ago ({self.describe()}){why}; nothing was "
            "written by this run. Wait for it to finish, or, if you know it is gone, pass --steal-lease",
            Location(cluster=self.client.cluster))

    def _ensure_namespace(self) -> None:
        if self.client.get(NS, "", self.namespace) is None:
            try:
                self.client.create(NS, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.namespace}})
            except ApiError as exc:
                if exc.status != 409:
                    raise

    def acquire(self) -> None:
        now = _micro(_now())
        live = self.client.get(LEASE, self.namespace, self.name)
        if live is None:
            self._ensure_namespace()
            try:
                out = self.client.create(LEASE, self._body("", self.holder, now, now))
            except ApiError as exc:
                if exc.status != 409:
                    raise
                again = self.client.get(LEASE, self.namespace, self.name)
                if again is not None:
                    raise self._held(again) from None
                raise
        else:
            spec = live.get("spec") or {}
            holder = str(spec.get("holderIdentity") or "")
            renew = _parse(str(spec.get("renewTime") or ""))
            duration = spec.get("leaseDurationSeconds")
            limit = duration if isinstance(duration, int) and duration > 0 else self.duration
            stale = renew is None or (_now() - renew).total_seconds() > limit
            dead = bool(holder) and _dead_here(holder)
            stale = stale or dead
            if holder and holder != self.holder and not stale and not self.steal:
                raise self._held(live)
            if holder and holder != self.holder:
                why = ("its process is gone from this host" if dead else "was not renewed for " + _ago(renew)) \
                    if stale else "--steal-lease"
                self.warn(f"warning: taking over the run lease of app {self.namespace}/{self.app} from {holder} "
                          f"({why})")
            rv = str((live.get("metadata") or {}).get("resourceVersion") or "")
            try:
                out = self.client.replace(LEASE, self._body(rv, self.holder, now, now))
            except ApiError as exc:
                if exc.status != 409:
                    raise
                again = self.client.get(LEASE, self.namespace, self.name)
                raise self._held(again or live, " (it took the lease while this run did)") from None
        self._rv = str((out.get("metadata") or {}).get("resourceVersion") or "")
        self._acquired = now
        self._thread = threading.Thread(target=self._renew_loop, name="velapy-lease", daemon=True)
        self._thread.start()

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.duration / 3):
            with self._lock:
                if self._stop.is_set():
                    return
                try:
                    out = self.client.replace(LEASE, self._body(self._rv, self.holder, self._acquired,
                                                                _micro(_now())))
                    self._rv = str((out.get("metadata") or {}).get("resourceVersion") or "")
                except ApiError as exc:
                    if exc.status == 409:
                        self.lost = True
                        self.warn(f"warning: the run lease of app {self.namespace}/{self.app} was taken by another "
                                  "run")
                        return
                except KubeError:
                    continue  # try again at the next renewal; the lease stays ours until it expires

    def release(self, *, remove: bool = False) -> None:
        """Clear the holder (under the resourceVersion this run last wrote: a lease taken over meanwhile is
        left alone); `remove` also deletes the Lease (the app was deleted)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            if not self._rv or self.lost:
                return
            with contextlib.suppress(KubeError):
                out = self.client.replace(LEASE, self._body(self._rv, "", "", ""))
                if remove:
                    uid = str((out.get("metadata") or {}).get("uid") or "")
                    self.client.delete(LEASE, self.namespace, self.name, uid=uid)
            self._rv = ""


class FileLease:
    """An exclusive flock on `<root>/<ns>/.<app>.run`, held by this process for the run."""

    def __init__(self, root: str | os.PathLike[str], namespace: str, app: str, holder: str) -> None:
        self.path = Path(root) / namespace / f".{app}.run"
        self.namespace = namespace
        self.app = app
        self.holder = holder
        self._fh: IO[str] | None = None

    def describe(self) -> str:
        return f"lock file {self.path}"

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 (held open for the run)
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.seek(0)
            try:
                info = json.loads(fh.read() or "{}")
            except ValueError:
                info = {}
            fh.close()
            start = _parse(str(info.get("acquireTime") or ""))
            raise LeaseHeld(
                f"app {self.namespace}/{self.app} is being applied by another run: "
                f"{info.get('holderIdentity') or 'unknown'}, started {_ago(start)} ago (it holds {self.describe()}); "
                "nothing was written by this run. Wait for it to finish (a lock file is released when its process "
                "ends, so it is never stale)", Location(file=str(self.path))) from None
        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps({"holderIdentity": self.holder, "acquireTime": _micro(_now())}))
        fh.flush()
        self._fh = fh

    def release(self, *, remove: bool = False) -> None:
        del remove  # the lock file stays: removing it could race with the next run's lock
        if self._fh is not None:
            with contextlib.suppress(OSError):
                self._fh.truncate(0)
                fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None


def lease_state(client: Client, namespace: str, app: str) -> dict[str, Any] | None:
    """The Lease of `app` on the hub as read now (None when there is none)."""
    return client.get(LEASE, namespace, HubLease.name_for(app))


def lease_live(lease: dict[str, Any] | None) -> bool:
    """A lease with a holder that was renewed within its duration."""
    if lease is None:
        return False
    spec = lease.get("spec") or {}
    renew = _parse(str(spec.get("renewTime") or ""))
    duration = spec.get("leaseDurationSeconds")
    limit = duration if isinstance(duration, int) and duration > 0 else DURATION
    return bool(spec.get("holderIdentity")) and renew is not None and (_now() - renew).total_seconds() <= limit


def file_lease_live(root: str | os.PathLike[str], namespace: str, app: str) -> bool:
    path = Path(root) / namespace / f".{app}.run"
    if not path.exists():
        return False
    with open(path, "a+", encoding="utf-8") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    return False


__all__ = ["LEASE", "FileLease", "HubLease", "LeaseHeld", "RunLease", "file_lease_live", "holder_text",
           "lease_live", "lease_state"]
