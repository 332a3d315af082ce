"""The fleet rollout (velapy.execute): apply, resume, status, delete."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from velapy.cli.base import (
    _DIFF_FORMATS,
    STEAL_LEASE,
    _run,
    _target,
    app_inputs,
    cluster_options,
    flag,
    given_cluster_flags,
    main,
    project_settings,
    unknown_parameters_option,
)
from velapy.errors import EXIT_DIFFERENT, EXIT_OK, InputError, VelapyError
from velapy.review.diff import Comparison, format_json, format_markdown, format_text

F = TypeVar("F", bound=Callable[..., Any])


def _resume_command(target: Any, plan_ns: str, plan_name: str, flags: tuple[str, ...] = ()) -> str:
    """The `velapy resume ...` line that continues this run: the app, and only the flags typed on this
    command line (what velapy.yaml or the environment gave, they give again)."""
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
    words += given_cluster_flags()
    if target.state_dir != ".velapy/state":
        words += ["--state-dir", target.state_dir]
    return " ".join(shlex.quote(w) for w in [*words, *flags])


def _run_options(take_over: bool, force_conflicts: bool, create_namespaces: bool | None, timeout: str) \
        -> tuple[Any, tuple[str, ...]]:
    """The run's options (--create-namespaces from velapy.yaml unless given) and the flags `resume` repeats."""
    from velapy.execute import Options
    from velapy.execute.planfile import parse_duration

    try:
        health_timeout = parse_duration(timeout)
    except ValueError as exc:
        raise InputError(f"--timeout: {exc}") from None
    create = project_settings().create_namespaces if create_namespaces is None else create_namespaces
    options = Options(take_over=take_over, force_conflicts=force_conflicts, create_namespaces=create,
                      health_timeout=health_timeout, steal_lease=flag(STEAL_LEASE))
    flags = tuple(f for f, on in (("--take-over", take_over), ("--force-conflicts", force_conflicts),
                                  ("--create-namespaces", bool(create_namespaces))) if on)
    if timeout != "5m":
        flags += ("--timeout", timeout)
    return options, flags


def _history(limit: int | None, kind: str = "apply", rollback_to: int = 0, restart_of: int = 0) -> Any:
    from velapy.execute.session import RunHistory

    return RunHistory(kind, rollback_to, restart_of, limit if limit is not None else project_settings().history_limit)


def _execute(target: Any, resume: bool, dry_run: bool, take_over: bool, force_conflicts: bool,
             create_namespaces: bool | None, timeout: str, fmt: str, history_limit: int | None = None) -> int:
    from velapy.execute import Reporter, open_session, run
    from velapy.execute.live import live_preview
    from velapy.execute.session import redactor_for

    options, flags = _run_options(take_over, force_conflicts, create_namespaces, timeout)
    reporter = Reporter(sys.stderr, live=sys.stderr.isatty())
    session = open_session(target, reporter)
    try:
        reporter.redact = redactor_for(session.plan)
        if dry_run:
            cmp, notes = live_preview(session, create_namespaces=options.create_namespaces)
            return _print_live(cmp, session.plan.app_name, fmt, notes)
        command = _resume_command(target, session.plan.app_namespace, session.plan.app_name, flags)
        try:
            report = run(session, options, reporter, resume=resume, resume_command=command,
                         history=_history(history_limit))
        except VelapyError:
            raise
        except Exception as exc:  # a bug: said as base._run would, but through the run's redactor
            raise VelapyError(f"internal error: {type(exc).__name__}: {reporter.redact(str(exc))} "
                              "(please report this as a velapy bug)") from None
    finally:
        session.close()
        reporter.done()
    return _summary(report, reporter, command)


def _summary(report: Any, reporter: Any, command: str) -> int:
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
    code: int = report.exit_code
    return code


def _stdin_is_terminal() -> bool:
    return sys.stdin.isatty()


def _print_live(cmp: Comparison, app: str, fmt: str, notes: list[str] | tuple[str, ...] = ()) -> int:
    out = format_json(cmp) if fmt == "json" else (
        format_markdown([(f"{app}: live → plan", cmp)]) if fmt == "markdown" else format_text(cmp))
    for note in notes:  # what the server-side dry run could not show (stderr keeps JSON on stdout parseable)
        click.echo(f"note: {note}", err=fmt == "json")
    click.echo(out, nl=False)
    return EXIT_OK if cmp.equal and not notes else EXIT_DIFFERENT


def _live_diff(target: Any, fmt: str, show_secrets: bool) -> int:
    from velapy.execute import open_session
    from velapy.execute.live import live_preview

    session = open_session(target, None)
    try:
        cmp, notes = live_preview(session, show_secrets=show_secrets)
        return _print_live(cmp, session.plan.app_name, fmt, notes)
    finally:
        session.close()


def history_limit_option(fn: F) -> F:
    return click.option("--history-limit", "history_limit", type=click.IntRange(min=1), default=None,
                        help="Keep this many revisions of the app (default: velapy.yaml's fleet.historyLimit, "
                             "else 10).")(fn)


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
@click.option("--create-namespaces/--no-create-namespaces", "create_namespaces", default=None,
              help="Create missing namespaces in member clusters (otherwise preflight refuses the cluster); "
                   "default: velapy.yaml's fleet.createNamespaces, else no.")
@click.option("--timeout", "timeout", default="5m", show_default=True,
              help="How long a deploy step without its own timeout waits for health.")
@history_limit_option
@unknown_parameters_option
def apply_cmd(app: str, files: tuple[str, ...], definition_dirs: tuple[str, ...], resources: str, namespace: str,
              clusters: str, kubeconfig: str, as_user: str, as_groups: tuple[str, ...], state_dir: str,
              dry_run: bool, fmt: str, take_over: bool, force_conflicts: bool, create_namespaces: bool | None,
              timeout: str, history_limit: int | None, allow_unknown: bool) -> None:
    target = _target(app, files, definition_dirs, resources, namespace, clusters, allow_unknown, kubeconfig,
                     as_user, as_groups, state_dir)
    _run(lambda: _execute(target, False, dry_run, take_over, force_conflicts, create_namespaces, timeout, fmt,
                          history_limit))


@main.command("resume", help="Continue APP's suspended or failed run: pass the gate it waits at; finished steps "
              "are not run again.\n\n" + _EXEC_HELP)
@click.argument("app")
@app_inputs
@cluster_options
@click.option("--take-over", is_flag=True, default=False, help="As for apply.")
@click.option("--force-conflicts", is_flag=True, default=False, help="As for apply.")
@click.option("--create-namespaces/--no-create-namespaces", "create_namespaces", default=None, help="As for apply.")
@click.option("--timeout", "timeout", default="5m", show_default=True, help="As for apply.")
@history_limit_option
@unknown_parameters_option
def resume_cmd(app: str, files: tuple[str, ...], definition_dirs: tuple[str, ...], resources: str, namespace: str,
               clusters: str, kubeconfig: str, as_user: str, as_groups: tuple[str, ...], state_dir: str,
               take_over: bool, force_conflicts: bool, create_namespaces: bool | None, timeout: str,
               history_limit: int | None, allow_unknown: bool) -> None:
    target = _target(app, files, definition_dirs, resources, namespace, clusters, allow_unknown, kubeconfig,
                     as_user, as_groups, state_dir)
    _run(lambda: _execute(target, True, False, take_over, force_conflicts, create_namespaces, timeout, "text",
                          history_limit))


@main.command("status", help="Show APP's run and every object it applied, live (--tree: app → step → cluster → "
              "object; --watch: until the run settles).\n\nThe table: steps and phases, then KIND NAME CLUSTER READY "
              "UP-TO-DATE AVAILABLE AGE. " + _EXEC_HELP)
@click.argument("app")
@app_inputs
@cluster_options
@click.option("-o", "--output", "fmt", type=click.Choice(["table", "json", "yaml"]), default="table",
              show_default=True, help="json/yaml with --tree follow schemas/status-tree.schema.json.")
@click.option("--tree", is_flag=True, default=False,
              help="App → step → cluster → object, with health, images and the revision each cluster runs; "
                   "orphans marked.")
@click.option("--watch", "-w", "watch", is_flag=True, default=False,
              help="Redraw until the run ends or waits at a gate (plain lines when stdout is not a terminal).")
@click.option("--interval", "interval", default="1s", show_default=True, help="How often --watch reads.")
@unknown_parameters_option
def status_cmd(app: str, files: tuple[str, ...], definition_dirs: tuple[str, ...], resources: str, namespace: str,
               clusters: str, kubeconfig: str, as_user: str, as_groups: tuple[str, ...], state_dir: str, fmt: str,
               tree: bool, watch: bool, interval: str, allow_unknown: bool) -> None:
    target = _target(app, files, definition_dirs, resources, namespace, clusters, allow_unknown, kubeconfig,
                     as_user, as_groups, state_dir)

    def go() -> int:
        from velapy.execute.planfile import parse_duration
        from velapy.execute.status import format_status, status_data
        from velapy.execute.tree import format_tree, tree_data
        from velapy.execute.tree import watch as watch_loop

        try:
            every = parse_duration(interval)
        except ValueError as exc:
            raise InputError(f"--interval: {exc}") from None
        if watch and fmt != "table":
            raise InputError("--watch draws the table or the tree; -o json|yaml prints once")

        def fetch() -> dict[str, Any]:
            return tree_data(target) if tree else status_data(target)

        def render(data: Any) -> str:
            return format_tree(data, "tree" if fmt == "table" else fmt) if tree else format_status(data, fmt)

        if watch:
            out = click.get_text_stream("stdout")
            watch_loop(fetch, render, out, terminal=out.isatty(), interval=max(every, 0.1))
        else:
            click.echo(render(fetch()), nl=False)
        return EXIT_OK

    _run(go)


@main.command("delete", help="Remove what APP owns from its clusters, after a confirmation (per its "
              "garbage-collect policy: `never` keeps), then its run state.\n\n" + _EXEC_HELP
              + " Without a terminal to confirm on, -y is required.")
@click.argument("app")
@app_inputs
@cluster_options
@click.option("-y", "--yes", "yes", is_flag=True, default=False, help="Do not ask for confirmation.")
@click.option("--dry-run", "dry_run", is_flag=True, default=False,
              help="Delete nothing: list per cluster what would be deleted and what kept.")
@unknown_parameters_option
def delete_cmd(app: str, files: tuple[str, ...], definition_dirs: tuple[str, ...], resources: str, namespace: str,
               clusters: str, kubeconfig: str, as_user: str, as_groups: tuple[str, ...], state_dir: str,
               yes: bool, dry_run: bool, allow_unknown: bool) -> None:
    target = _target(app, files, definition_dirs, resources, namespace, clusters, allow_unknown, kubeconfig,
                     as_user, as_groups, state_dir)

    def go() -> int:
        from velapy.execute import Reporter, delete, open_session
        from velapy.execute.session import deletion_plan, redactor_for

        reporter = Reporter(sys.stderr, live=sys.stderr.isatty())
        session = open_session(target, reporter)
        try:
            reporter.redact = redactor_for(session.plan)
            ident = f"{session.plan.app_namespace}/{session.plan.app_name}"
            if dry_run or not yes:
                listing = deletion_plan(session)
                text = "".join(f"{c}:\n" + "".join(f"  {verb} {what}\n" for verb, what in items)
                               for c, items in listing.items())
                if dry_run:
                    click.echo(f"{ident}: would delete (dry run):\n" + text, nl=False)
                    return EXIT_OK
                if not _stdin_is_terminal():
                    raise InputError(f"delete {ident}: stdin is not a terminal to confirm on: give -y to delete "
                                     "without asking (--dry-run lists what would go)")
                click.echo(f"{ident}: this deletes from the clusters:\n" + text, nl=False, err=True)
                if not click.confirm(f"delete app {ident}?", default=False, err=True):
                    click.echo("nothing deleted", err=True)
                    return EXIT_OK
            report = delete(session, reporter, steal_lease=flag(STEAL_LEASE))
        finally:
            session.close()
            reporter.done()
        if report.phase == "deleted":
            click.echo(f"{ident}: deleted ({report.deleted} objects deleted, {report.kept} kept)")
            return EXIT_OK
        for line in report.problems:
            click.echo("  " + reporter.redact(line), err=True)
        click.echo(f"{ident}: delete did not finish ({report.deleted} deleted); run it again", err=True)
        return report.exit_code

    _run(go)
