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

This module reads the documents and checks their schemas and the components; the problems go to
a `velapy.validate.collector.Collector`, to which `policycheck` (policies) and `workflowcheck`
(the workflow's steps) add theirs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from velapy.cue.engine import Evaluator
from velapy.errors import Diagnostic, InputError
from velapy.load import limits, redact
from velapy.load.application import not_one_application_at
from velapy.load.definitions import Registry
from velapy.load.yamlio import Document, load_file
from velapy.validate import schemagen
from velapy.validate.collector import (
    SCHEMA_ROOT,
    Collector,
    Key,
    SchemaBook,
    Summary,
    document_schema,
    items_of,
    list_of,
    mapping_of,
    text_of,
)
from velapy.validate.explain import JsonPath, did_you_mean, explain_all
from velapy.validate.policycheck import check_policies, check_standalone_policy
from velapy.validate.workflowcheck import all_steps, check_workflow


@dataclass(frozen=True)
class Options:
    allow_unknown_parameters: bool = False


# --------------------------------------------------------------------------------------------
# schemas


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


class _Checker(Collector):
    """Application documents → problems: document schemas, parameter schemas, components; the
    policies (`policycheck`) and the workflow (`workflowcheck`) add to the same collector."""

    def __init__(self, registry: Registry, options: Options) -> None:
        super().__init__(registry, options.allow_unknown_parameters)
        self.options = options

    def run(self, app_file: str, app_docs: Sequence[Document], extra_docs: Sequence[Document],
            evaluator: Evaluator | None) -> None:
        apps = [d for d in app_docs if isinstance(d.data, dict) and d.data.get("kind") == "Application"]
        others = [d for d in app_docs if d not in apps] + list(extra_docs)
        if len(apps) != 1:
            found = "none" if not apps else str(len(apps))
            self.add_diagnostic(Diagnostic(f"expected exactly one Application in the file, found {found}",
                                           not_one_application_at(app_file, app_docs)))
            self.order_file(app_file, 0)
            return
        app = apps[0]
        for d in [app, *extra_docs]:  # problems are listed file by file, in the order given
            self.order_file(d.file)
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
            check_standalone_policy(self, d)

    def check_document(self, doc: Document, schema: str) -> None:
        validator = self.book.document_validator(schema)
        for path, message, hint in explain_all(validator, doc.data, "field"):
            self.add(doc, path, message, hint)

    def load_schemas(self, app: Document, policies: Sequence[Document], workflows: Sequence[Document],
                     evaluator: Evaluator | None) -> None:
        wanted: list[Key] = []
        spec = mapping_of(mapping_of(app.data).get("spec"))
        for c in items_of(spec.get("components")):
            wanted.append(("component", text_of(c.get("type"))))
            wanted.extend(("trait", text_of(t.get("type"))) for t in items_of(c.get("traits")))
        wanted.extend(("policy", text_of(p.get("type"))) for p in items_of(spec.get("policies")))
        wanted.extend(("policy", text_of(mapping_of(d.data).get("type"))) for d in policies)
        for step in all_steps(app, workflows):
            wanted.append(("workflow-step", step.type))
        schemas, problems = parameter_schemas(self.registry, wanted, evaluator)
        self.book.schemas.update(schemas)
        for p in problems:
            self.order_file(p.location.file)
            self.add_diagnostic(p)

    # ---- the application

    def check_application(self, app: Document, policies: Sequence[Document], workflows: Sequence[Document]) -> None:
        spec = mapping_of(mapping_of(app.data).get("spec"))
        names = self.check_components(app, spec)
        policy_names = check_policies(self, app, spec, names)
        external = {text_of(mapping_of(mapping_of(d.data).get("metadata")).get("name")): d for d in policies}
        check_workflow(self, app, spec, workflows, names, {**dict.fromkeys(policy_names), **dict.fromkeys(external)})

    def check_components(self, app: Document, spec: dict[str, Any]) -> list[str]:
        seen: dict[str, int] = {}
        comps = spec.get("components")
        if not isinstance(comps, list):
            return []
        for i, c in enumerate(comps):
            if not isinstance(c, dict):
                continue
            name = text_of(c.get("name"))
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
            name = text_of(c.get("name"))
            base = ("spec", "components", i)
            ctype = c.get("type")
            if isinstance(ctype, str) and ctype and \
                    self.known_type(app, (*base, "type"), "component", ctype, component=name):
                self.check_properties(app, base, "component", ctype, c, component=name)
            for j, t in enumerate(list_of(c.get("traits"))):
                if not isinstance(t, dict):
                    continue
                ttype = t.get("type")
                tbase: JsonPath = (*base, "traits", j)
                if isinstance(ttype, str) and ttype and \
                        self.known_type(app, (*tbase, "type"), "trait", ttype, component=name, trait=ttype):
                    self.check_properties(app, tbase, "trait", ttype, t, component=name, trait=ttype)
            for k, dep in enumerate(list_of(c.get("dependsOn"))):
                if isinstance(dep, str) and dep not in seen:
                    self.add(app, (*base, "dependsOn", k), f"component {dep} not found, which is depended by {name}",
                             did_you_mean(dep, known), component=name)
        return known


def schema_files() -> list[Path]:
    """The document schemas velapy ships (for docs and tests)."""
    return [SCHEMA_ROOT / f"{n}.schema.json" for n in ("application", "policy", "workflow")]


__all__ = ["Options", "SchemaBook", "Summary", "document_schema", "parameter_schemas", "validate_documents",
           "validate_files"]
