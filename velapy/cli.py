"""Command line → one library call → text on stdout and an exit code. The only click importer.

Errors velapy raises on purpose print as located messages (never a traceback) and map to the
exit codes of `velapy.errors`: 0 ok, 1 differences, 2 invalid input, 3 cluster failure, 4 internal.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from velapy import __version__
from velapy.errors import EXIT_INTERNAL, VelapyError
from velapy.pipeline import Inputs, compile_app, dry_run, open_evaluator, plan_text, write_output

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
    except Exception as exc:  # noqa: BLE001 - the last line of defence: say it is a bug, no traceback
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


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="velapy")
def main() -> None:
    """velapy: render KubeVela Applications for many clusters, review them as files, apply them."""


@main.command("render")
@click.argument("app", type=click.Path())
@app_inputs
@click.option("--clusters", "clusters", default="", type=click.Path(),
              help="Cluster inventory (YAML `clusters:` list); without it only the hub `local` exists.")
@click.option("-o", "--output", "out", default="", type=click.Path(),
              help="Write the plan and one folder of objects per cluster here (instead of the dry-run stream).")
def render_cmd(app: str, files: tuple[str, ...], definition_dirs: tuple[str, ...], resources: str,
               namespace: str, clusters: str, out: str) -> None:
    """Render APP as `vela dry-run` prints it, or (-o) as a plan and per-cluster folders."""
    inputs = Inputs(app, files, definition_dirs, resources, namespace, clusters)

    def go() -> int:
        with open_evaluator() as ev:
            if not out:
                sys.stdout.write(dry_run(inputs, ev))
                return 0
            plan = compile_app(inputs, ev)
        written = write_output(plan, out)
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
def plan_cmd(app: str, files: tuple[str, ...], definition_dirs: tuple[str, ...], resources: str,
             namespace: str, clusters: str, fmt: str) -> None:
    """Show the execution plan of APP: steps, their clusters and the objects each receives."""
    inputs = Inputs(app, files, definition_dirs, resources, namespace, clusters)

    def go() -> int:
        with open_evaluator() as ev:
            plan = compile_app(inputs, ev)
        sys.stdout.write(plan_text(plan, fmt))
        return 0

    _run(go)


@main.command("engine")
def engine_cmd() -> None:
    """Say which CUE engine runs and its version."""

    def go() -> int:
        with open_evaluator() as ev:
            click.echo(ev.runner.describe())
        return 0

    _run(go)
