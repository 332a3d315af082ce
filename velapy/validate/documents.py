"""Application files → every problem velapy can find before CUE runs, each located (or none).

Checks, all collected before anything is reported:

1. each document against its JSON Schema: `schemas/application.schema.json`, and for standalone
   documents `schemas/policy.schema.json` / `schemas/workflow.schema.json`;
2. names and references: component, trait, policy and workflow-step types exist (with a "did you
   mean"), component / policy / step names are unique, `dependsOn` names exist, `workflow.ref`
   is not combined with `steps` and names a Workflow given with `-f`, every policy a deploy step
   names exists, `apply-component` names a component, override policies name known types;
3. the `properties` of every component, trait, policy and step against the parameter schema of
   its definition (`velapy.validate.schemagen`): wrong types, missing required parameters, values outside
   an enum or a pattern, and unknown parameters, which KubeVela accepts silently and velapy
   rejects unless `allow_unknown_parameters` is set (`--allow-unknown-parameters`).

Each problem names file:line:col, the path (`spec.components[1].properties.ports[0].port`), what
was expected and what was found. Schemas of built-in definitions are read from the checked-in
files; those of other definitions (`-d`) are computed by the engine in one call when an evaluator
is given (without one, their properties are left to CUE at render time).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # jsonschema is imported when a schema is first checked (its import is ~0.25 s CPU)
    from jsonschema import Draft202012Validator

from velapy.cue.engine import Evaluator
from velapy.errors import REASON_NEEDS_INPUT, REASON_UNKNOWN_DEFINITION, Diagnostic, InputError
from velapy.load import limits, redact
from velapy.load.application import not_one_application_at
from velapy.load.definitions import Registry
from velapy.load.yamlio import Document, load_file
from velapy.validate import schemagen
from velapy.validate.explain import JsonPath, did_you_mean, explain_all

SCHEMA_ROOT = schemagen.SCHEMA_ROOT

# built-in types KubeVela knows without a definition object (nothing to check their properties with)
POLICY_TYPES_WITHOUT_DEFINITION = ("debug", "env-binding")
STEP_TYPES_WITHOUT_DEFINITION = ("builtin-apply-component",)
DEPLOY = "deploy"
APPLY_COMPONENT = "apply-component"
OVERRIDE = "override"
UNKNOWN_SWITCH = "--allow-unknown-parameters"

Key = tuple[str, str]


@dataclass(frozen=True)
class Options:
    allow_unknown_parameters: bool = False


@dataclass(frozen=True)
class Summary:
    """What a successful validation looked at."""

    components: int = 0
    traits: int = 0
    policies: int = 0
    steps: int = 0

    def text(self) -> str:
        parts = [(self.components, "component"), (self.traits, "trait"), (self.policies, "policy"),
                 (self.steps, "workflow step")]
        return ", ".join(f"{n} {w if n == 1 else ('policies' if w == 'policy' else w + 's')}" for n, w in parts)


# --------------------------------------------------------------------------------------------
# schemas


def document_schema(name: str) -> dict[str, Any]:
    """`application`, `policy` or `workflow` from schemas/."""
    data = json.loads((SCHEMA_ROOT / f"{name}.schema.json").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@dataclass
class SchemaBook:
    """Parameter schemas by definition, and their validators (built once per schema)."""

    schemas: dict[Key, dict[str, Any]] = field(default_factory=dict)
    allow_unknown: bool = False
    _validators: dict[Key | str, Draft202012Validator] = field(default_factory=dict)

    def validator(self, kind: str, name: str) -> Draft202012Validator | None:
        key = (kind, name)
        v = self._validators.get(key)
        if v is None:
            schema = self.schemas.get(key)
            if schema is None:
                return None
            from jsonschema import Draft202012Validator

            v = Draft202012Validator(_without_closed_objects(schema) if self.allow_unknown else schema)
            self._validators[key] = v
        return v

    def document_validator(self, name: str) -> Draft202012Validator:
        v = self._validators.get(name)
        if v is None:
            from jsonschema import Draft202012Validator

            v = Draft202012Validator(document_schema(name))
            self._validators[name] = v
        return v


def _without_closed_objects(schema: Any) -> Any:
    """The schema with every `additionalProperties: false` dropped (unknown parameters allowed)."""
    if isinstance(schema, dict):
        return {k: _without_closed_objects(v) for k, v in schema.items()
                if not (k == "additionalProperties" and v is False)}
    if isinstance(schema, list):
        return [_without_closed_objects(v) for v in schema]
    return schema


def parameter_schemas(registry: Registry, wanted: Iterable[Key], evaluator: Evaluator | None
                      ) -> tuple[dict[Key, dict[str, Any]], list[Diagnostic]]:
    """Schemas of the wanted definitions: checked-in ones when current, else computed by the engine.

    Also returns the definitions whose templates do not compile (definition bugs, located).
    """
    out: dict[Key, dict[str, Any]] = {}
    todo = []
    for kind, name in dict.fromkeys(wanted):
        d = registry.get(kind, name)
        if d is None or d.template is None:
            continue
        schema = schemagen.read_checked_in(d) if d.builtin else None
        if schema is not None:
            out[(kind, name)] = schema
        else:
            todo.append(d)
    problems: list[Diagnostic] = []
    if todo and evaluator is not None:
        generated = schemagen.generate(todo, evaluator)
        out.update(generated.schemas)
        for diags in generated.problems.values():
            problems.extend(diags)
    return out, problems


# --------------------------------------------------------------------------------------------
# the entry points


def validate_files(app: str, files: Sequence[str], registry: Registry, evaluator: Evaluator | None = None,
                   options: Options | None = None) -> Summary:
    """Read the application (and `-f` files); raise one InputError listing every problem."""
    problems: list[Diagnostic] = []
    app_docs: list[Document] = []
    extra_docs: list[Document] = []
    for path, target in [(app, app_docs), *((f, extra_docs) for f in files)]:
        try:
            target.extend(load_file(path))
        except InputError as exc:
            problems.extend(exc.diagnostics)
    if problems:
        raise InputError(problems)
    limits.check_application_size(app_docs)  # before any work that grows with the app's size
    checker = _Checker(registry, options or Options())
    checker.run(app, app_docs, extra_docs, evaluator)
    diags = checker.sorted_problems()
    if diags:
        secrets: set[str] = set()
        for d in [*app_docs, *extra_docs]:
            secrets |= redact.secret_strings(d.data)
        raise redact.scrub_error(InputError(diags), secrets)
    return checker.summary


def validate_documents(app_file: str, app_docs: Sequence[Document], extra_docs: Sequence[Document],
                       registry: Registry, evaluator: Evaluator | None = None,
                       options: Options | None = None) -> list[Diagnostic]:
    """Every problem of the documents, in file order (empty when they are valid)."""
    checker = _Checker(registry, options or Options())
    checker.run(app_file, app_docs, extra_docs, evaluator)
    return checker.sorted_problems()


# --------------------------------------------------------------------------------------------
# the checker


@dataclass
class _StepRef:
    name: str
    type: str
    doc: Document
    path: JsonPath
    raw: dict[str, Any]


class _Checker:
    def __init__(self, registry: Registry, options: Options) -> None:
        self.registry = registry
        self.options = options
        self.book = SchemaBook(allow_unknown=options.allow_unknown_parameters)
        self.problems: list[Diagnostic] = []
        self._order: dict[str, int] = {}
        self.summary = Summary()

    # ---- reporting

    def add(self, doc: Document, path: JsonPath, message: str, hint: str = "", component: str = "",
            trait: str = "", reason: str = "") -> None:
        loc = doc.location(list(path))
        if redact.is_secret_value_path(doc.data, path):  # never quote a Secret's value
            message = message.split(", found ", 1)[0] + f" {redact.WITHHELD}"
        self._order.setdefault(doc.file, len(self._order))
        self.problems.append(Diagnostic(message, dataclasses.replace(loc, component=component, trait=trait), hint,
                                        reason))

    def sorted_problems(self) -> list[Diagnostic]:
        unique = list(dict.fromkeys(self.problems))
        return sorted(unique, key=lambda d: (self._order.get(d.location.file, len(self._order)), d.location.line,
                                             d.location.column, d.location.path, d.message))

    # ---- documents

    def run(self, app_file: str, app_docs: Sequence[Document], extra_docs: Sequence[Document],
            evaluator: Evaluator | None) -> None:
        apps = [d for d in app_docs if isinstance(d.data, dict) and d.data.get("kind") == "Application"]
        others = [d for d in app_docs if d not in apps] + list(extra_docs)
        if len(apps) != 1:
            found = "none" if not apps else str(len(apps))
            self.problems.append(Diagnostic(f"expected exactly one Application in the file, found {found}",
                                            not_one_application_at(app_file, app_docs)))
            self._order.setdefault(app_file, 0)
            return
        app = apps[0]
        for d in [app, *extra_docs]:  # problems are listed file by file, in the order given
            self._order.setdefault(d.file, len(self._order))
        policies: list[Document] = []
        workflows: list[Document] = []
        for d in others:
            kind = d.data.get("kind") if isinstance(d.data, dict) else None
            if kind == "Policy":
                policies.append(d)
            elif kind == "Workflow":
                workflows.append(d)
            else:
                self.add(d, (), f"file {d.file} is not application, policy or workflow (kind {kind!r})",
                         "velapy reads one Application and core.oam.dev/v1alpha1 Policy and Workflow documents")
        self.check_document(app, "application")
        for d in policies:
            self.check_document(d, "policy")
        for d in workflows:
            self.check_document(d, "workflow")
        self.load_schemas(app, policies, workflows, evaluator)
        self.check_application(app, policies, workflows)
        for d in policies:
            self.check_standalone_policy(d)

    def check_document(self, doc: Document, schema: str) -> None:
        validator = self.book.document_validator(schema)
        for path, message, hint in explain_all(validator, doc.data, "field"):
            self.add(doc, path, message, hint)

    def load_schemas(self, app: Document, policies: Sequence[Document], workflows: Sequence[Document],
                     evaluator: Evaluator | None) -> None:
        wanted: list[Key] = []
        spec = _mapping(_mapping(app.data).get("spec"))
        for c in _items(spec.get("components")):
            wanted.append(("component", _text(c.get("type"))))
            wanted.extend(("trait", _text(t.get("type"))) for t in _items(c.get("traits")))
        wanted.extend(("policy", _text(p.get("type"))) for p in _items(spec.get("policies")))
        wanted.extend(("policy", _text(_mapping(d.data).get("type"))) for d in policies)
        for step in self._all_steps(app, workflows):
            wanted.append(("workflow-step", step.type))
        schemas, problems = parameter_schemas(self.registry, wanted, evaluator)
        self.book.schemas.update(schemas)
        for p in problems:
            self._order.setdefault(p.location.file, len(self._order))
            self.problems.append(p)

    # ---- the application

    def check_application(self, app: Document, policies: Sequence[Document], workflows: Sequence[Document]) -> None:
        spec = _mapping(_mapping(app.data).get("spec"))
        names = self.check_components(app, spec)
        policy_names = self.check_policies(app, spec, names)
        external = {_text(_mapping(_mapping(d.data).get("metadata")).get("name")): d for d in policies}
        self.check_workflow(app, spec, workflows, names, {**dict.fromkeys(policy_names), **dict.fromkeys(external)})

    def check_components(self, app: Document, spec: dict[str, Any]) -> list[str]:
        seen: dict[str, int] = {}
        comps = spec.get("components")
        if not isinstance(comps, list):
            return []
        for i, c in enumerate(comps):
            if not isinstance(c, dict):
                continue
            name = _text(c.get("name"))
            if not name:
                continue
            base: JsonPath = ("spec", "components", i)
            if name in seen:
                first = app.location(["spec", "components", seen[name], "name"])
                self.add(app, (*base, "name"), f'duplicated component name "{name}" (first at line {first.line})',
                         component=name)
            else:
                seen[name] = i
        known = list(seen)
        for i, c in enumerate(comps):
            if not isinstance(c, dict):
                continue
            name = _text(c.get("name"))
            base = ("spec", "components", i)
            ctype = c.get("type")
            if isinstance(ctype, str) and ctype and \
                    self.known_type(app, (*base, "type"), "component", ctype, component=name):
                self.check_properties(app, base, "component", ctype, c, component=name)
            for j, t in enumerate(_list(c.get("traits"))):
                if not isinstance(t, dict):
                    continue
                ttype = t.get("type")
                tbase: JsonPath = (*base, "traits", j)
                if isinstance(ttype, str) and ttype and \
                        self.known_type(app, (*tbase, "type"), "trait", ttype, component=name, trait=ttype):
                    self.check_properties(app, tbase, "trait", ttype, t, component=name, trait=ttype)
            for k, dep in enumerate(_list(c.get("dependsOn"))):
                if isinstance(dep, str) and dep not in seen:
                    self.add(app, (*base, "dependsOn", k), f"component {dep} not found, which is depended by {name}",
                             did_you_mean(dep, known), component=name)
        return known

    def check_policies(self, app: Document, spec: dict[str, Any], components: list[str]) -> list[str]:
        seen: dict[str, int] = {}
        pols = spec.get("policies")
        if not isinstance(pols, list):
            return []
        for i, p in enumerate(pols):
            if not isinstance(p, dict):
                continue
            ptype = p.get("type")
            if not isinstance(ptype, str) or not ptype:
                continue
            base: JsonPath = ("spec", "policies", i)
            name = _text(p.get("name")) or f"{ptype}-auto-gen-{i}"
            if name in seen:
                first = app.location(["spec", "policies", seen[name]])
                self.add(app, (*base, "name"), f'duplicated policy name "{name}" (first at line {first.line})')
                continue
            seen[name] = i
            self.check_policy(app, base, name, ptype, p, components)
        return list(seen)

    def check_standalone_policy(self, doc: Document) -> None:
        data = _mapping(doc.data)
        ptype = data.get("type")
        if isinstance(ptype, str) and ptype:
            name = _text(_mapping(data.get("metadata")).get("name"))
            self.check_policy(doc, (), name, ptype, data, [])

    def check_policy(self, doc: Document, base: JsonPath, name: str, ptype: str, p: dict[str, Any],
                     components: list[str]) -> None:
        if not self.known_type(doc, (*base, "type"), "policy", ptype):
            return
        if p.get("properties") is None and ptype != "debug":
            self.add(doc, base, f"policy {ptype} named {name} must not have empty properties",
                     "give the policy its properties (an empty mapping `{}` is enough for all-default ones)")
            return
        self.check_properties(doc, base, "policy", ptype, p)
        if ptype == OVERRIDE and components:
            self.check_override(doc, base, name, _mapping(p.get("properties")), components)

    def check_override(self, doc: Document, base: JsonPath, name: str, props: dict[str, Any],
                       components: list[str]) -> None:
        patched: list[str] = []
        for j, entry in enumerate(_list(props.get("components"))):
            if not isinstance(entry, dict):
                continue
            ebase: JsonPath = (*base, "properties", "components", j)
            patched.append(_text(entry.get("name")))
            ctype = entry.get("type")
            if isinstance(ctype, str) and ctype:
                self.known_type(doc, (*ebase, "type"), "component", ctype, what=f"override policy {name}: ")
            for k, t in enumerate(_list(entry.get("traits"))):
                ttype = _mapping(t).get("type")
                if isinstance(ttype, str) and ttype:
                    self.known_type(doc, (*ebase, "traits", k, "type"), "trait", ttype,
                                    what=f"override policy {name}: ")
        for k, sel in enumerate(_list(props.get("selector"))):
            if isinstance(sel, str) and sel not in components and sel not in patched:
                self.add(doc, (*base, "properties", "selector", k),
                         f'override policy {name}: selector names component "{sel}", which does not exist',
                         did_you_mean(sel, components) or "the selector keeps only the components it names")

    # ---- the workflow

    def _workflow_source(self, app: Document, workflows: Sequence[Document]
                         ) -> tuple[Document, JsonPath, Any] | None:
        wf = _mapping(_mapping(_mapping(app.data).get("spec")).get("workflow"))
        ref = wf.get("ref")
        if isinstance(ref, str) and ref and wf.get("steps") is None:
            for d in workflows:
                if _mapping(_mapping(d.data).get("metadata")).get("name") == ref:
                    return d, ("steps",), _mapping(d.data).get("steps")
            return None
        if wf.get("steps") is not None:
            return app, ("spec", "workflow", "steps"), wf.get("steps")
        return None

    def _all_steps(self, app: Document, workflows: Sequence[Document]) -> list[_StepRef]:
        src = self._workflow_source(app, workflows)
        if src is None:
            return []
        doc, base, steps = src
        out: list[_StepRef] = []
        for i, s in enumerate(_list(steps)):
            if not isinstance(s, dict):
                continue
            out.append(_StepRef(_text(s.get("name")) or f"step-{i}", _text(s.get("type")), doc, (*base, i), s))
            for j, sub in enumerate(_list(s.get("subSteps"))):
                if isinstance(sub, dict):
                    out.append(_StepRef(_text(sub.get("name")) or f"step-{i}-{j}", _text(sub.get("type")), doc,
                                        (*base, i, "subSteps", j), sub))
        return out

    def check_workflow(self, app: Document, spec: dict[str, Any], workflows: Sequence[Document],
                       components: list[str], policies: dict[str, None]) -> None:
        wf = spec.get("workflow")
        if not isinstance(wf, dict):
            return
        ref = wf.get("ref")
        if ref and wf.get("steps") is not None:
            self.add(app, ("spec", "workflow", "ref"), "cannot set steps and ref in workflow at the same time",
                     "keep either `ref` (steps of a Workflow document) or `steps`")
            return
        if isinstance(ref, str) and ref:
            names = [_text(_mapping(_mapping(d.data).get("metadata")).get("name")) for d in workflows]
            if ref not in names:
                hint = did_you_mean(ref, names) or "pass the Workflow document with -f FILE"
                self.add(app, ("spec", "workflow", "ref"), f"workflow {ref} not found", hint,
                         reason=REASON_NEEDS_INPUT)
                return
        steps = self._all_steps(app, workflows)
        seen: dict[str, _StepRef] = {}
        for s in steps:
            if s.name in seen:
                first = seen[s.name].doc.location(list(seen[s.name].path))
                self.add(s.doc, (*s.path, "name") if s.raw.get("name") else s.path,
                         f'duplicated step name "{s.name}" (first at line {first.line})',
                         "step names must be unique across the whole workflow, sub-steps included")
            else:
                seen[s.name] = s
        step_names = list(seen)
        for s in steps:
            if not s.type:
                continue
            if not self.known_type(s.doc, (*s.path, "type"), "workflow-step", s.type):
                continue
            self.check_properties(s.doc, s.path, "workflow-step", s.type, s.raw)
            for k, dep in enumerate(_list(s.raw.get("dependsOn"))):
                if isinstance(dep, str) and dep not in seen:
                    self.add(s.doc, (*s.path, "dependsOn", k), f"step {dep} not found, which step {s.name} depends on",
                             did_you_mean(dep, step_names))
            props = _mapping(s.raw.get("properties"))
            if s.type == DEPLOY:
                for k, pname in enumerate(_list(props.get("policies"))):
                    if isinstance(pname, str) and pname not in policies:
                        hint = did_you_mean(pname, list(policies)) or \
                            "name a policy of spec.policies, or pass a Policy document with -f FILE"
                        self.add(s.doc, (*s.path, "properties", "policies", k), f"policy {pname} not found", hint)
            elif s.type == APPLY_COMPONENT:
                comp = props.get("component")
                if isinstance(comp, str) and comp and comp not in components:
                    self.add(s.doc, (*s.path, "properties", "component"), f"component {comp} not found",
                             did_you_mean(comp, components))

    # ---- types and properties

    def known_type(self, doc: Document, path: JsonPath, kind: str, name: str, component: str = "", trait: str = "",
                   what: str = "") -> bool:
        if self.registry.get(kind, name) is not None:
            return True
        if kind == "policy" and name in POLICY_TYPES_WITHOUT_DEFINITION:
            return True
        if kind == "workflow-step" and name in STEP_TYPES_WITHOUT_DEFINITION:
            return True
        label = "workflow step" if kind == "workflow-step" else kind
        hint = self.registry.suggest(kind, name)
        if "@" in name:
            hint = "definition revisions (`name@version`) are not available offline; name the definition itself"
        elif not hint:
            listing = "workflowstep" if kind == "workflow-step" else kind
            hint = f"`velapy def list --kind {listing}` shows the known types; add definitions with -d DIR"
        self.add(doc, path, f'{what}unknown {label} type "{name}"', hint, component, trait, REASON_UNKNOWN_DEFINITION)
        return False

    def check_properties(self, doc: Document, base: JsonPath, kind: str, name: str, owner: dict[str, Any],
                         component: str = "", trait: str = "") -> None:
        validator = self.book.validator(kind, name)
        if validator is None:
            return
        field_name = {"component": "components", "trait": "traits", "policy": "policies"}.get(kind, "steps")
        self.summary = dataclasses.replace(self.summary, **{field_name: getattr(self.summary, field_name) + 1})
        props = owner.get("properties")
        if props is None:
            props = {}
        elif not isinstance(props, dict):
            return  # the document schema already said it must be a mapping
        label = "workflow step" if kind == "workflow-step" else kind
        # a parameter an input's parameterKey names is filled at run time: not required now
        filled = frozenset(tuple(key.split(".")) for i in _items(owner.get("inputs"))
                           if isinstance(key := i.get("parameterKey"), str) and key)
        for path, message, hint in explain_all(validator, props, "parameter", filled):
            if message.startswith("unknown parameter"):
                message += f" of {label} type {name}"
                hint = f"{hint} (or pass {UNKNOWN_SWITCH} to accept it)" if hint else \
                    f"remove it, or pass {UNKNOWN_SWITCH} to accept it"
            self.add(doc, (*base, "properties", *path), message, hint, component, trait)


# --------------------------------------------------------------------------------------------
# small readers of unchecked data


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _items(value: Any) -> list[dict[str, Any]]:
    return [v for v in _list(value) if isinstance(v, dict)]


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def schema_files() -> list[Path]:
    """The document schemas velapy ships (for docs and tests)."""
    return [SCHEMA_ROOT / f"{n}.schema.json" for n in ("application", "policy", "workflow")]


__all__ = ["Options", "SchemaBook", "Summary", "parameter_schemas", "validate_documents",
           "validate_files"]
