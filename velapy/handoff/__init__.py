"""A Plan + hand-off options → the objects that make a GitOps engine (Argo CD, Flux) deploy the
rendered folder as reviewed, and what it will do differently (located warnings).

`render -o OUT --emit argocd|flux` adds, beside `plan.yaml` and `clusters/`:

    OUT/argocd/1-appproject.yaml, 2-applicationset.yaml, NOTES.txt          (velapy.handoff.argocd)
    OUT/flux/root.yaml, units/kustomizations.yaml, namespaces/<cluster>/,   (velapy.handoff.flux)
             NOTES.txt

Every engine object is named `<namespace>-<app>…` and labelled with both (`velapy.handoff.model`);
with `--secrets omit` the plan loses its Secrets first, else each Secret is a warning (a committed
folder publishes it). `velapy.handoff.transitions` compares two versions of a folder (what a change
deletes and re-creates) and two apps' folders (names they would share).

Objects may need engine annotations (`argocd.argoproj.io/sync-options: Prune=false`,
`kustomize.toolkit.fluxcd.io/prune: disabled`, ...) for their resource-policy rules: `prepare`
returns the plan with those added and the digests recomputed, so `plan.yaml` and the object files
agree. Everything is pure: the caller writes the files (`emit.write_folder`).
"""

from __future__ import annotations

import copy
import os
import posixpath
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from velapy.bundle.layout import ARGOCD_DIR, FLUX_DIR, HANDOFF_DIRS
from velapy.compile.plan import ObjectKey, Plan, PlannedObject, PlannedPlacement, PlannedStep, digest_of
from velapy.errors import Diagnostic, InputError, Location

if TYPE_CHECKING:
    from velapy.handoff.model import Stage

ARGOCD = ARGOCD_DIR  # an engine's name is the folder of OUT its emitter owns
FLUX = FLUX_DIR
ENGINES = HANDOFF_DIRS

A_ARGO_SYNC = "argocd.argoproj.io/sync-options"
A_ARGO_COMPARE = "argocd.argoproj.io/compare-options"
A_FLUX_PRUNE = "kustomize.toolkit.fluxcd.io/prune"
A_FLUX_SSA = "kustomize.toolkit.fluxcd.io/ssa"
A_FLUX_FORCE = "kustomize.toolkit.fluxcd.io/force"

SECRETS = ("keep", "omit")
_DNS = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def without_credentials(url: str) -> str:
    """`https://user:token@host/x.git` → `https://host/x.git`; other URLs (`git@host:x.git`) as they are."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.password is None or parts.hostname is None:
        return url
    host = parts.hostname + (f":{parts.port}" if parts.port else "")
    return parts._replace(netloc=host).geturl()


def _has_credentials(url: str) -> bool:
    """`https://user:token@host/...` (a password or token in the URL); `git@host:` and `ssh://git@` are fine."""
    try:
        return urlsplit(url).password is not None
    except ValueError:
        return False


@dataclass(frozen=True)
class Options:
    """What the user said about the hand-off (`--emit`, `--repo-url`, ...)."""

    engines: tuple[str, ...] = ()
    repo_url: str = ""
    revision: str = "HEAD"
    repo_path: str = ""  # where OUT sits inside the repository ("" = its top level)
    argocd_namespace: str = "argocd"
    argocd_service_account: str = ""  # NAMESPACE/NAME to impersonate
    flux_source: str = "flux-system"
    flux_namespace: str = "flux-system"
    approve: tuple[str, ...] = ()  # gate steps whose hold this render lifts (a commit of it approves them)
    secrets: str = "keep"  # keep: Secrets are written (warned about); omit: left out of OUT and the engines

    def check(self) -> None:
        """InputError naming every bad option."""
        problems: list[Diagnostic] = []
        for e in self.engines:
            if e not in ENGINES:
                problems.append(Diagnostic(f"--emit {e}: unknown engine", hint="use " + " or ".join(ENGINES)))
        if ARGOCD in self.engines and not self.repo_url:
            problems.append(Diagnostic("--emit argocd needs --repo-url: the git repository Argo CD reads OUT from",
                                       hint="e.g. --repo-url https://git.example.com/fleet.git"))
        if self.repo_url and _has_credentials(self.repo_url):
            problems.append(Diagnostic("--repo-url carries credentials: they would be written into the output",
                                       hint="give the bare URL; Argo CD takes credentials from a repository Secret"))
        if not self.revision:
            problems.append(Diagnostic("--revision must not be empty", hint="a branch, tag or commit; default HEAD"))
        path = self.repo_path
        if path.startswith("/") or re.match(r"^[A-Za-z]:[\\/]", path):
            problems.append(Diagnostic(f"--repo-path {path}: must be relative to the repository's top level",
                                       hint="where OUT sits inside the repository, e.g. deploy/out"))
        elif ".." in path.replace("\\", "/").split("/"):
            problems.append(Diagnostic(f"--repo-path {path}: must stay inside the repository (no '..')"))
        sa = self.argocd_service_account
        if sa:
            ns, _, name = sa.partition("/")
            if not (_DNS.match(ns) and _DNS.match(name)):
                problems.append(Diagnostic(f"--argocd-service-account {sa}: expected NAMESPACE/NAME",
                                           hint="e.g. fleet-deployers/rollouts-demo"))
        for flag, value in (("--argocd-namespace", self.argocd_namespace), ("--flux-namespace", self.flux_namespace),
                            ("--flux-source", self.flux_source)):
            if not _DNS.match(value):
                problems.append(Diagnostic(f"{flag} {value}: not a Kubernetes name (lowercase letters, digits, '-')"))
        if self.secrets not in SECRETS:
            problems.append(Diagnostic(f"--secrets {self.secrets}: expected " + " or ".join(SECRETS)))
        if problems:
            raise InputError(problems)

    @property
    def base_path(self) -> str:
        """OUT's path inside the repository, normalised ('' for the top level)."""
        p = posixpath.normpath(self.repo_path.replace("\\", "/")) if self.repo_path else ""
        return "" if p == "." else p


@dataclass(frozen=True)
class Handoff:
    """What `--emit` adds: the plan with engine annotations, the files, warnings and notes."""

    plan: Plan
    files: Mapping[str, str]
    warnings: tuple[Diagnostic, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass
class Findings:
    """What an emitter found out: located warnings and notes for the user (approval commands, ...)."""

    warnings: list[Diagnostic] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def repo_path_for(out: str, root: str | None) -> str:
    """OUT relative to the repository top level `root` (None: not in a repository → OUT as given)."""
    if root is None:
        return out
    rel = os.path.relpath(os.path.realpath(out), root)
    return "" if rel == "." else rel.replace(os.sep, "/")


# ----------------------------------------------------------------------------------------------
# engine annotations on the objects


def _gc_strategy(o: PlannedObject) -> str:
    rule = o.rules.get("garbageCollect")
    return str(rule.get("strategy", "")) if isinstance(rule, Mapping) else ""


def engine_annotations(o: PlannedObject, engines: tuple[str, ...]) -> dict[str, str]:
    """The annotations an object needs so the engines follow its resource-policy rules."""
    out: dict[str, str] = {}
    gc = _gc_strategy(o)
    update = o.rules.get("resourceUpdate")
    update = update if isinstance(update, Mapping) else {}
    once = o.rules.get("applyOnce")
    once = once if isinstance(once, Mapping) else {}
    if ARGOCD in engines:
        options: list[str] = []
        if gc in ("never", "onAppDelete"):
            options.append("Prune=false")
            # a kept object removed from git is extraneous: without this its Application stays OutOfSync
            # for good, and RollingSync never reaches the stages after it
            out[A_ARGO_COMPARE] = "IgnoreExtraneous"
        if gc == "never":
            options.append("Delete=false")
        if update.get("op") == "replace" or update.get("recreateFields"):
            options.append("Replace=true")
        if update.get("recreateFields"):
            options.append("Force=true")
        if options:
            out[A_ARGO_SYNC] = ",".join(options)
    if FLUX in engines:
        if gc in ("never", "onAppDelete"):
            out[A_FLUX_PRUNE] = "disabled"
        if "*" in (once.get("path") or []) and once.get("affect", "always") == "always":
            out[A_FLUX_SSA] = "IfNotPresent"
        if update.get("recreateFields"):
            out[A_FLUX_FORCE] = "enabled"
    return out


def _with_annotations(plan: Plan, engines: tuple[str, ...]) -> Plan:
    done: dict[tuple[ObjectKey, str], PlannedObject] = {}

    def obj(o: PlannedObject) -> PlannedObject:
        want = engine_annotations(o, engines)
        if not want:
            return o
        cached = done.get((o.key, o.digest))
        if cached is not None:
            return cached
        new = copy.deepcopy(o.obj)
        meta = new.setdefault("metadata", {})
        notes = meta.get("annotations")
        notes = dict(notes) if isinstance(notes, dict) else {}
        for k, v in want.items():
            notes.setdefault(k, v)  # a value the template set on purpose wins
        meta["annotations"] = notes
        result = replace(o, obj=new, digest=digest_of(new))
        done[(o.key, o.digest)] = result
        return result

    def step(s: PlannedStep) -> PlannedStep:
        return replace(s, placements=tuple(PlannedPlacement(p.cluster, p.namespace, tuple(obj(o) for o in p.objects))
                                           for p in s.placements),
                       sub_steps=tuple(step(x) for x in s.sub_steps))

    return replace(plan, steps=tuple(step(s) for s in plan.steps))


# ----------------------------------------------------------------------------------------------
# Secrets: a hand-off folder is committed, so a Secret in it is published


def _is_secret(o: PlannedObject) -> bool:
    return o.kind == "Secret" and o.api_version == "v1"


def _all_objects(plan: Plan) -> list[PlannedObject]:
    out: list[PlannedObject] = []

    def walk(s: PlannedStep) -> None:
        for p in s.placements:
            out.extend(p.objects)
        for sub in s.sub_steps:
            walk(sub)

    for s in plan.steps:
        walk(s)
    return out


def _without_secrets(plan: Plan) -> Plan:
    def step(s: PlannedStep) -> PlannedStep:
        return replace(s, placements=tuple(
            PlannedPlacement(p.cluster, p.namespace, tuple(o for o in p.objects if not _is_secret(o)))
            for p in s.placements), sub_steps=tuple(step(x) for x in s.sub_steps))

    return replace(plan, steps=tuple(step(s) for s in plan.steps))


def _secrets(plan: Plan, options: Options, warnings: list[Diagnostic], notes: list[str]) -> Plan:
    """`--secrets omit`: the plan without Secrets, and a note naming them; `keep`: a warning naming them."""
    secrets = [o for o in _all_objects(plan) if _is_secret(o)]
    if not secrets:
        return plan
    listed = located_objects(secrets)
    if options.secrets == "omit":
        notes.append(f"--secrets omit: {listed} left out of the folder and of what the engines apply; create "
                     "them in each cluster before the stage that needs them (SOPS with Flux spec.decryption, "
                     "Sealed Secrets or External Secrets): a workload that mounts one waits until it exists")
        return _without_secrets(plan)
    warnings.append(Diagnostic(
        f"{listed}: written to the folder in plaintext (base64 is not encryption); committing the folder "
        "publishes the values to everyone who can read the repository", app_location(plan),
        "--secrets omit leaves Secrets out of the folder (then create them with SOPS, Sealed Secrets or "
        "External Secrets)"))
    return plan


# ----------------------------------------------------------------------------------------------
# the whole hand-off


def prepare(plan: Plan, options: Options) -> Handoff:
    """The plan with engine annotations, and the hand-off files for every engine asked for."""
    options.check()
    engines = tuple(e for e in ENGINES if e in options.engines)
    if not engines:
        return Handoff(plan, {})
    from velapy.bundle.emit import object_paths
    from velapy.handoff import argocd, flux

    warnings: list[Diagnostic] = []
    notes: list[str] = []
    annotated = _with_annotations(_secrets(plan, options, warnings, notes), engines)
    paths = object_paths(annotated)
    files: dict[str, str] = {}
    common = Findings(list(warnings), list(notes))  # every engine's NOTES.txt repeats these
    for engine in engines:
        module = argocd if engine == ARGOCD else flux
        out, found = module.emit(annotated, paths, options, common)
        files.update(out)
        warnings.extend(w for w in found.warnings if w not in warnings)
        notes.extend(n for n in found.notes if n not in notes)
    return Handoff(annotated, files, tuple(warnings), tuple(notes))


def diagnostic_line(d: Diagnostic, app_file: str) -> str:
    """`app.yaml:12:5: message` with the file relative to the application's folder (stable bytes)."""
    loc = d.location
    where = ""
    if loc.file:
        base = os.path.dirname(app_file)
        where = os.path.relpath(os.path.abspath(loc.file), os.path.abspath(base)).replace(os.sep, "/") \
            if base else loc.file
        if loc.line:
            where += f":{loc.line}" + (f":{loc.column}" if loc.column else "")
    text = (where + ": " if where else "") + d.message
    return text + (f" (hint: {d.hint})" if d.hint else "")


def identity_text(plan: Plan) -> str:
    """`user alice, groups kubevela:fleet` for the app's identity and every cluster's own one."""
    seen: list[str] = []
    idents = [("", plan.identity)] + [(c.name, c.identity) for c in plan.clusters]
    for cluster, ident in idents:
        if ident is None or not (ident.user or ident.groups):
            continue
        parts = ([f"user {ident.user}"] if ident.user else []) + (
            [f"groups {', '.join(ident.groups)}"] if ident.groups else [])
        seen.append(" ".join(parts) + (f" in {cluster}" if cluster else ""))
    return "; ".join(seen)


def app_location(plan: Plan) -> Location:
    return Location(file=plan.app_file)


def located_objects(objs: list[PlannedObject]) -> str:
    """`Deployment shop/api (eu-1, eu-2), ConfigMap shop/x (eu-1)`: each object once, with its clusters."""
    where: dict[str, list[str]] = {}
    for o in objs:
        clusters = where.setdefault(f"{o.kind} {o.namespace + '/' if o.namespace else ''}{o.name}", [])
        if o.cluster not in clusters:
            clusters.append(o.cluster)
    return ", ".join(f"{name} ({', '.join(clusters)})" for name, clusters in where.items())


def count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def stage_lines(stages: Sequence[Stage], held_as: str, destination: Callable[[str], str],
                approved: set[str] | None = None) -> list[str]:
    """NOTES.txt: one numbered line per stage that deploys something, `held_as` naming its gate."""
    lines, n = [], 0
    for stage in stages:
        units = list(stage.units)
        if not units:
            continue
        n += 1
        held = ("" if not stage.held else f" [gate {stage.held} approved by --approve]"
                if stage.held in (approved or set()) else f" [held by {stage.held}: {held_as}]")
        parts = [f"{u.step.name} → {destination(u.cluster)} ({count(len(u.files), 'object')})" for u in units]
        lines.append(f"  {n}. " + "; ".join(parts) + held)
    return lines


def findings_lines(found: Findings, app_file: str) -> list[str]:
    """NOTES.txt: the notes and the located differences from KubeVela."""
    lines: list[str] = []
    if found.notes:
        lines += ["", "notes:"] + [f"  - {x}" for x in found.notes]
    if found.warnings:
        lines += ["", "differences from KubeVela (warnings):"]
        lines += [f"  - {diagnostic_line(w, app_file)}" for w in found.warnings]
    return lines


__all__ = ["ARGOCD", "ENGINES", "FLUX", "HANDOFF_DIRS", "SECRETS", "Findings", "Handoff", "Options",
           "engine_annotations", "prepare", "repo_path_for", "without_credentials"]
