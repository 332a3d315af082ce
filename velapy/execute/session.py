"""What the user named (an app file, an output folder, or an app's name) + flags → a plan, clients, a
state store, and the run, status or delete on them. The CLI calls only this module of the executor.

An app file is rendered in memory (the compiler's `pipeline.compile_app` + `emit.render_folder`)
and then loaded exactly like a folder, so both paths run the same checked plan. An app's name
(`velapy resume shop -n demo`) is looked up in the run state, which records where its plan came
from (a folder, or the app file and its render options).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from velapy.bundle import emit
from velapy.bundle.dryrun import dry_run_blocks, format_blocks
from velapy.compile.plan import Plan, build_plan
from velapy.cue.engine import Evaluator
from velapy.errors import ClusterError, InputError, Location, VelapyError
from velapy.execute.access import AccessOptions, ClientPool, resolve
from velapy.execute.hub import live_versions, read_hub_objects, uses_ref_objects
from velapy.execute.planfile import ClusterEntry, ExecPlan, load_plan_files, load_plan_folder
from velapy.execute.progress import Reporter
from velapy.execute.redact import Redactor
from velapy.execute.runner import Options, Report, Runner
from velapy.execute.state import ConfigMapStore, FileStore, RunState, StateStore
from velapy.kube import Access, ApiError, Client, KubeError, RetryPolicy, Unreachable
from velapy.load import redact
from velapy.load.application import Application
from velapy.load.clusters import HUB, Identity, load_inventory
from velapy.load.refobjects import HubObjects
from velapy.oam import A_GROUP, A_USERNAME
from velapy.pipeline import Inputs, load, load_clusters, names_checked, open_evaluator, stream_names_checked

ClientFactory = Callable[[Access], Client]
_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")  # an Application's name (DNS-1123)


def default_factory(policy: RetryPolicy | None = None) -> ClientFactory:
    from velapy.kube.client import connect  # the kubernetes package is imported only when a cluster is used

    return lambda access: connect(access, policy)


@dataclass(frozen=True)
class Target:
    """APP as given: an Application file, an output folder, or an app name (with namespace)."""

    app: str
    inputs: Inputs  # -f, -d, --resources, -n, --clusters, --allow-unknown-parameters
    kubeconfig: str = ""
    as_user: str = ""
    as_groups: tuple[str, ...] = ()
    state_dir: str = ".velapy/state"

    @property
    def kind(self) -> str:
        """folder | app | name | missing (a path that does not exist)."""
        if os.path.isdir(self.app):
            return "folder"
        if os.path.isfile(self.app):
            return "app"
        return "name" if _NAME.fullmatch(self.app) else "missing"

    def access_options(self) -> AccessOptions:
        inv = load_inventory(self.inputs.clusters) if self.inputs.clusters else None
        return AccessOptions(self.kubeconfig, self.as_user, self.as_groups, inv)


class LiveSources:
    """Clients made on demand for rendering from live clusters (ref-objects, versions); closed after."""

    def __init__(self, target: Target, factory: ClientFactory, identity: Identity | None) -> None:
        self.opts = target.access_options()
        self.factory = factory
        self.identity = identity
        self.clients: dict[str, Client | None] = {}

    def get(self, name: str) -> Client | None:
        if name not in self.clients:
            try:
                acc, _hub = resolve([name], {}, self.identity, self.opts)
                self.clients[name] = self.factory(acc[name])
            except InputError:
                self.clients[name] = None
        return self.clients[name]

    def close(self) -> None:
        for c in self.clients.values():
            if c is not None:
                c.close()


def _app_identity(app: Application) -> Identity | None:
    user = app.annotations.get(A_USERNAME, "")
    groups = tuple(g for g in app.annotations.get(A_GROUP, "").split(",") if g)
    return Identity(user, groups) if user or groups else None


def compile_live(target: Target, evaluator: Evaluator, factory: ClientFactory | None = None,
                 warn: Callable[[str], None] | None = None, *, stream: bool = False) -> tuple[Plan, str]:
    """Render an app file with what the live clusters hold: ref-objects read from the hub when no
    --resources folder is given, each cluster's live version where the inventory gives none.
    Returns the plan and (with `stream`) the `vela dry-run` stream of the same inputs."""
    inputs = target.inputs
    loaded = load(inputs, None, evaluator)
    live = LiveSources(target, factory or default_factory(), _app_identity(loaded.app))
    try:
        hub = loaded.hub
        if hub is None and uses_ref_objects(loaded.app):
            hub = read_hub_objects(loaded.app, live.get)
        inventory = live_versions(load_clusters(inputs), live.get, warn or (lambda _s: None))
    finally:
        live.close()
    try:
        plan = names_checked(build_plan(loaded.app, loaded.registry, evaluator, inventory, hub), loaded.app)
        if not stream:
            return plan, ""
        warnings, blocks = dry_run_blocks(loaded.app, loaded.registry, evaluator, hub,
                                          inventory if inputs.clusters else None)
        stream_names_checked(blocks, loaded.app)
    except VelapyError as exc:  # the Secrets read live are inputs too: no message may quote them
        raise redact.scrub_error(exc, _hub_secret_values(hub)) from None
    return plan, format_blocks(warnings, blocks)


def _hub_secret_values(hub: HubObjects | None) -> set[str]:
    """The values of the Secrets among the hub objects read live (as stored, and decoded)."""
    out: set[str] = set()
    for obj in (o for objs in (hub.objects.values() if hub is not None else ()) for o in objs):
        for v in redact.secret_strings(obj):
            out.add(v)
            with contextlib.suppress(binascii.Error, UnicodeDecodeError, ValueError):
                out.add(base64.b64decode(v, validate=True).decode("utf-8"))
    return out


def _render(target: Target, reporter: Reporter | None = None, factory: ClientFactory | None = None) -> ExecPlan:
    with open_evaluator() as ev:
        plan, _stream = compile_live(target, ev, factory, reporter.say if reporter is not None else None)
    files = emit.render_folder(plan)
    return load_plan_files(files, "")


def _source(target: Target) -> dict[str, Any]:
    if target.kind == "folder":
        return {"kind": "folder", "path": os.path.abspath(target.app)}
    i = target.inputs
    ab = os.path.abspath
    return {"kind": "app", "path": ab(target.app), "files": [ab(f) for f in i.files],
            "definitions": [ab(d) for d in i.definition_dirs], "resources": ab(i.resources) if i.resources else "",
            "clusters": ab(i.clusters) if i.clusters else "", "namespace": i.namespace,
            "allowUnknownParameters": i.allow_unknown_parameters}


def _from_source(source: Mapping[str, Any], ident: str, target: Target, reporter: Reporter | None,
                 factory: ClientFactory) -> tuple[ExecPlan, Target | None]:
    kind = source.get("kind")
    path = str(source.get("path") or "")
    if kind == "folder":
        return load_plan_folder(path), None
    if kind == "app":
        inputs = Inputs(path, tuple(source.get("files") or ()), tuple(source.get("definitions") or ()),
                        str(source.get("resources") or ""), str(source.get("namespace") or ""),
                        str(source.get("clusters") or ""), bool(source.get("allowUnknownParameters")))
        if not os.path.isfile(path):
            raise InputError(f"app {ident}: its run came from {path}, which is gone; give the app file or folder")
        again = replace(target, app=path, inputs=inputs)
        return _render(again, reporter, factory), again
    raise InputError(f"app {ident}: its run state does not say where its plan came from; give the app file or folder")


def load_target_plan(target: Target, reporter: Reporter | None = None, factory: ClientFactory | None = None) \
        -> ExecPlan:
    if target.kind == "folder":
        return load_plan_folder(target.app)
    if target.kind == "app":
        return _render(target, reporter, factory)
    raise InputError(f"{target.app}: no such file or folder (an app name needs a run state: give -n NAMESPACE)",
                     Location(file=target.app))


def open_store(hub: Client | None, state_dir: str, reporter: Reporter | None, namespace: str, name: str) \
        -> StateStore:
    """The hub ConfigMap store when the hub answers, else the local file store."""
    files = FileStore(state_dir)
    if hub is None:
        return files
    store = ConfigMapStore(hub)
    try:
        store.load(namespace, name)
    except Unreachable as exc:
        if reporter is not None:
            reporter.say(f"warning: the hub is unreachable ({exc.diagnostics[0].message}); run state goes to "
                         f"{files.path(namespace, name)}")
        return files
    except ApiError as exc:
        raise ClusterError(
            f"cluster {hub.cluster} (the hub): cannot read the run state of app {namespace}/{name}, kept in ConfigMap "
            f"{namespace}/{ConfigMapStore.cm_name(name)}: HTTP {exc.status} {exc.reason}: {exc.server_message}",
            Location(cluster=hub.cluster)) from None
    return store


@dataclass
class Session:
    plan: ExecPlan
    pool: ClientPool
    store: StateStore
    target: Target

    def close(self) -> None:
        self.pool.close()


def open_session(target: Target, reporter: Reporter | None, factory: ClientFactory | None = None,
                 namespace: str = "") -> Session:
    """Plan + clients (every kubeconfig checked first) + state store."""
    factory = factory or default_factory()
    if target.kind == "missing":
        raise InputError(f"{target.app}: no such file or folder (give an Application file, a folder written by "
                         "`velapy render -o`, or an app's name with -n)", Location(file=target.app))
    opts = target.access_options()
    if target.kind == "name":
        ns = namespace or target.inputs.namespace or "default"
        _acc, hub_acc = resolve([], {}, None, opts)
        hub = factory(hub_acc) if hub_acc is not None else None
        try:
            state = open_store(hub, target.state_dir, reporter, ns, target.app).load(ns, target.app)
        finally:
            if hub is not None:
                hub.close()
        if state is None:
            raise InputError(f"app {ns}/{target.app}: no run state (looked in the hub's ConfigMaps and "
                             f"{target.state_dir}); give the app file or its output folder")
        plan, rendered = _from_source(state.source, f"{ns}/{target.app}", target, reporter, factory)
        if rendered is not None:
            target = rendered
    else:
        plan = load_target_plan(target, reporter, factory)
    names = [n for n in plan.clusters if any(o.cluster == n for o in plan.objects())]
    names += [o.cluster for o in plan.objects() if o.cluster not in names]
    accesses, hub_acc = resolve(names, plan.clusters, plan.identity, opts)
    pool = ClientPool(accesses, hub_acc, factory)
    try:
        store = open_store(pool.hub, target.state_dir, reporter, plan.app_namespace, plan.app_name)
    except KubeError:
        pool.close()
        raise
    return Session(plan, pool, store, target)


def run(session: Session, options: Options, reporter: Reporter, *, resume: bool = False,
        resume_command: str = "") -> Report:
    runner = Runner(session.plan, session.pool, session.store, options, reporter, resume_command=resume_command,
                    source=_source(session.target))
    return runner.run(resume=resume)


def delete(session: Session, reporter: Reporter) -> Report:
    runner = Runner(session.plan, session.pool, session.store, Options(), reporter, source=_source(session.target))
    return runner.delete_all()


def read_state(session: Session) -> RunState | None:
    return session.store.load(session.plan.app_namespace, session.plan.app_name)


def redactor_for(plan: ExecPlan) -> Redactor:
    return Redactor.from_objects(o.obj for o in plan.objects())


__all__ = [
    "HUB",
    "ClientFactory",
    "ClusterEntry",
    "Session",
    "Target",
    "default_factory",
    "delete",
    "load_target_plan",
    "open_session",
    "read_state",
    "redactor_for",
    "run",
]
