"""Command line → one library call → text on stdout and an exit code. The only click importer.

Errors velapy raises on purpose print as located messages (never a traceback) and map to the
exit codes of `velapy.errors`: 0 ok, 1 differences, 2 invalid input, 3 cluster failure, 4 internal,
5 environment failure (disk, permissions, a folder locked too long).
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from velapy import __version__, golden
from velapy.deflib import format_table
from velapy.diff import Comparison, format_json, format_markdown, format_text, format_unified
from velapy.errors import EXIT_DIFFERENT, EXIT_INTERNAL, EXIT_OK, InputError, VelapyError
from velapy.golden import find_config, format_report, load_project
from velapy.pipeline import (
    Inputs,
    compile_app,
    definition_object,
    dry_run,
    dump_definition_object,
    list_definitions,
    open_evaluator,
    parameter_table,
    plan_text,
    regenerate_schemas,
    validate,
    vet_files,
    write_output,
)
from velapy.review import check_output
from velapy.review import diff as review_diff

F = TypeVar("F", bound=Callable[..., Any])


def _run(fn: Callable[[], int]) -> None:
    """Call `fn`; turn velapy errors into messages and exit codes."""
    try:
        code = fn()
    except VelapyError as exc:
        click.echo(exc.render(), err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)
    except Exception as exc:  # the last line of defence: say it is a bug, never a traceback
        click.echo(f"internal error: {type(exc).__name__}: {exc} (please report this as a velapy bug)", err=True)
        sys.exit(EXIT_INTERNAL)
    sys.exit(code)


def app_inputs(fn: F) -> F:
    """The options every command that reads an Application takes."""
    fn = click.option("-n", "--namespace", default="", help="Namespace of the app (overrides metadata.namespace).")(fn)
    fn = click.option("--resources", "resources", default="", type=click.Path(),
                      help="Folder of manifests standing for the hub's objects (for ref-objects).")(fn)
    fn = click.option("-d", "--definitions", "definition_dirs", multiple=True, type=click.Path(),
                      help="Definition file or folder (recursive); wins over built-ins. Repeatable.")(fn)
    fn = click.option("-f", "--file", "files", multiple=True, type=click.Path(),
                      help="Standalone Policy or Workflow file. Repeatable.")(fn)
    return fn


def unknown_parameters_option(fn: F) -> F:
    """`--allow-unknown-parameters`: accept properties a definition does not declare (KubeVela does)."""
    return click.option("--allow-unknown-parameters", "allow_unknown", is_flag=True, default=False,
                        help="Accept properties that a definition does not declare (an error by default).")(fn)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="velapy")
def main() -> None:
    """velapy: render KubeVela Applications for many clusters and review the result as files."""


@main.command("render")
@click.argument("app", type=click.Path())
@app_inputs
@click.option("--clusters", "clusters", default="", type=click.Path(),
              help="Cluster inventory (YAML `clusters:` list); without it only the hub `local` exists.")
@click.option("-o", "--output", "out", default="", type=click.Path(),
              help="Write the plan and one folder of objects per cluster here (instead of the dry-run stream).")
@click.option("--check", is_flag=True, default=False,
              help="With -o: render in memory and compare with the folder, writing nothing; "
                   "exit 0 when identical, 1 when a refresh would change it.")
@unknown_parameters_option
@click.option("--force", is_flag=True, default=False,
              help="With -o: take over a folder an older velapy wrote without a manifest (foreign files are "
                   "still never deleted).")
@click.option("--lock-timeout", "lock_timeout", type=click.FloatRange(min=0), default=None, metavar="SECONDS",
              help="With -o: how long to wait for another velapy writing the same folder (default 30, env "
                   "VELAPY_LOCK_TIMEOUT).")
def render_cmd(app: str, files: tuple[str, ...], definition_dirs: tuple[str, ...], resources: str,
               namespace: str, clusters: str, out: str, check: bool, allow_unknown: bool, force: bool,
               lock_timeout: float | None) -> None:
    """Render APP as `vela dry-run` prints it, or (-o) as a plan and per-cluster folders."""
    inputs = Inputs(app, files, definition_dirs, resources, namespace, clusters, allow_unknown)
    if check and not out:
        raise click.UsageError("--check compares with an output folder: add -o DIR")

    def go() -> int:
        with open_evaluator() as ev:
            if check:
                cmp, exists = check_output(inputs, out, ev)
                return _report_check(cmp, exists, out, _render_command(inputs, out))
            if not out:
                sys.stdout.write(dry_run(inputs, ev))
                return 0
            plan = compile_app(inputs, ev)
        written = write_output(plan, out, force=force, lock_timeout=lock_timeout,
                               on_wait=lambda text: click.echo(f"note: {text}", err=True))
        for w in plan.warnings:
            click.echo("warning: " + w.render(), err=True)
        counts = ", ".join(f"{name} {len(objs)}" for name, objs in plan.bundles().items())
        click.echo(f"wrote {out}: plan.yaml and {len(written) - 1} files (objects per cluster: {counts or 'none'})",
                   err=True)
        return 0

    _run(go)


@main.command("plan")
@click.argument("app", type=click.Path())
@app_inputs
@click.option("--clusters", "clusters", default="", type=click.Path(),
              help="Cluster inventory (YAML `clusters:` list); without it only the hub `local` exists.")
@click.option("--format", "fmt", type=click.Choice(["tree", "yaml", "json", "mermaid"]), default="tree",
              show_default=True, help="tree for people, yaml/json as in plan.yaml, mermaid for a pull request.")
@unknown_parameters_option
def plan_cmd(app: str, files: tuple[str, ...], definition_dirs: tuple[str, ...], resources: str,
             namespace: str, clusters: str, fmt: str, allow_unknown: bool) -> None:
    """Show the execution plan of APP: steps, their clusters and the objects each receives."""
    inputs = Inputs(app, files, definition_dirs, resources, namespace, clusters, allow_unknown)

    def go() -> int:
        with open_evaluator() as ev:
            plan = compile_app(inputs, ev)
        sys.stdout.write(plan_text(plan, fmt))
        return 0

    _run(go)


@main.command("validate")
@click.argument("app", type=click.Path())
@app_inputs
@unknown_parameters_option
def validate_cmd(app: str, files: tuple[str, ...], definition_dirs: tuple[str, ...], resources: str,
                 namespace: str, allow_unknown: bool) -> None:
    """Check APP (and its -f files) against the schemas and definitions, without rendering.

    Every problem is listed with file:line:col, its path, what was expected and what was found.
    Exit code 0 when valid, 2 otherwise.
    """
    inputs = Inputs(app, files, definition_dirs, resources, namespace, "", allow_unknown)

    def go() -> int:
        with open_evaluator() as ev:  # the engine starts only for the schemas of -d definitions
            summary = validate(inputs, ev)
        click.echo(f"{app} is valid ({summary.text()} checked)")
        return 0

    _run(go)


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
        rows = [[d.name, "workflowstep" if d.kind == "workflow-step" else d.kind,
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
        with open_evaluator() as ev:
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
            click.echo(f"note: {note}")
        return 0

    _run(go)


@def_group.command("vet")
@click.argument("files", nargs=-1, required=True, type=click.Path())
def def_vet_cmd(files: tuple[str, ...]) -> None:
    """Parse and compile-check definition FILES (.cue or YAML objects); every problem located."""

    def go() -> int:
        with open_evaluator() as ev:
            result = vet_files(files, ev)
        for f in result.passed:
            click.echo(f"Validation {f} succeed.")
        for note in result.notes:
            click.echo(f"note: {note}", err=True)
        if result.problems:
            raise InputError(list(result.problems))
        return 0

    _run(go)


@def_group.command("render")
@click.argument("file", type=click.Path())
def def_render_cmd(file: str) -> None:
    """FILE (a .cue definition) as the Kubernetes object `vela def render` prints."""

    def go() -> int:
        obj = definition_object(file)
        click.echo(f"--- {os.path.basename(file)} ---\n{dump_definition_object(obj)}", nl=False)
        return 0

    _run(go)


@def_group.command("schema")
@click.option("--check", is_flag=True, default=False,
              help="Do not write: exit 1 when a checked-in schema differs from its definition.")
def def_schema_cmd(check: bool) -> None:
    """Regenerate schemas/definitions/ (the parameter schemas of the built-ins) with the CUE engine."""

    def go() -> int:
        with open_evaluator() as ev:
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


def _render_command(inputs: Inputs, out: str) -> str:
    """The `velapy render ... -o OUT` command line that writes what `--check` compared with."""
    words = ["velapy", "render", inputs.app]
    words += [w for f in inputs.files for w in ("-f", f)]
    words += [w for d in inputs.definition_dirs for w in ("-d", d)]
    for flag, value in (("--resources", inputs.resources), ("-n", inputs.namespace), ("--clusters", inputs.clusters)):
        if value:
            words += [flag, value]
    if inputs.allow_unknown_parameters:
        words.append("--allow-unknown-parameters")
    return " ".join(shlex.quote(w) for w in [*words, "-o", out])


def _report_check(cmp: Comparison, exists: bool, out: str, refresh: str) -> int:
    if exists and cmp.identical:
        click.echo(f"{out} is up to date")
        return EXIT_OK
    if not exists:
        click.echo(f"{out} does not exist: nothing to compare with")
    else:
        click.echo(f"{out} is stale; a refresh would change:")
        click.echo(format_text(cmp, with_files=True), nl=False)
    click.echo(f"refresh with: {refresh}", err=True)
    return EXIT_DIFFERENT


_DIFF_FORMATS = click.Choice(["text", "json", "markdown"])


@main.command("diff")
@click.argument("old", type=click.Path())
@click.argument("new", type=click.Path(), required=False, default="")
@app_inputs
@click.option("--clusters", "clusters", default="", type=click.Path(),
              help="Cluster inventory used to render app sides.")
@click.option("--git-base", "git_base", default="", metavar="REV",
              help="Compare the one path given with itself as it was at git revision REV.")
@click.option("--unified", is_flag=True, default=False, help="A text diff of each changed object's YAML.")
@click.option("--output", "fmt", type=_DIFF_FORMATS, default="text", show_default=True,
              help="text for people, json for bots, markdown for a pull-request comment.")
@click.option("--show-secrets", is_flag=True, default=False, help="Show Secret values instead of masking them.")
@unknown_parameters_option
def diff_cmd(old: str, new: str, files: tuple[str, ...], definition_dirs: tuple[str, ...], resources: str,
             namespace: str, clusters: str, git_base: str, unified: bool, fmt: str, show_secrets: bool,
             allow_unknown: bool) -> None:
    """What changes for every cluster between OLD and NEW.

    Each side is an Application file (rendered in memory with the same --clusters, -f, -d,
    --resources and -n) or a folder written by `velapy render -o`. With --git-base REV give one
    path: it is compared with itself at REV (e.g. `velapy diff app.yaml --git-base origin/main`).
    Secret values are masked unless --show-secrets. Exit code 0 when equal, 1 when different,
    2 on bad input.
    """
    if git_base and new:
        raise click.UsageError("with --git-base give one path: it is compared with itself at REV")
    if not git_base and not new:
        raise click.UsageError("give two sides, OLD and NEW (or one path and --git-base REV)")
    if unified and fmt != "text":
        raise click.UsageError("--unified is a text format: leave out --output")
    options = Inputs("", files, definition_dirs, resources, namespace, clusters, allow_unknown)
    old_path, new_path = ("", old) if git_base else (old, new)

    def go() -> int:
        with open_evaluator() as ev:
            result = review_diff(old_path, new_path, options, ev, git_base=git_base, show_secrets=show_secrets)
        for note in result.notes:
            click.echo(f"note: {note}", err=True)
        cmp = result.comparison
        if unified:
            click.echo(format_unified(cmp), nl=False)
        elif fmt == "json":
            click.echo(format_json(cmp), nl=False)
        elif fmt == "markdown":
            click.echo(format_markdown([(f"{result.old_label} → {result.new_label}", cmp)]), nl=False)
        else:
            click.echo(format_text(cmp), nl=False)
        return EXIT_OK if cmp.equal else EXIT_DIFFERENT

    _run(go)


@main.group("golden")
def golden_group() -> None:
    """The golden folders of every app listed in velapy.yaml: check, refresh, review."""


def _config_option(fn: F) -> F:
    return click.option("--config", "config", default="", type=click.Path(),
                        help="The project file (default: velapy.yaml here or in the nearest folder above).")(fn)


@golden_group.command("check")
@click.argument("apps", nargs=-1)
@_config_option
def golden_check_cmd(apps: tuple[str, ...], config: str) -> None:
    """Render every app (or the APPS named) and compare with its golden folder, writing nothing.

    Exit code 0 when every golden folder is fresh, 1 listing every stale app and its clusters.
    """

    def go() -> int:
        project = load_project(config or find_config())
        with open_evaluator() as ev:
            results = golden.check(project.select(apps), ev)
        click.echo(format_report(results), nl=False)
        return EXIT_DIFFERENT if any(r.stale for r in results) else EXIT_OK

    _run(go)


@golden_group.command("update")
@click.argument("apps", nargs=-1)
@_config_option
@click.option("--force", is_flag=True, default=False,
              help="Take over golden folders an older velapy wrote without a manifest (adds the manifest).")
@click.option("--lock-timeout", "lock_timeout", type=click.FloatRange(min=0), default=None, metavar="SECONDS",
              help="How long to wait for another velapy writing the same folder (default 30).")
def golden_update_cmd(apps: tuple[str, ...], config: str, force: bool, lock_timeout: float | None) -> None:
    """Re-render every app (or the APPS named) into its golden folder; fresh folders stay untouched."""

    def go() -> int:
        project = load_project(config or find_config())
        with open_evaluator() as ev:
            results = golden.update(project.select(apps), ev, force=force, lock_timeout=lock_timeout)
        click.echo(format_report(results, updated=True), nl=False)
        return EXIT_OK

    _run(go)


@golden_group.command("diff")
@click.argument("apps", nargs=-1)
@_config_option
@click.option("--git-base", "git_base", default="", metavar="REV",
              help="Compare with the golden folders as they were at git revision REV (default: as on disk).")
@click.option("--output", "fmt", type=_DIFF_FORMATS, default="text", show_default=True,
              help="text for people, json for bots, markdown for a pull-request comment.")
@click.option("--show-secrets", is_flag=True, default=False, help="Show Secret values instead of masking them.")
def golden_diff_cmd(apps: tuple[str, ...], config: str, git_base: str, fmt: str, show_secrets: bool) -> None:
    """What the current inputs change, per app and cluster, against the golden folders (on disk,
    or at --git-base REV: what a pull request changes). Exit code 0 when equal, 1 when different."""

    def go() -> int:
        project = load_project(config or find_config())
        with open_evaluator() as ev:
            sections = golden.diff(project.select(apps), ev, git_base=git_base, show_secrets=show_secrets)
        if fmt == "json":
            click.echo(golden.format_diff_json(sections), nl=False)
        elif fmt == "markdown":
            click.echo(format_markdown([(a.name, cmp) for a, cmp in sections]), nl=False)
        else:
            click.echo(golden.format_diff_text(sections), nl=False)
        return EXIT_DIFFERENT if any(not cmp.equal for _a, cmp in sections) else EXIT_OK

    _run(go)


@main.command("engine")
def engine_cmd() -> None:
    """Say which CUE engine runs and its version."""

    def go() -> int:
        with open_evaluator() as ev:
            click.echo(ev.runner.describe())
        return 0

    _run(go)
