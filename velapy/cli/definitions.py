"""X-Definitions: def list, show, vet, render, schema."""

from __future__ import annotations

import os

import click

from velapy.cli import base
from velapy.cli.base import (
    _run,
    main,
    say,
)
from velapy.errors import InputError
from velapy.pipeline import (
    definition_object,
    dump_definition_object,
    format_table,
    list_definitions,
    parameter_table,
    regenerate_schemas,
    vet_files,
)


@main.group("def")
def def_group() -> None:
    """List, inspect and check X-Definitions (built-ins and -d folders)."""


_KINDS = click.Choice(["component", "trait", "policy", "workflowstep"])


@def_group.command("list")
@click.option("--kind", "kind", type=_KINDS, default=None, help="Only definitions of this kind.")
@click.option("-d", "--definitions", "definition_dirs", multiple=True, type=click.Path(),
              help="Definition file or folder (recursive) to list as well. Repeatable.")
def def_list_cmd(kind: str | None, definition_dirs: tuple[str, ...]) -> None:
    """NAME, KIND and DESCRIPTION of every definition."""

    def go() -> int:
        rows = [[d.name + (" (deprecated)" if d.labels.get("deprecated") == "true" else ""),
                 "workflowstep" if d.kind == "workflow-step" else d.kind,
                 d.description + ("" if d.builtin else f" [{d.file}]")]
                for d in list_definitions(definition_dirs, kind or "")]
        click.echo(format_table(["NAME", "KIND", "DESCRIPTION"], rows, max_last=90), nl=False)
        return 0

    _run(go)


@def_group.command("show")
@click.argument("name")
@click.option("--kind", "kind", type=_KINDS, default=None, help="The kind, when NAME is ambiguous.")
@click.option("-d", "--definitions", "definition_dirs", multiple=True, type=click.Path(),
              help="Definition file or folder (recursive); wins over built-ins. Repeatable.")
def def_show_cmd(name: str, kind: str | None, definition_dirs: tuple[str, ...]) -> None:
    """The parameters of definition NAME: path, type, default, required, description."""

    def go() -> int:
        with base.open_evaluator() as ev:
            table = parameter_table(name, kind or "", definition_dirs, ev)
        d = table.definition
        kind_text = "workflowstep" if d.kind == "workflow-step" else d.kind
        click.echo(f"{d.name} ({kind_text}){': ' + d.description if d.description else ''}")
        click.echo(f"defined in {d.file}\n")
        rows = [[r.path, r.type, r.default, "yes" if r.required else "", r.description] for r in table.rows]
        if rows:
            click.echo(format_table(["PARAMETER", "TYPE", "DEFAULT", "REQUIRED", "DESCRIPTION"], rows, max_last=70),
                       nl=False)
        else:
            click.echo("no parameters")
        for note in table.notes:
            say(f"note: {note}")
        return 0

    _run(go)


@def_group.command("vet")
@click.argument("files", nargs=-1, required=True, type=click.Path())
def def_vet_cmd(files: tuple[str, ...]) -> None:
    """Parse and compile-check definition FILES (.cue or YAML objects); every problem located."""

    def go() -> int:
        with base.open_evaluator() as ev:
            result = vet_files(files, ev)
        for f in result.passed:
            click.echo(f"Validation {f} succeed.")
        for note in result.notes:
            say(f"note: {note}", err=True)
        if result.problems:
            raise InputError(list(result.problems))
        return 0

    _run(go)


@def_group.command("render")
@click.argument("file", type=click.Path())
def def_render_cmd(file: str) -> None:
    """FILE (a .cue definition) as the Kubernetes object `vela def render` prints: one YAML document,
    led by a `# Source: FILE` comment."""

    def go() -> int:
        obj = definition_object(file)
        click.echo(f"# Source: {os.path.basename(file)}\n{dump_definition_object(obj)}", nl=False)
        return 0

    _run(go)


@def_group.command("schema")
@click.option("--check", is_flag=True, default=False,
              help="Do not write: exit 1 when a checked-in schema differs from its definition.")
def def_schema_cmd(check: bool) -> None:
    """Regenerate schemas/definitions/ (the parameter schemas of the built-ins) with the CUE engine."""

    def go() -> int:
        with base.open_evaluator() as ev:
            changed = regenerate_schemas(ev, check=check)
        for path in changed:
            click.echo(("stale   " if check else "updated ") + path)
        if check and changed:
            click.echo("refresh with `velapy def schema` (or `make schemas`)", err=True)
            return 1
        if not changed:
            click.echo("schemas/definitions is up to date")
        return 0

    _run(go)

