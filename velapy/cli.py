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
from dataclasses import replace
from typing import Any, TypeVar

import click

from velapy import __version__, colour
from velapy.errors import EXIT_DIFFERENT, EXIT_INTERNAL, EXIT_OK, InputError, VelapyError
from velapy.pipeline import (
    Evaluator,
    HandoffOptions,
    Inputs,
    Plan,
    compile_app,
    definition_object,
    dry_run_documents,
    dry_run_with_warnings,
    dump_definition_object,
    format_table,
    handoff_output,
    handoff_repo_path,
    list_definitions,
    open_evaluator,
    parameter_table,
    plan_text,
    regenerate_schemas,
    validate,
    validation_warnings,
    vet_files,
    write_files,
)
from velapy.review import golden
from velapy.review.diff import Comparison, format_json, format_markdown, format_text, format_unified
from velapy.review.golden import find_config, format_report, load_project
from velapy.review.sides import check_output, fresh_output, remember_output
from velapy.review.sides import diff as review_diff

F = TypeVar("F", bound=Callable[..., Any])


_COLOR_KEY = "velapy.color"


def _colour_on(err: bool) -> bool:
    """Whether to colour stdout (or stderr): the global --color, NO_COLOR, FORCE_COLOR, a terminal."""
    ctx = click.get_current_context(silent=True)
    mode = str(ctx.meta.get(_COLOR_KEY, "auto")) if ctx is not None else "auto"
    stream = sys.stderr if err else sys.stdout
    return colour.wanted(mode, stream.isatty(), os.environ)


def say(text: str, kind: str = "messages", *, err: bool = False, nl: bool = True) -> None:
    """Print `text` (coloured as `kind` of velapy.colour when the stream wants colour)."""
    on = _colour_on(err)
    click.echo(colour.paint(text, kind) if on else text, nl=nl, err=err, color=on)


def _run(fn: Callable[[], int]) -> None:
    """Call `fn`; turn velapy errors into messages and exit codes."""
    try:
        code = fn()
    except VelapyError as exc:
        say(exc.render(), err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        say("interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)
    except Exception as exc:  # the last line of defence: say it is a bug, never a traceback
        say(f"internal error: {type(exc).__name__}: {exc} (please report this as a velapy bug)", err=True)
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


def no_cache_option(fn: F) -> F:
    """`--no-cache`: neither read nor fill the render cache (velapy.cue.cache) in this command."""
    return click.option("--no-cache", "no_cache", is_flag=True, default=False, expose_value=False,
                        callback=lambda ctx, _p, v: ctx.meta.__setitem__("velapy.no_cache", v),
                        help="Do not use the render cache (neither read nor write it).")(fn)


def _evaluator() -> Evaluator:
    """The command's evaluator, with the render cache unless --no-cache was given."""
    if click.get_current_context().meta.get("velapy.no_cache", False):
        return open_evaluator(cache=False)
    return open_evaluator()


def unknown_parameters_option(fn: F) -> F:
    """`--allow-unknown-parameters`: accept properties a definition does not declare (KubeVela does)."""
    return click.option("--allow-unknown-parameters", "allow_unknown", is_flag=True, default=False,
                        help="Accept properties that a definition does not declare (an error by default).")(fn)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="velapy")
@click.option("--color", "color", type=click.Choice(colour.MODES), default="auto", show_default=True,
              help="Colour errors, warnings, diffs and plan gates: auto = on a terminal unless NO_COLOR is set "
                   "(FORCE_COLOR forces it).")
@click.pass_context
def main(ctx: click.Context, color: str) -> None:
    """velapy: render KubeVela Applications for many clusters, review the result as files, apply it."""
    ctx.meta[_COLOR_KEY] = color


def handoff_options(fn: F) -> F:
    """`--emit argocd|flux` and what the GitOps engines need to know (render -o)."""
    for decorator in reversed([
        click.option("--emit", "emit", multiple=True, type=click.Choice(["argocd", "flux"]),
                     help="Also write the objects that make Argo CD (argocd/) or Flux (flux/) deploy the "
                          "folder as reviewed. Repeatable."),
        click.option("--repo-url", "repo_url", default="", metavar="URL",
                     help="Git repository the engine reads OUT from (needed by --emit argocd)."),
        click.option("--revision", "revision", default="HEAD", show_default=True, metavar="REV",
                     help="Branch, tag or commit Argo CD deploys."),
        click.option("--repo-path", "repo_path", default=None, metavar="PATH",
                     help="Where OUT sits inside the repository (default: OUT relative to the git top "
                          "level, or OUT as given outside a repository)."),
        click.option("--argocd-namespace", "argocd_namespace", default="argocd", show_default=True,
                     help="Namespace of Argo CD (the AppProject and ApplicationSet go there)."),
        click.option("--argocd-service-account", "argocd_sa", default="", metavar="NAMESPACE/NAME",
                     help="Service account Argo CD impersonates in every destination (it cannot impersonate "
                          "users: the plan's identity is mapped to it)."),
        click.option("--flux-source", "flux_source", default="flux-system", show_default=True,
                     help="Name of the Flux GitRepository serving the repository."),
        click.option("--flux-namespace", "flux_namespace", default="flux-system", show_default=True,
                     help="Namespace of the Flux Kustomizations (and of each member's <cluster>-kubeconfig Secret)."),
    ]):
        fn = decorator(fn)
    return fn


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
@handoff_options
@click.option("--vela-layout", is_flag=True, default=False,
              help="Print the stream byte for byte as `vela dry-run` lays it out: header and blank YAML "
                   "documents, and warnings in the stream.")
@click.option("--resources-from-hub", "from_hub", is_flag=True, default=False,
              help="Read ref-objects' objects from the live hub (context `local`) instead of --resources, and "
                   "each cluster's version from the cluster where the inventory gives none.")
@click.option("--kubeconfig", "kubeconfig", default="", type=click.Path(),
              help="With --resources-from-hub: the kubeconfig (a cluster's context defaults to its name).")
@click.option("--merge", "--merge-standalone", "merge", is_flag=True, default=False,
              help="Merge the -f Workflow (its steps become the app's) and Policy files into the app "
                   "(`vela dry-run --merge`).")
@unknown_parameters_option
@click.option("--force", is_flag=True, default=False,
              help="With -o: take over a folder an older velapy wrote without a manifest (foreign files are "
                   "still never deleted).")
@click.option("--lock-timeout", "lock_timeout", type=click.FloatRange(min=0), default=None, metavar="SECONDS",
              help="With -o: how long to wait for another velapy writing the same folder (default 30, env "
                   "VELAPY_LOCK_TIMEOUT).")
@no_cache_option
def render_cmd(app: str, files: tuple[str, ...], definition_dirs: tuple[str, ...], resources: str,
               namespace: str, clusters: str, out: str, check: bool, emit: tuple[str, ...], repo_url: str,
               revision: str, repo_path: str | None, argocd_namespace: str, argocd_sa: str, flux_source: str,
               flux_namespace: str, vela_layout: bool, from_hub: bool, kubeconfig: str, merge: bool,
               allow_unknown: bool, force: bool, lock_timeout: float | None) -> None:
    """Render APP as `vela dry-run` prints it, or (-o) as a plan and per-cluster folders.

    With --emit argocd and/or --emit flux, OUT also gets the GitOps engine objects that deploy
    the cluster folders in the workflow's order (see README, "Hand off to Argo CD / Flux").
    """
    if check and not out:
        raise click.UsageError("--check compares with an output folder: add -o DIR")
    if emit and not out:
        raise click.UsageError("--emit writes into an output folder: add -o DIR")
    if vela_layout and out:
        raise click.UsageError("--vela-layout is a layout of the stream: leave out -o")
    if from_hub and (check or resources):
        raise click.UsageError("--resources-from-hub reads the hub: leave out --resources and --check")
    handoff = None
    if emit:
        handoff = HandoffOptions(tuple(dict.fromkeys(emit)), repo_url, revision,
                                 repo_path if repo_path is not None else "", argocd_namespace, argocd_sa,
                                 flux_source, flux_namespace)
    inputs = Inputs(app, files, definition_dirs, resources, namespace, clusters, allow_unknown, handoff, merge)

    def go() -> int:
        nonlocal inputs
        if handoff is not None and repo_path is None:
            inputs = replace(inputs, handoff=replace(handoff, repo_path=handoff_repo_path(out)))
        if inputs.handoff is not None:
            inputs.handoff.check()
        with _evaluator() as ev:
            if from_hub:
                from velapy.execute.session import compile_live

                target = _target(app, files, definition_dirs, "", namespace, clusters, allow_unknown, kubeconfig,
                                 "", (), ".velapy/state")
                plan, stream = compile_live(target, ev, warn=lambda w: say("warning: " + w, err=True),
                                            stream=not out)
                if not out:
                    sys.stdout.write(stream)
                    return 0
                return _write_rendered(plan, out, inputs, ev, force, lock_timeout)
            if check:
                cmp, exists = check_output(inputs, out, ev)
                return _report_check(cmp, exists, out, _render_command(inputs, out))
            if vela_layout:
                text, warnings = dry_run_with_warnings(inputs, ev)
                for w in warnings:
                    say("warning: " + w.render(), err=True)
                sys.stdout.write(text)
                return 0
            if not out:
                notes, stream = dry_run_documents(inputs, ev)
                for note in notes:
                    say("warning: " + note, err=True)
                sys.stdout.write(stream)
                return 0
            fresh = fresh_output(inputs, out, ev)
            if fresh is not None:
                for text in fresh.warnings:
                    click.echo("warning: " + text, err=True)
                click.echo(f"{out} is up to date with its inputs: nothing written "
                           f"(objects per cluster: {fresh.counts or 'none'})", err=True)
                return 0
            plan = compile_app(inputs, ev)
        return _write_rendered(plan, out, inputs, ev, force, lock_timeout)

    _run(go)


def _write_rendered(plan: Plan, out: str, inputs: Inputs, ev: Evaluator, force: bool,
                    lock_timeout: float | None) -> int:
    """Write a compiled plan (and its hand-off files) into OUT, then say what was written."""
    written, result = handoff_output(plan, inputs.handoff)
    write_files(out, written, force=force, lock_timeout=lock_timeout,
                on_wait=lambda text: click.echo(f"note: {text}", err=True))
    remember_output(inputs, out, ev, plan, written)
    for w in (*plan.warnings, *result.warnings):
        say("warning: " + w.render(), err=True)
    for note in result.notes:
        say("note: " + note, err=True)
    counts = ", ".join(f"{name} {len(objs)}" for name, objs in plan.bundles().items())
    click.echo(f"wrote {out}: plan.yaml and {len(written) - 1} files (objects per cluster: {counts or 'none'})",
               err=True)
    return 0


@main.command("plan")
@click.argument("app", type=click.Path())
@app_inputs
@click.option("--clusters", "clusters", default="", type=click.Path(),
              help="Cluster inventory (YAML `clusters:` list); without it only the hub `local` exists.")
@click.option("--format", "fmt", type=click.Choice(["tree", "yaml", "json", "mermaid"]), default="tree",
              show_default=True, help="tree for people, yaml/json as in plan.yaml, mermaid for a pull request.")
@unknown_parameters_option
@no_cache_option
def plan_cmd(app: str, files: tuple[str, ...], definition_dirs: tuple[str, ...], resources: str,
             namespace: str, clusters: str, fmt: str, allow_unknown: bool) -> None:
    """Show the execution plan of APP: steps, their clusters and the objects each receives."""
    inputs = Inputs(app, files, definition_dirs, resources, namespace, clusters, allow_unknown)

    def go() -> int:
        with _evaluator() as ev:
            plan = compile_app(inputs, ev)
        if fmt == "tree":
            say(plan_text(plan, fmt), "plan", nl=False)
        else:
            sys.stdout.write(plan_text(plan, fmt))
        return 0

    _run(go)


@main.command("validate")
@click.argument("app", type=click.Path())
@app_inputs
@click.option("--clusters", "clusters", default="", type=click.Path(),
              help="Cluster inventory: check the cluster names and label selectors of topology policies.")
@unknown_parameters_option
def validate_cmd(app: str, files: tuple[str, ...], definition_dirs: tuple[str, ...], resources: str,
                 namespace: str, clusters: str, allow_unknown: bool) -> None:
    """Check APP (and its -f files) against the schemas and definitions, without rendering.

    Every problem is listed with file:line:col, its path, what was expected and what was found.
    Exit code 0 when valid, 2 otherwise.
    """
    inputs = Inputs(app, files, definition_dirs, resources, namespace, clusters, allow_unknown)

    def go() -> int:
        with open_evaluator() as ev:  # the engine starts only for the schemas of -d definitions
            summary = validate(inputs, ev)
        for w in validation_warnings(inputs):
            click.echo("warning: " + w.render(), err=True)
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
            say(f"note: {note}")
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
            say(f"note: {note}", err=True)
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
    h = inputs.handoff
    if h is not None:
        words += [w for e in h.engines for w in ("--emit", e)]
        defaults = HandoffOptions()
        for flag, value, default in (("--repo-url", h.repo_url, ""), ("--revision", h.revision, defaults.revision),
                                     ("--repo-path", h.repo_path, None),
                                     ("--argocd-namespace", h.argocd_namespace, defaults.argocd_namespace),
                                     ("--argocd-service-account", h.argocd_service_account, ""),
                                     ("--flux-source", h.flux_source, defaults.flux_source),
                                     ("--flux-namespace", h.flux_namespace, defaults.flux_namespace)):
            if value != default:
                words += [flag, value]
    return " ".join(shlex.quote(w) for w in [*words, "-o", out])


def _report_check(cmp: Comparison, exists: bool, out: str, refresh: str) -> int:
    if exists and cmp.identical:
        click.echo(f"{out} is up to date")
        return EXIT_OK
    if not exists:
        click.echo(f"{out} does not exist: nothing to compare with")
    else:
        click.echo(f"{out} is stale; a refresh would change:")
        say(format_text(cmp, with_files=True), "changes", nl=False)
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
@click.option("--live", is_flag=True, default=False,
              help="Compare the one APP (file or folder) with what its clusters hold now (server-side dry run).")
@click.option("--kubeconfig", "kubeconfig", default="", type=click.Path(),
              help="With --live: default kubeconfig; a cluster's context defaults to its name.")
@click.option("--as", "as_user", default="", metavar="USER", help="With --live: impersonate this user.")
@click.option("--as-group", "as_groups", multiple=True, metavar="GROUP", help="With --live: and this group.")
@handoff_options
@unknown_parameters_option
@no_cache_option
def diff_cmd(old: str, new: str, files: tuple[str, ...], definition_dirs: tuple[str, ...], resources: str,
             namespace: str, clusters: str, git_base: str, unified: bool, fmt: str, show_secrets: bool,
             live: bool, kubeconfig: str, as_user: str, as_groups: tuple[str, ...], emit: tuple[str, ...],
             repo_url: str, revision: str, repo_path: str | None, argocd_namespace: str, argocd_sa: str,
             flux_source: str, flux_namespace: str, allow_unknown: bool) -> None:
    """What changes for every cluster between OLD and NEW.

    Each side is an Application file (rendered in memory with the same --clusters, -f, -d,
    --resources, -n and --emit options) or a folder written by `velapy render -o`. With --git-base REV give one
    path: it is compared with itself at REV (e.g. `velapy diff app.yaml --git-base origin/main`).
    Secret values are masked unless --show-secrets. Exit code 0 when equal, 1 when different,
    2 on bad input.
    """
    if live:
        if new or git_base or unified:
            raise click.UsageError("--live compares one APP with its clusters: give one path, without --git-base")
        target = _target(old, files, definition_dirs, resources, namespace, clusters, allow_unknown, kubeconfig,
                         as_user, as_groups, ".velapy/state")
        _run(lambda: _live_diff(target, fmt, show_secrets))
        return
    if git_base and new:
        raise click.UsageError("with --git-base give one path: it is compared with itself at REV")
    if not git_base and not new:
        raise click.UsageError("give two sides, OLD and NEW (or one path and --git-base REV)")
    if unified and fmt != "text":
        raise click.UsageError("--unified is a text format: leave out --output")
    old_path, new_path = ("", old) if git_base else (old, new)
    handoff = None
    if emit:  # app sides are rendered with the hand-off; OUT's place in the repo is the folder side's
        if repo_path is None:
            folder = next((p for p in (old_path, new_path) if p and os.path.isdir(p)), "")
            repo_path = handoff_repo_path(folder) if folder else ""
        handoff = HandoffOptions(tuple(dict.fromkeys(emit)), repo_url, revision, repo_path, argocd_namespace,
                                 argocd_sa, flux_source, flux_namespace)
    options = Inputs("", files, definition_dirs, resources, namespace, clusters, allow_unknown, handoff)

    def go() -> int:
        if options.handoff is not None:
            options.handoff.check()
        with _evaluator() as ev:
            result = review_diff(old_path, new_path, options, ev, git_base=git_base, show_secrets=show_secrets)
        for note in result.notes:
            say(f"note: {note}", err=True)
        cmp = result.comparison
        if unified:
            say(format_unified(cmp), "unified", nl=False)
        elif fmt == "json":
            click.echo(format_json(cmp), nl=False)
        elif fmt == "markdown":
            click.echo(format_markdown([(f"{result.old_label} → {result.new_label}", cmp)]), nl=False)
        else:
            say(format_text(cmp), "changes", nl=False)
        return EXIT_OK if cmp.equal else EXIT_DIFFERENT

    _run(go)


@main.group("golden")
def golden_group() -> None:
    """The golden folders of every app listed in velapy.yaml: check, refresh, review."""


def _config_option(fn: F) -> F:
    return click.option("--config", "config", default="", type=click.Path(),
                        help="The project file (default: velapy.yaml here or in the nearest folder above).")(fn)


def _project(config: str) -> golden.Project:
    """The project file named by --config, else the nearest velapy.yaml; says which on stderr."""
    path = config or find_config()
    say(f"note: using {os.path.relpath(path)}", err=True)
    return load_project(path)


@golden_group.command("check")
@click.argument("apps", nargs=-1)
@_config_option
@no_cache_option
def golden_check_cmd(apps: tuple[str, ...], config: str) -> None:
    """Render every app (or the APPS named) and compare with its golden folder, writing nothing.

    Exit code 0 when every golden folder is fresh, 1 listing every stale app and its clusters.
    """

    def go() -> int:
        project = _project(config)
        with _evaluator() as ev:
            results = golden.check(project.select(apps), ev)
        say(format_report(results), "changes", nl=False)
        return EXIT_DIFFERENT if any(r.stale for r in results) else EXIT_OK

    _run(go)


@golden_group.command("update")
@click.argument("apps", nargs=-1)
@_config_option
@click.option("--force", is_flag=True, default=False,
              help="Take over golden folders an older velapy wrote without a manifest (adds the manifest).")
@click.option("--lock-timeout", "lock_timeout", type=click.FloatRange(min=0), default=None, metavar="SECONDS",
              help="How long to wait for another velapy writing the same folder (default 30).")
@no_cache_option
def golden_update_cmd(apps: tuple[str, ...], config: str, force: bool, lock_timeout: float | None) -> None:
    """Re-render every app (or the APPS named) into its golden folder; fresh folders stay untouched."""

    def go() -> int:
        project = _project(config)
        with _evaluator() as ev:
            results = golden.update(project.select(apps), ev, force=force, lock_timeout=lock_timeout)
        say(format_report(results, updated=True), "changes", nl=False)
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
@no_cache_option
def golden_diff_cmd(apps: tuple[str, ...], config: str, git_base: str, fmt: str, show_secrets: bool) -> None:
    """What the current inputs change, per app and cluster, against the golden folders (on disk,
    or at --git-base REV: what a pull request changes). Exit code 0 when equal, 1 when different."""

    def go() -> int:
        project = _project(config)
        with _evaluator() as ev:
            sections = golden.diff(project.select(apps), ev, git_base=git_base, show_secrets=show_secrets)
        if fmt == "json":
            click.echo(golden.format_diff_json(sections), nl=False)
        elif fmt == "markdown":
            click.echo(format_markdown([(a.name, cmp) for a, cmp in sections]), nl=False)
        else:
            say(golden.format_diff_text(sections), "changes", nl=False)
        return EXIT_DIFFERENT if any(not cmp.equal for _a, cmp in sections) else EXIT_OK

    _run(go)


@main.command("engine")
def engine_cmd() -> None:
    """Say which CUE engine runs, its version and where it lives.

    An installed velapy installs the embedded engine on first use (this command does it too).
    """

    def go() -> int:
        with open_evaluator() as ev:
            click.echo(ev.runner.describe())
        return 0

    _run(go)


_SHELLS = {"bash": "~/.bashrc", "zsh": "~/.zshrc", "fish": "~/.config/fish/completions/velapy.fish"}


@main.command("completion")
@click.argument("shell", type=click.Choice(list(_SHELLS)))
def completion_cmd(shell: str) -> None:
    """Print the shell completion script for SHELL (bash, zsh or fish).

    \b
    bash:  echo 'eval "$(velapy completion bash)"' >> ~/.bashrc
    zsh:   echo 'eval "$(velapy completion zsh)"' >> ~/.zshrc
    fish:  velapy completion fish > ~/.config/fish/completions/velapy.fish
    """
    from click.shell_completion import get_completion_class

    cls = get_completion_class(shell)
    if cls is None:  # click knows all three; a clear message if a future click drops one
        raise click.UsageError(f"click cannot complete {shell}")
    root = click.get_current_context().find_root().command
    click.echo(cls(root, {}, "velapy", "_VELAPY_COMPLETE").source())
# ----------------------------------------------------------------------------------------------
# the executor: apply, resume, status, delete (velapy.execute)


def cluster_options(fn: F) -> F:
    """How to reach the clusters: the inventory, a default kubeconfig, and whom to impersonate."""
    fn = click.option("--as-group", "as_groups", multiple=True, metavar="GROUP",
                      help="Impersonate this group too (repeatable; needs --as).")(fn)
    fn = click.option("--as", "as_user", default="", metavar="USER",
                      help="Impersonate this user in every cluster (wins over the app's app.oam.dev/username).")(fn)
    fn = click.option("--kubeconfig", "kubeconfig", default="", type=click.Path(),
                      help="Default kubeconfig; a cluster's context defaults to its name (the hub: local).")(fn)
    fn = click.option("--clusters", "clusters", default="", type=click.Path(),
                      help="Cluster inventory: its kubeconfig/context/identity entries win.")(fn)
    fn = click.option("--state-dir", "state_dir", default=".velapy/state", show_default=True, type=click.Path(),
                      help="Where run state lives when the hub `local` is not reachable.")(fn)
    return fn


def _target(app: str, files: tuple[str, ...], definition_dirs: tuple[str, ...], resources: str, namespace: str,
            clusters: str, allow_unknown: bool, kubeconfig: str, as_user: str, as_groups: tuple[str, ...],
            state_dir: str) -> Any:
    from velapy.execute import Target

    if as_groups and not as_user:
        raise click.UsageError("--as-group needs --as (Kubernetes impersonates groups only together with a user)")
    return Target(app, Inputs(app, files, definition_dirs, resources, namespace, clusters, allow_unknown),
                  kubeconfig, as_user, tuple(as_groups), state_dir)


def _resume_command(target: Any, plan_ns: str, plan_name: str, flags: tuple[str, ...] = ()) -> str:
    """The exact `velapy resume ...` line that continues this run (with the apply flags that matter)."""
    words = ["velapy", "resume"]
    if target.kind == "name":
        words += [plan_name, "-n", plan_ns]
    else:
        words.append(target.app)
        i = target.inputs
        words += [w for f in i.files for w in ("-f", f)]
        words += [w for d in i.definition_dirs for w in ("-d", d)]
        for flag, value in (("--resources", i.resources), ("-n", i.namespace)):
            if value:
                words += [flag, value]
        if i.allow_unknown_parameters:
            words.append("--allow-unknown-parameters")
    if target.inputs.clusters:
        words += ["--clusters", target.inputs.clusters]
    if target.kubeconfig:
        words += ["--kubeconfig", target.kubeconfig]
    if target.as_user:
        words += ["--as", target.as_user]
    words += [w for g in target.as_groups for w in ("--as-group", g)]
    if target.state_dir != ".velapy/state":
        words += ["--state-dir", target.state_dir]
    return " ".join(shlex.quote(w) for w in [*words, *flags])


def _execute(target: Any, resume: bool, dry_run: bool, take_over: bool, force_conflicts: bool,
             create_namespaces: bool, timeout: str, fmt: str) -> int:
    from velapy.execute import Options, Reporter, open_session, run
    from velapy.execute.live import live_diff
    from velapy.execute.planfile import parse_duration
    from velapy.execute.session import redactor_for

    try:
        health_timeout = parse_duration(timeout)
    except ValueError as exc:
        raise InputError(f"--timeout: {exc}") from None
    reporter = Reporter(sys.stderr, live=sys.stderr.isatty())
    session = open_session(target, reporter)
    try:
        reporter.redact = redactor_for(session.plan)
        if dry_run:
            return _print_live(live_diff(session), session.plan.app_name, fmt)
        options = Options(take_over=take_over, force_conflicts=force_conflicts,
                          create_namespaces=create_namespaces, health_timeout=health_timeout)
        flags = tuple(f for f, on in (("--take-over", take_over), ("--force-conflicts", force_conflicts),
                                      ("--create-namespaces", create_namespaces)) if on)
        if timeout != "5m":
            flags += ("--timeout", timeout)
        command = _resume_command(target, session.plan.app_namespace, session.plan.app_name, flags)
        report = run(session, options, reporter, resume=resume, resume_command=command)
    finally:
        session.close()
        reporter.done()
    ident = f"{report.namespace}/{report.app}"
    counts = f"{report.applied} applied, {report.unchanged} unchanged"
    if report.deleted or report.kept:
        counts += f", {report.deleted} deleted, {report.kept} kept"
    if report.phase == "suspended":
        click.echo(f"{ident}: {report.message} ({counts}); continue with:\n  {command}")
        return EXIT_OK
    if report.phase == "succeeded":
        click.echo(f"{ident}: succeeded ({counts})")
        return EXIT_OK
    click.echo(f"{ident}: {report.phase} ({counts})", err=True)
    for line in report.problems:
        click.echo("  " + reporter.redact(line), err=True)
    click.echo(f"run state saved; after fixing the cause, continue with:\n  {command}", err=True)
    return report.exit_code


def _print_live(cmp: Comparison, app: str, fmt: str) -> int:
    out = format_json(cmp) if fmt == "json" else (
        format_markdown([(f"{app}: live → plan", cmp)]) if fmt == "markdown" else format_text(cmp))
    click.echo(out, nl=False)
    return EXIT_OK if cmp.equal else EXIT_DIFFERENT


def _live_diff(target: Any, fmt: str, show_secrets: bool) -> int:
    from velapy.execute import open_session
    from velapy.execute.live import live_diff

    session = open_session(target, None)
    try:
        return _print_live(live_diff(session, show_secrets=show_secrets), session.plan.app_name, fmt)
    finally:
        session.close()


_EXEC_HELP = ("APP is an Application file (rendered first, with -f/-d/--resources/-n/--clusters), a folder written "
              "by `velapy render -o` (run as reviewed: every digest is checked), or an app name with -n.")


@main.command("apply", help="Roll APP out to its clusters: steps in order, server-side apply, health, gates.\n\n"
              + _EXEC_HELP + " Exit 0 when done or waiting at a gate, 3 when a cluster failed (state is saved).")
@click.argument("app")
@app_inputs
@cluster_options
@click.option("--dry-run", is_flag=True, default=False,
              help="Write nothing: show what each cluster would change (server-side dry run), as a diff.")
@click.option("--output", "fmt", type=_DIFF_FORMATS, default="text", show_default=True, help="With --dry-run.")
@click.option("--take-over", is_flag=True, default=False,
              help="Adopt existing objects that no application manages (as a take-over policy would).")
@click.option("--force-conflicts", is_flag=True, default=False,
              help="Take fields another field manager owns with other values (never the default).")
@click.option("--create-namespaces", is_flag=True, default=False,
              help="Create missing namespaces in member clusters (otherwise preflight refuses the cluster).")
@click.option("--timeout", "timeout", default="5m", show_default=True,
              help="How long a deploy step without its own timeout waits for health.")
@unknown_parameters_option
def apply_cmd(app: str, files: tuple[str, ...], definition_dirs: tuple[str, ...], resources: str, namespace: str,
              clusters: str, kubeconfig: str, as_user: str, as_groups: tuple[str, ...], state_dir: str,
              dry_run: bool, fmt: str, take_over: bool, force_conflicts: bool, create_namespaces: bool,
              timeout: str, allow_unknown: bool) -> None:
    target = _target(app, files, definition_dirs, resources, namespace, clusters, allow_unknown, kubeconfig,
                     as_user, as_groups, state_dir)
    _run(lambda: _execute(target, False, dry_run, take_over, force_conflicts, create_namespaces, timeout, fmt))


@main.command("resume", help="Continue APP's suspended or failed run: pass the gate it waits at; finished steps "
              "are not run again.\n\n" + _EXEC_HELP)
@click.argument("app")
@app_inputs
@cluster_options
@click.option("--take-over", is_flag=True, default=False, help="As for apply.")
@click.option("--force-conflicts", is_flag=True, default=False, help="As for apply.")
@click.option("--create-namespaces", is_flag=True, default=False, help="As for apply.")
@click.option("--timeout", "timeout", default="5m", show_default=True, help="As for apply.")
@unknown_parameters_option
def resume_cmd(app: str, files: tuple[str, ...], definition_dirs: tuple[str, ...], resources: str, namespace: str,
               clusters: str, kubeconfig: str, as_user: str, as_groups: tuple[str, ...], state_dir: str,
               take_over: bool, force_conflicts: bool, create_namespaces: bool, timeout: str,
               allow_unknown: bool) -> None:
    target = _target(app, files, definition_dirs, resources, namespace, clusters, allow_unknown, kubeconfig,
                     as_user, as_groups, state_dir)
    _run(lambda: _execute(target, True, False, take_over, force_conflicts, create_namespaces, timeout, "text"))


@main.command("status", help="APP's run (steps and phases) and every object it applied, live: KIND NAME CLUSTER "
              "READY UP-TO-DATE AVAILABLE AGE.\n\n" + _EXEC_HELP)
@click.argument("app")
@app_inputs
@cluster_options
@click.option("-o", "--output", "fmt", type=click.Choice(["table", "json", "yaml"]), default="table",
              show_default=True)
@unknown_parameters_option
def status_cmd(app: str, files: tuple[str, ...], definition_dirs: tuple[str, ...], resources: str, namespace: str,
               clusters: str, kubeconfig: str, as_user: str, as_groups: tuple[str, ...], state_dir: str, fmt: str,
               allow_unknown: bool) -> None:
    target = _target(app, files, definition_dirs, resources, namespace, clusters, allow_unknown, kubeconfig,
                     as_user, as_groups, state_dir)

    def go() -> int:
        from velapy.execute.status import format_status, status_data

        data = status_data(target)
        click.echo(format_status(data, fmt), nl=False)
        return EXIT_OK

    _run(go)


@main.command("delete", help="Remove what APP owns from its clusters (per its garbage-collect policy: `never` "
              "keeps), then its run state.\n\n" + _EXEC_HELP)
@click.argument("app")
@app_inputs
@cluster_options
@unknown_parameters_option
def delete_cmd(app: str, files: tuple[str, ...], definition_dirs: tuple[str, ...], resources: str, namespace: str,
               clusters: str, kubeconfig: str, as_user: str, as_groups: tuple[str, ...], state_dir: str,
               allow_unknown: bool) -> None:
    target = _target(app, files, definition_dirs, resources, namespace, clusters, allow_unknown, kubeconfig,
                     as_user, as_groups, state_dir)

    def go() -> int:
        from velapy.execute import Reporter, delete, open_session
        from velapy.execute.session import redactor_for

        reporter = Reporter(sys.stderr, live=sys.stderr.isatty())
        session = open_session(target, reporter)
        try:
            reporter.redact = redactor_for(session.plan)
            report = delete(session, reporter)
        finally:
            session.close()
            reporter.done()
        ident = f"{report.namespace}/{report.app}"
        if report.phase == "deleted":
            click.echo(f"{ident}: deleted ({report.deleted} objects deleted, {report.kept} kept)")
            return EXIT_OK
        for line in report.problems:
            click.echo("  " + reporter.redact(line), err=True)
        click.echo(f"{ident}: delete did not finish ({report.deleted} deleted); run it again", err=True)
        return report.exit_code

    _run(go)


@main.command("emulate")
@click.argument("clusters", type=click.Path())
@click.option("--kubeconfig", "kubeconfig", required=True, type=click.Path(),
              help="Write the kubeconfig here (a new file; removed on exit). One context per cluster.")
@click.option("--audit-log", "audit_log", default="", type=click.Path(),
              help="Append one JSON audit event per request here (metadata only, never bodies or tokens).")
@click.option("--rbac", "rbac", default="", type=click.Path(),
              help="RBAC rule table (YAML); without it every user may do everything and impersonate anyone.")
@click.option("--ready-after", "ready_after", default=0.0, type=float, show_default=True,
              help="Seconds after each spec change until workloads report a finished rollout.")
def emulate_cmd(clusters: str, kubeconfig: str, audit_log: str, rbac: str, ready_after: float) -> None:
    """Serve an emulated Kubernetes API for each cluster of CLUSTERS (and the hub) on 127.0.0.1 until
    Ctrl-C. A test and demo tool, not a Kubernetes: objects live in memory, nothing is scheduled, no
    container runs, controllers are simulated."""

    def go() -> int:
        from velapy.kube.emulator.serve import serve

        return serve(clusters, kubeconfig, sys.stdout, audit_log=audit_log, rbac=rbac, ready_after=ready_after)

    _run(go)
