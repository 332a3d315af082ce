"""One validation run's problems → sorted, located Diagnostics; the checks every part shares.

`Collector.add` records a problem at a document path (never quoting a Secret's value);
`sorted_problems` lists them file by file, in file order. `known_type` checks that a type has a
definition (with a "did you mean"), `check_properties` checks `properties` against the
definition's parameter schema (`SchemaBook`). The application's parts are checked by
`velapy.validate.documents` (documents, components), `policycheck` and `workflowcheck`.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from velapy.errors import REASON_UNKNOWN_DEFINITION, Diagnostic
from velapy.load import redact
from velapy.load.definitions import Registry
from velapy.load.metadata import metadata_problems, object_mappings
from velapy.load.yamlio import Document
from velapy.validate import schemagen
from velapy.validate.explain import JsonPath, explain_all

if TYPE_CHECKING:  # jsonschema is imported when a schema is first checked (its import is ~0.25 s CPU)
    from jsonschema import Draft202012Validator

SCHEMA_ROOT = schemagen.SCHEMA_ROOT

# built-in types KubeVela knows without a definition object (nothing to check their properties with)
POLICY_TYPES_WITHOUT_DEFINITION = ("debug", "env-binding")
STEP_TYPES_WITHOUT_DEFINITION = ("builtin-apply-component",)
UNKNOWN_SWITCH = "--allow-unknown-parameters"

Key = tuple[str, str]


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


class Collector:
    """Problems of one run (and the summary of what was checked); a part's checks add to it."""

    def __init__(self, registry: Registry, allow_unknown_parameters: bool) -> None:
        self.registry = registry
        self.book = SchemaBook(allow_unknown=allow_unknown_parameters)
        self.problems: list[Diagnostic] = []
        self._order: dict[str, int] = {}
        self.summary = Summary()

    def order_file(self, file: str, position: int | None = None) -> None:
        """Problems of `file` are listed after those of the files seen before it (or at `position`)."""
        self._order.setdefault(file, len(self._order) if position is None else position)

    def add_diagnostic(self, diagnostic: Diagnostic) -> None:
        """A problem already located (a definition bug, a document that is missing)."""
        self.problems.append(diagnostic)

    def add(self, doc: Document, path: JsonPath, message: str, hint: str = "", component: str = "",
            trait: str = "", reason: str = "") -> None:
        """A problem at `path` of `doc` (located there; a Secret's value is never quoted)."""
        loc = doc.location(list(path))
        if redact.is_secret_value_path(doc.data, path):  # never quote a Secret's value
            message = message.split(", found ", 1)[0] + f" {redact.WITHHELD}"
        self.order_file(doc.file)
        self.problems.append(Diagnostic(message, dataclasses.replace(loc, component=component, trait=trait), hint,
                                        reason))

    def sorted_problems(self) -> list[Diagnostic]:
        """The problems without repeats, file by file, in file order."""
        unique = list(dict.fromkeys(self.problems))
        return sorted(unique, key=lambda d: (self._order.get(d.location.file, len(self._order)), d.location.line,
                                             d.location.column, d.location.path, d.message))

    def known_type(self, doc: Document, path: JsonPath, kind: str, name: str, component: str = "", trait: str = "",
                   what: str = "") -> bool:
        """Whether `kind` `name` is known; if not, a problem with a "did you mean" is added."""
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
        """`owner`'s `properties` against its definition's parameter schema → problems (and the summary)."""
        self.check_objects(doc, base, kind, name, owner.get("properties"), component, trait)
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
        filled = frozenset(tuple(key.split(".")) for i in items_of(owner.get("inputs"))
                           if isinstance(key := i.get("parameterKey"), str) and key)
        for path, message, hint in explain_all(validator, props, "parameter", filled):
            if message.startswith("unknown parameter"):
                message += f" of {label} type {name}"
                hint = f"{hint} (or pass {UNKNOWN_SWITCH} to accept it)" if hint else \
                    f"remove it, or pass {UNKNOWN_SWITCH} to accept it"
            self.add(doc, (*base, "properties", *path), message, hint, component, trait)


    def check_objects(self, doc: Document, base: JsonPath, kind: str, name: str, props: Any,
                      component: str, trait: str) -> None:
        """Kubernetes objects written in `properties` (a `k8s-objects` object, any mapping with a
        string apiVersion and kind) and the properties of a trait that merges them into the
        workload as they are (`patch: parameter`, json-merge-patch): metadata shaped as Kubernetes
        reads it (velapy.load.metadata), which no parameter schema (`{...}`) says."""
        found = dict(object_mappings(props))
        definition = self.registry.get(kind, name)
        template = definition.template if definition is not None else None
        if isinstance(props, dict) and template is not None and _MERGES_PARAMETER.search(template.body):
            found.setdefault((), props)
        for path, obj in found.items():
            for sub, message in metadata_problems(obj):
                self.add(doc, (*base, "properties", *path, *sub), message,
                         "Kubernetes reads metadata as a mapping whose labels and annotations map names to strings",
                         component, trait)


_MERGES_PARAMETER = re.compile(r"(?m)^\s*patch\s*:\s*parameter\s*$")


# --------------------------------------------------------------------------------------------
# small readers of unchecked data


def mapping_of(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def list_of(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def items_of(value: Any) -> list[dict[str, Any]]:
    return [v for v in list_of(value) if isinstance(v, dict)]


def text_of(value: Any) -> str:
    return value if isinstance(value, str) else ""
