"""Small executable models of the parts of Argo CD and Flux that decide what a hand-off does, for
tests without a live engine (tests/test_handoff_scenarios.py).

Each model follows one upstream function, read in the sources the CRDs in ../shared/crds come from
(argoproj/argo-cd 3.6.0 at 37ee0097, fluxcd/kustomize-controller v1.9 at 186fb3b2); the docstrings
name them. They are written from those readings, simplified to what the scenarios need: one git
repository whose revisions are whole output folders, clusters as dictionaries of objects with the
name of the engine object that applied them, health = every wanted object is there.
"""

from __future__ import annotations

import copy
import functools
import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

Key = tuple[str, str, str]  # kind, namespace, name
A_SYNC = "argocd.argoproj.io/sync-options"
A_COMPARE = "argocd.argoproj.io/compare-options"
A_FLUX_PRUNE = "kustomize.toolkit.fluxcd.io/prune"
FLUX_API = "kustomize.toolkit.fluxcd.io/v1"


def key_of(obj: Mapping[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    return (str(obj["kind"]), str(meta.get("namespace") or ""), str(meta["name"]))


@functools.lru_cache(maxsize=4096)
def _parsed(text: str) -> tuple[dict[str, Any], ...]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return tuple(d for d in yaml.load_all(text, Loader=loader) if isinstance(d, dict))


def docs(text: str) -> list[dict[str, Any]]:
    """The objects of a YAML text (fresh copies: the models keep and change them)."""
    return copy.deepcopy(list(_parsed(text)))


def _annotation(obj: Mapping[str, Any], name: str) -> str:
    return str(((obj.get("metadata") or {}).get("annotations") or {}).get(name, ""))


class Repo:
    """A git repository: revision → the files of the output folder (at the repository's top level)."""

    def __init__(self) -> None:
        self.revisions: list[tuple[str, dict[str, str]]] = []

    def commit(self, files: Mapping[str, str]) -> str:
        rev = f"r{len(self.revisions) + 1}"
        self.revisions.append((rev, dict(files)))
        return rev

    @property
    def head(self) -> str:
        return self.revisions[-1][0]

    def files(self, rev: str = "") -> dict[str, str]:
        rev = rev or self.head
        return next(f for r, f in self.revisions if r == rev)


@dataclass
class Live:
    obj: dict[str, Any]
    owner: str  # the Application / Kustomization that applied it (Argo CD tracking, Flux owner labels)


@dataclass
class Fleet:
    """The clusters: name → objects; namespaces are objects of kind Namespace."""

    clusters: dict[str, dict[Key, Live]] = field(default_factory=dict)

    def cluster(self, name: str) -> dict[Key, Live]:
        return self.clusters.setdefault(name, {})

    def has_namespace(self, cluster: str, ns: str) -> bool:
        return ("Namespace", "", ns) in self.cluster(cluster)

    def images(self, cluster: str) -> dict[str, str]:
        """Deployment name → image in a cluster (what a scenario looks at)."""
        return {k[2]: live.obj["spec"]["template"]["spec"]["containers"][0]["image"]
                for k, live in self.cluster(cluster).items() if k[0] == "Deployment"}

    def names(self, cluster: str, kind: str) -> set[str]:
        return {k[2] for k in self.cluster(cluster) if k[0] == kind}


class CliFatal(Exception):
    """The argocd / flux CLI exits non-zero (log.Fatalf)."""


class Blocked(Exception):
    """A waiting command would wait forever in this state."""


# ----------------------------------------------------------------------------------------------
# Argo CD


@dataclass
class App:
    name: str
    labels: dict[str, str]
    spec: dict[str, Any]
    owner: str  # the ApplicationSet
    finalizer: bool
    revision: str = ""  # status.sync.revision: what targetRevision resolved to at the last comparison
    sync: str = "OutOfSync"
    health: str = "Missing"
    operations: int = 0  # sync operations started
    last_prune_required: int = 0


_PARAM = re.compile(r"\{\{\s*\.(\w+)\s*\}\}")


def generate(appset: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The Applications a list-generator ApplicationSet yields, with goTemplate `{{.key}}` parameters and the
    resources finalizer unless `syncPolicy.preserveResourcesOnDeletion` (`RenderTemplateParams`,
    applicationset/utils/utils.go)."""
    template = appset["spec"]["template"]
    preserve = bool((appset["spec"].get("syncPolicy") or {}).get("preserveResourcesOnDeletion"))
    out = []
    for gen in appset["spec"]["generators"]:
        for element in gen["list"]["elements"]:
            def fill(value: Any, element: Mapping[str, Any] = element) -> Any:
                if isinstance(value, str):
                    return _PARAM.sub(lambda m: str(element[m.group(1)]), value)
                if isinstance(value, dict):
                    return {k: fill(v) for k, v in value.items()}
                if isinstance(value, list):
                    return [fill(v) for v in value]
                return value

            app = fill(copy.deepcopy(template))
            app["apiVersion"], app["kind"] = appset["apiVersion"], "Application"
            app["metadata"]["namespace"] = appset["metadata"]["namespace"]
            if not preserve:
                app["metadata"]["finalizers"] = ["resources-finalizer.argocd.argoproj.io"]
            out.append(app)
    return out


def matches(labels: Mapping[str, str], selector: str) -> bool:
    """A label selector as the argocd CLI takes it: `k=v`, `k in (a,b)`, joined by commas."""
    for term in re.findall(r"[^,(]+(?:\([^)]*\))?", selector):
        term = term.strip()
        m = re.fullmatch(r"(\S+)\s+in\s+\(([^)]*)\)", term)
        if m:
            if labels.get(m.group(1)) not in [v.strip() for v in m.group(2).split(",")]:
                return False
            continue
        k, _, v = term.partition("=")
        if labels.get(k.strip()) != v.strip():
            return False
    return True


class ArgoCD:
    """The ApplicationSet controller with Progressive Syncs, the application controller's sync and
    comparison, and the argocd CLI commands the hand-off prints."""

    def __init__(self, repo: Repo, fleet: Fleet, *, progressive_syncs: bool = True) -> None:
        self.repo, self.fleet, self.progressive = repo, fleet, progressive_syncs
        self.projects: dict[str, dict[str, Any]] = {}
        self.appsets: dict[str, dict[str, Any]] = {}
        self.apps: dict[str, App] = {}
        self.status: dict[str, dict[str, dict[str, Any]]] = {}  # appset → app → applicationStatus entry
        self.errors: list[str] = []
        self.clock = 0

    # kubectl apply -n argocd -f argocd/ ------------------------------------------------------
    def kubectl_apply(self, files: Mapping[str, str], folder: str = "argocd/") -> None:
        """Files in name order, as kubectl takes a folder; the controller reconciles on every change."""
        for rel in sorted(f for f in files if f.startswith(folder) and f.endswith(".yaml")):
            for doc in docs(files[rel]):
                if doc["kind"] == "AppProject":
                    self.projects[doc["metadata"]["name"]] = doc
                elif doc["kind"] == "ApplicationSet":
                    self.appsets[doc["metadata"]["name"]] = doc
                    self.reconcile(doc["metadata"]["name"])

    # application controller --------------------------------------------------------------------
    def _wanted(self, app: App, rev: str) -> dict[Key, dict[str, Any]]:
        files = self.repo.files(rev)
        src = app.spec["source"]
        include = src["directory"]["include"].strip("{}").split(",")
        out = {}
        for f in include:
            rel = f"{src['path']}/{f}"
            if rel in files:
                for d in docs(files[rel]):
                    out[key_of(d)] = d
        return out

    def _cluster(self, app: App) -> str:
        name = app.spec["destination"]["name"]
        return "local" if name == "in-cluster" else name

    def refresh(self, names: Iterable[str] | None = None) -> None:
        """CompareAppState: status.sync.revision = what targetRevision resolves to now; OutOfSync when a
        wanted object differs or an object the app tracks is no longer wanted (extraneous), unless the
        object has compare-options IgnoreExtraneous."""
        for name in list(names if names is not None else self.apps):
            app = self.apps[name]
            app.revision = self.repo.head
            wanted = self._wanted(app, app.revision)
            live = self.fleet.cluster(self._cluster(app))
            differs = any(k not in live or live[k].obj != obj for k, obj in wanted.items())
            extraneous = [k for k, v in live.items() if v.owner == app.name and k not in wanted
                          and "IgnoreExtraneous" not in _annotation(v.obj, A_COMPARE)]
            app.sync = "OutOfSync" if differs or extraneous else "Synced"
            app.health = "Healthy" if all(k in live for k in wanted) else "Missing"

    def sync(self, name: str, revision: str = "", prune: bool = False) -> None:
        """One sync operation: apply what the revision wants (CreateNamespace=true creates the destination
        namespace; an object whose namespace is missing fails the operation), prune what the app tracks and
        no longer wants when allowed (never an object with sync-options Prune=false)."""
        app = self.apps[name]
        app.operations += 1
        rev = revision or self.repo.head
        wanted = self._wanted(app, rev)
        cluster = self._cluster(app)
        live = self.fleet.cluster(cluster)
        options = app.spec.get("syncPolicy", {}).get("syncOptions") or []
        dest_ns = app.spec["destination"].get("namespace", "")
        if "CreateNamespace=true" in options and dest_ns and not self.fleet.has_namespace(cluster, dest_ns):
            live[("Namespace", "", dest_ns)] = Live({"kind": "Namespace", "metadata": {"name": dest_ns}}, "")
        for k in wanted:
            if k[1] and not self.fleet.has_namespace(cluster, k[1]):
                raise CliFatal(f"Operation has completed with phase: Failed (namespaces \"{k[1]}\" not found)")
        for k, obj in wanted.items():
            live[k] = Live(obj, app.name)
        extraneous = [k for k, v in live.items() if v.owner == app.name and k not in wanted]
        required = 0
        for k in extraneous:
            if "Prune=false" in _annotation(live[k].obj, A_SYNC):
                continue
            if prune:
                del live[k]
            else:
                required += 1
        app.last_prune_required = required
        self.refresh([name])

    def _delete_app(self, name: str) -> None:
        """Deleting an Application with the resources finalizer deletes what it tracks (not Delete=false)."""
        app = self.apps.pop(name)
        if app.finalizer:
            live = self.fleet.cluster(self._cluster(app))
            for k in [k for k, v in live.items() if v.owner == name]:
                if "Delete=false" not in _annotation(live[k].obj, A_SYNC):
                    del live[k]

    # ApplicationSet controller -----------------------------------------------------------------
    def reconcile(self, appset_name: str) -> None:
        """The ApplicationSet Reconcile: generate, run Progressive Syncs, create/update the owned
        Applications, delete the owned ones no longer generated."""
        appset = self.appsets[appset_name]
        project = appset["spec"]["template"]["spec"]["project"]
        if project not in self.projects:
            self.errors.append(f"{appset_name}: application references project {project} which does not exist")
            return
        desired = generate(appset)
        for d in desired:  # create / update
            name = d["metadata"]["name"]
            have = self.apps.get(name)
            if have is not None and have.owner != appset_name:
                self.errors.append(f"{appset_name}: Application {name} exists and is owned by {have.owner}")
                continue
            if have is None:
                self.apps[name] = App(name, d["metadata"]["labels"], d["spec"], appset_name,
                                      bool(d["metadata"].get("finalizers")))
                self.refresh([name])
            else:
                have.spec, have.labels = d["spec"], d["metadata"]["labels"]
        names = {d["metadata"]["name"] for d in desired}
        for name in [n for n, a in self.apps.items() if a.owner == appset_name and n not in names]:
            self._delete_app(name)
            self.status.get(appset_name, {}).pop(name, None)
        mine = [d for d in desired if self.apps.get(d["metadata"]["name"], None) is not None
                and self.apps[d["metadata"]["name"]].owner == appset_name]
        if not self.progressive:  # the strategy is ignored: automated sync of every Application
            for d in mine:
                app = self.apps[d["metadata"]["name"]]
                if app.sync != "Synced":
                    self.sync(app.name, prune=bool(app.spec["syncPolicy"]["automated"].get("prune")))
            return
        to_sync = self._progressive_syncs(appset, mine)
        for d in mine:  # SyncDesiredApplications / syncApplication
            name = d["metadata"]["name"]
            entry = self.status[appset_name].get(name)
            if to_sync.get(name) and entry is not None and entry["status"] == "Pending":
                self.sync(name, prune=bool(d["spec"]["syncPolicy"]["automated"].get("prune")))

    def _progressive_syncs(self, appset: Mapping[str, Any], desired: list[dict[str, Any]]) -> dict[str, bool]:
        """PerformProgressiveSyncs (applicationset/progressivesync/progressive_sync.go)."""
        steps = appset["spec"]["strategy"]["rollingSync"]["steps"]
        dep_list, step_map = self._dependency_list(steps, desired)
        self._update_status(appset, step_map)
        to_sync = self._apps_to_sync(appset, dep_list)
        self._update_progress(appset, steps, to_sync, step_map)
        return to_sync

    @staticmethod
    def _dependency_list(steps: list[dict[str, Any]], desired: list[dict[str, Any]]
                         ) -> tuple[list[list[str]], dict[str, int]]:
        """buildAppDependencyList: an app joins every step whose In expressions all match its labels."""
        dep_list: list[list[str]] = [[] for _ in steps]
        step_map: dict[str, int] = {}
        for d in desired:
            labels, name = d["metadata"]["labels"], d["metadata"]["name"]
            for i, step in enumerate(steps):
                if all(labels.get(e["key"]) in e["values"] if e["operator"] == "In"
                       else labels.get(e["key"]) not in e["values"] for e in step["matchExpressions"]):
                    dep_list[i].append(name)
                    step_map.setdefault(name, i)
        return dep_list, step_map

    def _update_status(self, appset: Mapping[str, Any], step_map: Mapping[str, int]) -> None:
        """UpdateApplicationSetApplicationStatus: a new revision (or a new app) makes an entry Waiting; a
        Waiting app that is already Synced moves on (Healthy / Progressing); Pending → Progressing once a
        sync started; Progressing → Healthy once Synced and Healthy. An app that drifts OutOfSync at an
        unchanged revision keeps its entry (Argo CD >= 3.3): nothing re-syncs it."""
        name = appset["metadata"]["name"]
        entries = self.status.setdefault(name, {})
        for app in [a for a in self.apps.values() if a.owner == name]:
            entry = entries.get(app.name)
            if entry is None:
                entry = entries[app.name] = {"status": "Waiting", "revision": app.revision, "ops": app.operations}
            entry["step"] = step_map.get(app.name, -1) + 1
            if entry["revision"] != app.revision:
                entry.update(status="Waiting", revision=app.revision)
            if entry["status"] == "Waiting":
                if app.sync == "Synced":
                    entry["status"] = "Healthy" if app.health == "Healthy" else "Progressing"
            else:
                if entry["status"] == "Pending" and app.operations > entry["ops"]:
                    entry["status"] = "Progressing"
                if entry["status"] == "Progressing" and app.health == "Healthy" and app.sync == "Synced":
                    entry["status"] = "Healthy"

    def _apps_to_sync(self, appset: Mapping[str, Any], dep_list: list[list[str]]) -> dict[str, bool]:
        """getAppsToSync: every app of a step may sync; the next step only once all of this one are Healthy."""
        entries = self.status[appset["metadata"]["name"]]
        out: dict[str, bool] = {}
        for names in dep_list:
            for n in names:
                out[n] = True
            if not all(n in self.apps and entries.get(n, {}).get("status") == "Healthy" for n in names):
                break
        return out

    def _update_progress(self, appset: Mapping[str, Any], steps: list[dict[str, Any]], to_sync: Mapping[str, bool],
                         step_map: Mapping[str, int]) -> None:
        """UpdateApplicationSetApplicationStatusProgress: Waiting → Pending for apps allowed to sync while
        fewer than maxUpdate apps of their step are Pending or Progressing (maxUpdate 0: never)."""
        entries = self.status[appset["metadata"]["name"]]
        updating = [0] * len(steps)
        for n, e in entries.items():
            if e["status"] in ("Pending", "Progressing") and n in step_map:
                updating[step_map[n]] += 1
        for n, e in entries.items():
            if n not in step_map:
                continue
            limit = steps[step_map[n]].get("maxUpdate")
            allowed = limit is None or updating[step_map[n]] < int(limit)
            if e["status"] == "Waiting" and to_sync.get(n) and allowed:
                e.update(status="Pending", ops=self.apps[n].operations)
                updating[step_map[n]] += 1

    def settle(self, rounds: int = 8) -> None:
        """The controllers running for a while: comparisons refresh, every ApplicationSet reconciles."""
        for _ in range(rounds):
            self.refresh()
            for name in list(self.appsets):
                self.reconcile(name)

    def rollout_progressing(self, appset: str) -> str:
        """getProgressingCondition's message."""
        steps = self.appsets[appset]["spec"]["strategy"]["rollingSync"]["steps"]
        entries = self.status.get(appset, {})
        for i in range(1, len(steps) + 1):
            mine = [e for e in entries.values() if e.get("step") == i]
            if mine and not all(e["status"] == "Healthy" for e in mine):
                return f"ApplicationSet is performing rollout of step {i}"
        return "ApplicationSet Rollout has completed"

    # the CLI -------------------------------------------------------------------------------------
    def run(self, command: str) -> None:
        """Run an approval as printed in NOTES.txt: `a && b && REV=$(...) && c`."""
        env: dict[str, str] = {}
        for part in command.split(" && "):
            part = part.strip()
            m = re.fullmatch(r"(\w+)=\$\((.*)\)", part)
            if m:
                env[m.group(1)] = self._run_one(shlex.split(m.group(2)), env)
            else:
                self._run_one(shlex.split(part.replace('"$REV"', env.get("REV", "$REV"))), env)

    def _run_one(self, argv: list[str], env: Mapping[str, str]) -> str:
        if argv[:2] == ["kubectl", "get"] and argv[2] == "application":
            name = argv[5] if argv[3] == "-n" else argv[3]
            assert argv[-1] == "jsonpath={.status.sync.revision}", argv
            return self.apps[name].revision
        assert argv[:2] == ["argocd", "app"], argv
        opts = _flags(argv[3:])
        selected = sorted(n for n, a in self.apps.items() if matches(a.labels, opts["-l"]))
        if not selected:
            raise CliFatal(f"No matching apps found for filter: selector {opts['-l']}")
        if argv[2] == "wait":
            for n in selected:
                app = self.apps[n]
                if ("--sync" in opts and app.sync != "Synced") or ("--health" in opts and app.health != "Healthy"):
                    raise Blocked(f"argocd app wait: {n} is {app.sync}/{app.health}")
            return ""
        assert argv[2] == "sync", argv
        self._cli_sync(selected, prune="--prune" in opts, revision=opts.get("--revision", ""))
        return ""

    def _cli_sync(self, names: list[str], *, prune: bool, revision: str) -> None:
        """`argocd app sync` over the selected apps, one by one (NewApplicationSyncCommand,
        cmd/argocd/commands/app.go): the request carries the CLI's --prune (default false); after each
        operation, an app-wide sync that did not end Synced with resources requiring pruning is fatal,
        and the apps after it are never synced."""
        for n in names:
            self.sync(n, revision=revision, prune=prune)
            app = self.apps[n]
            if app.sync != "Synced" and app.last_prune_required > 0:
                raise CliFatal(f"{app.last_prune_required} resources require pruning")


def _flags(args: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    i = 0
    while i < len(args):
        a = args[i]
        if a in ("-l", "--revision", "-n"):
            out[a] = args[i + 1]
            i += 2
        else:
            out[a] = ""
            i += 1
    return out


# ----------------------------------------------------------------------------------------------
# Flux


@dataclass
class Kustomization:
    name: str
    spec: dict[str, Any]
    labels: dict[str, str]
    ready: bool = False
    message: str = ""
    last_applied: str = ""
    inventory: list[tuple[str, Key]] = field(default_factory=list)
    deleting: bool = False


def _unescape(pattern: str) -> str:
    return re.sub(r"\\(.)", r"\1", pattern)


class Flux:
    """kustomize-controller: Reconcile with its dependency check, build, apply, prune and finalizer.
    Flux runs on the hub (`local`); a unit reaches a member through `<cluster>-kubeconfig`."""

    def __init__(self, repo: Repo, fleet: Fleet, namespace: str = "flux-system") -> None:
        self.repo, self.fleet, self.namespace = repo, fleet, namespace
        self.ks: dict[str, Kustomization] = {}
        fleet.cluster("local")[("Namespace", "", namespace)] = Live({"kind": "Namespace",
                                                                    "metadata": {"name": namespace}}, "")

    def kubectl_apply(self, text: str) -> None:
        """`kubectl apply -f` of Kustomization documents: created or updated, never deleted."""
        for d in docs(text):
            self._put(d)

    def _put(self, d: Mapping[str, Any]) -> None:
        name = d["metadata"]["name"]
        have = self.ks.get(name)
        if have is None:
            self.ks[name] = Kustomization(name, copy.deepcopy(d["spec"]), dict(d["metadata"].get("labels") or {}))
        else:
            have.spec, have.labels = copy.deepcopy(d["spec"]), dict(d["metadata"].get("labels") or {})

    def resume(self, *names: str) -> None:
        """`flux resume kustomization`: suspend off, reconcile now."""
        for n in names:
            self.ks[n].spec["suspend"] = False
            self.reconcile(n)

    def _target(self, ks: Kustomization) -> str:
        ref = (ks.spec.get("kubeConfig") or {}).get("secretRef", {}).get("name", "")
        return ref.removesuffix("-kubeconfig") if ref else "local"

    def _check_dependencies(self, ks: Kustomization) -> str:
        """checkDependencies: each dependency exists, is Ready and (same source) applied the source's
        current revision; the first that is not is the reason to wait."""
        for dep in ks.spec.get("dependsOn") or []:
            other = self.ks.get(dep["name"])
            if other is None:
                return f"dependency '{self.namespace}/{dep['name']}' not found"
            if not other.ready:
                return f"dependency '{self.namespace}/{dep['name']}' is not ready"
            if other.last_applied != self.repo.head:
                return f"dependency '{self.namespace}/{dep['name']}' revision is not up to date"
        return ""

    def _build(self, ks: Kustomization, files: Mapping[str, str]) -> list[dict[str, Any]] | None:
        """The objects of spec.path (kustomization.yaml's resources when there is one, else every YAML file
        below it), minus `$patch: delete` patches; None when the path is not in the revision."""
        path = ks.spec["path"].removeprefix("./").rstrip("/")
        below = sorted(f for f in files if f.startswith(path + "/"))
        if not below:
            return None
        kfile = f"{path}/kustomization.yaml"
        if kfile in files:
            chosen = [f"{path}/{r}" for r in docs(files[kfile])[0].get("resources") or []]
        else:
            chosen = [f for f in below if f.endswith(".yaml")]
        objs = [d for f in chosen for d in docs(files[f])]
        for p in ks.spec.get("patches") or []:
            body = docs(p["patch"])[0]
            if body.get("$patch") == "delete":
                t = p["target"]
                objs = [o for o in objs if not (o["kind"] == _unescape(t["kind"])
                                                and o["metadata"]["name"] == _unescape(t["name"])
                                                and (o["metadata"].get("namespace") or "") ==
                                                _unescape(t.get("namespace", "")))]
        return objs

    def _delete(self, cluster: str, k: Key, owner: str) -> None:
        live = self.fleet.cluster(cluster)
        obj = live.get(k)
        if obj is None or obj.owner != owner or _annotation(obj.obj, A_FLUX_PRUNE) == "disabled":
            return
        del live[k]
        if cluster == "local" and k[0] == "Kustomization" and k[2] in self.ks:
            self.ks[k[2]].deleting = True

    def reconcile(self, name: str) -> None:
        """Reconcile (internal/controller/kustomization_controller.go): finalize when deleting; nothing when
        suspended; dependencies; build ("kustomization path not found" before any prune); apply; prune."""
        ks = self.ks[name]
        if ks.deleting:
            self._finalize(ks)
            return
        if ks.spec.get("suspend"):
            return
        why = self._check_dependencies(ks)
        if why:
            ks.ready, ks.message = False, why
            return
        files = self.repo.files()
        objs = self._build(ks, files)
        if objs is None:
            ks.ready, ks.message = False, f"kustomization path not found: {ks.spec['path']}"
            return
        cluster = self._target(ks)
        live = self.fleet.cluster(cluster)
        applying = {key_of(o) for o in objs}
        for o in objs:
            k = key_of(o)
            if k[1] and not self.fleet.has_namespace(cluster, k[1]) and ("Namespace", "", k[1]) not in applying:
                ks.ready, ks.message = False, f"namespaces \"{k[1]}\" not found"
                return
        inventory = []
        for o in objs:
            k = key_of(o)
            if k[0] == "Kustomization" and o.get("apiVersion") == FLUX_API:
                self._put(o)
            live[k] = Live(o, name)
            inventory.append((cluster, k))
        if ks.spec.get("prune"):
            for c, k in ks.inventory:
                if (c, k) not in inventory:
                    self._delete(c, k, name)
        ks.inventory, ks.ready, ks.message, ks.last_applied = inventory, True, "", self.repo.head

    def _finalize(self, ks: Kustomization) -> None:
        """finalize / finalizerShouldDeleteResources: a suspended Kustomization, or one without prune,
        leaves its objects; otherwise its inventory is deleted (not what prune: disabled marks)."""
        if ks.spec.get("prune") and not ks.spec.get("suspend"):
            for c, k in ks.inventory:
                self._delete(c, k, ks.name)
        del self.ks[ks.name]

    def settle(self, rounds: int = 10) -> None:
        for _ in range(rounds):
            for name in sorted(self.ks):
                if name in self.ks:
                    self.reconcile(name)
