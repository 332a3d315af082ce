"""Operating a rollout (velapy.execute.lifecycle): ls, history, terminate, suspend, restart, rollback."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from velapy.cli.base import _run, _target, app_inputs, cluster_options, main, say
from velapy.cli.fleet import _EXEC_HELP, _history, _print_live, _resume_command, _run_options, _summary
from velapy.errors import EXIT_OK, InputError

_FORMATS = click.Choice(["table", "json", "yaml"])
F = TypeVar("F", bound=Callable[..., Any])


def _app_command(name: str, summary: str, more: str = "") -> Callable[[Callable[..., Any]], click.Command]:
    """A command on one APP (file, folder or name with -n): its one-line help first."""
    return main.command(name, help=summary + "\n\n" + (more + " " if more else "") + _EXEC_HELP,
                        short_help=summary)


def _plain_target(app: str, files: tuple[str, ...], definition_dirs: tuple[str, ...], resources: str,
                  namespace: str, clusters: str, kubeconfig: str, as_user: str, as_groups: tuple[str, ...],
                  state_dir: str) -> Any:
    return _target(app, files, definition_dirs, resources, namespace, clusters, False, kubeconfig, as_user,
                   as_groups, state_dir)


@_app_command("history", "List APP's revisions: who ran what, when, and how each step and cluster ended.",
              "The current revision is marked *. Revisions live where the run state does.")
@click.argument("app")
@app_inputs
@cluster_options
@click.option("-o", "--output", "fmt", type=_FORMATS, default="table", show_default=True)
def history_cmd(app: str, files: tuple[str, ...], definition_dirs: tuple[str, ...], resources: str, namespace: str,
                clusters: str, kubeconfig: str, as_user: str, as_groups: tuple[str, ...], state_dir: str,
                fmt: str) -> None:
    target = _plain_target(app, files, definition_dirs, resources, namespace, clusters, kubeconfig, as_user,
                           as_groups, state_dir)

    def go() -> int:
        from velapy.execute.history import format_history
        from velapy.execute.lifecycle import history_rows

        click.echo(format_history(history_rows(target), fmt), nl=False)
        return EXIT_OK

    _run(go)


@_app_command("terminate", "End APP's waiting or failed run; nothing is deleted, the next apply starts afresh.")
@click.argument("app")
@app_inputs
@cluster_options
@click.option("--force", is_flag=True, default=False,
              help="Also end a run whose state says running (when the process running it is gone).")
def terminate_cmd(app: str, files: tuple[str, ...], definition_dirs: tuple[str, ...], resources: str,
                  namespace: str, clusters: str, kubeconfig: str, as_user: str, as_groups: tuple[str, ...],
                  state_dir: str, force: bool) -> None:
    target = _plain_target(app, files, definition_dirs, resources, namespace, clusters, kubeconfig, as_user,
                           as_groups, state_dir)

    def go() -> int:
        from velapy.execute.lifecycle import terminate

        click.echo(terminate(target, force=force))
        return EXIT_OK

    _run(go)


@_app_command("suspend", "Ask APP's running run to stop at its next step boundary (resume continues it).",
              "The run may be in another process: it sees the request before its next step.")
@click.argument("app")
@app_inputs
@cluster_options
def suspend_cmd(app: str, files: tuple[str, ...], definition_dirs: tuple[str, ...], resources: str,
                namespace: str, clusters: str, kubeconfig: str, as_user: str, as_groups: tuple[str, ...],
                state_dir: str) -> None:
    target = _plain_target(app, files, definition_dirs, resources, namespace, clusters, kubeconfig, as_user,
                           as_groups, state_dir)

    def go() -> int:
        from velapy.execute.lifecycle import suspend

        click.echo(suspend(target))
        return EXIT_OK

    _run(go)


def _rerun_options(fn: F) -> F:
    from velapy.cli.fleet import history_limit_option

    for decorator in reversed([
        click.option("--take-over", is_flag=True, default=False, help="As for apply."),
        click.option("--force-conflicts", is_flag=True, default=False, help="As for apply."),
        click.option("--create-namespaces/--no-create-namespaces", "create_namespaces", default=None,
                     help="As for apply."),
        click.option("--timeout", "timeout", default="5m", show_default=True, help="As for apply."),
        history_limit_option,
    ]):
        fn = decorator(fn)
    return fn


def _rerun(target: Any, chosen: Any, how: Any, take_over: bool, force_conflicts: bool,
           create_namespaces: bool | None, timeout: str, reporter: Any) -> int:
    from velapy.execute.lifecycle import rerun
    from velapy.execute.session import redactor_for

    options, flags = _run_options(take_over, force_conflicts, create_namespaces, timeout)
    plan = chosen.session.plan
    reporter.redact = redactor_for(plan)
    command = _resume_command(chosen.session.target, plan.app_namespace, plan.app_name, flags)
    try:
        report = rerun(chosen, options, reporter, how, command)
    finally:
        reporter.done()
    return _summary(report, reporter, command)


@_app_command("restart", "Run APP's current revision again from its first step (gates included).",
              "Its unfinished run is ended first; finished steps run again.")
@click.argument("app")
@app_inputs
@cluster_options
@_rerun_options
def restart_cmd(app: str, files: tuple[str, ...], definition_dirs: tuple[str, ...], resources: str,
                namespace: str, clusters: str, kubeconfig: str, as_user: str, as_groups: tuple[str, ...],
                state_dir: str, take_over: bool, force_conflicts: bool, create_namespaces: bool | None,
                timeout: str, history_limit: int | None) -> None:
    target = _plain_target(app, files, definition_dirs, resources, namespace, clusters, kubeconfig, as_user,
                           as_groups, state_dir)

    def go() -> int:
        from velapy.execute import Reporter
        from velapy.execute.lifecycle import choose_restart

        reporter = Reporter(sys.stderr, live=sys.stderr.isatty())
        chosen = choose_restart(target, reporter)
        reporter.say(f"restarting revision {chosen.number} from its first step")
        return _rerun(target, chosen, _history(history_limit, "restart", restart_of=chosen.number), take_over,
                      force_conflicts, create_namespaces, timeout, reporter)

    _run(go)


@_app_command("rollback", "Roll APP back to an earlier revision through the same workflow (canary, gates, health).",
              "Default: the last succeeded revision before the current one. The revision's kept plan is applied "
              "as it ran (digests checked); refused while another run of the app is active.")
@click.argument("app")
@app_inputs
@cluster_options
@click.option("--to", "to", type=click.IntRange(min=1), default=None, metavar="REVISION",
              help="The revision to roll back to (see `velapy history`).")
@click.option("--dry-run", is_flag=True, default=False,
              help="Write nothing: show per cluster what the rollback would change (server-side dry run).")
@_rerun_options
def rollback_cmd(app: str, files: tuple[str, ...], definition_dirs: tuple[str, ...], resources: str,
                 namespace: str, clusters: str, kubeconfig: str, as_user: str, as_groups: tuple[str, ...],
                 state_dir: str, to: int | None, dry_run: bool, take_over: bool, force_conflicts: bool,
                 create_namespaces: bool | None, timeout: str, history_limit: int | None) -> None:
    target = _plain_target(app, files, definition_dirs, resources, namespace, clusters, kubeconfig, as_user,
                           as_groups, state_dir)

    def go() -> int:
        from velapy.execute import Reporter
        from velapy.execute.lifecycle import choose_rollback
        from velapy.execute.live import live_diff

        reporter = Reporter(sys.stderr, live=sys.stderr.isatty())
        chosen = choose_rollback(target, to, reporter)
        if dry_run:
            try:
                return _print_live(live_diff(chosen.session), chosen.session.plan.app_name, "text")
            finally:
                chosen.session.close()
        reporter.say(f"rolling back to revision {chosen.number}")
        return _rerun(target, chosen, _history(history_limit, "rollback", rollback_to=chosen.number), take_over,
                      force_conflicts, create_namespaces, timeout, reporter)

    _run(go)


@main.command("ls", help="List every app with run state on the hub: phase, the step it waits at, clusters, "
              "revision, last run, who.", short_help="List every app with run state on the hub.")
@click.option("-n", "--namespace", "namespace", default="", help="Only this namespace (default: default).")
@click.option("-A", "--all-namespaces", "all_namespaces", is_flag=True, default=False, help="Every namespace.")
@cluster_options
@click.option("-o", "--output", "fmt", type=_FORMATS, default="table", show_default=True)
def ls_cmd(namespace: str, all_namespaces: bool, clusters: str, kubeconfig: str, as_user: str,
           as_groups: tuple[str, ...], state_dir: str, fmt: str) -> None:
    target = _plain_target("-", (), (), "", namespace, clusters, kubeconfig, as_user, as_groups, state_dir)

    def go() -> int:
        from velapy.execute.lifecycle import format_apps, list_apps

        if namespace and all_namespaces:
            raise InputError("-n and -A exclude each other: give one")
        data = list_apps(target, "" if all_namespaces else (namespace or "default"))
        out = format_apps(data, fmt)
        if fmt == "table" and not data["apps"]:
            say(out.rstrip("\n"), err=True)
        else:
            click.echo(out, nl=False)
        return EXIT_OK

    _run(go)
