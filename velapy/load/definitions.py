"""Definition files → a registry of X-Definitions (no CUE evaluation at load time).

Two forms are read: the X-Definition CUE file (`import`s, one metadata field
`<name>: {type: ..., description: ..., attributes: ...}` and `template: {...}`), and the
Kubernetes object form (`kind: ComponentDefinition` etc. with `spec.schematic.cue.template`).
Templates are kept as text and handed to the engine only when a definition is used, so a tree of
definitions whose templates import packages velapy cannot provide (`vela/op`, ...) still loads.
Built-ins come from `definitions/`; each `-d DIR` (searched recursively) is loaded after them and
wins on a name clash.
"""

from __future__ import annotations

import difflib
import functools
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from velapy.cue.cuesyntax import CueSyntaxError, outline, parse_value
from velapy.cue.engine import Template, template_declares_context
from velapy.errors import REASON_UNKNOWN_DEFINITION, Diagnostic, InputError, Location
from velapy.load.yamlio import load_file
from velapy.resources import definitions_dir

BUILTIN_DIR = definitions_dir()

KINDS = ("component", "trait", "policy", "workflow-step", "workload")
_KIND_OF_OBJECT = {
    "ComponentDefinition": "component",
    "TraitDefinition": "trait",
    "PolicyDefinition": "policy",
    "WorkflowStepDefinition": "workflow-step",
    "WorkloadDefinition": "workload",
}
OBJECT_KIND = {v: k for k, v in _KIND_OF_OBJECT.items()}


@dataclass(frozen=True)
class Definition:
    """One X-Definition: what it is, its attributes and (if any) its CUE template."""

    name: str
    kind: str
    description: str
    attributes: dict[str, Any]
    annotations: dict[str, str]
    labels: dict[str, str]
    template: Template | None
    file: str
    line: int
    builtin: bool
    alias: str = ""
    # `spec.schematic.terraform` of a Terraform ComponentDefinition (rendered without CUE:
    # `velapy.compile.terraform`); None for every other definition
    terraform: dict[str, Any] | None = None

    def location(self) -> Location:
        return Location(file=self.file, line=self.line)


@dataclass
class Registry:
    """Definitions by (kind, name); later loads win."""

    definitions: dict[tuple[str, str], Definition] = field(default_factory=dict)
    warnings: list[Diagnostic] = field(default_factory=list)  # what reading the files tolerated

    def add(self, d: Definition) -> None:
        self.definitions[(d.kind, d.name)] = d

    def get(self, kind: str, name: str) -> Definition | None:
        return self.definitions.get((kind, name))

    def names(self, kind: str) -> list[str]:
        return sorted(n for k, n in self.definitions if k == kind)

    def all(self, kind: str | None = None) -> list[Definition]:
        return [self.definitions[k] for k in sorted(self.definitions) if kind is None or k[0] == kind]

    def suggest(self, kind: str, name: str) -> str:
        """`did you mean "x"?` for an unknown name, or ""."""
        close = difflib.get_close_matches(name, self.names(kind), n=1, cutoff=0.6)
        return f'did you mean "{close[0]}"?' if close else ""

    def require(self, kind: str, name: str, location: Location) -> Definition:
        """The definition, or an InputError naming the closest known one."""
        d = self.get(kind, name)
        if d is None:
            label = "workflow step" if kind == "workflow-step" else kind
            raise InputError([Diagnostic(f'unknown {label} type "{name}"', location, self.suggest(kind, name),
                                         REASON_UNKNOWN_DEFINITION)])
        return d


def load_registry(extra_dirs: Sequence[str | os.PathLike[str]] = (), builtin_dir: Path = BUILTIN_DIR) -> Registry:
    """Built-ins, then each extra directory (files or dirs, recursive); all problems reported together."""
    reg = Registry()
    problems: list[Diagnostic] = []
    for d in _load_tree(builtin_dir, builtin=True, problems=problems, warnings=reg.warnings):
        reg.add(d)
    for extra in extra_dirs:
        p = Path(extra)
        if not p.exists():
            problems.append(Diagnostic(f"definition path {str(extra)!r} does not exist"))
            continue
        for d in _load_tree(p, builtin=False, problems=problems, warnings=reg.warnings):
            reg.add(d)
    if problems:
        raise InputError(problems)
    return reg


def _files(root: Path) -> Iterable[Path]:
    if root.is_file():
        yield root
        return
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            if name.endswith((".cue", ".yaml", ".yml")):
                yield Path(dirpath) / name


def _load_tree(root: Path, builtin: bool, problems: list[Diagnostic], warnings: list[Diagnostic]) -> list[Definition]:
    out: list[Definition] = []
    for path in _files(root):
        try:
            if path.suffix == ".cue":
                out.append(_parsed_cue(path.read_text(encoding="utf-8"), str(path), builtin))
            else:
                out.extend(parse_yaml_definitions(path, builtin, warnings))
        except InputError as exc:
            problems.extend(exc.diagnostics)
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(Diagnostic(f"cannot read definition file: {exc}", Location(file=str(path))))
    return out


@functools.lru_cache(maxsize=2048)
def _parsed_cue(src: str, file: str, builtin: bool) -> Definition:
    """`parse_cue_definition`, remembered for the process: a registry is loaded for every app a
    library caller or `golden check` compiles, and outlining ~90 built-in templates costs ~0.1 s a
    time. Keyed on the text itself, so an edited file is parsed again; errors are not remembered."""
    return parse_cue_definition(src, file, builtin)


def parse_cue_definition(src: str, file: str, builtin: bool = False) -> Definition:
    """An X-Definition `.cue` file → Definition (metadata read as literal data, template kept as text)."""
    try:
        out = outline(src)
    except CueSyntaxError as exc:
        raise InputError([Diagnostic(exc.message, Location(file=file, line=exc.line, column=exc.column))]) from None
    meta = [f for f in out.fields if f.label != "template"]
    templates = [f for f in out.fields if f.label == "template"]
    if len(meta) != 1:
        if not meta:
            msg = "no definition found: expected one field `<name>: {type: ...}` beside `template`"
            line = 1
        else:
            names = ", ".join(f.label for f in meta)
            msg = f"duplicated definition name found: a definition file holds exactly one definition, found {names}"
            line = meta[1].label_line
        raise InputError([Diagnostic(msg, Location(file=file, line=line))])
    if len(templates) > 1:
        raise InputError([Diagnostic("more than one `template` field",
                                     Location(file=file, line=templates[1].label_line))])
    head = meta[0]
    try:
        md = parse_value(src[head.value_start:head.value_end], origin_line=head.value_line)
    except CueSyntaxError as exc:
        raise InputError([Diagnostic(
            f"definition {head.label}: metadata must be literal data: {exc.message}",
            Location(file=file, line=exc.line, column=exc.column))]) from None
    if not isinstance(md, dict):
        raise InputError([Diagnostic(f"definition {head.label}: metadata must be a struct",
                                     Location(file=file, line=head.label_line))])
    kind = md.get("type")
    if kind not in KINDS:
        raise InputError([Diagnostic(
            f"definition {head.label}: type must be one of {', '.join(KINDS)}, found {kind!r}",
            Location(file=file, line=head.label_line))])
    template = None
    if templates:
        t = templates[0]
        text = src[t.value_start:t.value_end]
        if not text.startswith("{") or not text.endswith("}"):
            raise InputError([Diagnostic("template must be a struct `{...}`", Location(file=file, line=t.value_line))])
        body = text[1:-1]
        template = Template(head.label, body, out.imports, file, t.value_line, t.value_column + 1,
                            template_declares_context(body))
    attrs = md.get("attributes") or {}
    return Definition(
        name=head.label,
        kind=str(kind),
        description=str(md.get("description", "")),
        attributes=attrs if isinstance(attrs, dict) else {},
        annotations={str(k): str(v) for k, v in (md.get("annotations") or {}).items()},
        labels={str(k): str(v) for k, v in (md.get("labels") or {}).items()},
        template=template,
        file=file,
        line=head.label_line,
        builtin=builtin,
        alias=str(md.get("alias", "")),
    )


def parse_yaml_definitions(path: Path, builtin: bool = False,
                           warnings: list[Diagnostic] | None = None) -> list[Definition]:
    """`kind: ComponentDefinition|TraitDefinition|...` objects → Definitions (other kinds skipped).

    Read as KubeVela reads them (`pkg/appfile/template.go`, `loadSchematicToTemplate`): the CUE
    template of `spec.schematic.cue.template`; else, for a ComponentDefinition, the Terraform
    module of `spec.schematic.terraform`; else, for components, traits and workloads, the
    `template` of `spec.extension` (the older place). A duplicated key keeps its last value with a
    warning (sigs.k8s.io/yaml keeps the last one); without `warnings` to add to, it is an error.
    """
    out: list[Definition] = []
    tolerated: list[Diagnostic] | None = [] if warnings is not None else None
    for doc in load_file(path, tolerated):
        data = doc.data
        if not isinstance(data, dict) or data.get("kind") not in _KIND_OF_OBJECT:
            continue
        kind = _KIND_OF_OBJECT[str(data["kind"])]
        meta = data.get("metadata") or {}
        name = str(meta.get("name") or "")
        loc = doc.location(["metadata", "name"])
        if not name:
            raise InputError([Diagnostic("definition object without metadata.name", loc)])
        annotations = {str(k): str(v) for k, v in (meta.get("annotations") or {}).items()}
        spec = data.get("spec") or {}
        schematic: dict[str, Any] = spec["schematic"] if isinstance(spec.get("schematic"), dict) else {}
        extension: dict[str, Any] = spec["extension"] if isinstance(spec.get("extension"), dict) else {}
        where: list[str | int] = ["spec", "schematic", "cue", "template"]
        tmpl_text = (schematic.get("cue") or {}).get("template")
        terraform = schematic.get("terraform")
        terraform = dict(terraform) if kind == "component" and isinstance(terraform, dict) else None
        if kind == "component" and terraform is None and annotations.get("type") == "terraform":
            terraform = {}  # KubeVela renders it as Terraform, and finds no configuration
        if (not isinstance(tmpl_text, str) or not tmpl_text) and terraform is None \
                and kind in ("component", "trait", "workload") and isinstance(extension.get("template"), str):
            tmpl_text, where = extension["template"], ["spec", "extension", "template"]
        template = None
        if isinstance(tmpl_text, str) and terraform is None:
            tloc = doc.location(where)
            try:
                o = outline(tmpl_text)
            except CueSyntaxError as exc:
                raise InputError([Diagnostic(exc.message, Location(file=str(path), line=tloc.line + exc.line,
                                                                   column=exc.column))]) from None
            body = _strip_imports(tmpl_text)
            # a block scalar starts on the line after its key; blanked imports keep numbering
            template = Template(name, body, o.imports, str(path), tloc.line + 1, 1,
                                template_declares_context(body))
        attrs = {k: v for k, v in spec.items()
                 if k != "schematic" and not (k == "extension" and where[1] == "extension")}
        out.append(Definition(
            name=name,
            kind=kind,
            description=annotations.get("definition.oam.dev/description", ""),
            attributes=attrs,
            annotations=annotations,
            labels={str(k): str(v) for k, v in (meta.get("labels") or {}).items()},
            template=template,
            file=str(path),
            line=loc.line,
            builtin=builtin,
            alias=annotations.get("definition.oam.dev/alias", ""),
            terraform=terraform,
        ))
    if warnings is not None and tolerated and out:  # a file with no definition in it is not read
        warnings.extend(tolerated)
    return out


def _strip_imports(src: str) -> str:
    """The template text after its `import` declarations (line numbers kept by blanking them)."""
    o = outline(src)
    if not o.imports and not o.package:
        return src
    lines = src.split("\n")
    # blank every line up to the last line that belongs to the import section
    last = 0
    depth = 0
    for i, line in enumerate(lines):
        s = line.strip()
        if depth:
            last = i
            if s.startswith(")"):
                depth = 0
            continue
        if s.startswith("import") or s.startswith("package"):
            last = i
            if s.rstrip().endswith("("):
                depth = 1
            continue
        if s and not s.startswith("//"):
            break
    return "\n" * (last + 1) + "\n".join(lines[last + 1:])
