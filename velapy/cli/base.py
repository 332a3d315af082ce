"""What every command shares: the root group, printing, errors to exit codes, the common options."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from velapy import __version__, colour
from velapy.errors import EXIT_INTERNAL, VelapyError
from velapy.pipeline import Evaluator, Inputs
from velapy.pipeline import open_evaluator as open_evaluator  # re-exported: the commands (and tests) reach it here

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
                     help="Git repository the engine reads OUT from (--emit argocd; default: the `origin` "
                          "remote of the git checkout OUT is in)."),
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
        click.option("--approve", "approve", multiple=True, metavar="STEP",
                     help="Render the gate of STEP open: committing the result approves the stage it holds "
                          "(render without it to hold the next rollout). Repeatable."),
        click.option("--secrets", "secrets", type=click.Choice(["keep", "omit"]), default="keep", show_default=True,
                     help="omit: leave Secrets out of OUT and of what the engines apply (create them with SOPS, "
                          "Sealed Secrets or External Secrets); keep: write them, with a warning."),
    ]):
        fn = decorator(fn)
    return fn


_DIFF_FORMATS = click.Choice(["text", "json", "markdown"])


def cluster_options(fn: F) -> F:
    """How to reach the clusters: the inventory, a default kubeconfig, and whom to impersonate."""
    fn = click.option("--as-group", "as_groups", multiple=True, metavar="GROUP",
                      help="Impersonate this group too (repeatable; needs --as).")(fn)
    fn = click.option("--as", "as_user", default="", metavar="USER",
                      help="Impersonate this user in every cluster (wins over the inventory's identity; the app's "
                           "app.oam.dev/username is only a claim checked against it).")(fn)
    fn = click.option("--kubeconfig", "kubeconfig", default="", type=click.Path(),
                      help="Default kubeconfig; a cluster's context defaults to its name (the hub: local).")(fn)
    fn = click.option("--clusters", "clusters", default="", type=click.Path(),
                      help="Cluster inventory: its kubeconfig/context/identity entries win.")(fn)
    fn = click.option("--state-dir", "state_dir", default=".velapy/state", show_default=True, type=click.Path(),
                      help="Where run state lives when no hub context `local` is configured.")(fn)
    for flag, key, text in (
            ("--steal-lease", STEAL_LEASE, "Take the app's run lease even from a run that still renews it (when "
                                           "you know that run is gone)."),
            ("--import-state", IMPORT_STATE, "Move the app's run state from --state-dir to the hub (a hub is "
                                             "configured now).")):
        fn = click.option(flag, is_flag=True, default=False, expose_value=False,
                          callback=lambda ctx, _p, v, key=key: ctx.meta.__setitem__(key, v), help=text)(fn)
    return fn


STEAL_LEASE = "velapy.steal_lease"
IMPORT_STATE = "velapy.import_state"


def flag(key: str) -> bool:
    """A flag stored by an option with expose_value=False (cluster_options)."""
    ctx = click.get_current_context(silent=True)
    return bool(ctx.meta.get(key, False)) if ctx is not None else False


def _target(app: str, files: tuple[str, ...], definition_dirs: tuple[str, ...], resources: str, namespace: str,
            clusters: str, allow_unknown: bool, kubeconfig: str, as_user: str, as_groups: tuple[str, ...],
            state_dir: str) -> Any:
    from velapy.execute import Target
    from velapy.load.project import settings_for

    if as_groups and not as_user:
        raise click.UsageError("--as-group needs --as (Kubernetes impersonates groups only together with a user)")
    given = [w for flag, v in (("--clusters", clusters), ("--kubeconfig", kubeconfig), ("--as", as_user)) if v
             for w in (flag, v)] + [w for g in as_groups for w in ("--as-group", g)]
    try:
        project = settings_for(app)
    except VelapyError as exc:  # velapy.yaml is read before the command's own work: report it the same way
        say(exc.render(), err=True)
        sys.exit(exc.exit_code)
    ctx = click.get_current_context()
    ctx.meta[_SETTINGS_KEY] = project
    ctx.meta[_GIVEN_KEY] = tuple(given)
    if not as_user and not as_groups:
        as_user, as_groups = project.as_user, project.as_groups
    return Target(app, Inputs(app, files, definition_dirs, resources, namespace, clusters or project.clusters,
                              allow_unknown), kubeconfig or project.kubeconfig, as_user, tuple(as_groups), state_dir,
                  flag(IMPORT_STATE))


_SETTINGS_KEY = "velapy.project"
_GIVEN_KEY = "velapy.cluster_flags"


def project_settings() -> Any:
    """The fleet settings `_target` resolved for this command (velapy.load.project.FleetSettings)."""
    from velapy.load.project import FleetSettings

    return click.get_current_context().meta.get(_SETTINGS_KEY) or FleetSettings()


def given_cluster_flags() -> tuple[str, ...]:
    """The cluster flags typed on this command line (not from the environment or velapy.yaml)."""
    return tuple(click.get_current_context().meta.get(_GIVEN_KEY) or ())

