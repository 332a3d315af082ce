"""Render tasks (component × placement) → component manifests, with the fewest engine calls.

Round 0 evaluates every component template of every task in one engine call. Each further round
evaluates the next group of traits of every task in one call: the traits that do not depend on a
trait before them in the group (`_group`), all with `context.output` / `context.outputs` as the
group found them, so the number of engine calls grows with the depth of real dependencies between
traits, never with the number of traits, components or clusters. The results of a group are
merged in trait order (`_merge_group`): trait `outputs` are appended, `patch` is applied with
KubeVela's strategies (`velapy.compile.patch`) or unified by CUE, `patchOutputs` merged into the
auxiliaries of that name, `errs` reported.
Finally the OAM label/annotation contract and namespaces are applied (semantics §4.1).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from velapy.compile import terraform
from velapy.compile.patch import PatchError, apply_patch, strategy_unify
from velapy.cue.cuesyntax import CueSyntaxError, outline, tokenize
from velapy.cue.engine import (
    EMBED_PREFIX,
    SELF_ALIAS,
    CueError,
    Evaluator,
    Instance,
    Result,
    Template,
    context_keys_used,
    to_cue_open,
)
from velapy.errors import (
    REASON_ENGINE_CRASH,
    REASON_LIVE_CLUSTER,
    REASON_PROVIDER,
    Diagnostic,
    InputError,
    Location,
    raise_problems,
)
from velapy.load.application import Application, Component, Trait
from velapy.load.clusters import ClusterVersion
from velapy.load.definitions import Definition, Registry
from velapy.load.metadata import metadata_problems
from velapy.load.refobjects import HubObjects, resolve_ref_objects
from velapy.oam import (
    A_FILTER_ANNOTATIONS,
    A_FILTER_LABELS,
    A_INPLACE_UPGRADE,
    A_PUBLISH_VERSION,
    A_WORKFLOW_NAME,
    L_APP,
    L_APP_NS,
    L_COMPONENT,
    L_RESOURCE_TYPE,
    L_REVISION,
    L_TRAIT_RESOURCE,
    L_TRAIT_TYPE,
    L_WORKLOAD_TYPE,
)

AUXILIARY_WORKLOAD = "AuxiliaryWorkload"
UNIFIED = "velapy_patched"  # the field holding a patch unified with the workload by CUE
REF_OBJECTS = "ref-objects"

_DROPPED_ANNOTATIONS = (A_INPLACE_UPGRADE, A_FILTER_LABELS, A_FILTER_ANNOTATIONS,
                        "kubectl.kubernetes.io/last-applied-configuration")


@dataclass(frozen=True)
class RenderTask:
    """One component rendered for one placement."""

    app: Application
    component: Component
    cluster: str = ""  # context.cluster ("" in dry-run mode)
    namespace: str = ""  # placement namespace ("" keeps the app namespace)
    cluster_version: ClusterVersion = field(default_factory=ClusterVersion)
    components: tuple[Component, ...] = ()  # the effective component list (context.components)

    @property
    def context_namespace(self) -> str:
        return self.namespace or self.app.namespace


@dataclass(frozen=True)
class Output:
    """One rendered object and where it came from."""

    obj: dict[str, Any]
    role: str  # "workload", "auxiliary" (component outputs) or "trait"
    trait: str  # trait type ("" for workload / auxiliary)
    resource: str  # the output name ("" for the workload)


@dataclass(frozen=True)
class ComponentManifest:
    component: str
    workload: dict[str, Any] | None
    outputs: tuple[Output, ...]  # component outputs in order, then each trait's outputs in order

    def objects(self) -> list[Output]:
        head = [Output(self.workload, "workload", "", "")] if self.workload is not None else []
        return head + list(self.outputs)


@dataclass
class _State:
    task: RenderTask
    definition: Definition
    template: Template | None  # None: a Terraform component
    properties: Any
    terraform: dict[str, Any] | None = None  # a Terraform component's Configuration, the workload at the end
    workload: dict[str, Any] | None = None
    outputs: list[Output] = field(default_factory=list)
    pos: int = 0  # the next trait to render
    careful_until: int = 0  # traits before this index render one per round (a group of them failed)
    stop_at: int = -1  # the next group ends before this trait (it read what the group's patches changed)
    failed: bool = False


def render(tasks: Sequence[RenderTask], registry: Registry, evaluator: Evaluator,
           hub: HubObjects | None = None) -> list[ComponentManifest]:
    """Render every task; all problems of one round are reported together (InputError)."""
    problems: list[Diagnostic] = []
    states: list[_State] = []
    for task in tasks:
        comp = task.component
        try:  # where a type is written is looked up only when it is unknown (15,000 tasks at 300x50)
            d = registry.get("component", comp.type) or \
                registry.require("component", comp.type, task.app.component_location(comp, "type"))
            for t in comp.traits:
                if registry.get("trait", t.type) is None:
                    registry.require("trait", t.type, task.app.trait_location(comp, t, "type"))
        except InputError as exc:
            problems.extend(exc.diagnostics)
            continue
        props = comp.properties
        if comp.type == REF_OBJECTS:
            try:
                props = {"objects": resolve_ref_objects(task, hub)}
            except InputError as exc:
                problems.extend(exc.diagnostics)
                continue
        configuration = None
        if d.terraform is not None:  # rendered without CUE, as KubeVela does (`velapy.compile.terraform`)
            try:
                configuration = terraform.configuration(
                    d.name, d.terraform, d.annotations, comp.name, props, task.app.namespace,
                    task.app.component_location(comp, "properties" if comp.properties is not None else "type"),
                    functools.partial(task.app.component_location, comp, "properties"))
            except InputError as exc:
                problems.extend(exc.diagnostics)
                continue
        elif d.template is None:
            problems.append(Diagnostic(f"component definition {d.name} has no CUE template", d.location()))
            continue
        # each at the type that names the definition: the component's, or the trait's
        needs = [(offline_blocker(d), task.app.component_location(comp, "type"))] + \
            [(offline_blocker(registry.get("trait", t.type)), task.app.trait_location(comp, t, "type"))
             for t in comp.traits]
        missing = [(n, at) for n, at in needs if n is not None]
        if missing:
            problems.extend(Diagnostic(m, at, reason=why) for (m, why), at in missing)
            continue
        states.append(_State(task, d, d.template, props, terraform=configuration))
    # no raise here: the components that could be set up are still evaluated, so that one run
    # reports every problem of this round together

    # Tasks whose templates read the same inputs render the same (typically one component on many
    # clusters of a placement group): each distinct one is evaluated and patched once, and the others
    # take its result before the per-task contract is applied.
    everyone = states
    leaders: dict[str, _State] = {}
    follows: list[tuple[_State, _State]] = []
    for s in everyone:
        key = _render_key(s, registry)
        lead = leaders.setdefault(key, s)
        if lead is not s:
            follows.append((s, lead))
    states = list(leaders.values())

    # round 0: component templates (a Terraform component has none: its traits see no context.output,
    # and a patch of one fails as in KubeVela)
    cued = [s for s in states if s.template is not None]
    instances = [Instance(s.template, s.properties if s.properties is not None else {}, _context(s))
                 for s in cued if s.template is not None]
    for s, r in zip(cued, evaluator.evaluate(instances), strict=True):
        if r.errors:
            problems.extend(_cue_diagnostics(s, r.errors, None, s.definition))
            continue
        _take_component(s, r, problems)
    raise_problems(problems)

    _render_traits(states, registry, evaluator, problems)
    for s, lead in follows:
        s.workload, s.outputs = lead.workload, list(lead.outputs)
    return [_assemble(s) for s in everyone]


# ----------------------------------------------------------------------------------------------
# trait rounds: which traits of a component can be evaluated together


@dataclass(frozen=True)
class _Shape:
    """What a trait template may do, read from its text. Conservative: a wrong "may" costs a round,
    never a different result."""

    cue_patch: bool  # an untagged `patch:`, unified with the workload by CUE (`_unify_in_cue`)
    may_patch: bool  # may set `patch` (the word appears at all)
    constrains: bool  # `...`, a pattern label, a definition, close(): its patch may be more than its data
    makes_outputs: bool  # may add (`outputs`) or change (`patchOutputs`) auxiliary objects
    reads_outputs: bool  # reads context.outputs
    # what it reads of context.output: (path, only whether it exists); () nothing; None: unknown
    output_deps: tuple[tuple[tuple[str, ...], bool], ...] | None


_UNKNOWN_SHAPE = _Shape(False, True, True, True, True, None)
_IDENT = r"[A-Za-z_$][\w$]*"
_OUTPUT_REF = re.compile(r"\bcontext\s*\.\s*output(?![\w$])")
_SELECTORS = re.compile(rf"(?:\s*\.\s*{_IDENT})*")
_EXISTS = re.compile(r"\s*[!=]=\s*_\|_")
_LET_BEFORE = re.compile(rf"\blet\s+({_IDENT})\s*=\s*$")
_LET_END = re.compile(r"[ \t]*(?:\n|\}|,|$)")


def _shape(t: Template | None) -> _Shape:
    return _UNKNOWN_SHAPE if t is None else _template_shape(t)


@functools.lru_cache(maxsize=1024)
def _template_shape(t: Template) -> _Shape:
    code = without_comments(t.body)
    keys = None if t.declares_context else context_keys_used(code)
    # the parameter declaration constrains the parameter, not the patch
    try:
        spans = [(f.value_start, f.value_end) for f in outline(code).fields if f.label == "parameter"]
    except CueSyntaxError:
        spans = []
    outside = code
    for a, b in spans:
        outside = outside[:a] + " " * (b - a) + outside[b:]
    return _Shape(
        cue_patch="+patch" not in t.body and bool(re.search(r"\bpatch\s*:", t.body)),
        may_patch=bool(re.search(r"\bpatch\b", code)),
        constrains=bool(re.search(r"\.\.\.|\]\s*\??\s*:|#[A-Za-z_]|\bclose\s*\(", outside)),
        makes_outputs=bool(re.search(r"\b(?:outputs|patchOutputs)\b", code)),
        reads_outputs=keys is None or "outputs" in keys,
        output_deps=None if keys is None else (_output_deps(code) if "output" in keys else ()),
    )


def without_comments(body: str) -> str:
    """The template text with its comments blanked (offsets kept); strings stay (they may interpolate)."""
    try:
        comments = [t for t in tokenize(body) if t.kind == "comment"]
    except CueSyntaxError:
        return body
    out = list(body)
    for c in comments:
        out[c.start:c.start + len(c.text)] = " " * len(c.text)
    return "".join(out)


def _output_deps(body: str) -> tuple[tuple[tuple[str, ...], bool], ...] | None:
    """The paths of `context.output` a template reads, each with whether only its existence
    matters (`context.output.spec.template != _|_`), following `let x = context.output.<path>`.

    Every other use reads the value at the longest plain selector path (`context.output.spec` in
    `context.output.spec.template.spec.containers[0]`): a superset of what the template sees.
    """
    if re.search(r"\bcontext\s*\[", body):
        return None
    deps: list[tuple[tuple[str, ...], bool]] = []

    def use(at: int, prefix: tuple[str, ...]) -> int:
        m = _SELECTORS.match(body, at)
        assert m is not None
        path = prefix + tuple(x.strip(" \t\n.") for x in re.split(r"\s*\.\s*", m.group(0)) if x.strip(" \t\n."))
        deps.append((path, bool(_EXISTS.match(body, m.end()))))
        return m.end()

    for ref in _OUTPUT_REF.finditer(body):
        let = _LET_BEFORE.search(body, max(0, ref.start() - 200), ref.start())
        sel = _SELECTORS.match(body, ref.end())
        assert sel is not None
        name = let.group(1) if let else ""
        if let and _LET_END.match(body, sel.end()) and len(re.findall(rf"\blet\s+{re.escape(name)}\b", body)) == 1:
            # an alias: what is read is what its uses read
            prefix = tuple(x.strip(" \t\n.") for x in re.split(r"\s*\.\s*", sel.group(0)) if x.strip(" \t\n."))
            for u in re.finditer(rf"(?<![\w$.]){re.escape(name)}(?![\w$])", body):
                if u.start() != let.start(1):
                    use(u.end(), prefix)
            continue
        use(ref.end(), ())
    return tuple(dict.fromkeys(deps))


_ABSENT = object()


def _at(value: Any, path: tuple[str, ...]) -> Any:
    for step in path:
        if not isinstance(value, dict) or step not in value:
            return _ABSENT
        value = value[step]
    return value


def _deps_hold(deps: tuple[tuple[tuple[str, ...], bool], ...], before: Any, now: Any) -> bool:
    """Whether a template reading `deps` of context.output sees the same in `now` as in `before`."""
    if before is now:
        return True
    for path, exists_only in deps:
        a, b = _at(before, path), _at(now, path)
        if exists_only:
            if (a is _ABSENT) != (b is _ABSENT):
                return False
        elif a is not b and (a is _ABSENT or b is _ABSENT or not _same_data(a, b)):
            return False
    return True


def _same_data(a: Any, b: Any) -> bool:
    """JSON equality where 1, 1.0 and true differ (as they do for CUE)."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True) and type(a) is type(b)


def _contained(part: Any, whole: Any) -> bool:
    """Whether data `part` is found in `whole`: struct fields recursively, list items by position."""
    if isinstance(part, dict):
        return isinstance(whole, dict) and all(k in whole and _contained(v, whole[k]) for k, v in part.items())
    if isinstance(part, list):
        return isinstance(whole, list) and len(part) <= len(whole) and all(
            _contained(v, w) for v, w in zip(part, whole, strict=False))
    return _same_data(part, whole)


_DOUBT = object()


def _unify_data(base: Any, patch: Any) -> Any:
    """What CUE makes of a concrete patch without constraints unified with the opened `base`, on
    data; `_DOUBT` where data alone cannot tell (a conflict, whose message CUE words; a patch list
    shorter than the base's, which CUE rejects as a closed list)."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for k, v in patch.items():
            if k in base:
                merged = _unify_data(base[k], v)
                if merged is _DOUBT:
                    return _DOUBT
                out[k] = merged
            else:
                out[k] = v
        return out
    if isinstance(base, list) and isinstance(patch, list):
        if len(patch) < len(base):
            return _DOUBT
        items = []
        for k, v in enumerate(patch):
            merged = _unify_data(base[k], v) if k < len(base) else v
            if merged is _DOUBT:
                return _DOUBT
            items.append(merged)
        return items
    if isinstance(base, dict | list) or isinstance(patch, dict | list) or not _same_data(base, patch):
        return _DOUBT
    return base


def _group(s: _State, registry: Registry) -> tuple[list[int], list[int], list[int]]:
    """The traits of `s` evaluated in the next round (indices, from `s.pos`), which of them have an
    untagged patch that CUE unifies with the workload in one instance (the chain), and which have
    an untagged patch merged on data after tagged ones (`_unify_data`).

    A trait joins the group unless it depends on one already in it:
    * it reads context.output after a patching trait, in a way not known from its text (a trait
      whose read paths are known joins; `_merge_group` checks that the patches before it left
      those paths as they were, and renders it again in the next round if not);
    * it reads context.outputs after a trait that adds or patches outputs;
    * it has an untagged patch with list-element or pattern constraints (`...`, `[string]: x`) after a
      tagged patch or after another such untagged patch. CUE unifies the untagged patches before
      any tagged one with the workload as the group found it (`_unify_chain`); the constraints of
      one would also constrain what a later one adds, which is not what merging them one by one
      does. A later untagged patch without constraints is merged on data after the tagged ones.
    """
    traits = s.task.component.traits
    if s.pos < s.careful_until:
        one = _shape(_trait_template(registry, traits[s.pos]))
        return [s.pos], [s.pos] if one.cue_patch and s.workload is not None else [], []
    group: list[int] = []
    chain: list[int] = []
    on_data: list[int] = []
    patched_in_cue = patched_in_python = constrained = outputs_made = False
    for j in range(s.pos, len(traits)):
        sh = _shape(_trait_template(registry, traits[j]))
        cue = sh.cue_patch and s.workload is not None
        if group and (j == s.stop_at
                      or (sh.output_deps is None and (patched_in_cue or patched_in_python))
                      or (sh.reads_outputs and outputs_made)
                      or (cue and sh.constrains and (patched_in_python or constrained))):
            break
        group.append(j)
        if cue and (patched_in_python or constrained):
            on_data.append(j)
        elif cue:
            chain.append(j)
            patched_in_cue = True
            constrained |= sh.constrains
        patched_in_python |= sh.may_patch and not cue
        outputs_made |= sh.makes_outputs
    return group, chain, on_data


def _trait_template(registry: Registry, trait: Trait) -> Template | None:
    d = registry.get("trait", trait.type)
    return d.template if d is not None else None


def _render_traits(states: list[_State], registry: Registry, evaluator: Evaluator,
                   problems: list[Diagnostic]) -> None:
    """Trait rounds: each round evaluates the next group of traits of every component in one call.

    The results of a group are merged in trait order, as KubeVela applies traits. A group in which
    any instance failed is rendered again one trait per round (exactly today's sequential order, so
    the first failing trait is the one reported, with its own message). A trait that reads neither
    context.output nor context.outputs gives the same result in every round: it is evaluated once;
    one reading known paths of context.output is evaluated again only when they changed.
    """
    # (state, trait) -> a result and the workload it was evaluated with
    kept: dict[tuple[int, int], tuple[Result, Any]] = {}
    while True:
        active = [s for s in states if not s.failed and s.pos < len(s.task.component.traits)
                  and (not problems or s.pos < s.careful_until)]
        if not active:
            break
        plans: list[tuple[_State, list[int], list[int], list[int], list[int | Result]]] = []
        insts: list[Instance] = []
        missing: list[Diagnostic] = []
        for s in active:
            group, chain, on_data = _group(s, registry)
            traits = s.task.component.traits
            ctx = _context(s)
            ctx["output"] = s.workload if s.workload is not None else {}
            ctx["outputs"] = {o.resource: o.obj for o in s.outputs}
            ctx["componentType"] = s.task.component.type
            where: list[int | Result] = []  # per trait of the group: its instance, or its kept result
            for j in group:
                trait = traits[j]
                tdef = registry.get("trait", trait.type)
                assert tdef is not None
                if tdef.template is None:
                    missing.append(Diagnostic(f"trait definition {tdef.name} has no CUE template", tdef.location()))
                    continue
                extra: tuple[str, ...] = ()
                embeds: tuple[Instance, ...] = ()
                if (id(s), j) in kept and not (chain and j == chain[-1]):
                    r, seen = kept[(id(s), j)]
                    deps = _shape(tdef.template).output_deps
                    if deps is not None and _deps_hold(deps, seen, s.workload):
                        where.append(r)
                        continue
                if chain and j == chain[-1]:
                    if len(chain) == 1:
                        extra = _unify_in_cue(tdef, s.workload)
                    else:
                        embeds = tuple(Instance(_trait_template(registry, traits[k]) or tdef.template,
                                                traits[k].properties, ctx, _ANY_PATCH) for k in chain[:-1])
                        assert s.workload is not None
                        extra = _unify_chain(s.workload, len(embeds))
                where.append(len(insts))
                insts.append(Instance(tdef.template, trait.properties, ctx, extra, embeds))
            plans.append((s, group, chain, on_data, where))
        if missing:
            problems.extend(missing)
            raise_problems(problems)
        results = evaluator.evaluate(insts)
        for s, group, chain, on_data, where in plans:
            got = [results[w] if isinstance(w, int) else w for w in where]
            for j, w, r in zip(group, where, got, strict=True):
                sh = _shape(_trait_template(registry, s.task.component.traits[j]))
                if (isinstance(w, int) and not r.errors and sh.output_deps is not None and not sh.reads_outputs
                        and not (chain and j == chain[-1])):
                    kept[(id(s), j)] = (r, s.workload)
            _merge_group(s, group, chain, on_data, got, registry, problems)
    raise_problems(problems)


# An embed's `patch` always exists (top when the trait sets none), so the chain refers to it without
# `if x.patch != _|_`: on cue v0.4 that test fails with a "cycle" when a template sets `patch` in
# an `if` clause.
_ANY_PATCH = ("patch: _",)


def _unify_chain(workload: dict[str, Any], embeds: int) -> tuple[str, ...]:
    """CUE lines that unify the untagged patches of a group (embeds, then the instance's own) with
    the opened workload: unification is order-free, so one value is the result of them all."""
    return (f"_velapy_base: {to_cue_open(workload)}",
            f"{UNIFIED}: _velapy_base" + "".join(f" & {EMBED_PREFIX}{i}.patch" for i in range(embeds)),
            f"if {SELF_ALIAS}.patch != _|_ {{", f"\t{UNIFIED}: {SELF_ALIAS}.patch", "}")


def _merge_group(s: _State, group: list[int], chain: list[int], on_data: list[int], results: list[Result],
                 registry: Registry, problems: list[Diagnostic]) -> None:
    """Merge one group's results into `s` in trait order; set where the next round starts."""
    traits = s.task.component.traits
    start_workload, start_outputs = s.workload, list(s.outputs)
    by_index = dict(zip(group, results, strict=True))
    patched = any("patch" in by_index[j].value for j in chain)
    # Untagged patches only add to the workload (CUE unification), so a path that reads the same
    # before them and after all of them reads the same after any of them.
    unified = by_index[chain[-1]].value.get(UNIFIED) if len(chain) > 1 and patched else None
    for j in group:
        trait, r = traits[j], by_index[j]
        deps = _shape(_trait_template(registry, trait)).output_deps
        probe = unified if unified is not None and j <= chain[-1] else s.workload  # the first one saw it all
        if deps and j != group[0] and not _deps_hold(deps, start_workload, probe):
            # it read what the patches before it changed (its result, or failure, is stale): render it
            # again after them
            if chain and j <= chain[-1]:  # the chain's patches before it are unified by its last trait
                s.workload, s.outputs, s.stop_at = start_workload, start_outputs, j
                return
            s.pos = j
            return
        if r.errors:
            if len(group) > 1:  # one trait per round through this group: the sequential diagnostics
                s.workload, s.outputs = start_workload, start_outputs
                s.careful_until = group[-1] + 1
                return
            problems.extend(_cue_diagnostics(s, r.errors, trait, registry.get("trait", trait.type)))
            s.failed = True
            return
        if len(chain) > 1 and j in chain:
            # the chain's last trait carries the unified workload; the others' patches are in it
            drop = {UNIFIED, "patch"} if j != chain[-1] else (set() if patched else {UNIFIED})
            r = Result({k: v for k, v in r.value.items() if k not in drop}, r.tags, r.errors)
        if j in on_data and "patch" in r.value and s.workload is not None:
            merged = _unify_data(s.workload, r.value["patch"])
            if merged is _DOUBT:  # let CUE decide, one trait at a time
                s.workload, s.outputs = start_workload, start_outputs
                s.careful_until = group[-1] + 1
                return
            r = Result({**{k: v for k, v in r.value.items() if k != "patch"}, UNIFIED: merged}, r.tags, r.errors)
        before = len(problems)
        _take_trait(s, trait.index, trait.type, r, problems)
        if len(problems) > before:
            s.failed = True
            return
        if len(chain) > 1 and j == chain[-1] and patched and not all(
                _contained(by_index[k].value["patch"], s.workload) for k in chain if "patch" in by_index[k].value):
            # a default or a bound chosen differently together than one by one: do them one by one
            s.workload, s.outputs = start_workload, start_outputs
            s.careful_until = group[-1] + 1
            return
    s.pos = group[-1] + 1


def _render_key(s: _State, registry: Registry) -> str:
    """What a task's rendering depends on: its component, traits and the context keys its templates read."""
    comp = s.task.component
    used: set[str] | None = set()
    for t in (s.template, *(getattr(registry.get("trait", tr.type), "template", None) for tr in comp.traits)):
        keys = None if t is None or t.declares_context else t.context_keys
        if keys is None or used is None:
            used = None
        else:
            used |= keys
    ctx = _context(s)
    if used is not None:
        ctx = {k: v for k, v in ctx.items() if k in used}
    return json.dumps([id(s.task.app), comp.name, comp.type, s.properties,
                       [(t.type, t.properties) for t in comp.traits], ctx], sort_keys=True, default=str)


def offline_blocker(d: Definition | None) -> tuple[str, str] | None:
    """Why a definition cannot render offline, and the reason code: it imports a KubeVela provider
    package (`vela/...`, run inside the controller: REASON_PROVIDER), or a `kube/<group>/<version>`
    package, which KubeVela generates from a live cluster's OpenAPI schema (REASON_LIVE_CLUSTER)."""
    if d is None or d.template is None:
        return None
    for spec in d.template.imports:
        path = spec.split()[-1].strip('"')
        if path.startswith("vela/"):
            return (f"{d.kind} definition {d.name} imports {path}, a KubeVela provider that runs inside the "
                    f"KubeVela controller; velapy cannot render it offline ({d.file})", REASON_PROVIDER)
        if path.startswith("kube/"):
            return (f"{d.kind} definition {d.name} imports {path}, a package KubeVela generates from a live "
                    f"cluster's OpenAPI schema (its API types and CRDs); velapy cannot render it offline "
                    f"({d.file})", REASON_LIVE_CLUSTER)
    return None


def _crash_diagnostic(s: _State, trait: Trait | None, definition: Definition | None, panic: str) -> Diagnostic:
    """The engine crashed (a Go panic) on this instance: say so once, and blame neither the app nor the author."""
    comp = s.task.component
    who = f"definition {definition.name} ({definition.kind})" if definition is not None else "a definition"
    what = f"component {comp.name}" + (f", trait {trait.type} (traits[{trait.index}])" if trait is not None else "")
    if s.task.cluster:
        what += f", cluster {s.task.cluster}"
    loc = s.task.app.trait_location(comp, trait, "type") if trait is not None else \
        s.task.app.component_location(comp, "type")
    where = f" ({definition.file})" if definition is not None and definition.file else ""
    return Diagnostic(
        f"the CUE engine crashed while evaluating {who} for {what}; this is not a mistake in your application",
        loc,
        f"the engine panicked with \"{panic}\". Please report it to the velapy maintainers with the definition"
        f"{where}, the smallest application that shows it and the output of `velapy engine`; a native `cue` "
        "binary (VELAPY_CUE=/path/to/cue) may evaluate it meanwhile",
        reason=REASON_ENGINE_CRASH)


def _context(s: _State) -> dict[str, Any]:
    t = s.task
    app = t.app
    comps = t.components or app.components
    return {
        "name": t.component.name,
        "namespace": t.context_namespace,
        "appName": app.name,
        "appRevision": "",
        "appRevisionNum": 0,
        "revision": "",
        "publishVersion": app.annotations.get(A_PUBLISH_VERSION, ""),
        "workflowName": app.annotations.get(A_WORKFLOW_NAME, ""),
        "appLabels": dict(app.labels),
        "appAnnotations": dict(app.annotations),
        "components": [c.raw for c in comps],
        "replicaKey": "",
        "cluster": t.cluster,
        "clusterVersion": t.cluster_version.as_context(),
        "parameter": s.properties if s.properties is not None else {},
    }


def _take_component(s: _State, r: Result, problems: list[Diagnostic]) -> None:
    v = r.value
    loc = s.task.app.component_location(s.task.component)
    if _user_errors(v, loc, problems):
        return
    out = v.get("output")
    if out is not None:
        if not isinstance(out, dict) or not out.get("kind") or not out.get("apiVersion"):
            problems.append(Diagnostic(
                f"the {s.definition.name} template's output is not a Kubernetes object (needs apiVersion and kind)",
                loc))
            return
        s.workload = out
    for name, obj in (v.get("outputs") or {}).items():
        if isinstance(obj, dict):
            s.outputs.append(Output(obj, "auxiliary", AUXILIARY_WORKLOAD, name))
    problems.extend(_shape_problems([s.workload, *(o.obj for o in s.outputs)], loc,
                                    f"the {s.definition.name} template"))


def _take_trait(s: _State, index: int, ttype: str, r: Result, problems: list[Diagnostic]) -> None:
    v = r.value
    trait = next((t for t in s.task.component.traits if t.index == index and t.type == ttype), None)
    loc = s.task.app.trait_location(s.task.component, trait) if trait is not None else \
        s.task.app.component_location(s.task.component, "traits", index, trait=ttype)
    if _user_errors(v, loc, problems):
        if trait is not None and trait.origin is not None:  # say which override policy brought the trait in
            problems[-1] = dataclasses.replace(
                problems[-1], hint=f"the trait comes from override policy {trait.origin.policy}, whose component "
                                   f"name matched {s.task.component.name}")
        return
    before = (s.workload, [o.obj for o in s.outputs])
    for name, obj in (v.get("outputs") or {}).items():
        if isinstance(obj, dict):
            s.outputs.append(Output(obj, "trait", ttype, name))
    _take_patches(s, ttype, v, r, loc, problems)
    # what this trait made or changed is checked here, where the trait is known
    changed = [s.workload] if s.workload is not before[0] else []
    changed += [o.obj for o in s.outputs if not any(o.obj is b for b in before[1])]
    problems.extend(_shape_problems(changed, loc, f"trait {ttype}"))


def _shape_problems(objs: Sequence[dict[str, Any] | None], loc: Location, by: str) -> list[Diagnostic]:
    """Rendered objects whose metadata Kubernetes could not read (velapy.load.metadata), located at
    the component or trait that produced them; such an object goes no further."""
    out: list[Diagnostic] = []
    for obj in objs:
        if obj is None:
            continue
        for _path, message in metadata_problems(obj):
            out.append(Diagnostic(f"{by} rendered a {obj.get('kind')} whose {message}", loc,
                                  "Kubernetes reads metadata as a mapping whose labels and annotations map names "
                                  "to strings"))
    return out


def _take_patches(s: _State, ttype: str, v: dict[str, Any], r: Result, loc: Location,
                  problems: list[Diagnostic]) -> None:
    if UNIFIED in v:
        # an untagged patch was unified with the opened base by CUE itself (exact KubeVela semantics,
        # including element constraints such as `containers: [...{...}]` that exported data cannot carry)
        s.workload = v[UNIFIED]
    elif "patch" in v:
        if s.workload is None:
            hint = ("a Terraform component's workload is the Configuration KubeVela renders without CUE: a trait "
                    "cannot patch it (KubeVela fails the same way); traits that only add outputs work"
                    if s.terraform is not None else "")
            problems.append(Diagnostic(f"patch trait {ttype} into an invalid workload", loc, hint))
            return
        tags = _sub_tags(r, ("patch",))
        try:
            s.workload = apply_patch(s.workload, v["patch"], tags)
        except PatchError as exc:
            problems.append(Diagnostic(f"invalid patch trait {ttype} into workload: {exc.path}: {exc.message}", loc))
            return
    for name, patch in (v.get("patchOutputs") or {}).items():
        tags = _sub_tags(r, ("patchOutputs", name))
        for i, o in enumerate(s.outputs):
            if o.resource == name:
                try:
                    s.outputs[i] = Output(strategy_unify(o.obj, patch, tags), o.role, o.trait, o.resource)
                except PatchError as exc:
                    problems.append(Diagnostic(
                        f"invalid patchOutputs of trait {ttype} into {name}: {exc.path}: {exc.message}", loc))


def _unify_in_cue(tdef: Definition, workload: dict[str, Any] | None) -> tuple[str, ...]:
    """CUE lines that unify the trait's patch with the opened workload, when no strategy tag can apply."""
    assert tdef.template is not None
    if workload is None or "+patch" in tdef.template.body or not re.search(r"\bpatch\s*:", tdef.template.body):
        return ()
    return (
        f"_velapy_base: {to_cue_open(workload)}",
        f"if {SELF_ALIAS}.patch != _|_ {{",
        f"\t{UNIFIED}: _velapy_base & {SELF_ALIAS}.patch",
        "}",
    )


def _sub_tags(r: Result, prefix: tuple[str, ...]) -> dict[tuple[str | int, ...], dict[str, str]]:
    n = len(prefix)
    return {p[n:]: t for p, t in r.tags.items() if p[:n] == prefix}


def _user_errors(v: dict[str, Any], loc: Location, problems: list[Diagnostic]) -> bool:
    errs = v.get("errs")
    if isinstance(errs, list) and errs:
        problems.append(Diagnostic("User Errors:\n" + "\n".join(f"  {e}" for e in errs), loc))
        return True
    return False


def _cue_diagnostics(s: _State, errors: list[CueError], trait: Trait | None,
                     definition: Definition | None) -> list[Diagnostic]:
    """Blame the right author: a failure under `parameter.*` is the app's, at the component's
    `properties` (file:line:col of that property); any other is a bug of the definition, at its
    `.cue` file:line:col, named."""
    app = s.task.app
    comp = s.task.component
    crashed = [e for e in errors if e.crashed]
    if crashed:
        return [_crash_diagnostic(s, trait, definition, crashed[0].message)]
    props_path: list[str | int] = ["properties"]
    if trait is None:
        what, tname = f"component type {comp.type}", ""
    else:
        what, tname = f"trait {trait.type}", trait.type
        if trait.origin is not None:
            what += f" (from override policy {trait.origin.policy})"

    def at(*rest: str | int) -> Location:
        return app.trait_location(comp, trait, *rest) if trait is not None else app.component_location(comp, *rest)
    out: list[Diagnostic] = []
    if any(e.path == "parameter" or e.path.startswith("parameter.") for e in errors):
        # the values given are wrong: report them, not what they broke further down the template
        errors = [e for e in errors if not e.in_parameter or e.path == "parameter" or e.path.startswith("parameter.")]
        if any(e.message.startswith("incomplete value") and e.path.startswith("parameter.") for e in errors):
            # a parameter left out (e.g. of an `if` branch the values take): what it leaves incomplete
            # further down the template follows from it
            errors = [e for e in errors if e.path.startswith("parameter.") or not e.message.startswith("incomplete")]
    # one message per parameter path: "invalid interpolation: X" repeats "X" found at the same place
    messages: dict[str, list[str]] = {}
    for e in errors:
        if e.in_parameter:
            messages.setdefault(e.path, []).append(e.message)
    for e in errors:
        under_parameter = e.path == "parameter" or e.path.startswith("parameter.") or (e.in_parameter and not e.path)
        if under_parameter:
            if any(m != e.message and e.message.endswith(": " + m) for m in messages.get(e.path, [])):
                continue
            steps: list[str | int] = [int(p) if p.isdigit() else p for p in e.path.split(".")[1:] if p]
            loc = at(*props_path, *steps)
            missing = re.fullmatch(r"incomplete value (\w+)", e.message)
            if missing and steps and isinstance(steps[-1], str):
                out.append(Diagnostic(f'missing required parameter "{steps[-1]}" ({missing.group(1)}) of {what}',
                                      at(*props_path, *steps[:-1]), _word_key_hint(s, trait, steps[:-1])))
                continue
            out.append(Diagnostic(f"invalid properties for {what}: {e.message}" if steps and loc.line else
                                  f"invalid properties for {what}: {e.path or 'parameter'}: {e.message}", loc))
        elif e.path == UNIFIED or e.path.startswith(UNIFIED + "."):
            loc = at()
            out.append(Diagnostic(f"invalid patch trait {tname} into workload: {e.path[len(UNIFIED) + 1:]}: "
                                  f"{e.message}", loc))
        else:
            fallback = (definition.file, definition.line, 0) if definition is not None else ("", 0, 0)
            file, line, col = e.positions[0] if e.positions else fallback
            label = e.path + ": " if e.path else ""
            who = f"definition {definition.name} ({definition.kind})" if definition is not None else what
            out.append(Diagnostic(f"{who} failed to render: {label}{e.message}",
                                  Location(file=file, line=line, column=col, component=comp.name, trait=tname),
                                  "the definition's template failed, not its parameter declaration: "
                                  "fix the definition (or tell its author)"))
    return out


def _word_key_hint(s: _State, trait: Trait | None, steps: Sequence[str | int]) -> str:
    """When the properties beside a missing parameter hold a key the YAML reader turned into
    true/false (`y:`), say so: that is most likely the parameter, under another name."""
    comp = s.task.component
    if trait is not None and trait.origin is not None:
        return ""
    base: tuple[str | int, ...] = ("spec", "components", comp.index,
                                   *(("traits", trait.index) if trait is not None else ()), "properties", *steps)
    words = [(path[-1], word) for path, word in s.task.app.doc.word_keys.items()
             if len(path) == len(base) + 1 and path[:-1] == base]
    if not words:
        return ""
    key, word = words[0]
    return (f"the key {word} here is read as the boolean {key} (YAML 1.1, as Kubernetes and KubeVela read it), "
            f'so it does not give a parameter named {word}: quote it ("{word}": ...)')


# ----------------------------------------------------------------------------------------------
# assemble: the label / annotation contract (semantics §4.1)


def _assemble(s: _State) -> ComponentManifest:
    t = s.task
    workload = None
    if s.terraform is not None:
        s.workload = s.terraform
    if s.workload is not None:
        workload = _contract(_with_own_metadata(s.workload), t, {
            L_RESOURCE_TYPE: "WORKLOAD", L_WORKLOAD_TYPE: t.component.type}, "")
    outs = []
    for o in s.outputs:
        extra = {L_RESOURCE_TYPE: "TRAIT", L_TRAIT_TYPE: o.trait, L_TRAIT_RESOURCE: o.resource}
        outs.append(Output(_contract(_with_own_metadata(o.obj), t, extra, o.trait or AUXILIARY_WORKLOAD),
                           o.role, o.trait, o.resource))
    return ComponentManifest(t.component.name, workload, tuple(outs))


def _with_own_metadata(obj: dict[str, Any]) -> dict[str, Any]:
    """A copy of `obj` whose top level and `metadata` may be changed; deeper values stay shared.

    Rendered data is never changed in place below `metadata` (patches build new values), so tasks
    that share one engine result share its spec instead of paying a deep copy each.
    """
    out = dict(obj)
    meta = out.get("metadata")
    if isinstance(meta, dict):
        out["metadata"] = dict(meta)
    return out


def _contract(obj: dict[str, Any], t: RenderTask, extra: dict[str, str], trait_type: str) -> dict[str, Any]:
    app = t.app
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        meta = {}
        obj["metadata"] = meta
    labels = dict(meta.get("labels") or {})
    filtered = {k.strip() for k in app.annotations.get(A_FILTER_LABELS, "").split(",") if k.strip()}
    for k, v in app.labels.items():
        if k not in filtered:
            labels[k] = v
    labels.update({L_APP: app.name, L_APP_NS: app.namespace, L_COMPONENT: t.component.name, L_REVISION: ""})
    labels.update(extra)
    meta["labels"] = labels
    annotations = dict(meta.get("annotations") or {})
    annotations.update(app.annotations)
    drop = set(_DROPPED_ANNOTATIONS) | {
        k.strip() for k in app.annotations.get(A_FILTER_ANNOTATIONS, "").split(",") if k.strip()}
    meta["annotations"] = {k: v for k, v in annotations.items() if k not in drop}
    if not meta.get("name"):
        meta["name"] = t.component.name if not trait_type else _generated_name(t.component.name, trait_type, obj)
    is_namespace = obj.get("kind") == "Namespace" and obj.get("apiVersion") == "v1"
    if t.namespace and not is_namespace:
        meta["namespace"] = t.namespace
    elif not meta.get("namespace") and not is_namespace:
        meta["namespace"] = app.namespace
    return obj


def _generated_name(component: str, trait_type: str, obj: dict[str, Any]) -> str:
    """`<component>-<trait type>-<hash>` for unnamed trait objects (hash of the object, stable)."""
    digest = hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:8]
    return f"{component}-{trait_type.lower()}-{digest}"


# ----------------------------------------------------------------------------------------------
# warnings about what a render had to assume


CLUSTER_VERSION_REF = "context.clusterVersion"


def version_warning(uses: Iterable[tuple[str, str, Sequence[str]]], registry: Registry,
                    hint: str) -> Diagnostic | None:
    """One warning for every (cluster, component type, trait types) rendered without a known
    Kubernetes version whose definitions read `context.clusterVersion` (minor 0 picks old APIs)."""
    readers: dict[str, None] = {}
    clusters: dict[str, None] = {}
    for cluster, ctype, ttypes in uses:
        defs = [registry.get("component", ctype), *(registry.get("trait", t) for t in ttypes)]
        names = [f"{d.kind} {d.name}" for d in defs
                 if d is not None and d.template is not None and CLUSTER_VERSION_REF in d.template.body]
        if names:
            readers.update(dict.fromkeys(names))
            clusters[cluster] = None
    if not readers:
        return None
    named = [c for c in clusters if c]
    where = (f"of cluster{'s' if len(named) > 1 else ''} {', '.join(named)}" if named else "in the dry-run stream")
    return Diagnostic(
        f"unknown Kubernetes version {where}: {', '.join(readers)} read "
        f"{CLUSTER_VERSION_REF} and, with minor version 0 (KubeVela's rule when it cannot ask the cluster), "
        "render the oldest APIs they know (networking.k8s.io/v1beta1 Ingress, autoscaling/v2beta2 "
        "HorizontalPodAutoscaler, batch/v1beta1 CronJob), which current Kubernetes no longer serves",
        hint=hint)
