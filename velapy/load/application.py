"""Application files → a frozen Application model (plus standalone Policy / Workflow documents).

Reads the Application YAML and the `-f` files the way `vela dry-run` does (one Application; any
number of `core.oam.dev/v1alpha1` Policy documents; at most one Workflow), checks the shape every
later stage relies on (components with names and types, unique names, traits with types) and
keeps each document so that any later problem can be located at file:line:col.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from velapy.errors import Diagnostic, InputError, Location
from velapy.load.yamlio import Document, format_path, load_file
from velapy.oam import APP_API, STANDALONE_API


@dataclass(frozen=True)
class Trait:
    type: str
    properties: Any  # None when the trait has no `properties`
    index: int
    origin: TraitOrigin | None = None  # the override policy entry that added or changed it


@dataclass(frozen=True)
class TraitOrigin:
    """Where an override policy writes a trait: its document, the path of the trait entry, the policy."""

    doc: Document
    path: tuple[str | int, ...]
    policy: str


@dataclass(frozen=True)
class Component:
    name: str
    type: str
    properties: Any  # None when absent
    traits: tuple[Trait, ...]
    depends_on: tuple[str, ...]
    raw: dict[str, Any]  # the component as written (for context.components and overrides)
    index: int  # position in spec.components (-1 for components added by an override)


@dataclass(frozen=True)
class Policy:
    name: str
    type: str
    properties: Any
    index: int  # position in spec.policies, or -1 for a standalone Policy document
    doc: Document


@dataclass(frozen=True)
class Application:
    name: str
    namespace: str
    labels: dict[str, str]
    annotations: dict[str, str]
    components: tuple[Component, ...]
    policies: tuple[Policy, ...]  # spec.policies, names filled in
    workflow: dict[str, Any] | None  # spec.workflow as written
    doc: Document
    external_policies: tuple[Policy, ...] = ()
    external_workflows: tuple[Document, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def file(self) -> str:
        return self.doc.file

    def location(self, path: Sequence[str | int], **subject: str) -> Location:
        loc = self.doc.location(path)
        return Location(loc.file, loc.line, loc.column, loc.path, **subject)

    def trait_location(self, comp: Component, trait: Trait, *rest: str | int) -> Location:
        """Where a trait (or a part of it) is written: in the component, or in the override policy
        that added or changed it."""
        if trait.origin is not None:
            loc = trait.origin.doc.location([*trait.origin.path, *rest])
            return Location(loc.file, loc.line, loc.column, loc.path, component=comp.name, trait=trait.type)
        return self.component_location(comp, "traits", trait.index, *rest, trait=trait.type)

    def component_location(self, comp: Component, *rest: str | int, trait: str = "") -> Location:
        if comp.index < 0:
            return Location(file=self.file, component=comp.name, trait=trait)
        return self.location(["spec", "components", comp.index, *rest], component=comp.name, trait=trait)


def not_one_application_at(path: str, docs: Sequence[Document]) -> Location:
    """Where to point when a file does not hold exactly one Application: the `kind` of its second
    Application, else of its first document, else line 1 of the file."""
    apps = [d for d in docs if isinstance(d.data, dict) and d.data.get("kind") == "Application"]
    pick = apps[1] if len(apps) > 1 else docs[0] if docs else None
    if pick is None:
        return Location(file=path, line=1, column=1)
    loc = pick.location(["kind"] if isinstance(pick.data, dict) and "kind" in pick.data else [])
    return Location(file=path, line=loc.line or 1, column=loc.column or 1, path=loc.path)


def load_application(path: str, extra_files: Sequence[str] = (), namespace: str = "") -> Application:
    """Read the Application and the standalone Policy/Workflow files; all shape problems at once."""
    docs = load_file(path)
    problems: list[Diagnostic] = []
    apps = [d for d in docs if isinstance(d.data, dict) and d.data.get("kind") == "Application"]
    if len(apps) != 1:
        found = "none" if not apps else f"{len(apps)}"
        raise InputError([Diagnostic(f"expected exactly one Application in the file, found {found}",
                                     not_one_application_at(path, docs))])
    extra_docs: list[Document] = [d for d in docs if d is not apps[0]]
    for f in extra_files:
        extra_docs.extend(load_file(f))
    ext_policies: list[Policy] = []
    ext_workflows: list[Document] = []
    for d in extra_docs:
        kind = d.data.get("kind") if isinstance(d.data, dict) else None
        if kind == "Policy":
            ext_policies.append(_standalone_policy(d, problems))
        elif kind == "Workflow":
            if ext_workflows:  # as `vela dry-run` (references/cli/dryrun.go): one Workflow at most
                first = ext_workflows[0].location([])
                problems.append(Diagnostic(
                    "more than one external workflow provided", d.location([]),
                    f"the first is at {first.file}:{first.line}; pass one Workflow document with -f"))
            ext_workflows.append(d)
        else:
            problems.append(Diagnostic(f"file {d.file} is not application, policy or workflow (kind {kind!r})",
                                       d.location([])))
    app = _application(apps[0], namespace, problems)
    if problems:
        raise InputError(problems)
    return Application(
        app.name, app.namespace, app.labels, app.annotations, app.components, app.policies, app.workflow,
        app.doc, tuple(ext_policies), tuple(ext_workflows), app.raw,
    )


def _str_map(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(k): "" if v is None else str(v) for k, v in value.items()}


def _application(doc: Document, namespace: str, problems: list[Diagnostic]) -> Application:
    data: dict[str, Any] = doc.data
    where = doc.location
    if data.get("apiVersion") != APP_API:
        problems.append(Diagnostic(f"apiVersion must be {APP_API}, found {data.get('apiVersion')!r}",
                                   where(["apiVersion"])))
    meta: dict[str, Any] = data["metadata"] if isinstance(data.get("metadata"), dict) else {}
    name = meta.get("name") if isinstance(meta, dict) else None
    if not isinstance(name, str) or not name:
        problems.append(Diagnostic("metadata.name is required", where(["metadata"])))
        name = ""
    ns = namespace or (meta.get("namespace") if isinstance(meta.get("namespace"), str) else "") or "default"
    spec = data.get("spec")
    components: list[Component] = []
    policies: list[Policy] = []
    workflow: dict[str, Any] | None = None
    if not isinstance(spec, dict):
        problems.append(Diagnostic("spec is required and must be a mapping", where(["spec"])))
        spec = {}
    raw_components = spec.get("components")
    if raw_components is None:
        problems.append(Diagnostic("spec.components is required", where(["spec"])))
        raw_components = []
    elif not isinstance(raw_components, list):
        problems.append(Diagnostic("spec.components must be a list", where(["spec", "components"])))
        raw_components = []
    seen: dict[str, int] = {}
    for i, c in enumerate(raw_components):
        base: list[str | int] = ["spec", "components", i]
        if not isinstance(c, dict):
            problems.append(Diagnostic("a component must be a mapping", where(base)))
            continue
        cname, ctype = c.get("name"), c.get("type")
        if not isinstance(cname, str) or not cname:
            problems.append(Diagnostic("component name is required", where(base)))
            continue
        if not isinstance(ctype, str) or not ctype:
            problems.append(Diagnostic("component type is required", where(base), ))
            continue
        if cname in seen:
            first = where(["spec", "components", seen[cname], "name"])
            problems.append(Diagnostic(f"duplicated component name {cname!r} (first at line {first.line})",
                                       where([*base, "name"])))
            continue
        seen[cname] = i
        props = c.get("properties")
        if props is not None and not isinstance(props, dict):
            problems.append(Diagnostic("properties must be a mapping", where([*base, "properties"])))
            props = None
        traits: list[Trait] = []
        raw_traits = c.get("traits") or []
        if not isinstance(raw_traits, list):
            problems.append(Diagnostic("traits must be a list", where([*base, "traits"])))
            raw_traits = []
        for j, t in enumerate(raw_traits):
            if not isinstance(t, dict) or not isinstance(t.get("type"), str) or not t.get("type"):
                problems.append(Diagnostic("trait type is required", where([*base, "traits", j])))
                continue
            tprops = t.get("properties")
            traits.append(Trait(str(t["type"]), tprops, j))
        deps = c.get("dependsOn") or []
        components.append(Component(cname, ctype, props, tuple(traits),
                                    tuple(str(x) for x in deps) if isinstance(deps, list) else (), c, i))
    names = set(seen)
    for comp in components:
        for k, dep in enumerate(comp.depends_on):
            if dep not in names:
                problems.append(Diagnostic(
                    f"component {dep} not found, which is depended by {comp.name}",
                    where(["spec", "components", comp.index, "dependsOn", k])))
    raw_policies = spec.get("policies") or []
    if not isinstance(raw_policies, list):
        problems.append(Diagnostic("spec.policies must be a list", where(["spec", "policies"])))
        raw_policies = []
    pnames: dict[str, int] = {}
    for i, p in enumerate(raw_policies):
        base = ["spec", "policies", i]
        if not isinstance(p, dict) or not isinstance(p.get("type"), str) or not p.get("type"):
            problems.append(Diagnostic("policy type is required", where(base)))
            continue
        ptype = str(p["type"])
        pname = p.get("name") or f"{ptype}-auto-gen-{i}"
        if pname in pnames:
            problems.append(Diagnostic(f"duplicated policy name {pname!r}", where([*base, "name"])))
            continue
        pnames[str(pname)] = i
        props = p.get("properties")
        if props is None and ptype != "debug":
            problems.append(Diagnostic(f"policy {ptype} named {pname} must not have empty properties", where(base)))
        policies.append(Policy(str(pname), ptype, props, i, doc))
    wf = spec.get("workflow")
    if wf is not None:
        if not isinstance(wf, dict):
            problems.append(Diagnostic("spec.workflow must be a mapping", where(["spec", "workflow"])))
        else:
            workflow = wf
            if wf.get("ref") and wf.get("steps"):
                problems.append(Diagnostic("cannot set steps and ref in workflow at the same time",
                                           where(["spec", "workflow", "ref"])))
    return Application(
        name=name,
        namespace=ns,
        labels=_str_map(meta.get("labels")),
        annotations=_str_map(meta.get("annotations")),
        components=tuple(components),
        policies=tuple(policies),
        workflow=workflow,
        doc=doc,
        raw=data,
    )


def _standalone_policy(doc: Document, problems: list[Diagnostic]) -> Policy:
    data = doc.data
    meta: dict[str, Any] = data.get("metadata") or {}
    name = str(meta.get("name") or "")
    ptype = data.get("type")
    if data.get("apiVersion") != STANDALONE_API:
        problems.append(Diagnostic(f"a standalone Policy must be {STANDALONE_API}", doc.location(["apiVersion"])))
    if not name:
        problems.append(Diagnostic("metadata.name is required", doc.location(["metadata"])))
    if not isinstance(ptype, str) or not ptype:
        problems.append(Diagnostic("policy type is required", doc.location(["type"])))
        ptype = ""
    return Policy(name, ptype, data.get("properties"), -1, doc)


__all__ = ["Application", "Component", "Policy", "Trait", "format_path", "load_application"]


def merge_standalone(app: Application) -> Application:
    """`vela dry-run --merge`: the standalone Workflow's steps become the app's workflow (by reference,
    so positions stay in its file) and every standalone Policy joins the app's policies."""
    workflow = app.workflow
    if app.external_workflows:
        meta = app.external_workflows[0].data.get("metadata") if isinstance(app.external_workflows[0].data, dict) \
            else None
        name = meta.get("name") if isinstance(meta, dict) else None
        if isinstance(name, str) and name:
            workflow = {"ref": name}
    return dataclasses.replace(app, workflow=workflow, policies=(*app.policies, *app.external_policies),
                               external_policies=())
