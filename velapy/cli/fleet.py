"""The fleet rollout (velapy.execute): apply, resume, status, delete."""

from __future__ import annotations

import shlex
import sys
from typing import Any

import click

from velapy.cli.base import (
    _DIFF_FORMATS,
    _run,
    _target,
    app_inputs,
    cluster_options,
    main,
    unknown_parameters_option,
)
from velapy.errors import EXIT_DIFFERENT, EXIT_OK, InputError, VelapyError
from velapy.review.diff import Comparison, format_json, format_markdown, format_text


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
        try:
            report = run(session, options, reporter, resume=resume, resume_command=command)
        except VelapyError:
            raise
        except Exception as exc:  # a bug: said as base._run would, but through the run's redactor
            raise VelapyError(f"internal error: {type(exc).__name__}: {reporter.redact(str(exc))} "
                              "(please report this as a velapy bug)") from None
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

