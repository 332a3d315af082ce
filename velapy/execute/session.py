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
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from velapy.bundle import emit
from velapy.bundle.dryrun import dry_run_blocks, format_blocks
from velapy.bundle.layout import PLAN_FILE
from velapy.compile.plan import Plan, build_plan
from velapy.cue.engine import Evaluator
from velapy.errors import ClusterError, InputError, Location, VelapyError
from velapy.execute.access import AccessOptions, ClientPool, check_claim, resolve
from velapy.execute.hub import live_versions, read_hub_objects, uses_ref_objects
from velapy.execute.identity import Caller, authenticated_caller
from velapy.execute.lease import FileLease, HubLease, LeaseHeld, RunLease, holder_text
from velapy.execute.planfile import ClusterEntry, ExecPlan, load_plan_files, load_plan_folder
from velapy.execute.progress import Reporter
from velapy.execute.redact import Redactor
from velapy.execute.runner import Options, Report, Runner
from velapy.execute.state import ConfigMapStore, FileStore, RunState, StateStore
from velapy.kube import Access, ApiError, Client, KubeError, RetryPolicy, Unreachable
from velapy.kube.kubeconfig import default_kubeconfig
from velapy.load import redact
from velapy.load.clusters import HUB, Identity, load_inventory
from velapy.load.refobjects import HubObjects
from velapy.pipeline import Inputs, load, load_clusters, names_checked, open_evaluator, stream_names_checked

ClientFactory = Callable[[Access], Client]
_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")  # an Application's name (DNS-1123)


def default_factory(policy: RetryPolicy | None = None) -> ClientFactory:
    from velapy.kube.client import connect  # the kubernetes package is imported only when a cluster is used

    return lambda access: connect(access, policy)


@dataclass(frozen=True)
class RunHistory:
    """How a run is recorded in the app's revision history."""

    kind: str = "apply"  # apply | rollback | restart
    rollback_to: int = 0  # rollback: the revision whose plan runs
    restart_of: int = 0  # restart: the revision that runs again
    limit: int = 10  # --history-limit


@dataclass(frozen=True)
class Target:
    """APP as given: an Application file, an output folder, or an app name (with namespace)."""

    app: str
    inputs: Inputs  # -f, -d, --resources, -n, --clusters, --allow-unknown-parameters
    kubeconfig: str = ""
    as_user: str = ""
    as_groups: tuple[str, ...] = ()
    state_dir: str = ".velapy/state"
    import_state: bool = False  # move a local run state to the hub (when a hub is configured)
    origin: Mapping[str, Any] | None = None  # the run's recorded source when the plan is a kept revision

    @property
    def kind(self) -> str:
        """folder | app | name | missing (a path that does not exist)."""
        if os.path.isdir(self.app):
            # a folder without plan.yaml that is spelled like an app name is the app's name (an app called
            # like a folder of the current directory), not a folder to run
            if not os.path.isfile(os.path.join(self.app, PLAN_FILE)) and _NAME.fullmatch(self.app) \
                    and os.sep not in self.app:
                return "name"
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


def compile_live(target: Target, evaluator: Evaluator, factory: ClientFactory | None = None,
                 warn: Callable[[str], None] | None = None, *, stream: bool = False) -> tuple[Plan, str]:
    """Render an app file with what the live clusters hold: ref-objects read from the hub when no
    --resources folder is given, each cluster's live version where the inventory gives none.
    Returns the plan and (with `stream`) the `vela dry-run` stream of the same inputs."""
    inputs = target.inputs
    loaded = load(inputs, None, evaluator)
    live = LiveSources(target, factory or default_factory(), None)
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


def hub_note(target: Target) -> str:
    """Why there is no hub (for the message saying where the state goes)."""
    opts = target.access_options()
    inv = opts.inventory.get(HUB) if opts.inventory is not None else None
    file = (inv.kubeconfig if inv is not None and inv.kubeconfig else "") or opts.kubeconfig or default_kubeconfig()
    context = (inv.context if inv is not None and inv.context else "") or HUB
    return f"no hub: kubeconfig {file} has no usable context {context}"


def open_store(hub: Client | None, state_dir: str, reporter: Reporter | None, namespace: str, name: str,
               *, note: str = "", import_state: bool = False) -> StateStore:
    """Where the app's run state lives, decided by configuration and never by reachability: on the hub when
    a hub context is configured (a hub that does not answer stops the run before any write), else in the
    local file (said on every run). State found in both places is refused with the commands that resolve it."""
    files = FileStore(state_dir)
    if hub is None:
        if reporter is not None:
            reporter.say(f"run state: {files.path(namespace, name)} ({note or 'no hub context'}; a run from "
                         "another machine will not see it)")
        return files
    store = ConfigMapStore(hub)
    where = f"ConfigMap {namespace}/{ConfigMapStore.cm_name(name)} on cluster {hub.cluster}"
    try:
        on_hub = store.load(namespace, name)
    except Unreachable as exc:
        raise ClusterError(
            f"app {namespace}/{name}: its run state lives on the hub ({where}); the hub did not answer "
            f"({exc.diagnostics[0].message}); nothing was written", Location(cluster=hub.cluster)) from None
    except ApiError as exc:
        raise ClusterError(
            f"cluster {hub.cluster} (the hub): cannot read the run state of app {namespace}/{name}, kept in "
            f"{where}: HTTP {exc.status} {exc.reason}: {exc.server_message}",
            Location(cluster=hub.cluster)) from None
    path = files.path(namespace, name)
    if path.exists():
        local = files.load(namespace, name)
        if local is not None:
            if on_hub is None and import_state:
                local.resourceVersion = ""
                store.save(local)
                path.rename(path.with_name(path.name + ".imported"))
                if reporter is not None:
                    reporter.say(f"run state of app {namespace}/{name} moved from {path} to the hub ({where})")
                return store
            keep_hub = f"rm {shlex.quote(str(path))}"
            drop_hub = (f"kubectl --context {hub.cluster} -n {namespace} delete configmap "
                        f"{ConfigMapStore.cm_name(name)}")
            if on_hub is None:
                raise ClusterError(
                    f"app {namespace}/{name}: a hub is configured, so its run state lives on the hub ({where}), but "
                    f"it is in {path} (run {local.runId}, {local.phase}, updated {local.updatedAt}); nothing was "
                    "written. Move it to the hub: run the same command with --import-state "
                    f"(or, to forget it, `{keep_hub}`)")
            raise ClusterError(
                f"app {namespace}/{name}: run state in two places: {where} (run {on_hub.runId}, {on_hub.phase}, "
                f"updated {on_hub.updatedAt}) and {path} (run {local.runId}, {local.phase}, updated "
                f"{local.updatedAt}); nothing was written. Keep the hub's: `{keep_hub}`; keep the file's: "
                f"`{drop_hub}`, then run the same command with --import-state")
    return store


@dataclass
class Session:
    plan: ExecPlan
    pool: ClientPool
    store: StateStore
    target: Target
    caller: Caller | None = None  # the authenticated caller (SelfSubjectReview on the hub, else the kubeconfig)
    unreachable: dict[str, str] = field(default_factory=dict)  # inventory clusters no client could be made for

    def close(self) -> None:
        self.pool.close()


def _recorded(state: RunState) -> dict[str, ClusterEntry]:
    """The clusters a run state recorded (kubeconfig, context, identity), to reach them again."""
    out: dict[str, ClusterEntry] = {}
    for c, d in state.clusters.items():
        ident = d.get("identity") or {}
        out[c] = ClusterEntry(c, str(d.get("kubeconfig") or ""), str(d.get("context") or ""),
                              Identity(str(ident.get("user") or ""), tuple(ident.get("groups") or ()))
                              if ident else None)
    return out


def reach_inventory(pool: ClientPool, state: RunState | None, opts: AccessOptions, factory: ClientFactory) \
        -> dict[str, str]:
    """Clients for every cluster the state's inventory names that the plan does not (clusters that left the
    placement): the inventory (--clusters) first, else what the state recorded, else the kubeconfig.
    Returns {cluster: why it cannot be reached this way}."""
    if state is None:
        return {}
    extra = sorted({e.cluster for e in state.inventory} - set(pool.names()))
    if not extra:
        return {}
    recorded = _recorded(state)
    accesses: dict[str, Access] = {}
    problems: dict[str, str] = {}
    for c in extra:
        try:
            acc, _hub = resolve([c], {c: recorded[c]} if c in recorded else {}, None, opts)
            accesses.update(acc)
        except InputError as exc:
            problems[c] = exc.diagnostics[0].message
    problems.update(pool.add(accesses, factory))
    return problems


def open_session(target: Target, reporter: Reporter | None, factory: ClientFactory | None = None,
                 namespace: str = "") -> Session:
    """Plan + clients (every kubeconfig checked first) + the identity check + state store."""
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
            state = open_store(hub, target.state_dir, None, ns, target.app, note=hub_note(target)).load(ns, target.app)
        finally:
            if hub is not None:
                hub.close()
        if state is None:
            where = f"the hub's ConfigMaps and {target.state_dir}" if hub_acc is not None else \
                f"{target.state_dir}; {hub_note(target)}"
            folder = f" ({target.app}/ is a folder without {PLAN_FILE}, so it was read as an app's name)" \
                if os.path.isdir(target.app) else ""
            raise InputError(f"app {ns}/{target.app}: no run state (looked in {where}){folder}; give the app file "
                             "or its output folder")
        if state.source.get("kind") == "revision":  # a rollback or restart: its plan is a kept revision
            plan = _revision_plan(target, factory, reporter, ns, int(state.source.get("number") or 0))
            target = replace(target, origin=dict(state.source))
        else:
            plan, rendered = _from_source(state.source, f"{ns}/{target.app}", target, reporter, factory)
            if rendered is not None:
                target = rendered
    else:
        plan = load_target_plan(target, reporter, factory)
    return session_for(plan, target, reporter, factory)


def _revision_plan(target: Target, factory: ClientFactory, reporter: Reporter | None, namespace: str,
                   number: int) -> ExecPlan:
    from velapy.execute.history import revisions_for

    _acc, hub_acc = resolve([], {}, None, target.access_options())
    hub = factory(hub_acc) if hub_acc is not None else None
    try:
        store = open_store(hub, target.state_dir, reporter, namespace, target.app)
        return revisions_for(store).plan(namespace, target.app, number)
    finally:
        if hub is not None:
            hub.close()


def session_for(plan: ExecPlan, target: Target, reporter: Reporter | None, factory: ClientFactory | None = None) \
        -> Session:
    """Clients for `plan`'s clusters (every kubeconfig checked first) + its state store."""
    factory = factory or default_factory()
    opts = target.access_options()
    used = list(dict.fromkeys(o.cluster for o in plan.objects()))  # clusters with objects, in plan order
    seen = set(used)
    names = [n for n in plan.clusters if n in seen]
    names += [n for n in used if n not in set(names)]
    accesses, hub_acc = resolve(names, plan.clusters, plan.identity, opts)
    # the app's claim against the identities the operator or the platform chose: no request yet
    check_claim(plan.identity, accesses, None, known_only=True)
    try:
        caller = authenticated_caller(hub_acc, next(iter(accesses.values()), None), factory)
    except Unreachable as exc:
        assert hub_acc is not None
        raise ClusterError(
            f"app {plan.app_namespace}/{plan.app_name}: its run state lives on the hub (cluster {hub_acc.cluster}); "
            f"the hub did not answer ({exc.diagnostics[0].message}); nothing was written",
            Location(cluster=hub_acc.cluster)) from None
    check_claim(plan.identity, accesses, caller.identity)
    pool = ClientPool(accesses, hub_acc, factory)
    try:
        store = open_store(pool.hub, target.state_dir, reporter, plan.app_namespace, plan.app_name,
                           note=hub_note(target), import_state=target.import_state)
        unreachable = reach_inventory(pool, store.load(plan.app_namespace, plan.app_name), opts, factory)
    except (KubeError, InputError):
        pool.close()
        raise
    return Session(plan, pool, store, target, caller, unreachable)


def _lease(session: Session, reporter: Reporter, steal: bool) -> RunLease:
    user = session.caller.identity.user if session.caller is not None else "unknown"
    holder = holder_text(user)
    if isinstance(session.store, ConfigMapStore):
        return HubLease(session.store.client, session.plan.app_namespace, session.plan.app_name, holder,
                        steal=steal, warn=reporter.say)
    return FileLease(session.target.state_dir, session.plan.app_namespace, session.plan.app_name, holder)


def _acquire(lease: RunLease) -> None:
    try:
        lease.acquire()
    except LeaseHeld:
        raise
    except KubeError as exc:
        raise ClusterError(f"cannot take the run lease ({lease.describe()}): {exc.diagnostics[0].message}; nothing "
                           "was written", exc.diagnostics[0].location) from None


def _audit(session: Session) -> dict[str, Any]:
    if session.caller is None:
        return {}
    ident = session.caller.identity
    return {"user": ident.user, "groups": list(ident.groups), "source": session.caller.source}


def run(session: Session, options: Options, reporter: Reporter, *, resume: bool = False,
        resume_command: str = "", history: RunHistory | None = None) -> Report:
    """Run (or resume) the session's plan; each run that starts is recorded as a revision
    (`velapy.execute.history`), and a `velapy suspend` from elsewhere is honoured between steps."""
    from velapy.execute.control import ControlStore
    from velapy.execute.history import Recorder

    source = session.target.origin or _source(session.target)
    runner = Runner(session.plan, session.pool, session.store, options, reporter, resume_command=resume_command,
                    source=source)
    runner.requested_by = _audit(session)
    runner.unreachable = dict(session.unreachable)
    if options.dry_run:
        return runner.run(resume=resume)
    ns, name = session.plan.app_namespace, session.plan.app_name
    lease = _lease(session, reporter, options.steal_lease)
    _acquire(lease)  # before the first write; LeaseHeld (exit 3) names the holder
    try:
        runner.suspend_requested = ControlStore(session.store).check(ns, name)
        if not runner.start(resume):
            runner.report.state = runner.state
            return runner.report
        rec = Recorder(session, history or RunHistory(), source, reporter)
        if runner.quiet:  # the finished plan again: a revision only once it records something (drift corrected)
            runner.before_first_write = lambda: rec.begin(runner.state)
        else:
            rec.begin(runner.state)
        try:
            return runner.proceed()
        finally:
            rec.end(runner.state)
    finally:
        lease.release()


def delete(session: Session, reporter: Reporter, *, steal_lease: bool = False) -> Report:
    runner = Runner(session.plan, session.pool, session.store, Options(), reporter, source=_source(session.target))
    runner.requested_by = _audit(session)
    runner.unreachable = dict(session.unreachable)
    lease = _lease(session, reporter, steal_lease)
    _acquire(lease)
    report: Report | None = None
    try:
        report = runner.delete_all()
        return report
    finally:
        lease.release(remove=report is not None and report.phase == "deleted")


def deletion_plan(session: Session) -> dict[str, list[tuple[str, str]]]:
    """What `delete` would do, per cluster: ("delete" | "keep", object), from the recorded inventory."""
    state = read_state(session)
    ident = f"{session.plan.app_namespace}/{session.plan.app_name}"
    if state is None:
        raise InputError(f"app {ident} has no run state in {session.store.describe()}: velapy applied nothing "
                         "for it that it could delete")
    out: dict[str, list[tuple[str, str]]] = {}
    for e in sorted(state.inventory, key=lambda e: (e.cluster, e.order)):
        keep = e.gc.get("strategy") == "never" or e.readOnly
        why = " (read-only)" if e.readOnly else (" (garbage-collect: never)" if keep else "")
        out.setdefault(e.cluster, []).append(("keep" if keep else "delete", e.ref.describe() + why))
    return out


def read_state(session: Session) -> RunState | None:
    return session.store.load(session.plan.app_namespace, session.plan.app_name)


def redactor_for(plan: ExecPlan) -> Redactor:
    return Redactor.from_objects(o.obj for o in plan.objects())


__all__ = [
    "HUB",
    "ClientFactory",
    "ClusterEntry",
    "RunHistory",
    "Session",
    "Target",
    "default_factory",
    "delete",
    "deletion_plan",
    "load_target_plan",
    "open_session",
    "read_state",
    "redactor_for",
    "run",
    "session_for",
]
