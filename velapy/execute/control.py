"""An app's name + its run state → run control: terminate, suspend (a request a running run in
another process honours at its next step boundary), and whether a run is active.

A suspend request is not written into the run state (the running process holds that state's
resourceVersion and would fail on its next write with "state changed"); it sits next to it: the
ConfigMap `velapy-<app>-control` on the hub, else `<state-dir>/<namespace>/<app>.control.json`.
It names the run it is for, so a stale request never stops a later run; the run that honours it
removes it.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from velapy.errors import InputError
from velapy.execute.runner import now
from velapy.execute.state import ConfigMapStore, FileStore, RunState, StateStore
from velapy.kube import ApiError, Client, ResourceType

_CM = ResourceType("", "v1", "ConfigMap", "configmaps", True)
ACTIVE = ("running", "suspended")


def active_run(state: RunState | None) -> str:
    """Why another run of the app is active ('' when none is): the one place that decides it.

    Today a run is active while its state says running (a process is at work, or died: then
    `velapy terminate --force` ends it) or suspended (waiting at a gate for `resume`)."""
    if state is None:
        return ""
    who = f"run {state.runId} (started {state.startedAt})"
    if state.phase == "running":
        return f"{who} is in progress"
    if state.phase == "suspended":
        return f"{who} waits at step {state.suspendedStep}"
    return ""


@dataclass(frozen=True)
class Request:
    action: str  # suspend
    runId: str
    by: str
    at: str


class ControlStore:
    """Where suspend requests for an app wait for its running run."""

    def __init__(self, store: StateStore) -> None:
        self.store = store

    def _cm(self) -> Client | None:
        return self.store.client if isinstance(self.store, ConfigMapStore) else None

    def _file(self, namespace: str, name: str) -> Path:
        root = self.store.root if isinstance(self.store, FileStore) else Path(".velapy/state")
        return root / namespace / f"{name}.control.json"

    @staticmethod
    def cm_name(name: str) -> str:
        return f"velapy-{name}-control"

    def put(self, namespace: str, name: str, req: Request) -> None:
        text = json.dumps(req.__dict__, sort_keys=True)
        client = self._cm()
        if client is None:
            path = self._file(namespace, name)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, path)
            return
        body = {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": self.cm_name(name), "namespace": namespace,
                             "labels": {"app.kubernetes.io/managed-by": "velapy", "velapy.dev/control-of": name}},
                "data": {"request.json": text}}
        client.apply(_CM, body, force=True)

    def get(self, namespace: str, name: str) -> Request | None:
        client = self._cm()
        text = ""
        if client is None:
            with contextlib.suppress(FileNotFoundError):
                text = self._file(namespace, name).read_text(encoding="utf-8")
        else:
            cm = client.get(_CM, namespace, self.cm_name(name))
            text = str(((cm or {}).get("data") or {}).get("request.json") or "")
        if not text:
            return None
        try:
            data: Mapping[str, Any] = json.loads(text)
            return Request(str(data["action"]), str(data["runId"]), str(data.get("by") or ""),
                           str(data.get("at") or ""))
        except (ValueError, KeyError, TypeError):
            return None

    def clear(self, namespace: str, name: str) -> None:
        client = self._cm()
        if client is None:
            with contextlib.suppress(FileNotFoundError):
                self._file(namespace, name).unlink()
            return
        try:
            client.delete(_CM, namespace, self.cm_name(name))
        except ApiError as exc:
            if exc.status != 404:
                raise

    def check(self, namespace: str, name: str) -> Callable[[str], str]:
        """For the runner: at a step boundary, whether run `run_id` is asked to suspend (by whom);
        the request is used up."""

        def asked(run_id: str) -> str:
            req = self.get(namespace, name)
            if req is None or req.action != "suspend" or req.runId != run_id:
                return ""
            self.clear(namespace, name)
            return req.by or "someone"

        return asked


def request_suspend(store: StateStore, state: RunState, by: str) -> str:
    """Ask the running run of the app to stop at its next step boundary; what was done, as a sentence."""
    ident = f"{state.namespace}/{state.name}"
    if state.phase == "suspended":
        raise InputError(f"app {ident}: its run is already suspended at step {state.suspendedStep} "
                         "(`velapy resume` continues it)")
    if state.phase != "running":
        raise InputError(f"app {ident}: no run in progress (phase {state.phase}): nothing to suspend")
    ControlStore(store).put(state.namespace, state.name, Request("suspend", state.runId, by, now()))
    return (f"{ident}: asked run {state.runId} to suspend at its next step boundary; `velapy resume` "
            "continues it")


def terminate(store: StateStore, state: RunState, by: str, *, force: bool = False) -> str:
    """End a waiting or failed run: the next apply starts afresh; nothing is deleted."""
    ident = f"{state.namespace}/{state.name}"
    if state.phase == "running" and not force:
        raise InputError(f"app {ident}: run {state.runId} is in progress (started {state.startedAt}): "
                         "`velapy suspend` it and terminate it once it stopped, or give --force if the "
                         "process running it is gone")
    if state.phase not in ("suspended", "failed", "running"):
        raise InputError(f"app {ident}: its run is {state.phase}: only a waiting or failed run can be terminated")
    was = state.phase + (f" at step {state.suspendedStep}" if state.phase == "suspended" else "")
    for st in state.steps:
        if st.phase in ("running", "suspending", "pending"):
            st.phase = "skipped" if st.phase == "pending" else "failed"
            st.message = st.message or f"terminated by {by}"
    state.phase, state.suspend, state.suspendedStep = "terminated", False, ""
    state.message = f"terminated by {by} (was {was})"
    state.finishedAt = state.updatedAt = now()
    store.save(state)
    ControlStore(store).clear(state.namespace, state.name)
    return f"{ident}: run {state.runId} terminated (was {was}); nothing was deleted, the next apply starts afresh"


__all__ = ["ACTIVE", "ControlStore", "Request", "active_run", "request_suspend", "terminate"]
