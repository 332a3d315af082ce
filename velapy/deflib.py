"""X-Definitions for platform engineers: list them, show their parameters, vet, render, regenerate schemas.

The library behind `velapy def`:

- `list_definitions` — built-ins and `-d` definitions (name, kind, description);
- `parameter_table` — a definition's parameters (path, type, default, required, description) read
  from its JSON Schema (checked-in for built-ins, computed by the engine for others);
- `vet_files` — definition files parsed (located syntax errors, one definition per file, known
  attribute keys for the kind) and compiled by the engine, all files in one call;
- `definition_object` — the Kubernetes object form of a `.cue` definition, as `vela def render`;
- `regenerate_schemas` — rewrite (or check) `schemas/definitions/` from the built-ins.
"""

from __future__ import annotations

import difflib
import os
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
import yaml.emitter
import yaml.nodes
import yaml.representer
import yaml.resolver
import yaml.serializer

from velapy.cue.engine import Evaluator
from velapy.errors import Diagnostic, InputError, Location
from velapy.load import hcl
from velapy.load.definitions import (
    OBJECT_KIND,
    Definition,
    Registry,
    load_registry,
    parse_cue_definition,
    parse_yaml_definitions,
)
from velapy.oam import APP_API
from velapy.resources import writable_schemas_dir
from velapy.validate import schemagen

DEFINITION_API = APP_API
DESCRIPTION_KEY = "definition.oam.dev/description"
ALIAS_KEY = "definition.oam.dev/alias"
USER_PREFIX = "custom.definition.oam.dev/"

# `attributes` keys KubeVela accepts per kind (its Spec structs are decoded strictly)
ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "component": ("workload", "status", "childResourceKinds", "revisionLabel", "podSpecPath", "extension", "version"),
    "trait": ("appliesToWorkloads", "conflictsWith", "podDisruptive", "workloadRefPath", "definitionRef",
              "revisionEnabled", "manageWorkload", "controlPlaneOnly", "stage", "status", "extension", "version"),
    "policy": ("definitionRef", "manageHealthCheck", "version", "scope", "global", "priority"),
    "workflow-step": ("definitionRef", "version"),
}
_KIND_ALIASES = {"component": "component", "components": "component", "trait": "trait", "traits": "trait",
                 "policy": "policy", "policies": "policy", "workflowstep": "workflow-step",
                 "workflow-step": "workflow-step", "step": "workflow-step", "steps": "workflow-step",
                 "workload": "workload"}
KIND_CHOICES = ("component", "trait", "policy", "workflowstep")


def normalize_kind(kind: str) -> str:
    """`workflowstep`, `step`, `traits`, ... → the registry's kind name."""
    k = _KIND_ALIASES.get(kind.strip().lower())
    if k is None:
        raise InputError(f"unknown definition kind {kind!r}: use one of {', '.join(KIND_CHOICES)}")
    return k


def list_definitions(definition_dirs: Sequence[str] = (), kind: str = "") -> list[Definition]:
    """Every definition (built-ins, then `-d` ones winning by name), ordered by kind then name."""
    reg = load_registry(definition_dirs)
    wanted = normalize_kind(kind) if kind else None
    order = {k: i for i, k in enumerate(("component", "trait", "policy", "workflow-step", "workload"))}
    return sorted(reg.all(wanted), key=lambda d: (order.get(d.kind, 9), d.name))


@dataclass(frozen=True)
class ParameterTable:
    definition: Definition
    rows: tuple[schemagen.ParameterRow, ...]
    notes: tuple[str, ...]


def find_definition(registry: Registry, name: str, kind: str = "") -> Definition:
    """The definition called `name` (of `kind` if given); an InputError names close matches."""
    kinds = [normalize_kind(kind)] if kind else ["component", "trait", "policy", "workflow-step", "workload"]
    found = [d for k in kinds if (d := registry.get(k, name)) is not None]
    if len(found) == 1:
        return found[0]
    if found:
        which = ", ".join(d.kind for d in found)
        raise InputError(f"{name} names definitions of several kinds ({which}): choose one with --kind")
    hints = [h for k in kinds if (h := registry.suggest(k, name))]
    raise InputError([Diagnostic(f'no definition named "{name}"', Location(),
                                 hints[0] if hints else "`velapy def list` shows the known definitions")])


def parameter_table(name: str, kind: str = "", definition_dirs: Sequence[str] = (),
                    evaluator: Evaluator | None = None) -> ParameterTable:
    """The parameters of one definition, as rows."""
    reg = load_registry(definition_dirs)
    d = find_definition(reg, name, kind)
    schema = schemagen.read_checked_in(d) if d.builtin else None
    if schema is None and d.terraform is not None:
        try:
            schema = schemagen.terraform_schema(d)
        except hcl.HclError as exc:
            raise InputError(f"definition {d.name}: schematic.terraform.configuration: {exc.message} "
                             f"(line {exc.line} of the HCL)", d.location()) from None
    if schema is None:
        if evaluator is None or d.template is None:
            return ParameterTable(d, (), ("no CUE template: no parameters",) if d.template is None else ())
        generated = schemagen.generate([d], evaluator)
        problems = generated.problems.get(schemagen.key_of(d))
        if problems:
            raise InputError(problems)
        schema = generated.schemas[schemagen.key_of(d)]
    notes = tuple(str(n) for n in schema.get("x-velapy-notes") or [])
    return ParameterTable(d, tuple(schemagen.parameter_rows(schema)), notes)


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]], max_last: int = 0) -> str:
    """A plain text table, columns padded to their widest cell; the last column may be wrapped."""
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    lines = []
    pad = sum(w + 2 for w in widths[:-1])
    for cells in [list(headers), *[list(r) for r in rows]]:
        head = "".join(c.ljust(w + 2) for c, w in zip(cells[:-1], widths[:-1], strict=True))
        last = cells[-1]
        if max_last and len(last) > max_last:
            parts = textwrap.wrap(last, max_last) or [""]
            lines.append((head + parts[0]).rstrip())
            lines.extend((" " * pad + p).rstrip() for p in parts[1:])
        else:
            lines.append((head + last).rstrip())
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# vet


@dataclass(frozen=True)
class VetResult:
    passed: tuple[str, ...]  # files without problems
    notes: tuple[str, ...]  # things that could not be checked offline
    problems: tuple[Diagnostic, ...] = ()  # every problem of the other files


def vet_files(files: Sequence[str], evaluator: Evaluator) -> VetResult:
    """Parse and compile-check definition files (all in one engine call); every problem collected."""
    problems: list[Diagnostic] = []
    warnings: list[Diagnostic] = []  # tolerated as KubeVela tolerates them (a duplicated YAML key)
    notes: list[str] = []
    parsed: list[tuple[str, list[Definition]]] = []
    for f in files:
        before = len(problems)
        defs = _parse_file(f, problems, warnings)
        for d in defs:
            for p in _check_metadata(d):
                unknown = p.message.startswith(f"definition {d.name}: unknown attribute")
                if unknown and d.file.endswith((".yaml", ".yml")):
                    # an object's unknown spec field: `vela def vet` takes no YAML, and the API server
                    # drops the field (its CRD prunes unknown fields), so the object installs as it is
                    notes.append(f"{d.file}: {p.message.split(': ', 1)[1]}: the API server drops it on apply")
                else:
                    problems.append(p)
        parsed.append((f, defs) if len(problems) == before else (f, []))
    all_defs = [d for _f, defs in parsed for d in defs]
    generated = schemagen.generate(all_defs, evaluator, compile_check=True) if all_defs else schemagen.Generated()
    notes.extend(w.render() for w in warnings)
    failed = {p.location.file for p in problems}
    for d in all_defs:
        k = schemagen.key_of(d)
        if k in generated.problems:
            problems.extend(generated.problems[k])
            failed.add(d.file)
        for n in (generated.schemas.get(k) or {}).get("x-velapy-notes") or []:
            if str(n).startswith("not evaluated offline"):
                notes.append(f"{d.file}: {d.name}: {n}")
    return VetResult(tuple(f for f in files if f not in failed), tuple(notes), tuple(problems))


def _parse_file(path: str, problems: list[Diagnostic], warnings: list[Diagnostic] | None = None) -> list[Definition]:
    p = Path(path)
    try:
        if p.suffix == ".cue":
            return [parse_cue_definition(p.read_text(encoding="utf-8"), str(p))]
        if p.suffix in (".yaml", ".yml"):
            defs = parse_yaml_definitions(p, warnings=warnings)
            if not defs:
                problems.append(Diagnostic("no X-Definition object in the file", Location(file=str(p), line=1)))
            return defs
        problems.append(Diagnostic("not a definition file (expected .cue, .yaml or .yml)", Location(file=str(p))))
    except InputError as exc:
        problems.extend(exc.diagnostics)
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(Diagnostic(f"cannot read definition file: {exc}", Location(file=str(p))))
    return []


def _check_metadata(d: Definition) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    if d.terraform is not None:
        out.extend(_check_terraform(d))
    elif d.template is None:
        out.append(Diagnostic(f"definition {d.name}: no template found", d.location()))
    allowed = ATTRIBUTES.get(d.kind)
    if allowed is not None:
        for key in d.attributes:
            if key not in allowed:
                close = difflib.get_close_matches(key, list(allowed), n=1)
                out.append(Diagnostic(
                    f"definition {d.name}: unknown attribute {key!r} for a {d.kind} definition", d.location(),
                    f'did you mean "{close[0]}"?' if close else f"{d.kind} attributes: {', '.join(allowed)}"))
    return out


def _check_terraform(d: Definition) -> list[Diagnostic]:
    """What KubeVela needs of `schematic.terraform` to render the component (its CRD's rules)."""
    tf = d.terraform or {}
    where = d.location()
    config = tf.get("configuration")
    if not isinstance(config, str) or not config.strip():
        return [Diagnostic(f"definition {d.name}: terraform configuration is not set", where,
                           "schematic.terraform.configuration holds the HCL module, or the URL of a remote one")]
    kind = tf.get("type")
    if kind is not None and kind not in schemagen.TERRAFORM_TYPES:
        return [Diagnostic(f"definition {d.name}: schematic.terraform.type must be one of "
                           f"{', '.join(schemagen.TERRAFORM_TYPES)}, found {kind!r}", where)]
    for key in ("writeConnectionSecretToRef", "providerRef", "gitCredentialsSecretReference"):
        if key in tf and not isinstance(tf[key], dict):
            return [Diagnostic(f"definition {d.name}: schematic.terraform.{key} must be a map", where)]
    if (kind or "hcl") == "hcl":
        try:
            hcl.variables(config)
        except hcl.HclError as exc:
            return [Diagnostic(f"definition {d.name}: schematic.terraform.configuration: {exc.message}", where,
                               f"line {exc.line} of the HCL configuration")]
    return []


# --------------------------------------------------------------------------------------------
# render (object form)


def definition_object(path: str) -> dict[str, Any]:
    """The Kubernetes object of a `.cue` definition file, as `vela def render` writes it."""
    p = Path(path)
    try:
        src = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read definition file: {exc}", Location(file=str(p))) from None
    d = parse_cue_definition(src, str(p))
    problems = _check_metadata(d)
    if problems:
        raise InputError(problems)
    assert d.template is not None
    annotations = {ALIAS_KEY: d.alias} if d.alias else {}
    if d.description:
        annotations[DESCRIPTION_KEY] = d.description
    for k, v in d.annotations.items():
        annotations[k if "oam.dev" in k else USER_PREFIX + k] = v
    labels = {k if "oam.dev" in k else USER_PREFIX + k: v for k, v in d.labels.items()}
    metadata: dict[str, Any] = {"annotations": annotations, "name": d.name}
    if labels:
        metadata["labels"] = labels
    spec = dict(d.attributes)
    spec["schematic"] = {"cue": {"template": template_text(d)}}
    return {"apiVersion": DEFINITION_API, "kind": OBJECT_KIND[d.kind], "metadata": metadata, "spec": spec}


class _DefinitionEmitter(yaml.emitter.Emitter):
    """PyYAML's emitter, with multi-line strings as `|` blocks even when they hold tabs (CUE does)."""

    def analyze_scalar(self, scalar: str) -> yaml.emitter.ScalarAnalysis:
        analysis = super().analyze_scalar(scalar)
        if "\n" in scalar and "\t" in scalar and not any(line.endswith((" ", "\t")) for line in scalar.split("\n")):
            analysis.allow_block = True
        return analysis

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)  # lists indented under their key, as `vela def render`


class _DefinitionDumper(_DefinitionEmitter, yaml.serializer.Serializer, yaml.representer.SafeRepresenter,
                        yaml.resolver.Resolver):
    def __init__(self, stream: Any, **kwargs: Any) -> None:
        _DefinitionEmitter.__init__(self, stream, width=kwargs.get("width"), allow_unicode=True)
        yaml.serializer.Serializer.__init__(self)
        yaml.representer.SafeRepresenter.__init__(self, sort_keys=True)
        yaml.resolver.Resolver.__init__(self)


def _represent_str(dumper: yaml.representer.SafeRepresenter, value: str) -> yaml.nodes.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_DefinitionDumper.add_representer(str, _represent_str)


def dump_definition_object(obj: dict[str, Any]) -> str:
    """YAML of a definition object: sorted keys, long lines kept, the template as a `|` block."""
    return str(yaml.dump(obj, Dumper=_DefinitionDumper, width=1 << 30))


def template_text(d: Definition) -> str:
    """`spec.schematic.cue.template`: the imports, then the template's body without its braces' indent."""
    assert d.template is not None
    body = textwrap.dedent(d.template.body).strip("\n")
    body = "\n".join(line.rstrip() for line in body.split("\n"))
    if d.template.imports:
        head = "import (\n" + "".join(f"\t{spec}\n" for spec in d.template.imports) + ")\n\n"
        return head + body + "\n"
    return body + "\n"


# --------------------------------------------------------------------------------------------
# schemas of the built-ins


def regenerate_schemas(evaluator: Evaluator, check: bool = False,
                       root: Path = schemagen.DEFINITION_SCHEMA_DIR) -> list[str]:
    """Rewrite schemas/definitions/ from the built-ins (check=True: only say what would change)."""
    if not check:
        writable_schemas_dir()  # a wheel install has no repository schemas/ to write: say so first
    reg = load_registry()
    builtins = [d for d in reg.all() if d.builtin]
    generated = schemagen.generate(builtins, evaluator)
    problems = [p for diags in generated.problems.values() for p in diags]
    if problems:
        raise InputError(problems)
    editor = schemagen.dump_schema(schemagen.editor_schema(builtins))
    editor_path = schemagen.EDITOR_SCHEMA
    if not check:
        written = [os.path.relpath(p) for p in schemagen.write_schemas(generated, builtins, root)]
        if not editor_path.is_file() or editor_path.read_text(encoding="utf-8") != editor:
            editor_path.write_text(editor, encoding="utf-8")
            written.append(os.path.relpath(editor_path))
        return written
    stale: list[str] = []
    if not editor_path.is_file() or editor_path.read_text(encoding="utf-8") != editor:
        stale.append(os.path.relpath(editor_path))
    wanted = set()
    for d in builtins:
        schema = generated.schemas.get(schemagen.key_of(d))
        if schema is None:
            continue
        path = schemagen.schema_file(d, root)
        wanted.add(path)
        try:
            current = path.read_text(encoding="utf-8")
        except OSError:
            current = ""
        if current != schemagen.dump_schema(schema):
            stale.append(os.path.relpath(path))
    if root.is_dir():
        stale.extend(os.path.relpath(p) for p in sorted(root.rglob("*.schema.json")) if p not in wanted)
    return stale
