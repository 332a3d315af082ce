"""Application + definitions + cluster inventory → the execution plan, with every cluster's objects.

Stages (pure, except the one `render` call):

1. resolve — the workflow (explicit, `workflow.ref`, or KubeVela's default steps) is checked
   (`workflow.check_workflow`); each `deploy` step (also inside a `step-group`) names its
   policies in order: topology policies give the placements (`velapy.compile.placement`), override
   policies the step's effective components (left to right); each `apply-component` step names
   one component and, optionally, a cluster and namespace.
2. render — every component of every placement of every step is one `RenderTask` with
   `context.cluster`, `context.namespace` and `context.clusterVersion` of its placement; all of
   them go into ONE `render` call, so engine calls grow with trait dependencies only.
3. assemble — what a member cluster receives. On top of the render contract (semantics §4.1):
   * `app.oam.dev/cluster: <cluster>` is added unless the template set it. KubeVela adds it on
     its apply path and dispatches by it, so a template that pre-sets it to another cluster sends
     the object there; velapy does the same (the object lands in that cluster's bundle).
   * a topology `namespace` has moved every object of the placement into it (done by render);
     cluster-scoped objects lose `metadata.namespace`, as KubeVela clears it at dispatch.
   * NOT added: `app.oam.dev/app-revision-hash`, `app.oam.dev/revision`, `oam.dev/render-hash`,
     the `app.oam.dev/last-applied-*` annotations and `app.oam.dev/shared-by`. They depend on
     revisions, on the live object or on the time of apply; the executor owns them (the plan's
     digests play the part of the render hash). `app.oam.dev/appRevision` stays "" as in
     dry-run: there is no ApplicationRevision offline.
4. rules — the app's resource policies (`apply-once`, `garbage-collect`, `shared-resource`,
   `take-over`, `read-only`, `resource-update`; several of one type merged as KubeVela does) are
   matched against each object with KubeVela's rule selector; the first matching rule of each
   type becomes the object's rule in the plan.
5. checks — two steps (or two components) that put different versions of one object
   (group, kind, namespace, name) into one cluster are an error. Warnings: an HPA scales a
   workload that sets `spec.replicas` and no `apply-once` rule keeps that field (every re-sync
   would reset the replicas; a workload that leaves `spec.replicas` unset is not affected, since
   neither KubeVela's three-way patch nor a server-side apply touches a field it never set); a
   topology or override policy no deploy step uses; a deploy step naming a policy type deploy
   ignores.

The result is a frozen `Plan`; `velapy.bundle.emit` writes it and the per-cluster bundles.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from velapy.compile.custompolicy import rendering_policies
from velapy.compile.placement import Placement, deploy_placements, policy_location
from velapy.compile.policies import OVERRIDE, TOPOLOGY, apply_overrides, override_name_warnings
from velapy.compile.render import ComponentManifest, RenderTask, render, version_warning, without_comments
from velapy.compile.workflow import (
    APPLY_COMPONENT,
    DEPLOY,
    STEP_GROUP,
    SUSPEND,
    Step,
    Workflow,
    check_workflow,
    component_input_warnings,
    deploy_policies,
    resolve_workflow,
)
from velapy.cue.engine import Evaluator
from velapy.errors import REASON_CONTROLLER_STEP, Diagnostic, InputError, Location, raise_problems
from velapy.load.application import Application, Component, Policy
from velapy.load.clusters import HUB, Cluster, Identity, Inventory
from velapy.load.definitions import Definition, Registry
from velapy.load.refobjects import HubObjects
from velapy.oam import A_GROUP, A_USERNAME, L_CLUSTER, L_COMPONENT, L_RESOURCE_TYPE, L_TRAIT_TYPE, L_WORKLOAD_TYPE

REPLICATION = "replication"
APPLY_ONCE = "apply-once"
GARBAGE_COLLECT = "garbage-collect"
SHARED_RESOURCE = "shared-resource"
TAKE_OVER = "take-over"
READ_ONLY = "read-only"
RESOURCE_UPDATE = "resource-update"
RESOURCE_POLICIES = (APPLY_ONCE, GARBAGE_COLLECT, SHARED_RESOURCE, TAKE_OVER, READ_ONLY, RESOURCE_UPDATE)
# steps that place their own objects with the topology policy named in `properties.topology`
TOPOLOGY_STEPS = ("export-service", "export-data")
# the key each resource policy's matched rule has in a planned object's `rules`
RULE_KEYS = {APPLY_ONCE: "applyOnce", GARBAGE_COLLECT: "garbageCollect", SHARED_RESOURCE: "sharedResource",
             TAKE_OVER: "takeOver", READ_ONLY: "readOnly", RESOURCE_UPDATE: "resourceUpdate"}
_SELECTOR_KEYS = ("componentNames", "componentTypes", "oamTypes", "traitTypes", "resourceTypes", "resourceNames")

# Kinds without a namespace on a stock cluster (group, kind); CRDs from --resources add theirs.
_CLUSTER_SCOPED = frozenset({
    ("", "Namespace"), ("", "PersistentVolume"), ("", "Node"),
    ("storage.k8s.io", "StorageClass"), ("storage.k8s.io", "CSIDriver"), ("storage.k8s.io", "CSINode"),
    ("storage.k8s.io", "VolumeAttachment"),
    ("rbac.authorization.k8s.io", "ClusterRole"), ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
    ("apiextensions.k8s.io", "CustomResourceDefinition"), ("apiregistration.k8s.io", "APIService"),
    ("networking.k8s.io", "IngressClass"), ("scheduling.k8s.io", "PriorityClass"), ("node.k8s.io", "RuntimeClass"),
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"),
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"),
    ("snapshot.storage.k8s.io", "VolumeSnapshotClass"), ("certificates.k8s.io", "CertificateSigningRequest"),
    ("flowcontrol.apiserver.k8s.io", "FlowSchema"), ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"),
})

HPA_FIX = ("policies: [{name: keep-replicas, type: apply-once, properties: {enable: true, rules: [{selector: "
           "{resourceTypes: [%s]}, strategy: {path: [spec.replicas]}}]}}]")


# ----------------------------------------------------------------------------------------------
# the model


def group_of(api_version: str) -> str:
    """`apps/v1` → `apps`; `v1` → `` (the core group)."""
    return api_version.split("/", 1)[0] if "/" in api_version else ""


def digest_of(obj: Any) -> str:
    """`sha256:<hex>` of the canonical JSON of `obj` (sorted keys, no spaces, UTF-8).

    A Secret's values enter only through scrypt (salted with the object's identity), so a digest in
    a committed plan still changes with every value but is no shortcut to guessing a weak one.
    """
    text = json.dumps(_secret_values_stretched(obj), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def _secret_values_stretched(obj: Any) -> Any:
    if not (isinstance(obj, dict) and obj.get("kind") == "Secret" and obj.get("apiVersion") == "v1"):
        return obj
    meta = obj.get("metadata") or {}
    salt = f"{meta.get('namespace', '')}/{meta.get('name', '')}".encode()
    out = dict(obj)
    for field_name in ("data", "stringData"):
        values = obj.get(field_name)
        if isinstance(values, dict):
            out[field_name] = {
                k: hashlib.scrypt(str(v).encode("utf-8"), salt=salt + b"/" + k.encode(), n=2**14, r=8, p=1).hex()
                for k, v in values.items()}
    return out


@dataclass(frozen=True, order=True)
class ObjectKey:
    """One object in one cluster, as the API server identifies it. The API version is not part of it:
    moving a Deployment from `apps/v1beta2` to `apps/v1` is a change of the same object."""

    cluster: str
    group: str
    kind: str
    namespace: str
    name: str

    def describe(self) -> str:
        """`Deployment demo/web`, or `Namespace demo` for a cluster-scoped object."""
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.kind} {where}"


@dataclass(frozen=True)
class PlannedObject:
    """One object a member cluster receives, where it came from and how it is applied."""

    cluster: str
    obj: dict[str, Any]
    component: str
    role: str  # workload | auxiliary | trait
    trait: str  # trait type for role "trait"
    resource: str  # output name ("" for the workload)
    digest: str
    rules: Mapping[str, Any] = field(default_factory=dict)

    @property
    def api_version(self) -> str:
        return str(self.obj.get("apiVersion", ""))

    @property
    def kind(self) -> str:
        return str(self.obj.get("kind", ""))

    @property
    def name(self) -> str:
        return str((self.obj.get("metadata") or {}).get("name", ""))

    @property
    def namespace(self) -> str:
        return str((self.obj.get("metadata") or {}).get("namespace") or "")

    @functools.cached_property
    def key(self) -> ObjectKey:
        return ObjectKey(self.cluster, group_of(self.api_version), self.kind, self.namespace, self.name)


@dataclass(frozen=True)
class PlannedPlacement:
    cluster: str
    namespace: str  # "" keeps each object's own namespace
    objects: tuple[PlannedObject, ...]


@dataclass(frozen=True)
class Gate:
    """The workflow stops here until someone resumes it (or, for a timed suspend, until it elapses)."""

    type: str  # "approval" (deploy auto: false) or "suspend"
    message: str = ""
    duration: str = ""


@dataclass(frozen=True)
class PlannedStep:
    name: str
    type: str
    depends_on: tuple[str, ...] = ()
    if_: str = ""
    timeout: str = ""
    gate: Gate | None = None
    policies: tuple[str, ...] = ()  # deploy
    parallelism: int = 0  # deploy
    component: str = ""  # apply-component
    placements: tuple[PlannedPlacement, ...] = ()
    mode: str = ""  # step-group: how its sub-steps run
    sub_steps: tuple[PlannedStep, ...] = ()
    properties: Mapping[str, Any] = field(default_factory=dict)  # other step types, as written
    location: Location = field(default_factory=Location)
    # deploy: component → the components it waits for (healthy, in the same cluster/namespace)
    component_depends_on: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def objects(self) -> Iterator[PlannedObject]:
        for p in self.placements:
            yield from p.objects
        for s in self.sub_steps:
            yield from s.objects()


@dataclass(frozen=True)
class Plan:
    app_name: str
    app_namespace: str
    app_file: str
    identity: Identity | None  # from the Application's app.oam.dev/username / group
    clusters: tuple[Cluster, ...]  # the clusters the plan deploys to, inventory order
    workflow_source: str  # explicit | ref | generated
    workflow_ref: str
    mode_steps: str
    mode_sub_steps: str
    steps: tuple[PlannedStep, ...]
    resource_policies: Mapping[str, Any]  # merged properties of each resource policy type (without rules)
    warnings: tuple[Diagnostic, ...]

    def all_steps(self) -> Iterator[PlannedStep]:
        for s in self.steps:
            yield s
            yield from s.sub_steps

    def bundles(self) -> dict[str, list[PlannedObject]]:
        """cluster → its objects, each once, in the order the steps first deploy them."""
        out: dict[str, list[PlannedObject]] = {c.name: [] for c in self.clusters}
        seen: set[ObjectKey] = set()
        for step in self.steps:
            for obj in step.objects():
                if obj.key not in seen:
                    seen.add(obj.key)
                    out.setdefault(obj.cluster, []).append(obj)
        return out


# ----------------------------------------------------------------------------------------------
# the builder


@dataclass
class _Unit:
    """One (step, placement) being resolved: the components to render there."""

    step: Step
    placement: Placement
    components: list[Component]
    first_task: int = 0


@dataclass
class _Resolved:
    step: Step
    policies: tuple[str, ...] = ()
    units: list[_Unit] = field(default_factory=list)
    subs: list[_Resolved] = field(default_factory=list)


def build_plan(app: Application, registry: Registry, evaluator: Evaluator, inventory: Inventory,
               hub: HubObjects | None = None) -> Plan:
    """Compile the application for the clusters of `inventory` (InputError on any problem)."""
    draft = prepare_plan(app, registry, inventory, hub)
    return finish_plan(draft, render(draft.tasks, registry, evaluator, hub))


@dataclass
class PlanDraft:
    """An application resolved up to its render tasks. Drafts of several apps that share a
    registry and hub objects render in one `render` call (`pipeline.compile_apps`); `finish_plan`
    then takes this draft's slice of the manifests, in task order."""

    app: Application
    inventory: Inventory
    hub: HubObjects | None
    wf: Workflow
    resolved: list[_Resolved]
    units: list[_Unit]
    rules_by_type: dict[str, Any]
    warnings: list[Diagnostic]
    used_policies: set[str]
    tasks: list[RenderTask]


def prepare_plan(app: Application, registry: Registry, inventory: Inventory,
                 hub: HubObjects | None = None) -> PlanDraft:
    """Resolve the workflow, placements and overrides into render tasks (InputError on any problem)."""
    wf = resolve_workflow(app)
    check_workflow(wf, registry)
    # what reading the definition files tolerated; keys the YAML reader turned into true/false
    warnings: list[Diagnostic] = [*registry.warnings, *app.doc.word_key_warnings()]
    problems: list[Diagnostic] = []
    used_policies: set[str] = set()
    resolved = [_resolve_step(app, s, registry, inventory, warnings, problems, used_policies) for s in wf.steps]
    rules_by_type = _resource_policies(app, problems, warnings)
    raise_problems(problems)

    # one render call for every component of every placement of every step
    tasks: list[RenderTask] = []
    units = [u for r in resolved for u in _units(r)]
    for u in units:
        u.first_task = len(tasks)
        version = inventory.version_of(u.placement.cluster)
        comps = tuple(u.components)
        tasks.extend(RenderTask(app, c, cluster=u.placement.cluster, namespace=u.placement.namespace,
                                cluster_version=version, components=comps) for c in comps)
    unknown = version_warning(((t.cluster, t.component.type, [x.type for x in t.component.traits])
                               for t in tasks if not t.cluster_version.git_version), registry,
                              'give each of these clusters its version in the --clusters inventory (`version: "1.30"`, '
                              "quoted); KubeVela's controller asks the cluster itself")
    if unknown is not None:
        warnings.append(unknown)
    warnings.extend(override_name_warnings(app))
    warnings.extend(component_input_warnings(app))
    for p in rendering_policies(app, registry):
        warnings.append(Diagnostic(
            f"policy {p.name} (type {p.type}) renders objects that KubeVela applies to the hub before the "
            "workflow; they are not in this plan", policy_location(p, "type"),
            "`velapy render` without -o prints them as `# Application(...) -- Policy(...)` blocks"))
    return PlanDraft(app, inventory, hub, wf, resolved, units, rules_by_type, warnings, used_policies, tasks)


def finish_plan(draft: PlanDraft, manifests: Sequence[ComponentManifest]) -> Plan:
    """Assemble the rendered manifests (one per task of the draft) into the plan, with its checks."""
    app, inventory, hub, wf = draft.app, draft.inventory, draft.hub, draft.wf
    resolved, units, rules_by_type = draft.resolved, draft.units, draft.rules_by_type
    warnings, used_policies = list(draft.warnings), draft.used_policies
    problems: list[Diagnostic] = []
    placed: dict[int, tuple[PlannedObject, ...]] = {}
    for n, u in enumerate(units):
        objs: list[PlannedObject] = []
        for m in manifests[u.first_task:u.first_task + len(u.components)]:
            for o in m.objects():
                member = _member_object(o.obj, u.placement.cluster, inventory, hub, problems,
                                        functools.partial(_location_of, app, u, m.component))
                if member is None:
                    continue
                target = str(member["metadata"]["labels"][L_CLUSTER])
                objs.append(PlannedObject(target, member, m.component, o.role, o.trait if o.role == "trait" else "",
                                          o.resource, digest_of(member), _rules_for(member, rules_by_type)))
        placed[n] = tuple(objs)
    raise_problems(problems)

    index = {id(u): n for n, u in enumerate(units)}
    steps = tuple(_planned(r, placed, index, wf) for r in resolved)
    _check_conflicts(steps, problems)
    raise_problems(problems)
    warnings.extend(_hpa_warnings(app, steps))
    warnings.extend(_unused_policy_warnings(app, used_policies))

    used = {o.cluster for s in steps for o in s.objects()}
    used |= {p.cluster for s in steps for st in (s, *s.sub_steps) for p in st.placements}
    clusters = tuple(c for c in inventory.clusters if c.name in used)
    source = "ref" if wf.ref else ("generated" if wf.generated else "explicit")
    resource_policies = {t: {k: v for k, v in props.items() if k != "rules"} for t, props in rules_by_type.items()}
    return Plan(
        app_name=app.name,
        app_namespace=app.namespace,
        app_file=app.file,
        identity=_app_identity(app),
        clusters=clusters,
        workflow_source=source,
        workflow_ref=wf.ref,
        mode_steps=wf.mode_steps,
        mode_sub_steps=wf.mode_sub_steps,
        steps=steps,
        resource_policies=resource_policies,
        warnings=tuple(dict.fromkeys(warnings)),
    )


def _units(r: _Resolved) -> list[_Unit]:
    return [*r.units, *(u for s in r.subs for u in _units(s))]


def _component(u: _Unit, name: str) -> Component:
    for c in u.components:
        if c.name == name:
            return c
    raise AssertionError(f"rendered component {name} is not in its task list")


def _app_identity(app: Application) -> Identity | None:
    user = app.annotations.get(A_USERNAME, "")
    groups = tuple(g.strip() for g in app.annotations.get(A_GROUP, "").split(",") if g.strip())
    return Identity(user, groups) if user or groups else None


def _resolve_step(app: Application, step: Step, registry: Registry, inventory: Inventory,
                  warnings: list[Diagnostic], problems: list[Diagnostic], used: set[str]) -> _Resolved:
    if step.type == STEP_GROUP:
        return _Resolved(step, subs=[_resolve_step(app, s, registry, inventory, warnings, problems, used)
                                     for s in step.sub_steps])
    if step.type == APPLY_COMPONENT:
        return _resolve_apply_component(app, step, inventory, problems)
    if step.type != DEPLOY:
        topology = step.properties.get("topology")
        if step.type in TOPOLOGY_STEPS and isinstance(topology, str):
            used.add(topology)  # executed by KubeVela, not planned: only the policy counts as used
        custom = registry.get("workflow-step", step.type)
        actions = deploying_actions(custom)
        if custom is None or not actions:
            return _Resolved(step)
        if not _deploys_like_deploy(custom, actions):
            problems.append(_custom_deploy_refused(step, custom, actions))
            return _Resolved(step)
        warnings.append(Diagnostic(
            f"workflow step {step.name} (type {step.type}) deploys with op.#Deploy and its policies: planned as a "
            "deploy step with them", step.at("type"),
            "`velapy apply` runs only built-in step types, so it refuses this plan (a GitOps hand-off of the folder "
            "works)"))
    props = step.properties
    if props.get("inlinePolicies"):
        problems.append(Diagnostic("deploy inlinePolicies are not supported by velapy yet",
                                   step.at("properties", "inlinePolicies"),
                                   "declare the policies in spec.policies and name them in policies"))
        return _Resolved(step)
    names = [str(n) for n in props.get("policies") or []]
    named = deploy_policies(app, step)
    problems.extend(named.missing)
    bad = bool(named.missing)
    used.update(p.name for p in (*named.topologies, *named.overrides, *(p for _k, p in named.others)))
    for k, p in named.others:
        where = step.at("properties", "policies", k)
        if p.type == REPLICATION:
            problems.append(Diagnostic(f"replication policy {p.name}: replication is not supported by velapy yet",
                                       where))
            bad = True
        else:
            warnings.append(Diagnostic(
                f"deploy step {step.name} names policy {p.name} of type {p.type}, which deploy ignores", where,
                "deploy uses topology and override policies; resource policies apply to the whole application "
                "from spec.policies"))
    if bad:
        return _Resolved(step)
    try:
        placements = deploy_placements(list(named.topologies), inventory, warnings)
        comps = apply_overrides(app, app.components, named.overrides, registry)
    except InputError as exc:
        problems.extend(exc.diagnostics)
        return _Resolved(step)
    if _ignores_terraform(step, registry):
        comps = _without_terraform(step, comps, registry, warnings)
    return _Resolved(step, tuple(names), [_Unit(step, p, list(comps)) for p in placements])


def _ignores_terraform(step: Step, registry: Registry) -> bool:
    """KubeVela's deploy leaves Terraform components out unless `ignoreTerraformComponent: false`
    (its default is true; a custom op.#Deploy step sets it in its template)."""
    custom = registry.get("workflow-step", step.type) if step.type != DEPLOY else None
    if custom is not None and custom.template is not None:
        body = without_comments(custom.template.body)
        if re.search(r"\bignoreTerraformComponent\s*:\s*false\b", body):
            return False
        if not re.search(r"\bignoreTerraformComponent\s*:\s*parameter\s*\.\s*ignoreTerraformComponent\b", body):
            return True
    return step.properties.get("ignoreTerraformComponent", True) is not False


def _without_terraform(step: Step, comps: Sequence[Component], registry: Registry,
                       warnings: list[Diagnostic]) -> list[Component]:
    def terraform(c: Component) -> bool:
        d = registry.get("component", c.type)
        return d is not None and d.terraform is not None

    left_out = [c.name for c in comps if terraform(c)]
    if left_out:
        warnings.append(Diagnostic(
            f"deploy step {step.name} leaves out the Terraform component{'s' if len(left_out) > 1 else ''} "
            f"{', '.join(left_out)}, as KubeVela's deploy does (ignoreTerraformComponent defaults to true)",
            step.at("type"), "set `ignoreTerraformComponent: false` in the step's properties to deploy "
                             "them with it, or deploy them with an apply-component step"))
    return [c for c in comps if not terraform(c)]


# vela/op (and the legacy providers') actions that deploy the application's own components
DEPLOYING_ACTIONS = ("Deploy", "ApplyComponent", "ApplyApplication", "ApplyApplicationInParallel",
                     "ApplyComponentRemaining", "ApplyRemaining", "ApplyComponentsToEnv", "ApplyEnvBindApp",
                     "DeployCloudResource")
_ACTION_USE = re.compile(r"\b[A-Za-z_]\w*\s*\.\s*#(" + "|".join(DEPLOYING_ACTIONS) + r")(?![\w$])")
_POLICIES_FROM_PARAMETER = re.compile(r"\bpolicies\s*:\s*parameter\s*\.\s*policies(?![\w$])")


def deploying_actions(d: Definition | None) -> list[str]:
    """The component-deploying actions a custom workflow step's template calls (`op.#Deploy`, ...)."""
    if d is None or d.builtin or d.template is None:
        return []
    return sorted(set(_ACTION_USE.findall(without_comments(d.template.body))))


def _deploys_like_deploy(d: Definition, actions: list[str]) -> bool:
    """Only `op.#Deploy`, with the step's own `policies` and no inline policies: what the built-in
    deploy step does with the same properties (`canary-deploy` without its inline override)."""
    assert d.template is not None
    body = without_comments(d.template.body)
    return actions == ["Deploy"] and "inlinePolicies" not in body and _POLICIES_FROM_PARAMETER.search(body) is not None


def _custom_deploy_refused(step: Step, d: Definition, actions: list[str]) -> Diagnostic:
    ops = ", ".join(f"op.#{a}" for a in actions)
    assert d.template is not None
    if actions == ["Deploy"] and "inlinePolicies" in without_comments(d.template.body):
        why = "its op.#Deploy carries inline policies, which velapy does not plan yet"
    elif actions == ["Deploy"]:
        why = "its op.#Deploy does not take its policies from the step's `policies` parameter"
    else:
        why = "velapy cannot tell where that places each component"
    return Diagnostic(
        f"workflow step {step.name} (type {step.type}) deploys the application's components with {ops}: {why}; "
        "KubeVela's controller runs such a step as it deploys, and a plan without it would leave them out",
        step.at("type"),
        f"the step is defined at {d.file}:{d.line}; use the built-in deploy step with policies from spec.policies "
        "(`velapy render` without -o still prints the dry-run stream)", reason=REASON_CONTROLLER_STEP)


def _resolve_apply_component(app: Application, step: Step, inventory: Inventory,
                             problems: list[Diagnostic]) -> _Resolved:
    props = step.properties
    name = str(props.get("component") or "")
    comp = next((c for c in app.components if c.name == name), None)
    if comp is None:
        import difflib
        close = difflib.get_close_matches(name, [c.name for c in app.components], n=1, cutoff=0.6)
        problems.append(Diagnostic(f"component {name} not found", step.at("properties", "component"),
                                   f'did you mean "{close[0]}"?' if close else ""))
        return _Resolved(step)
    cluster = str(props.get("cluster") or HUB)
    if inventory.get(cluster) is None:
        problems.append(Diagnostic(f"failed to get cluster {cluster}: it is not in the cluster inventory",
                                   step.at("properties", "cluster"), inventory.suggest(cluster)))
        return _Resolved(step)
    return _Resolved(step, units=[_Unit(step, Placement(cluster, str(props.get("namespace") or "")), [comp])])


def _planned(r: _Resolved, placed: Mapping[int, tuple[PlannedObject, ...]], index: Mapping[int, int],
             wf: Workflow) -> PlannedStep:
    s = r.step
    props = s.properties
    gate: Gate | None = None
    extra: dict[str, Any] = {}
    if s.type == DEPLOY and props.get("auto") is False:
        gate = Gate("approval", f'Waiting approval to the deploy step "{s.name}"')
    elif s.type == SUSPEND:
        gate = Gate("suspend", str(props.get("message") or ""), str(props.get("duration") or ""))
    elif s.type not in (DEPLOY, APPLY_COMPONENT, STEP_GROUP):
        extra = dict(props)
    placements = tuple(PlannedPlacement(u.placement.cluster, u.placement.namespace, placed[index[id(u)]])
                       for u in r.units)
    waits: dict[str, tuple[str, ...]] = {}
    if s.type == DEPLOY and r.units:
        names = {c.name for c in r.units[0].components}
        waits = {c.name: tuple(d for d in c.depends_on if d in names) for c in r.units[0].components
                 if any(d in names for d in c.depends_on)}
    return PlannedStep(
        name=s.name,
        type=s.type,
        depends_on=s.depends_on,
        if_=s.if_,
        timeout=s.timeout,
        gate=gate,
        policies=r.policies,
        parallelism=int(props.get("parallelism", 5)) if s.type == DEPLOY else 0,
        component=str(props.get("component") or "") if s.type == APPLY_COMPONENT else "",
        placements=placements,
        mode=(s.mode or wf.mode_sub_steps) if s.type == STEP_GROUP else "",
        sub_steps=tuple(_planned(x, placed, index, wf) for x in r.subs),
        properties=extra,
        location=s.location,
        component_depends_on=waits,
    )


# ----------------------------------------------------------------------------------------------
# assemble: what the member cluster receives


def is_cluster_scoped(obj: Mapping[str, Any], hub: HubObjects | None = None) -> bool:
    group, kind = group_of(str(obj.get("apiVersion", ""))), str(obj.get("kind", ""))
    if (group, kind) in _CLUSTER_SCOPED:
        return True
    return hub is not None and not hub.namespaced(group, kind)


def _location_of(app: Application, u: _Unit, component: str) -> Location:
    return app.component_location(_component(u, component))


def _member_object(rendered: dict[str, Any], cluster: str, inventory: Inventory, hub: HubObjects | None,
                   problems: list[Diagnostic], where: Callable[[], Location]) -> dict[str, Any] | None:
    # only the top level, `metadata` and its labels change: deeper values stay shared with the
    # rendered object (rendered data is never changed in place)
    obj = dict(rendered)
    meta = dict(obj.get("metadata") or {})
    obj["metadata"] = meta
    labels = dict(meta.get("labels") or {})
    meta["labels"] = labels
    target = str(labels.get(L_CLUSTER) or cluster)
    if inventory.get(target) is None:
        problems.append(Diagnostic(
            f"{obj.get('kind')} {meta.get('name')} is labelled {L_CLUSTER}: {target}, which is not in the "
            "cluster inventory", where(), inventory.suggest(target)))
        return None
    labels[L_CLUSTER] = target
    if is_cluster_scoped(obj, hub):
        meta.pop("namespace", None)
    return obj


# ----------------------------------------------------------------------------------------------
# resource policies → per-object rules


def _merge_props(a: Any, b: Any) -> Any:
    """KubeVela's merge of two policies of one type: lists concatenated, true wins, maps merged, else first."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = dict(a)
        for k, v in b.items():
            out[k] = _merge_props(a[k], v) if k in a else v
        return out
    if isinstance(a, list) and isinstance(b, list):
        return [*a, *b]
    if isinstance(a, bool) and isinstance(b, bool):
        return a or b
    return a


def _resource_policies(app: Application, problems: list[Diagnostic],
                       warnings: list[Diagnostic]) -> dict[str, dict[str, Any]]:
    """type → merged properties (rules with their policy and index kept for messages)."""
    merged: dict[str, dict[str, Any]] = {}
    for p in app.policies:
        if p.type not in RESOURCE_POLICIES:
            continue
        props = p.properties
        if not isinstance(props, dict):
            problems.append(Diagnostic(f"{p.type} policy {p.name} must have properties (a mapping)",
                                       policy_location(p, "properties")))
            continue
        rules = props.get("rules")
        if rules is not None and not isinstance(rules, list):
            problems.append(Diagnostic(f"{p.type} rules must be a list", policy_location(p, "properties", "rules")))
            continue
        for i, rule in enumerate(rules or []):
            _check_rule(p, i, rule, problems, warnings)
        merged[p.type] = _merge_props(merged[p.type], props) if p.type in merged else dict(props)
    return merged


_RULE_CHOICES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    GARBAGE_COLLECT: (("strategy",), ("onAppUpdate", "onAppDelete", "never")),
    APPLY_ONCE: (("strategy", "affect"), ("", "onUpdate", "onStateKeep", "always")),
    RESOURCE_UPDATE: (("strategy", "op"), ("patch", "replace")),
}


def _check_rule(p: Policy, i: int, rule: Any, problems: list[Diagnostic], warnings: list[Diagnostic]) -> None:
    where = policy_location(p, "properties", "rules", i)
    if not isinstance(rule, dict):
        problems.append(Diagnostic(f"a {p.type} rule must be a mapping", where))
        return
    sel = rule.get("selector")
    if sel is not None and not isinstance(sel, dict):
        problems.append(Diagnostic("a rule selector must be a mapping", policy_location(p, "properties", "rules", i,
                                                                                          "selector")))
        return
    for k, v in (sel or {}).items():
        sloc = policy_location(p, "properties", "rules", i, "selector", str(k))
        if k not in _SELECTOR_KEYS:
            problems.append(Diagnostic(f"unknown rule selector field {k}", sloc,
                                       "known fields: " + ", ".join(_SELECTOR_KEYS)))
        elif not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            problems.append(Diagnostic(f"selector {k} must be a list of strings", sloc))
    if not any(v for v in (sel or {}).values()):
        warnings.append(Diagnostic(f"rule {i} of {p.type} policy {p.name} has no selector: it matches nothing", where,
                                   "select resources with componentNames, resourceTypes, resourceNames, ..."))
    choice = _RULE_CHOICES.get(p.type)
    if choice is not None:
        path, allowed = choice
        value: Any = rule
        for step in path:
            value = value.get(step) if isinstance(value, dict) else None
        if value is not None and value not in allowed:
            problems.append(Diagnostic(f"{p.type} rule {'.'.join(path)} must be one of "
                                       + ", ".join(a for a in allowed if a), where))
    if p.type == GARBAGE_COLLECT and rule.get("propagation") not in (None, "orphan", "cascading"):
        problems.append(Diagnostic("garbage-collect rule propagation must be orphan or cascading", where))
    if p.type == APPLY_ONCE:
        strategy = rule.get("strategy")
        paths = strategy.get("path") if isinstance(strategy, dict) else None
        if not isinstance(paths, list) or not all(isinstance(x, str) for x in paths):
            problems.append(Diagnostic("apply-once rule strategy.path must be a list of field paths", where,
                                       'e.g. strategy: {path: ["spec.replicas"]}'))


def selector_matches(selector: Mapping[str, Any] | None, obj: Mapping[str, Any]) -> bool:
    """KubeVela's rule selector: every given condition holds, and at least one is given."""
    labels = (obj.get("metadata") or {}).get("labels") or {}
    meta = obj.get("metadata") or {}
    values = {
        "componentNames": labels.get(L_COMPONENT, ""),
        "componentTypes": labels.get(L_WORKLOAD_TYPE, ""),
        "oamTypes": labels.get(L_RESOURCE_TYPE, ""),
        "traitTypes": labels.get(L_TRAIT_TYPE, ""),
        "resourceTypes": obj.get("kind", ""),
        "resourceNames": meta.get("name", ""),
    }
    matched = False
    for key, value in values.items():
        want = (selector or {}).get(key)
        if not want:
            continue
        if not value or value not in want:
            return False
        matched = True
    return matched


def _rules_for(obj: Mapping[str, Any], policies: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for ptype in RESOURCE_POLICIES:
        props = policies.get(ptype)
        if props is None:
            continue
        if ptype == APPLY_ONCE and not props.get("enable"):
            continue  # rules act only when the policy is enabled
        rules = props.get("rules") or []
        if ptype == APPLY_ONCE and not rules:
            # enabled without rules: the whole app may drift (state-keep skipped)
            out[RULE_KEYS[ptype]] = {"path": ["*"], "affect": "onStateKeep"}
            continue
        for rule in rules:
            if not selector_matches(rule.get("selector"), obj):
                continue
            out[RULE_KEYS[ptype]] = _rule_value(ptype, rule)
            break
    return out


def _rule_value(ptype: str, rule: Mapping[str, Any]) -> Any:
    strategy = rule.get("strategy")
    if ptype == APPLY_ONCE:
        s = strategy if isinstance(strategy, dict) else {}
        return {"path": list(s.get("path") or []), "affect": str(s.get("affect") or "always")}
    if ptype == GARBAGE_COLLECT:
        out: dict[str, Any] = {"strategy": str(strategy or "onAppUpdate")}
        if rule.get("propagation"):
            out["propagation"] = str(rule["propagation"])
        return out
    if ptype == RESOURCE_UPDATE:
        s = strategy if isinstance(strategy, dict) else {}
        value: dict[str, Any] = {"op": str(s.get("op") or "patch")}
        if s.get("recreateFields"):
            value["recreateFields"] = list(s["recreateFields"])
        return value
    return True


# ----------------------------------------------------------------------------------------------
# checks


def _first_difference(a: Any, b: Any, path: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if a.get(k) != b.get(k):
                return _first_difference(a.get(k), b.get(k), f"{path}.{k}" if path else str(k))
        return path
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if x != y:
                return _first_difference(x, y, f"{path}[{i}]")
    return path


def _check_conflicts(steps: Sequence[PlannedStep], problems: list[Diagnostic]) -> None:
    first: dict[ObjectKey, tuple[PlannedStep, PlannedObject]] = {}
    flat: list[PlannedStep] = []
    for s in steps:
        flat.append(s)
        flat.extend(s.sub_steps)
    for step in flat:
        for p in step.placements:
            for obj in p.objects:
                seen = first.get(obj.key)
                if seen is None:
                    first[obj.key] = (step, obj)
                    continue
                prev_step, prev = seen
                if prev.digest == obj.digest:
                    continue
                diff = _first_difference(prev.obj, obj.obj)
                who = (f"steps {prev_step.name} and {step.name}" if prev_step.name != step.name
                       else f"components {prev.component} and {obj.component} of step {step.name}")
                problems.append(Diagnostic(
                    f"{who} deploy different versions of {obj.key.describe()} to cluster {obj.cluster}"
                    + (f" (they differ at {diff})" if diff else ""),
                    step.location,
                    f"first deployed by step {prev_step.name}"
                    + (f" at line {prev_step.location.line}" if prev_step.location.line else "")
                    + "; give the steps different clusters or namespaces, or make the objects agree"))


def _covers_replicas(rules: Mapping[str, Any]) -> tuple[bool, str]:
    rule = rules.get("applyOnce")
    if not isinstance(rule, dict):
        return False, ""
    paths = rule.get("path") or []
    if "spec.replicas" not in paths and "*" not in paths:
        return False, ""
    affect = str(rule.get("affect") or "always")
    return affect == "always", affect


def _hpa_warnings(app: Application, steps: Sequence[PlannedStep]) -> list[Diagnostic]:
    objs: dict[ObjectKey, PlannedObject] = {}
    for s in steps:
        for o in s.objects():
            objs.setdefault(o.key, o)
    by_target: dict[tuple[str, str, str, str], list[tuple[str, str]]] = {}  # workload → (cluster, why)
    for o in objs.values():
        if o.kind != "HorizontalPodAutoscaler":
            continue
        ref = (o.obj.get("spec") or {}).get("scaleTargetRef") or {}
        kind, name = str(ref.get("kind", "")), str(ref.get("name", ""))
        group = group_of(str(ref.get("apiVersion", "apps/v1")))
        target = objs.get(ObjectKey(o.cluster, group, kind, o.namespace, name))
        if target is None or (target.obj.get("spec") or {}).get("replicas") is None:
            continue
        covered, affect = _covers_replicas(target.rules)
        if covered:
            continue
        why = f"apply-once keeps spec.replicas only {affect}" if affect else ""
        key = (target.component, kind, target.namespace, name)
        by_target.setdefault(key, []).append((o.cluster, why))
    out: list[Diagnostic] = []
    for (component, kind, ns, name), hits in sorted(by_target.items()):
        clusters = ", ".join(sorted({c for c, _ in hits}))
        why = next((w for _, w in hits if w), "")
        comp = next((c for c in app.components if c.name == component), None)
        where = app.component_location(comp) if comp is not None else Location(file=app.file)
        out.append(Diagnostic(
            f"{kind} {ns}/{name} sets spec.replicas and a HorizontalPodAutoscaler scales it "
            f"(clusters {clusters}); " + (why + "; " if why else "")
            + "every re-sync (KubeVela: 5 minutes) resets the replicas the HPA chose",
            where, "keep the live replicas with an apply-once policy: " + HPA_FIX % kind))
    return out


def _unused_policy_warnings(app: Application, used: set[str]) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    for p in (*app.policies, *app.external_policies):
        if p.type in (TOPOLOGY, OVERRIDE) and p.name not in used:
            out.append(Diagnostic(
                f"{p.type} policy {p.name} is not used by any deploy step, so it has no effect",
                policy_location(p) if p.index >= 0 else p.doc.location(["metadata", "name"]),
                "name it in a deploy step's policies"))
    return out


__all__ = [
    "Gate",
    "ObjectKey",
    "Plan",
    "PlannedObject",
    "PlannedPlacement",
    "PlannedStep",
    "build_plan",
    "digest_of",
    "is_cluster_scoped",
    "selector_matches",
]
