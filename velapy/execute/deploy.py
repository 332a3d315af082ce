"""One deploy step's placement (a cluster and its objects) → preflight, server-side apply, health.

Per placement, in this order, so that a cluster that cannot take the step gets no write at all:

1. preflight: every kind is served (discovery; kinds of CRDs the plan creates first are
   exempt), every namespace exists or is created by the plan (or `--create-namespaces`), every
   existing object is owned by this app (or may be taken over / shared), `read-only` objects
   exist, and the identity may write: a server-side dry-run of each object that changes;
2. the caller records the intent (run-state inventory) — see `runner`;
3. apply: server-side apply with field manager `velapy`, CRDs → Namespaces → the rest, objects
   whose live copy already holds everything skipped; components wait for the components they
   depend on to be healthy first (KubeVela's dependsOn inside a deploy step);
4. health: poll until every object is healthy, or the step's deadline passes.

Errors name the cluster, the user, the verb, the resource and namespace/name.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from velapy.execute.objects import (
    A_SHARED_BY,
    L_APP,
    L_APP_NS,
    Health,
    apply_rank,
    contains,
    desired,
    field_path,
    health,
    owner,
    same_digest,
    same_object,
    shared_by,
    stored_form,
    unchanged,
)
from velapy.execute.planfile import ObjectRef, PlanObject
from velapy.kube import FIELD_MANAGER, ApiError, Client, KubeError, NotServed, ResourceType, Unreachable
from velapy.load.clusters import Identity

NS_TYPE = ResourceType("", "v1", "Namespace", "namespaces", False, ("create", "get", "patch"))


@dataclass(frozen=True)
class DeployOptions:
    app: str
    namespace: str
    keep: bool = False  # re-applying the finished plan (drift correction, KubeVela's state keep)
    take_over: bool = False
    force_conflicts: bool = False
    create_namespaces: bool = False
    dry_run: bool = False
    poll_interval: float = 1.0
    crd_wait: float = 30.0
    created_namespaces: frozenset[tuple[str, str]] = frozenset()  # (cluster, ns) the plan creates

    @property
    def manager(self) -> str:
        return app_manager(self.namespace, self.app)


@dataclass
class Item:
    """One object of a placement through the phases."""

    obj: PlanObject
    rt: ResourceType | None = None
    live: dict[str, Any] | None = None
    want: dict[str, Any] | None = None
    action: str = "apply"  # apply | skip (unchanged) | keep (apply-once *) | read (read-only) | share | deferred
    result: dict[str, Any] | None = None
    health: Health | None = None
    shared: bool = False
    adopt: bool = False  # taken over from no application: velapy takes its fields too (force)
    probe: bool = False  # applied from the same digest but stored differently: the server's dry run decides
    lost: str = ""  # claimed by another app (or someone) while this run applied it: who


@dataclass
class Outcome:
    cluster: str
    ok: bool = True
    problems: list[str] = field(default_factory=list)
    items: list[Item] = field(default_factory=list)
    applied: int = 0
    unchanged: int = 0
    namespaces: list[str] = field(default_factory=list)  # created by --create-namespaces
    unreachable: bool = False
    reason: str = ""

    def fail(self, text: str, reason: str = "") -> None:
        self.ok = False
        self.problems.append(text)
        if reason and not self.reason:
            self.reason = reason


def app_manager(namespace: str, app: str) -> str:
    """The field manager of one app: server-side apply itself then reports another app's fields as conflicts."""
    return f"{FIELD_MANAGER}/{namespace}/{app}"


def own_conflict(exc: ApiError, manager: str) -> bool:
    """A 409 whose every conflict is with this app's own fields: the legacy manager `velapy` (before managers
    were per app) or this app's manager in an Update entry. Taking those over is a migration, never a theft."""
    conflicts = [c for c in exc.causes if "conflict" in c.type.lower()]
    return exc.status == 409 and bool(conflicts) and all(c.manager in (FIELD_MANAGER, manager) for c in conflicts)


def apply_as(client: Client, rt: ResourceType, obj: Mapping[str, Any], manager: str, *, force: bool = False,
             dry_run: bool = False) -> dict[str, Any]:
    """Server-side apply as `manager`; fields held only by this app's older managers are taken over."""
    try:
        return client.apply(rt, obj, force=force, dry_run=dry_run, manager=manager)
    except ApiError as exc:
        if force or not own_conflict(exc, manager):
            raise
        return client.apply(rt, obj, force=True, dry_run=dry_run, manager=manager)


def who(identity: Identity | None) -> str:
    if identity is None or not (identity.user or identity.groups):
        return "the kubeconfig's user"
    text = f"user {identity.user}" if identity.user else "the kubeconfig's user"
    if identity.groups:
        text += f" (groups {', '.join(identity.groups)})"
    return text


def describe_error(exc: KubeError, client: Client, verb: str, rt: ResourceType | None, namespace: str,
                   name: str, kind: str = "") -> str:
    """One line naming cluster, identity, verb, resource, namespace/name and the HTTP status."""
    res = (f"{rt.plural}{'.' + rt.group if rt.group else ''}" if rt is not None else kind)
    target = f"{kind or (rt.kind if rt else '')} {namespace + '/' if namespace else ''}{name}".strip()
    if isinstance(exc, ApiError):
        immutable = [c.field for c in exc.causes if "immutable" in c.message or "are forbidden" in c.message]
        if exc.status == 422 and immutable:
            paths = ", ".join(json.dumps(f) for f in immutable)
            return (f"cluster {client.cluster}: {verb} {target}: HTTP 422 the API server will not change "
                    f"{' and '.join(immutable)} of an existing {kind or 'object'} ({exc.server_message}); to replace "
                    f"the object instead, give it a resource-update policy with recreateFields: [{paths}] (velapy "
                    "then deletes and recreates it)")
        if exc.status == 403 and any(c.type == "NamespaceTerminating" for c in exc.causes):
            return (f"cluster {client.cluster}: {verb} {target}: namespace {namespace} is being deleted "
                    "(Terminating) and takes no new objects; wait until it is gone, then apply again "
                    f"(HTTP 403 {exc.server_message})")
        if exc.status == 403 and impersonation_denied(exc, client.identity):
            return (f"cluster {client.cluster}: the kubeconfig's user cannot impersonate {who(client.identity)}: "
                    f"{exc.server_message}")
        if exc.status == 403:
            ns = f" in namespace {namespace}" if namespace else ""
            return (f"cluster {client.cluster}: forbidden: {who(client.identity)} may not {verb} {res}{ns} "
                    f"({target}): HTTP 403 {exc.server_message}")
        if exc.status == 409 and exc.causes and any(c.type.startswith("FieldManagerConflict") or "conflict"
                                                    in c.type.lower() for c in exc.causes):
            fields = ", ".join(f"{c.field} ({c.message})" if c.message else c.field for c in exc.causes)
            return (f"cluster {client.cluster}: {verb} {target}: HTTP 409 field manager conflict on {fields}; "
                    "another manager owns these fields with other values (pass --force-conflicts to take them)")
        return f"cluster {client.cluster}: {verb} {target}: HTTP {exc.status} {exc.reason}: {exc.server_message}"
    return f"{exc.diagnostics[0].message}" + (f" ({verb} {target})" if target else "")


def impersonation_denied(exc: ApiError, identity: Identity | None) -> bool:
    """A 403 from the impersonation filter: the Status's details name the user or a group being
    impersonated (kind users / groups), not the object the request was about."""
    if identity is None or exc.status != 403:
        return False
    kind, name = exc.details
    return (kind == "users" and name == identity.user) or (kind == "groups" and name in identity.groups)


class ClusterRollout:
    """Runs one cluster's share of a deploy step."""

    def __init__(self, client: Client, objects: Sequence[PlanObject], opts: DeployOptions,
                 depends: Mapping[str, tuple[str, ...]], say: Callable[[str], None],
                 working: Callable[[str], None]) -> None:
        self.client = client
        self.opts = opts
        self.depends = depends
        self.say = say
        self.working = working
        ordered = sorted(enumerate(objects), key=lambda t: (apply_rank(t[1].ref.group, t[1].kind), t[0]))
        self.items = [Item(o) for _i, o in ordered]
        self.out = Outcome(client.cluster, items=self.items)
        self.cancel = threading.Event()  # the runner's: set on Ctrl-C

    # ------------------------------------------------------------------------------------------
    def _error(self, exc: KubeError, verb: str, item: Item | None = None, rt: ResourceType | None = None,
               namespace: str = "", name: str = "") -> None:
        if item is not None:
            rt, namespace, name = item.rt, item.obj.namespace, item.obj.name
        kind = item.obj.kind if item is not None else (rt.kind if rt else "")
        self.out.fail(describe_error(exc, self.client, verb, rt, namespace, name, kind),
                      "Unreachable" if isinstance(exc, Unreachable) else "")
        if isinstance(exc, Unreachable):
            self.out.unreachable = True

    def preflight(self) -> Outcome:
        c, opts = self.client, self.opts
        crd_kinds: set[tuple[str, str]] = set()
        for it in self.items:
            if it.obj.ref.group == "apiextensions.k8s.io" and it.obj.kind == "CustomResourceDefinition":
                spec = it.obj.obj.get("spec") or {}
                crd_kinds.add((str(spec.get("group") or ""), str((spec.get("names") or {}).get("kind") or "")))
        # kinds
        for it in self.items:
            try:
                it.rt = c.resource(it.obj.api_version, it.obj.kind)
            except NotServed:
                if (it.obj.ref.group, it.obj.kind) in crd_kinds:
                    it.action = "deferred"
                    continue
                self.out.fail(f"cluster {c.cluster}: no resource type {it.obj.api_version}/{it.obj.kind} in cluster "
                              f"{c.cluster} ({it.obj.ref.describe()}); install its CRD first")
            except KubeError as exc:
                self._error(exc, "discover", it)
                return self.out
        if not self.out.ok:
            return self.out
        # live objects: one LIST per (kind, namespace) shared by several objects, a GET for the rest
        self._read_live()
        if not self.out.ok:
            return self.out
        needed = sorted({it.obj.namespace for it in self.items if it.obj.namespace and it.live is None
                         and (it.rt is None or it.rt.namespaced)})
        planned_ns = {it.obj.name for it in self.items if it.obj.kind == "Namespace" and it.obj.ref.group == ""}
        missing: list[str] = []
        for ns in needed:
            if ns in planned_ns or (c.cluster, ns) in opts.created_namespaces:
                continue
            try:
                if c.get(NS_TYPE, "", ns) is None:
                    missing.append(ns)
            except KubeError as exc:
                self._error(exc, "get", rt=NS_TYPE, name=ns)
                return self.out
        if missing and not opts.create_namespaces:
            for ns in missing:
                self.out.fail(f"cluster {c.cluster}: namespace {ns} does not exist and the plan does not create it "
                              "(create it, add a Namespace object to the app, or pass --create-namespaces)")
            return self.out
        self.out.namespaces = missing
        # ownership, policies, what to write
        me = (opts.namespace, opts.app)
        for it in self.items:
            if it.rt is None:
                continue
            o = it.obj
            ns = o.namespace if it.rt.namespaced else ""
            rules = o.rules
            if rules.get("readOnly"):
                if it.live is None:
                    self.out.fail(f"cluster {c.cluster}: {o.kind} ({o.name}) is marked as read-only but does not "
                                  f"exist{' in namespace ' + ns if ns else ''}")
                it.action = "read"
                continue
            sharers: list[str] = []
            if it.live is not None:
                own = owner(it.live)
                if own != me:
                    if own is None:
                        if not (rules.get("takeOver") or opts.take_over):
                            self.out.fail(f"cluster {c.cluster}: {o.ref.describe()} exists but is not managed by app "
                                          f"{opts.namespace}/{opts.app} (it has no {L_APP} label); add a take-over "
                                          "policy for it or pass --take-over to adopt it")
                            continue
                        it.adopt = True
                    elif rules.get("sharedResource"):
                        it.action = "share"
                        it.shared = True
                        continue
                    else:
                        self.out.fail(f"cluster {c.cluster}: {o.ref.describe()} is managed by other application "
                                      f"{own[0]}/{own[1]}; velapy will not change it")
                        continue
                if rules.get("sharedResource"):
                    sharers = shared_by(it.live)
            if rules.get("sharedResource"):
                it.shared = True
                tag = f"{opts.namespace}/{opts.app}"
                if tag not in sharers:
                    sharers.append(tag)
            tracking = f"{opts.namespace}/{opts.app}:{o.ref.group}/{o.kind}:{ns}/{o.name}@{c.cluster}"
            it.want = desired(o.obj, app=opts.app, namespace=opts.namespace, digest=o.digest, tracking=tracking,
                              namespaced=it.rt.namespaced, live=it.live, rules=rules, keep=opts.keep,
                              shared_by=",".join(sharers))
            if it.want is None:
                it.action = "keep"
            elif unchanged(stored_form(it.want), it.live):
                it.action = "skip"
            elif same_digest(it.want, it.live):
                it.probe = True  # canonical quantities, defaults: only the server can tell whether it would change
            elif it.live is not None and _must_recreate(rules, it.want, it.live):
                it.action = "recreate"
        if not self.out.ok:
            return self.out
        # may the identity write? server-side dry runs where they tell something (see `_probes`)
        for it in self._probes(missing):
            assert it.rt is not None and it.want is not None
            try:
                trial = apply_as(c, it.rt, self._claimed(it), opts.manager, force=self._force(it), dry_run=True)
                if it.probe and it.live is not None and same_object(trial, it.live):
                    it.action = "skip"  # the server's own answer: applying it again would change nothing
            except ApiError as exc:
                if exc.status == 404 and it.obj.namespace in planned_ns:
                    continue  # the namespace comes with this step
                if exc.status == 409 and (it.live is None or it.adopt) and self._claimed_by_other(it):
                    continue
                self._error(exc, "patch", it)
            except KubeError as exc:
                self._error(exc, "patch", it)
        return self.out

    def _read_live(self) -> None:
        """Each item's live object (None: not there): `read_live`'s LISTs, then a GET for what they left."""
        c = self.client
        wanted = [it for it in self.items if it.rt is not None]
        known = read_live(c, [(it.obj.ref, it.obj.api_version) for it in wanted])
        for it in wanted:
            assert it.rt is not None
            if it.obj.ref in known:
                it.live = known[it.obj.ref]
                continue
            try:
                it.live = c.get(it.rt, it.obj.namespace if it.rt.namespaced else "", it.obj.name)
            except KubeError as exc:
                self._error(exc, "get", it)

    def _probes(self, missing: Sequence[str]) -> list[Item]:
        """The items to dry-run before any write: every object applied from the same digest that the server
        stores differently (`Item.probe`: its dry-run answer decides whether it is unchanged), every object
        another field manager co-owns (a field conflict is possible: the dry run finds it, unless conflicts
        are forced), and one object per (kind, namespace, create or update, forced or not) to prove the
        identity may write there. An object velapy alone manages
        cannot conflict, so a second one of the same kind and namespace would only repeat the same answer.
        (RBAC rules narrowed by resourceNames and per-object admission refusals then show at the apply.)"""
        out: list[Item] = []
        proved: set[tuple[str, str, str, bool, bool]] = set()
        for it in self.items:
            if it.action != "apply" or it.rt is None or it.want is None:
                continue
            if it.obj.namespace in missing and it.rt.namespaced:
                continue  # its namespace is created first; the apply itself will tell
            force = self._force(it)
            key = (it.rt.group, it.rt.plural, it.obj.namespace if it.rt.namespaced else "", it.live is None, force)
            if it.probe or (it.live is not None and not force and foreign_managers(it.live, self.opts.manager)):
                # same digest but stored differently (only its own dry run tells whether it changed), or a
                # field conflict is possible; its dry run proves its group's write access too
                out.append(it)
                proved.add(key)
                continue
            if key not in proved:
                proved.add(key)
                out.append(it)
        return out

    # ------------------------------------------------------------------------------------------
    def _levels(self) -> list[list[Item]]:
        """Items grouped so that a component comes after the components it depends on."""
        comps = list(dict.fromkeys(it.obj.component for it in self.items))
        level: dict[str, int] = {}

        def depth(comp: str, seen: tuple[str, ...] = ()) -> int:
            if comp in level:
                return level[comp]
            deps = [d for d in self.depends.get(comp, ()) if d in comps and d not in seen]
            level[comp] = 1 + max((depth(d, (*seen, comp)) for d in deps), default=-1)
            return level[comp]

        for comp in comps:
            depth(comp)
        # CRDs and Namespaces always go first, whatever their component
        out: dict[int, list[Item]] = {}
        for it in self.items:
            lv = -1 if apply_rank(it.obj.ref.group, it.obj.kind) < 2 else level.get(it.obj.component, 0)
            out.setdefault(lv, []).append(it)
        return [out[k] for k in sorted(out)]

    def apply(self, deadline: float) -> Outcome:
        c, opts = self.client, self.opts
        for ns in self.out.namespaces:
            try:
                c.apply(NS_TYPE, {"apiVersion": "v1", "kind": "Namespace", "metadata": {
                    "name": ns, "annotations": {"velapy.dev/created-for": f"{opts.namespace}/{opts.app}"}}})
                self.say(f"  {c.cluster}: created namespace {ns}")
            except KubeError as exc:
                self._error(exc, "create", rt=NS_TYPE, name=ns)
                return self.out
        for group in self._levels():
            for it in group:
                if not self._apply_one(it):
                    return self.out
            if not self.wait(group, deadline):
                return self.out
        return self.out

    def _apply_one(self, it: Item) -> bool:
        c, opts = self.client, self.opts
        o = it.obj
        if it.action == "deferred":
            it.rt = self._wait_served(o)
            if it.rt is None:
                return False
            ns = o.namespace if it.rt.namespaced else ""
            tracking = f"{opts.namespace}/{opts.app}:{o.ref.group}/{o.kind}:{ns}/{o.name}@{c.cluster}"
            it.want = desired(o.obj, app=opts.app, namespace=opts.namespace, digest=o.digest, tracking=tracking,
                              namespaced=it.rt.namespaced, live=None, rules=o.rules, keep=opts.keep)
            it.action = "apply"
        if it.action == "share":
            return self._share(it)
        if it.action == "recreate" and not self._delete_for_recreate(it):
            return False
        if it.action not in ("apply", "recreate") or it.want is None or it.rt is None:
            if it.action in ("skip", "keep", "read"):
                self.out.unchanged += 1
            return True
        self.working(f"  {c.cluster}: applying {o.ref.describe()}")
        try:
            it.result = apply_as(c, it.rt, self._claimed(it), opts.manager, force=self._force(it))
        except ApiError as exc:
            if exc.status == 409 and (it.live is None or it.adopt) and self._claimed_by_other(it):
                return False
            self._error(exc, "patch", it)
            return False
        except KubeError as exc:
            self._error(exc, "patch", it)
            return False
        self.out.applied += 1
        if o.kind == "CustomResourceDefinition":
            c.refresh_discovery()
        return True

    def _force(self, it: Item) -> bool:
        """Force only on an object preflight saw (never on one it did not: a concurrent creation by another
        app must come back as a conflict, not be overwritten)."""
        return it.live is not None and (self.opts.force_conflicts or it.adopt)

    def _claimed(self, it: Item) -> dict[str, Any]:
        """What to apply: an object taken over from no app only if it is still what preflight read
        (its resourceVersion as precondition), so two apps cannot both adopt it."""
        assert it.want is not None
        if not it.adopt or it.live is None:
            return it.want
        rv = (it.live.get("metadata") or {}).get("resourceVersion")
        return {**it.want, "metadata": {**(it.want.get("metadata") or {}), "resourceVersion": rv}} if rv else it.want

    def _claimed_by_other(self, it: Item) -> bool:
        """After a 409 on an object this run creates or adopts: did someone claim it meanwhile? (then say who)"""
        assert it.rt is not None
        c, o = self.client, it.obj
        try:
            now = c.get(it.rt, o.namespace if it.rt.namespaced else "", o.name)
        except KubeError:
            return False
        me = (self.opts.namespace, self.opts.app)
        if now is None or owner(now) == me:
            return False
        own = owner(now)
        it.lost = f"{own[0]}/{own[1]}" if own else "someone else"
        what = f"is managed by other application {it.lost}" if own else "was created by someone else"
        self.out.fail(f"cluster {c.cluster}: {o.ref.describe()} {what}: it claimed the object while this run was "
                      "applying it; velapy did not change it and does not record it as this app's", "Conflict")
        return True

    def _delete_for_recreate(self, it: Item) -> bool:
        """resource-update recreateFields: delete the live object (its uid as precondition) and wait until it
        is gone, so that the apply creates it anew."""
        assert it.rt is not None and it.live is not None
        c, o = self.client, it.obj
        ns = o.namespace if it.rt.namespaced else ""
        uid = str((it.live.get("metadata") or {}).get("uid") or "")
        self.working(f"  {c.cluster}: recreating {o.ref.describe()} (a recreateFields path changed)")
        try:
            c.delete(it.rt, ns, o.name, uid=uid, propagation="Background")
            end = time.monotonic() + self.opts.crd_wait
            while c.get(it.rt, ns, o.name) is not None:
                if time.monotonic() >= end:
                    self.out.fail(f"cluster {c.cluster}: {o.ref.describe()} was deleted to be recreated but is "
                                  f"still there after {self.opts.crd_wait:g}s")
                    return False
                time.sleep(min(0.5, self.opts.poll_interval))
        except KubeError as exc:
            self._error(exc, "delete", it)
            return False
        self.say(f"  {c.cluster}: deleted {o.ref.describe()} to recreate it (resource-update recreateFields)")
        return True

    def _wait_served(self, o: PlanObject) -> ResourceType | None:
        end = time.monotonic() + self.opts.crd_wait
        while True:
            self.client.refresh_discovery()
            try:
                return self.client.resource(o.api_version, o.kind)
            except NotServed:
                if time.monotonic() >= end:
                    self.out.fail(f"cluster {self.client.cluster}: {o.api_version}/{o.kind} is still not served "
                                  f"{self.opts.crd_wait:g}s after its CRD was applied")
                    return None
                time.sleep(min(0.5, self.opts.poll_interval))
            except KubeError as exc:
                self._error(exc, "discover", rt=None, name=o.name)
                return None

    def _share(self, it: Item) -> bool:
        """A shared resource owned by another app: only add this app to its shared-by list."""
        assert it.live is not None and it.rt is not None
        tag = f"{self.opts.namespace}/{self.opts.app}"
        sharers = shared_by(it.live)
        if tag in sharers:
            self.out.unchanged += 1
            return True
        meta = it.live.get("metadata") or {}
        patch = {"metadata": {"resourceVersion": meta.get("resourceVersion"),
                              "annotations": {A_SHARED_BY: ",".join([*sharers, tag])}}}
        try:
            it.result = self.client.merge_patch(it.rt, it.obj.namespace if it.rt.namespaced else "", it.obj.name,
                                                patch)
        except KubeError as exc:
            self._error(exc, "patch", it)
            return False
        self.out.applied += 1
        return True

    def wait(self, items: Sequence[Item], deadline: float) -> bool:
        """Poll until every item is healthy; False (with the reason recorded) when one fails or time runs out."""
        c = self.client
        pending = [it for it in items if it.rt is not None]
        first = True
        polls = 0
        while True:
            still: list[Item] = []
            for it in pending:
                assert it.rt is not None
                obj = it.result if first and it.result is not None else it.live if first and it.action != "apply" \
                    else None
                if obj is None:
                    try:
                        obj = c.get(it.rt, it.obj.namespace if it.rt.namespaced else "", it.obj.name)
                    except KubeError as exc:
                        self._error(exc, "get", it)
                        return False
                if obj is None:
                    if self.opts.dry_run:
                        continue
                    it.health = Health(False, False, "not found")
                    still.append(it)
                    continue
                it.health = health(obj)
                it.result = it.result or obj
                if it.health.failed:
                    self.out.fail(f"cluster {c.cluster}: {it.obj.ref.describe()} is unhealthy: {it.health.message}",
                                  "Unhealthy")
                    return False
                if not it.health.healthy:
                    still.append(it)
            first = False
            if not still:
                return True
            if self.cancel.is_set():
                self.out.fail(f"cluster {c.cluster}: interrupted while waiting for health", "Interrupted")
                return False
            if time.monotonic() >= deadline:
                for it in still:
                    msg = it.health.message if it.health else "not healthy"
                    self.out.fail(f"cluster {c.cluster}: {it.obj.ref.describe()} did not become healthy in time "
                                  f"({msg})", "Timeout")
                return False
            head = still[0]
            self.working(f"  {c.cluster}: waiting for {head.obj.ref.describe()}"
                         + (f" ({head.health.message})" if head.health and head.health.message else "")
                         + (f" and {len(still) - 1} more" if len(still) > 1 else ""))
            # poll quickly first (most rollouts finish soon), then every poll_interval
            pause = min(self.opts.poll_interval, 0.05 * 2 ** polls)
            polls += 1
            time.sleep(max(0.0, min(pause, deadline - time.monotonic())))
            pending = still


LIST_MIN = 2  # objects of one kind in one namespace from which a LIST replaces their GETs


def read_live(client: Client, wanted: Sequence[tuple[ObjectRef, str]]) -> dict[ObjectRef, dict[str, Any] | None]:
    """(ref, apiVersion) pairs of one cluster → their live objects (None: not there), by one LIST per
    (apiVersion, kind, namespace) that LIST_MIN or more of them share. Refs of smaller groups, and of groups
    whose LIST failed (a kind not served, a 403 on list), are absent: the caller GETs them."""
    groups: dict[tuple[str, str, str], list[ObjectRef]] = {}
    for ref, api_version in wanted:
        groups.setdefault((api_version, ref.kind, ref.namespace), []).append(ref)
    out: dict[ObjectRef, dict[str, Any] | None] = {}
    for (api_version, kind, ns), refs in groups.items():
        if len(refs) < LIST_MIN:
            continue
        try:
            rt = client.resource(api_version, kind)
            items = client.list(rt, ns if rt.namespaced else "")
        except KubeError:
            continue
        by_name = {str((i.get("metadata") or {}).get("name") or ""): i for i in items}
        for ref in refs:
            out[ref] = by_name.get(ref.name)
    return out


def foreign_managers(live: Mapping[str, Any], manager: str) -> list[str]:
    """Field managers other than this app's (`manager`, or the legacy `velapy` every app used before managers
    were per app: taking its fields over is a migration, see `apply_as`) that own fields of the object itself
    (status writers excluded). Another app's `velapy/<ns>/<app>` is foreign."""
    out: list[str] = []
    for m in (live.get("metadata") or {}).get("managedFields") or []:
        if isinstance(m, dict) and m.get("manager") not in (FIELD_MANAGER, manager) and not m.get("subresource"):
            out.append(str(m.get("manager") or ""))
    return out


def _must_recreate(rules: Mapping[str, Any], want: Mapping[str, Any], live: Mapping[str, Any]) -> bool:
    """resource-update `recreateFields`: does any listed path differ between what velapy applies and the live
    object (a field the API server will not change in place)?"""
    ru = rules.get("resourceUpdate") or {}
    for text in ru.get("recreateFields") or []:
        path = field_path(str(text))
        if path and not _same_at(want, live, path):
            return True
    return False


def _same_at(want: Any, live: Any, path: Sequence[str | int]) -> bool:
    a, b = want, live
    for step in path:
        a = a[step] if isinstance(step, int) and isinstance(a, list) and step < len(a) else \
            a.get(step) if isinstance(step, str) and isinstance(a, dict) else None
        b = b[step] if isinstance(step, int) and isinstance(b, list) and step < len(b) else \
            b.get(step) if isinstance(step, str) and isinstance(b, dict) else None
    return a is None or contains(a, b)


def owner_patch(live: Mapping[str, Any], remaining: Sequence[str]) -> dict[str, Any]:
    """Merge patch handing a shared object to the next sharer (labels) and listing the rest."""
    meta = live.get("metadata") or {}
    patch: dict[str, Any] = {"metadata": {"resourceVersion": meta.get("resourceVersion"),
                                          "annotations": {A_SHARED_BY: ",".join(remaining)}}}
    if remaining:
        ns, _, name = remaining[0].partition("/")
        patch["metadata"]["labels"] = {L_APP: name, L_APP_NS: ns}
    return patch


__all__ = ["ClusterRollout", "DeployOptions", "Item", "Outcome", "app_manager", "apply_as", "describe_error",
           "foreign_managers", "own_conflict", "owner_patch", "read_live", "who"]
