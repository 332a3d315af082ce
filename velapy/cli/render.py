"""Render and review: render, plan, validate, diff, golden."""

from __future__ import annotations

import os
import shlex
import sys
from dataclasses import replace

import click

from velapy.bundle.layout import HANDOFF_DIRS
from velapy.bundle.outdir import read_manifest
from velapy.cli import base
from velapy.cli.base import (
    _DIFF_FORMATS,
    F,
    _evaluator,
    _run,
    _target,
    app_inputs,
    handoff_options,
    main,
    no_cache_option,
    say,
    unknown_parameters_option,
)
from velapy.cli.fleet import _live_diff
from velapy.errors import EXIT_DIFFERENT, EXIT_OK, Diagnostic, InputError, Location
from velapy.handoff import without_credentials
from velapy.handoff.transitions import NAMED_FILES, clashes
from velapy.pipeline import (
    Evaluator,
    HandoffOptions,
    Inputs,
    Plan,
    compile_app,
    dry_run_documents,
    dry_run_with_warnings,
    handoff_output,
    handoff_repo_path,
    plan_text,
    validate,
    validation_warnings,
    write_files,
)
from velapy.review import golden
from velapy.review.diff import Comparison, format_json, format_markdown, format_text, format_unified
from velapy.review.gitrev import listed_files, origin_url, repo_root
from velapy.review.golden import find_config, format_report, load_project
from velapy.review.sides import check_output, fresh_output, remember_output
from velapy.review.sides import diff as review_diff


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
               flux_namespace: str, approve: tuple[str, ...], secrets: str, vela_layout: bool, from_hub: bool,
               kubeconfig: str, merge: bool, allow_unknown: bool, force: bool, lock_timeout: float | None) -> None:
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
    handoff = _handoff(emit, repo_url, revision, repo_path or "", argocd_namespace, argocd_sa, flux_source,
                       flux_namespace, approve, secrets)
    inputs = Inputs(app, files, definition_dirs, resources, namespace, clusters, allow_unknown, handoff, merge)

    def go() -> int:
        nonlocal inputs
        if handoff is not None and repo_path is None:
            inputs = replace(inputs, handoff=replace(handoff, repo_path=handoff_repo_path(out)))
        if inputs.handoff is not None:
            given = _with_origin(inputs.handoff, out)
            given.check()
            inputs = replace(inputs, handoff=given)
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
                recreated: list[str] = []
                cmp, exists = check_output(inputs, out, ev, recreated)
                for text in recreated:
                    say(f"warning: {text}", err=True)
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


def _handoff(emit: tuple[str, ...], repo_url: str, revision: str, repo_path: str, argocd_namespace: str,
             argocd_sa: str, flux_source: str, flux_namespace: str, approve: tuple[str, ...],
             secrets: str) -> HandoffOptions | None:
    """The hand-off options of --emit (None without it); --approve and --secrets need --emit."""
    if not emit:
        if approve or secrets != "keep":
            raise click.UsageError("--approve and --secrets shape the GitOps hand-off: add --emit argocd|flux")
        return None
    return HandoffOptions(engines=tuple(dict.fromkeys(emit)), repo_url=repo_url, revision=revision,
                          repo_path=repo_path, argocd_namespace=argocd_namespace, argocd_service_account=argocd_sa,
                          flux_source=flux_source, flux_namespace=flux_namespace,
                          approve=tuple(dict.fromkeys(approve)), secrets=secrets)


def _with_origin(h: HandoffOptions, folder: str) -> HandoffOptions:
    """--emit argocd without --repo-url: the `origin` remote of the checkout `folder` is in (said on stderr)."""
    if "argocd" not in h.engines or h.repo_url or not folder:
        return h
    try:
        root = repo_root(folder)
    except InputError:
        return h
    url = origin_url(root)
    if not url:
        return h
    bare = without_credentials(url)
    say(f"note: --repo-url {bare}: the `origin` remote of the git checkout {folder} is in"
        + (" (its credentials left out)" if bare != url else "") + "; give --repo-url to name another", err=True)
    return replace(h, repo_url=bare)


def _dropped_handoff(out: str, engines: tuple[str, ...]) -> None:
    """Refuse a write that would delete a hand-off folder an earlier `--emit` wrote: deleting argocd/ or
    flux/ from the repository can make the engine delete the app's objects in every cluster."""
    listed = read_manifest(out) or []
    gone = sorted({rel.split("/", 1)[0] for rel in listed if "/" in rel and rel.split("/", 1)[0] in HANDOFF_DIRS
                   and rel.split("/", 1)[0] not in engines and os.path.exists(os.path.join(out, rel))})
    if gone:
        raise InputError([Diagnostic(
            f"{out}/{d}/ was written by an earlier `render --emit {d}`, and this render (without --emit {d}) would "
            f"delete it: if the {'Argo CD' if d == 'argocd' else 'Flux'} objects there are applied from git, "
            "deleting them deletes the app's Applications or Kustomizations and their objects in every cluster",
            Location(file=out), f"add --emit {d} to keep it up to date, or delete {out}/{d}/ yourself first if the "
            "app really leaves that engine") for d in gone])


def _other_apps(out: str, files: dict[str, str]) -> None:
    """Refuse a hand-off whose engine objects another app's hand-off folder in the same repository
    also defines (the last one applied would replace the other's)."""
    try:
        root = repo_root(out)
    except InputError:
        return
    mine = os.path.realpath(out)
    others: dict[str, dict[str, str]] = {}
    for rel in listed_files(root, [f"*{name}" for name in NAMED_FILES]):
        name = next(n for n in NAMED_FILES if rel == n or rel.endswith("/" + n))
        folder = rel[: len(rel) - len(name)].rstrip("/")
        if os.path.realpath(os.path.join(root, folder)) == mine:
            continue
        try:
            with open(os.path.join(root, rel), encoding="utf-8") as fh:
                others.setdefault(folder or ".", {})[name] = fh.read()
        except (OSError, UnicodeDecodeError):
            continue
    found = clashes(files, others)
    if found:
        raise InputError([Diagnostic(text, Location(file=out), "rename the app or its steps, or give one of them "
                                     "another namespace") for text in found])


def _write_rendered(plan: Plan, out: str, inputs: Inputs, ev: Evaluator, force: bool,
                    lock_timeout: float | None) -> int:
    """Write a compiled plan (and its hand-off files) into OUT, then say what was written."""
    _dropped_handoff(out, inputs.handoff.engines if inputs.handoff is not None else ())
    written, result = handoff_output(plan, inputs.handoff)
    if inputs.handoff is not None:
        _other_apps(out, written)
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
        with base.open_evaluator() as ev:  # the engine starts only for the schemas of -d definitions
            summary = validate(inputs, ev)
        for w in validation_warnings(inputs):
            click.echo("warning: " + w.render(), err=True)
        click.echo(f"{app} is valid ({summary.text()} checked)")
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
                                     ("--flux-namespace", h.flux_namespace, defaults.flux_namespace),
                                     ("--secrets", h.secrets, defaults.secrets)):
            if value != default:
                words += [flag, value]
        words += [w for a in h.approve for w in ("--approve", a)]
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
             flux_source: str, flux_namespace: str, approve: tuple[str, ...], secrets: str,
             allow_unknown: bool) -> None:
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
    handoff = _handoff(emit, repo_url, revision, repo_path or "", argocd_namespace, argocd_sa, flux_source,
                       flux_namespace, approve, secrets)
    if handoff is not None:  # app sides are rendered with the hand-off; OUT's place in the repo is the folder side's
        folder = next((p for p in (old_path, new_path) if p and os.path.isdir(p)), "")
        if repo_path is None:
            handoff = replace(handoff, repo_path=handoff_repo_path(folder) if folder else "")
        handoff = _with_origin(handoff, folder)
    options = Inputs("", files, definition_dirs, resources, namespace, clusters, allow_unknown, handoff)

    def go() -> int:
        if options.handoff is not None:
            options.handoff.check()
        with _evaluator() as ev:
            result = review_diff(old_path, new_path, options, ev, git_base=git_base, show_secrets=show_secrets)
        for note in result.notes:
            say(f"note: {note}", err=True)
        for text in result.warnings:
            say(f"warning: {text}", err=True)
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

