"""APP (a file, a folder or a name) + flags → the operator's commands on its run: history,
terminate, suspend, restart, rollback, and `ls` over every app with run state.

Each opens the app's state store without rendering anything (`open_app`), checks the run it is
about, and returns what it did; restart and rollback then run a kept revision's plan through the
same workflow as `apply` (`session.run`: canary first, gates, health waits).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from velapy.errors import ClusterError, InputError, Location
from velapy.execute import control, history
from velapy.execute.access import resolve
from velapy.execute.progress import Reporter
from velapy.execute.runner import Options, Report
from velapy.execute.session import (
    ClientFactory,
    RunHistory,
    Session,
    Target,
    default_factory,
    open_store,
    run,
    session_for,
)
from velapy.execute.state import ConfigMapStore, FileStore, RunState, StateStore
from velapy.kube import Access, KubeError, ResourceType

_CM = ResourceType("", "v1", "ConfigMap", "configmaps", True)


@dataclass
class App:
    namespace: str
    name: str
    store: StateStore
    revisions: history.RevisionStore
    hub: Access | None
    state: RunState | None

    @property
    def ident(self) -> str:
        return f"{self.namespace}/{self.name}"

    def need_state(self) -> RunState:
        if self.state is None:
            raise InputError(f"app {self.ident} has no run state in {self.store.describe()}: velapy never ran it "
                             "there (check the name, -n NAMESPACE, and the hub's kubeconfig)")
        return self.state

    def who(self) -> str:
        w = history.who_ran(self.hub, {})
        caller = str(w.get("caller") or os.environ.get("USER") or "someone")
        user = str(w.get("user") or "")
        return f"{caller} as {user}" if user and user != caller else caller

    def current(self, revs: list[history.Revision]) -> history.Revision | None:
        state = self.need_state()
        return next((r for r in revs if r.runId == state.runId), None)


@contextmanager
def open_app(target: Target, factory: ClientFactory | None = None) -> Iterator[App]:
    """The app's state store (the hub's ConfigMaps, else the file store) and its state, nothing rendered."""
    from velapy.execute.status import app_identity

    factory = factory or default_factory()
    if target.kind == "missing":
        raise InputError(f"{target.app}: no such file or folder (give an Application file, a folder written by "
                         "`velapy render -o`, or an app's name with -n)", Location(file=target.app))
    namespace, name, who = app_identity(target)
    _none, hub_acc = resolve([], {}, who, target.access_options())
    hub = factory(hub_acc) if hub_acc is not None else None
    try:
        store = open_store(hub, target.state_dir, None, namespace, name)
        yield App(namespace, name, store, history.revisions_for(store), hub_acc, store.load(namespace, name))
    finally:
        if hub is not None:
            hub.close()


def history_rows(target: Target, factory: ClientFactory | None = None) -> list[dict[str, Any]]:
    with open_app(target, factory) as app:
        revs = app.revisions.list(app.namespace, app.name)
        if app.state is None and not revs:
            app.need_state()
        return history.history_data(revs, app.state.runId if app.state else "")


def terminate(target: Target, *, force: bool = False, factory: ClientFactory | None = None) -> str:
    with open_app(target, factory) as app:
        state = app.need_state()
        said = control.terminate(app.store, state, app.who(), force=force)
        history.set_phase(app.revisions, state, "terminated")
        return said


def suspend(target: Target, factory: ClientFactory | None = None) -> str:
    with open_app(target, factory) as app:
        return control.request_suspend(app.store, app.need_state(), app.who())


@dataclass(frozen=True)
class Chosen:
    """A kept revision about to run again, and the session it runs in."""

    number: int
    session: Session


def _session(app: App, target: Target, number: int, rev: history.Revision, reporter: Reporter | None,
             factory: ClientFactory | None) -> Session:
    plan = app.revisions.plan(app.namespace, app.name, number)
    if (plan.app_namespace, plan.app_name) != (app.namespace, app.name):
        raise ClusterError(f"revision {number} of app {app.ident} holds the plan of app "
                           f"{plan.app_namespace}/{plan.app_name}; refusing it")
    origin = {"kind": "revision", "number": number, "path": rev.source}
    name_target = replace(target, app=app.name, inputs=replace(target.inputs, namespace=app.namespace),
                          origin=origin)
    return session_for(plan, name_target, reporter, factory)


def choose_rollback(target: Target, to: int | None, reporter: Reporter | None,
                    factory: ClientFactory | None = None) -> Chosen:
    """The revision a rollback applies (default: the last succeeded one before the current) and its session.
    Refused while another run of the app is active."""
    with open_app(target, factory) as app:
        state = app.need_state()
        busy = control.active_run(state)
        if busy:
            raise InputError(f"app {app.ident}: {busy}; a rollback would race it: `velapy terminate "
                             f"{app.name} -n {app.namespace}` first")
        revs = app.revisions.list(app.namespace, app.name)
        cur = app.current(revs)
        if to is None:
            before = [r for r in revs if r.phase == "succeeded" and r.planDigest != state.planDigest
                      and (cur is None or r.number < cur.number)]
            if not before:
                raise InputError(f"app {app.ident}: no succeeded revision before the current one to roll back to "
                                 "(see `velapy history`; name one with --to)")
            rev = before[-1]
        else:
            rev = history.find(revs, to, app.ident)
        if not rev.objects:
            raise InputError(f"app {app.ident}: revision {rev.number} kept no plan (too large for a hub object); "
                             "apply its app file instead")
        return Chosen(rev.number, _session(app, target, rev.number, rev, reporter, factory))


def choose_restart(target: Target, reporter: Reporter | None, factory: ClientFactory | None = None) -> Chosen:
    """The current revision, set to run again from its first step (its run is ended first)."""
    with open_app(target, factory) as app:
        state = app.need_state()
        if state.phase == "running":
            raise InputError(f"app {app.ident}: {control.active_run(state)}; `velapy suspend` it first")
        revs = app.revisions.list(app.namespace, app.name)
        cur = app.current(revs)
        if cur is None:
            raise InputError(f"app {app.ident}: its current run {state.runId} has no revision in the history "
                             f"({app.revisions.describe()}); apply the app file instead")
        session = _session(app, target, cur.number, cur, reporter, factory)
        if state.phase != "terminated":
            state.phase, state.message = "terminated", f"restarted by {app.who()}"
            app.store.save(state)
        return Chosen(cur.number, session)


def rerun(chosen: Chosen, options: Options, reporter: Reporter, how: RunHistory, resume_command: str) -> Report:
    try:
        return run(chosen.session, options, reporter, resume_command=resume_command, history=how)
    finally:
        chosen.session.close()


# ----------------------------------------------------------------------------------------------
# ls


def _states(store: StateStore, namespace: str) -> list[RunState]:
    if isinstance(store, ConfigMapStore):
        cms = store.client.list(_CM, namespace, "velapy.dev/state-of")
        out = []
        for cm in cms:
            meta = cm.get("metadata") or {}
            label = str((meta.get("labels") or {}).get("velapy.dev/state-of") or "")
            if label and meta.get("name") == ConfigMapStore.cm_name(label):
                st = store.load(str(meta.get("namespace") or namespace), label)
                if st is not None:
                    out.append(st)
        return out
    assert isinstance(store, FileStore)
    out = []
    roots = [store.root / namespace] if namespace else sorted(p for p in store.root.glob("*") if p.is_dir())
    for folder in roots:
        for f in sorted(folder.glob("*.json")):
            if not f.name.endswith(".control.json"):
                st = store.load(folder.name, f.stem)
                if st is not None:
                    out.append(st)
    return out


def list_apps(target: Target, namespace: str, factory: ClientFactory | None = None) -> dict[str, Any]:
    """Every app with run state on the hub (else in the state folder) in `namespace` ('' = all)."""
    factory = factory or default_factory()
    _none, hub_acc = resolve([], {}, None, target.access_options())
    hub = factory(hub_acc) if hub_acc is not None else None
    try:
        store = open_store(hub, target.state_dir, None, namespace or "default", "-")
        try:
            states = _states(store, namespace)
        except KubeError as exc:
            raise ClusterError(f"cannot list the apps' run state on {store.describe()}: "
                               f"{exc.diagnostics[0].message}") from None
        revs = history.revisions_for(store)
        apps = []
        for st in sorted(states, key=lambda s: (s.namespace, s.name)):
            mine = revs.list(st.namespace, st.name)
            cur = next((r for r in mine if r.runId == st.runId), None)
            clusters = sorted({c for s in st.steps for c in s.clusters} | {e.cluster for e in st.inventory})
            apps.append({"namespace": st.namespace, "name": st.name, "phase": st.phase,
                         "waitingAt": st.suspendedStep, "clusters": clusters,
                         "revision": cur.number if cur else 0, "lastRun": st.updatedAt or st.startedAt,
                         "who": cur.who_text() if cur else ""})
        return {"stateStore": store.describe(), "apps": apps}
    finally:
        if hub is not None:
            hub.close()


def format_apps(data: Mapping[str, Any], fmt: str = "table") -> str:
    from velapy.deflib import format_table
    from velapy.load.yamlio import dump_yaml

    if fmt == "json":
        return json.dumps(dict(data), indent=2, sort_keys=True) + "\n"
    if fmt == "yaml":
        return dump_yaml(dict(data))
    rows = [[a["namespace"], a["name"], a["phase"], a["waitingAt"] or "-", ",".join(a["clusters"]),
             str(a["revision"] or "-"), a["lastRun"], a["who"] or "-"] for a in data["apps"]]
    if not rows:
        return f"no apps with run state in {data['stateStore']}\n"
    return format_table(["NAMESPACE", "NAME", "PHASE", "WAITING AT", "CLUSTERS", "REVISION", "LAST RUN", "WHO"],
                        rows)


__all__ = ["App", "Chosen", "choose_restart", "choose_rollback", "format_apps", "history_rows", "list_apps",
           "open_app", "rerun", "suspend", "terminate"]
