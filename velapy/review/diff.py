"""Two rendered output folders → what changes for every cluster, as text, unified diff, JSON or Markdown.

A folder is taken as its content, `{relative path: text}` (what `emit.render_folder` returns, or
what `read_folder` reads from disk), so the comparison never depends on file names: every YAML
object under `clusters/<cluster>/` is keyed by (cluster, API group, kind, namespace, name) and
`plan.yaml` is one more document. Each `kustomization.yaml` is derived from the file names and is
left out of the content comparison; the byte comparison (`Comparison.files`, used by `--check`
and `golden check`) sees every file.

Changes come grouped by cluster, then by object (added / removed / changed); a changed object
lists its changed field paths with the old and new values. List items that all carry a `name`
(containers, env, ports, volumes, workflow steps) are matched by that name, so inserting one
item reports one addition rather than a shift of every later index.

Secret `data`/`stringData` values are masked (`<secret>`, and `<secret, changed>` on the new side
of a value that differs: the sides are compared in memory, nothing derived from a value is shown)
before any change is listed, so no formatter ever holds a secret value; `show_secrets` turns
masking off. Parse errors in a file that declares a Secret do not repeat the file's text.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from velapy.bundle.layout import CLUSTERS_DIR, HANDOFF_DIRS, KUSTOMIZATION, PLAN_FILE
from velapy.compile.plan import ObjectKey, group_of
from velapy.errors import Diagnostic, InputError, Location
from velapy.load.yamlio import dump_yaml, format_step, load_documents

__all__ = [
    "ABSENT",
    "HANDOFF_DIRS",
    "PLAN_FILE",
    "ClusterChanges",
    "Comparison",
    "FieldChange",
    "FileChange",
    "Masked",
    "Match",
    "ObjectChange",
    "ObjectKey",
    "Snapshot",
    "compare",
    "compare_folders",
    "comparison_json",
    "diff_values",
    "format_json",
    "format_markdown",
    "format_path",
    "format_text",
    "format_unified",
    "group_of",
    "is_secret",
    "mask_secret",
    "mask_secrets",
    "parse_folder",
    "read_folder",
    "section",
    "show_value",
    "summary_line",
]

# the GitOps hand-off folders (HANDOFF_DIRS): their objects are compared like a cluster's, under
# a section key no cluster name can have (a cluster name has no "/")
ARROW = "→"
MARKDOWN_MARKER = "<!-- velapy-diff -->"
# GitHub refuses comments above 65,536 characters; stay well below so a bot can add a footer.
MARKDOWN_BUDGET = 60_000


class _Absent:
    """The value of a field that does not exist on one side."""

    _instance: _Absent | None = None

    def __new__(cls) -> _Absent:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Any = _Absent()


# --------------------------------------------------------------------------------------------
# Folder content → objects.
# --------------------------------------------------------------------------------------------


def pseudo_path(key: ObjectKey) -> str:
    """A path-like name for unified diff headers (not a file of the folder)."""
    return f"{section(key.cluster)}/{key.namespace or '_cluster'}/{key.kind}/{key.name}"


def _where(cluster: str) -> str:
    return f"{cluster.rstrip('/')}/" if cluster.endswith("/") else f"cluster {cluster}"


def section(cluster: str) -> str:
    """The folder a comparison section stands for: `clusters/<name>`, or a hand-off folder (`argocd`)."""
    return cluster.rstrip("/") if cluster.endswith("/") else f"{CLUSTERS_DIR}/{cluster}"


@dataclass(frozen=True)
class Snapshot:
    """One side of a comparison: the objects per key, the plan document and the raw files."""

    objects: Mapping[ObjectKey, dict[str, Any]]
    plan: Any
    files: Mapping[str, str]
    clusters: frozenset[str]


_SECRET_DECLARED = re.compile(r"^kind:\s*[\"']?Secret[\"']?\s*$", re.MULTILINE)


def parse_folder(files: Mapping[str, str], origin: str = "") -> Snapshot:
    """Parse a rendered folder's content. `origin` prefixes file names in error messages.

    Raises InputError (all problems of the folder at once) for YAML that does not parse, an
    object without apiVersion/kind/metadata.name, an object outside `clusters/<cluster>/`, or
    the same object twice in one cluster.
    """
    objects: dict[ObjectKey, dict[str, Any]] = {}
    seen_in: dict[ObjectKey, str] = {}
    plan: Any = None
    clusters: set[str] = set()
    problems: list[Diagnostic] = []
    for rel in sorted(files):
        parts = rel.split("/")
        shown = f"{origin.rstrip('/')}/{rel}" if origin else rel
        is_plan = rel == PLAN_FILE
        in_cluster = len(parts) >= 3 and parts[0] == CLUSTERS_DIR
        in_handoff = len(parts) >= 2 and parts[0] in HANDOFF_DIRS
        if not (is_plan or in_cluster or in_handoff) or not rel.endswith((".yaml", ".yml")):
            continue
        # a hand-off folder owns its objects, but a per-cluster subfolder of it (flux/namespaces/<cluster>/:
        # objects for one cluster each) owns its own, as a cluster folder does
        owner = ("/".join(parts[:-1]) if len(parts) > 3 else parts[0]) + "/" if in_handoff \
            else parts[1] if in_cluster else ""
        if in_cluster or in_handoff:
            clusters.add(owner)
            if parts[-1] == KUSTOMIZATION and in_cluster:
                continue
        text = files[rel]
        try:
            docs = load_documents(text, shown)
        except InputError as exc:
            problems.extend(_withhold_secret_text(exc.diagnostics, text, shown))
            continue
        if is_plan:
            plan = docs[0].data if len(docs) == 1 else [d.data for d in docs]
            continue
        for doc in docs:
            obj = doc.data
            api_version, kind, meta = _header(obj)
            name = meta.get("name") if isinstance(meta, dict) else None
            if not api_version or not kind or not isinstance(name, str) or not name:
                problems.append(Diagnostic("not a Kubernetes object: apiVersion, kind and metadata.name are needed",
                                           Location(file=shown)))
                continue
            namespace = meta.get("namespace") or ""
            key = ObjectKey(owner, group_of(api_version), kind, str(namespace), name)
            if key in objects:
                problems.append(Diagnostic(f"{key.describe()} is in {_where(key.cluster)} twice (also in "
                                           f"{seen_in[key]})", Location(file=shown)))
                continue
            objects[key] = obj
            seen_in[key] = shown
    if problems:
        raise InputError(problems)
    return Snapshot(objects, plan, dict(files), frozenset(clusters))


def _header(obj: Any) -> tuple[str, str, Any]:
    if not isinstance(obj, dict):
        return "", "", None
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    return (api_version if isinstance(api_version, str) else "", kind if isinstance(kind, str) else "",
            obj.get("metadata"))


def _withhold_secret_text(diags: Sequence[Diagnostic], text: str, shown: str) -> list[Diagnostic]:
    """A YAML error message may quote the offending value: never let it quote a Secret's."""
    if not _SECRET_DECLARED.search(text):
        return list(diags)
    return [Diagnostic("cannot read this Secret manifest (the details are withheld: they could show a secret "
                       "value)", Location(file=shown, line=d.location.line, column=d.location.column))
            for d in diags]


def read_folder(path: str | os.PathLike[str]) -> dict[str, str]:
    """The text of every file under `path` (hidden files and folders skipped), by relative path."""
    root = Path(path)
    if not root.is_dir():
        raise InputError(f"{os.fspath(path)} is not a folder", Location(file=os.fspath(path)))
    out: dict[str, str] = {}
    problems: list[Diagnostic] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            full = Path(dirpath) / name
            rel = full.relative_to(root).as_posix()
            try:
                out[rel] = full.read_bytes().decode("utf-8")
            except UnicodeDecodeError:
                problems.append(Diagnostic("not UTF-8 text: a rendered folder holds YAML only",
                                           Location(file=str(full))))
            except OSError as exc:
                problems.append(Diagnostic(f"cannot read the file: {exc.strerror or exc}", Location(file=str(full))))
    if problems:
        raise InputError(problems)
    return out


# --------------------------------------------------------------------------------------------
# Secret masking.
# --------------------------------------------------------------------------------------------

_SECRET_FIELDS = ("data", "stringData")


def is_secret(key: ObjectKey) -> bool:
    return key.group == "" and key.kind == "Secret"


class Masked(str):
    """A Secret value as every output shows it: `<secret>`, or `<secret, changed>` on the new
    side of a value that differs. Nothing derived from the value (no hash) is ever shown: the
    two sides are compared in memory before masking, so nothing can be checked against guesses."""

    __slots__ = ()


SECRET = Masked("<secret>")
SECRET_CHANGED = Masked("<secret, changed>")


def mask_secret(key: ObjectKey, obj: dict[str, Any]) -> dict[str, Any]:
    """A copy of the Secret with every `data`/`stringData` value replaced by `<secret>`."""
    return mask_secrets(obj, None)[0] or {}


def mask_secrets(before: dict[str, Any] | None, after: dict[str, Any] | None
                 ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """Both sides of a Secret with their values masked; a value of `after` that differs from the
    same key's value in `before` reads `<secret, changed>`."""

    def side(obj: dict[str, Any] | None, other: dict[str, Any] | None, marks_change: bool) -> dict[str, Any] | None:
        if obj is None:
            return None
        out = dict(obj)
        for fld in _SECRET_FIELDS:
            if fld not in out or out[fld] is None:
                continue
            values, was = out[fld], (other or {}).get(fld, ABSENT)

            def one(value: Any, old: Any) -> Masked:
                return SECRET_CHANGED if marks_change and old is not ABSENT and not _same(old, value) else SECRET

            if isinstance(values, dict):
                olds = was if isinstance(was, dict) else {}
                out[fld] = {k: one(v, olds.get(k, ABSENT)) for k, v in values.items()}
            else:
                out[fld] = one(values, was)
        return out

    return side(before, after, False), side(after, before, True)


# --------------------------------------------------------------------------------------------
# Value comparison.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Match:
    """A path step into a list whose items are matched by who they are, not by position:
    `[name=web]`, `[cluster=prod-1]`, or `[Deployment demo/web]` for object references."""

    fields: tuple[tuple[str, str], ...]

    @classmethod
    def by(cls, **fields: str) -> Match:
        return cls(tuple(fields.items()))

    def text(self) -> str:
        d = dict(self.fields)
        if "kind" in d:
            ns = d.get("namespace", "")
            return f"[{d['kind']} {ns + '/' if ns else ''}{d['name']}]"
        return "[" + ",".join(f"{k}={v}" for k, v in self.fields) + "]"


PathStep = str | int | Match


def format_path(path: Sequence[PathStep]) -> str:
    """`spec.template.spec.containers[name=web].image`; odd keys as `metadata.labels["app.oam.dev/name"]`."""
    out: list[str] = []
    for step in path:
        out.append(step.text() if isinstance(step, Match) else format_step(step, not out))
    return "".join(out) or "(whole document)"


@dataclass(frozen=True)
class FieldChange:
    """One changed field: `op` is added, removed, changed, or reordered (a by-name list whose
    items stayed but moved; old/new are then the lists of names)."""

    path: tuple[PathStep, ...]
    old: Any = ABSENT
    new: Any = ABSENT
    op: str = "changed"

    @property
    def path_text(self) -> str:
        return format_path(self.path)


def _same(a: Any, b: Any) -> bool:
    """Equality that tells `1`, `1.0` and `true` apart, as YAML does."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


# Ways to tell list items apart, tried in order: the first that gives every item of both lists
# a distinct identity is used. Object references (plan entries) first, since their `name`
# alone repeats (a Deployment and a Service both named web).
_IDENTITIES: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("kind", "name"), ("namespace",)),
    (("name",), ()),
    (("cluster",), ("namespace",)),
)


def _identities(items: list[Any], required: tuple[str, ...], optional: tuple[str, ...]) -> list[Match] | None:
    keys: list[Match] = []
    for item in items:
        if not isinstance(item, dict) or not all(isinstance(item.get(k), str) for k in required):
            return None
        fields = [(k, str(item[k])) for k in required]
        fields += [(k, str(item[k])) for k in optional if isinstance(item.get(k), str) and item[k]]
        keys.append(Match(tuple(sorted(fields, key=lambda kv: (kv[0] != "kind", kv[0])))))
    return keys if len(set(keys)) == len(keys) else None


def _match_keys(old: list[Any], new: list[Any]) -> tuple[list[Match], list[Match]] | None:
    """Identities for the items of both lists, or None when they must be compared by index."""
    for required, optional in _IDENTITIES:
        a, b = _identities(old, required, optional), _identities(new, required, optional)
        if a is not None and b is not None:
            return a, b
    return None


def diff_values(old: Any, new: Any, path: tuple[PathStep, ...] = ()) -> list[FieldChange]:
    """The field changes from `old` to `new` (plain data), in document order."""
    out: list[FieldChange] = []
    _diff(old, new, path, out)
    return out


def _diff(old: Any, new: Any, path: tuple[PathStep, ...], out: list[FieldChange]) -> None:
    if _same(old, new):
        return
    if isinstance(old, dict) and isinstance(new, dict):
        for k in sorted(old.keys() | new.keys()):
            if k not in new:
                out.append(FieldChange((*path, k), old[k], ABSENT, "removed"))
            elif k not in old:
                out.append(FieldChange((*path, k), ABSENT, new[k], "added"))
            else:
                _diff(old[k], new[k], (*path, k), out)
        return
    if isinstance(old, list) and isinstance(new, list):
        _diff_lists(old, new, path, out)
        return
    out.append(FieldChange(path, old, new, "changed"))


def _diff_lists(old: list[Any], new: list[Any], path: tuple[PathStep, ...], out: list[FieldChange]) -> None:
    keys = _match_keys(old, new) if old or new else None
    if keys is not None:
        old_keys, new_keys = keys
        before = dict(zip(old_keys, old, strict=True))
        after = dict(zip(new_keys, new, strict=True))
        for k in old_keys:
            if k not in after:
                out.append(FieldChange((*path, k), before[k], ABSENT, "removed"))
            else:
                _diff(before[k], after[k], (*path, k), out)
        for k in new_keys:
            if k not in before:
                out.append(FieldChange((*path, k), ABSENT, after[k], "added"))
        kept_old = [k.text() for k in old_keys if k in after]
        kept_new = [k.text() for k in new_keys if k in before]
        if kept_old != kept_new:
            out.append(FieldChange(path, kept_old, kept_new, "reordered"))
        return
    if all(isinstance(x, dict | list) for x in (*old, *new)) and old and new:
        for i in range(min(len(old), len(new))):
            _diff(old[i], new[i], (*path, i), out)
        for i in range(len(new), len(old)):
            out.append(FieldChange((*path, i), old[i], ABSENT, "removed"))
        for i in range(len(old), len(new)):
            out.append(FieldChange((*path, i), ABSENT, new[i], "added"))
        return
    out.append(FieldChange(path, old, new, "changed"))  # lists of scalars read best whole


# --------------------------------------------------------------------------------------------
# Folder comparison.
# --------------------------------------------------------------------------------------------

ADDED, REMOVED, CHANGED = "added", "removed", "changed"
_STATUS_ORDER = {ADDED: 0, REMOVED: 1, CHANGED: 2}


@dataclass(frozen=True)
class ObjectChange:
    """An object added, removed or changed in one cluster (objects already masked)."""

    key: ObjectKey
    status: str
    api_version: str
    fields: tuple[FieldChange, ...] = ()
    old: Any = None
    new: Any = None


@dataclass(frozen=True)
class ClusterChanges:
    """The changed objects of one cluster; `status` says whether the cluster itself is new or gone."""

    cluster: str
    objects: tuple[ObjectChange, ...]
    status: str = CHANGED

    def count(self, status: str) -> int:
        return sum(1 for o in self.objects if o.status == status)


@dataclass(frozen=True)
class FileChange:
    """A file whose bytes differ (`status` added, removed or changed)."""

    path: str
    status: str


@dataclass(frozen=True)
class Comparison:
    """Everything that differs between two folders."""

    clusters: tuple[ClusterChanges, ...] = ()
    plan: tuple[FieldChange, ...] = ()
    plan_old: Any = None
    plan_new: Any = None
    files: tuple[FileChange, ...] = ()

    @property
    def equal(self) -> bool:
        """No object and no plan field differs (file layout may)."""
        return not self.clusters and not self.plan

    @property
    def identical(self) -> bool:
        """Byte for byte the same files."""
        return not self.files

    def stale_clusters(self) -> list[str]:
        """Clusters with a changed object or a file whose bytes differ, sorted."""
        names = {c.cluster for c in self.clusters}
        for f in self.files:
            parts = f.path.split("/")
            if len(parts) >= 3 and parts[0] == CLUSTERS_DIR:
                names.add(parts[1])
            elif len(parts) >= 2 and parts[0] in HANDOFF_DIRS:
                names.add(parts[0] + "/")
        return sorted(names)

    def totals(self) -> dict[str, int]:
        return {s: sum(c.count(s) for c in self.clusters) for s in (ADDED, REMOVED, CHANGED)}


def _object_order(o: ObjectChange) -> tuple[int, str, str, str, str]:
    return _STATUS_ORDER[o.status], o.key.namespace, o.key.kind, o.key.name, o.key.group


def compare(old: Snapshot, new: Snapshot, *, show_secrets: bool = False) -> Comparison:
    """The changes from `old` to `new`: by cluster, then object; plus the plan and the bytes."""
    per_cluster: dict[str, list[ObjectChange]] = {}
    for key in sorted(old.objects.keys() | new.objects.keys()):
        before, after = old.objects.get(key), new.objects.get(key)
        if before is not None and after is not None and _same(before, after):
            continue
        if is_secret(key) and not show_secrets:
            before, after = mask_secrets(before, after)
        version = str((after or before or {}).get("apiVersion", ""))
        if before is None:
            change = ObjectChange(key, ADDED, version, (), None, after)
        elif after is None:
            change = ObjectChange(key, REMOVED, version, (), before, None)
        else:
            change = ObjectChange(key, CHANGED, version, tuple(diff_values(before, after)), before, after)
        per_cluster.setdefault(key.cluster, []).append(change)
    clusters = []
    for name in sorted(per_cluster):
        objs = sorted(per_cluster[name], key=_object_order)
        status = ADDED if name not in old.clusters else REMOVED if name not in new.clusters else CHANGED
        clusters.append(ClusterChanges(name, tuple(objs), status))
    come_and_go = {o.key for c in clusters for o in c.objects if o.status != CHANGED}
    counted = {c.cluster for c in clusters if c.count(ADDED) or c.count(REMOVED)}
    plan = tuple(fc for fc in diff_values(old.plan, new.plan) if not _repeats_objects(fc, come_and_go, counted))
    files = []
    for rel in sorted(old.files.keys() | new.files.keys()):
        if rel not in new.files:
            files.append(FileChange(rel, REMOVED))
        elif rel not in old.files:
            files.append(FileChange(rel, ADDED))
        elif old.files[rel] != new.files[rel]:
            files.append(FileChange(rel, CHANGED))
    return Comparison(tuple(clusters), plan, old.plan, new.plan, tuple(files))


def _repeats_objects(fc: FieldChange, come_and_go: set[ObjectKey], counted: set[str]) -> bool:
    """Whether a plan change only repeats what the cluster sections show: an object's digest
    (it follows the object's content), the entry of an object added to or removed from that
    cluster, or a cluster's object count when objects came or went there."""
    path = fc.path
    if path and path[-1] == "digest":
        return True
    if len(path) == 3 and path[0] == "clusters" and path[2] == "objects" and isinstance(path[1], Match):
        return dict(path[1].fields).get("name", "") in counted
    entry = fc.new if fc.op == ADDED else fc.old if fc.op == REMOVED else None
    if not (isinstance(entry, dict) and path and isinstance(path[-1], Match) and "kind" in dict(path[-1].fields)):
        return False
    placement = next((dict(s.fields) for s in reversed(path) if isinstance(s, Match) and "cluster" in dict(s.fields)),
                     {})
    cluster = str(entry.get("cluster") or placement.get("cluster", ""))
    key = ObjectKey(cluster, group_of(str(entry.get("apiVersion", ""))), str(entry.get("kind", "")),
                    str(entry.get("namespace", "")), str(entry.get("name", "")))
    return key in come_and_go


def compare_folders(old: Mapping[str, str], new: Mapping[str, str], *, old_origin: str = "",
                    new_origin: str = "", show_secrets: bool = False) -> Comparison:
    """`compare` of two folder contents; problems of both sides are reported together."""
    problems: list[Diagnostic] = []
    sides: list[Snapshot] = []
    for files, origin in ((old, old_origin), (new, new_origin)):
        try:
            sides.append(parse_folder(files, origin))
        except InputError as exc:
            problems.extend(exc.diagnostics)
    if problems:
        raise InputError(problems)
    return compare(sides[0], sides[1], show_secrets=show_secrets)


# --------------------------------------------------------------------------------------------
# Output: text.
# --------------------------------------------------------------------------------------------

_BARE = re.compile(r"[\w./:@=+*-][\w./:@=+*\- ]*[\w./:@=+*-]|[\w./:@=+*-]")
_WORDS = frozenset({"true", "false", "null", "yes", "no", "on", "off", "y", "n", "~"})


def show_value(value: Any, limit: int = 60) -> str:
    """A value on one line: `3`, `nginx:1.25`, `"two words?"`, `{"a":1}`, `(none)`; cut at `limit`."""
    if value is ABSENT:
        return "(none)"
    if isinstance(value, Masked):
        return str(value)
    if isinstance(value, dict) and isinstance(value.get("kind"), str) and isinstance(value.get("name"), str) \
            and "metadata" not in value:  # an object reference (a plan entry): its identity says enough
        ns = value.get("namespace")
        return f"{value['kind']} {ns + '/' if isinstance(ns, str) and ns else ''}{value['name']}"
    if isinstance(value, str) and _BARE.fullmatch(value) and value.lower() not in _WORDS \
            and not _looks_numeric(value):
        text = value
    else:
        text = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _field_line(fc: FieldChange) -> str:
    if fc.op == "reordered":
        return f"{fc.path_text} (order): {show_value(fc.old)} {ARROW} {show_value(fc.new)}"
    return f"{fc.path_text}: {show_value(fc.old)} {ARROW} {show_value(fc.new)}"


def _cluster_title(c: ClusterChanges) -> str:
    title = section(c.cluster)
    handoff = c.cluster.endswith("/")
    if c.status == ADDED:
        title += " (new)" if handoff else " (new cluster)"
    elif c.status == REMOVED:
        title += " (no longer emitted)" if handoff else " (cluster no longer targeted)"
    return title


def summary_line(cmp: Comparison) -> str:
    """`2 clusters: 1 added, 0 removed, 2 changed objects; plan changed`, or `no differences`."""
    if cmp.equal:
        return "no differences"
    t = cmp.totals()
    handoff = [c.cluster.rstrip("/") for c in cmp.clusters if c.cluster.endswith("/")]
    n = len(cmp.clusters) - len(handoff)
    head = f"{n} cluster{'s' if n != 1 else ''}" if n or not handoff else ""
    head += (" and " if head else "") + ", ".join(handoff) if handoff else ""
    text = (f"{head}: {t[ADDED]} added, {t[REMOVED]} removed, "
            f"{t[CHANGED]} changed object{'s' if t[CHANGED] != 1 else ''}")
    if cmp.plan:
        text += "; plan changed"
    return text


def format_text(cmp: Comparison, *, with_files: bool = False) -> str:
    """Grouped by cluster, one line per object (added/removed) or changed field:

        clusters/prod-1  Deployment demo/web  spec.replicas: 2 → 3

    `with_files` adds the files whose bytes differ although their content does not (layout or
    formatting only; `--check` needs to say why the folder is stale).
    """
    lines: list[str] = []
    for c in cmp.clusters:
        if lines:
            lines.append("")
        title = section(c.cluster)
        if c.status != CHANGED:
            lines.append(_cluster_title(c))
        for o in c.objects:
            if o.status != CHANGED:
                lines.append(f"{title}  {o.key.describe()}  {o.status}")
                continue
            for fc in o.fields:
                lines.append(f"{title}  {o.key.describe()}  {_field_line(fc)}")
    if cmp.plan:
        if lines:
            lines.append("")
        lines.extend(f"{PLAN_FILE}  {_field_line(fc)}" for fc in cmp.plan)
    layout = [f for f in cmp.files if not _content_explains(cmp, f)] if with_files else []
    if layout:
        if lines:
            lines.append("")
        lines.extend(f"{f.path}  file {f.status}" + (" (same content, other bytes)" if f.status == CHANGED
                                                     and f.path.endswith((".yaml", ".yml")) else "")
                     for f in layout)
    if cmp.equal and layout:
        lines.append(f"{_plural(len(layout), 'file')} differ in bytes only")
    else:
        lines.append(summary_line(cmp))
    return "\n".join(lines) + "\n"


def _content_explains(cmp: Comparison, f: FileChange) -> bool:
    """Whether a file whose bytes differ belongs to a content change already listed."""
    if f.path == PLAN_FILE:  # object digests in the plan change with any object
        return bool(cmp.plan or cmp.clusters)
    parts = f.path.split("/")
    if len(parts) >= 2 and parts[0] in HANDOFF_DIRS:
        return any(c.cluster == parts[0] + "/" for c in cmp.clusters)
    return len(parts) >= 3 and parts[0] == CLUSTERS_DIR and any(c.cluster == parts[1] for c in cmp.clusters)


# --------------------------------------------------------------------------------------------
# Output: unified diff of the canonical YAML.
# --------------------------------------------------------------------------------------------


def format_unified(cmp: Comparison, context: int = 3) -> str:
    """A `git diff`-like text of each changed object's canonical YAML (masked), then of the plan."""
    chunks: list[str] = []
    for c in cmp.clusters:
        for o in c.objects:
            name = pseudo_path(o.key)
            chunks.append(_unified(o.old, o.new, name, context))
    if cmp.plan:
        chunks.append(_unified(cmp.plan_old, cmp.plan_new, PLAN_FILE, context))
    return "".join(chunks)


def _unified(old: Any, new: Any, name: str, context: int) -> str:
    a = dump_yaml(old).splitlines(keepends=True) if old is not None else []
    b = dump_yaml(new).splitlines(keepends=True) if new is not None else []
    head_a = f"a/{name}" if old is not None else "/dev/null"
    head_b = f"b/{name}" if new is not None else "/dev/null"
    return "".join(difflib.unified_diff(a, b, head_a, head_b, n=context))


# --------------------------------------------------------------------------------------------
# Output: JSON for bots.
# --------------------------------------------------------------------------------------------


def _segments(path: Iterable[PathStep]) -> list[Any]:
    return [dict(s.fields) if isinstance(s, Match) else s for s in path]


def _field_json(fc: FieldChange) -> dict[str, Any]:
    out: dict[str, Any] = {"path": fc.path_text, "segments": _segments(fc.path), "op": fc.op}
    if fc.old is not ABSENT:
        out["old"] = fc.old
    if fc.new is not ABSENT:
        out["new"] = fc.new
    return out


def comparison_json(cmp: Comparison) -> dict[str, Any]:
    """The comparison as plain data (the `--output json` document)."""
    t = cmp.totals()
    return {
        "equal": cmp.equal,
        "summary": {"clusters": len(cmp.clusters), **t, "planChanged": bool(cmp.plan)},
        "clusters": [
            {"cluster": c.cluster, "status": c.status,
             "counts": {s: c.count(s) for s in (ADDED, REMOVED, CHANGED)},
             "objects": [{"status": o.status, "apiVersion": o.api_version, "group": o.key.group, "kind": o.key.kind,
                          "namespace": o.key.namespace, "name": o.key.name,
                          "fields": [_field_json(fc) for fc in o.fields]} for o in c.objects]}
            for c in cmp.clusters],
        "plan": {"changed": bool(cmp.plan), "fields": [_field_json(fc) for fc in cmp.plan]},
    }


def format_json(cmp: Comparison) -> str:
    return json.dumps(comparison_json(cmp), indent=2, ensure_ascii=False, sort_keys=False) + "\n"


# --------------------------------------------------------------------------------------------
# Output: a pull-request comment in Markdown.
# --------------------------------------------------------------------------------------------


def _code(text: str) -> str:
    """`text` as a Markdown code span that is safe inside a table cell."""
    text = text.replace("|", "\\|").replace("\n", " ")
    if not text:
        return ""
    fence = "``" if "`" in text else "`"
    pad = " " if fence == "``" else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def format_markdown(sections: Sequence[tuple[str, Comparison]], *, budget: int = MARKDOWN_BUDGET) -> str:
    """A pull-request comment: per section (one app), a per-cluster summary table and, per
    cluster, a collapsible table of objects and fields. Starts with a hidden marker a bot can
    look for to update its own comment instead of adding a new one. Details beyond `budget`
    characters are left out with a note (GitHub limits a comment to 65,536 characters)."""
    out: list[str] = [MARKDOWN_MARKER]
    changed = [(title, cmp) for title, cmp in sections if not cmp.equal]
    if not changed:
        which = f" ({', '.join(t for t, _ in sections if t)})" if any(t for t, _ in sections) else ""
        out.append(f"### velapy: no changes{which}")
        out.append("")
        out.append("Every cluster receives exactly the same objects, and the plan is unchanged.")
        return "\n".join(out) + "\n"
    out.append(f"### velapy: changes in {len(changed)} of {_plural(len(sections), 'application')}"
               if len(sections) > 1 else "### velapy: what changes per cluster")
    size = len(out[0]) + len(out[1])
    cut = False
    for title, cmp in changed:
        head = _markdown_summary(title, cmp)
        out.extend(head)
        size += sum(len(x) + 1 for x in head)
        for block in _markdown_details(cmp):
            block_size = sum(len(x) + 1 for x in block)
            if size + block_size > budget:
                cut = True
                continue
            out.extend(block)
            size += block_size
    same = [title for title, cmp in sections if cmp.equal]
    if same:
        out.append("")
        out.append("Unchanged: " + ", ".join(_code(t) for t in same) + ".")
    if cut:
        out.append("")
        out.append("_Some details were left out to keep this comment short; run `velapy diff` for all of them._")
    return "\n".join(out) + "\n"


def _markdown_summary(title: str, cmp: Comparison) -> list[str]:
    out = [""]
    if title:
        out.append(f"#### {title}")
        out.append("")
    out.append(f"{summary_line(cmp)}.")
    if cmp.clusters:
        out.append("")
        out.append("| cluster | added | removed | changed |")
        out.append("| --- | ---: | ---: | ---: |")
        for c in cmp.clusters:
            note = " (new)" if c.status == ADDED else " (no longer targeted)" if c.status == REMOVED else ""
            out.append(f"| {_code(c.cluster)}{note} | {c.count(ADDED)} | {c.count(REMOVED)} | {c.count(CHANGED)} |")
    return out


def _markdown_details(cmp: Comparison) -> list[list[str]]:
    blocks: list[list[str]] = []
    for c in cmp.clusters:
        rows = ["", f"<details><summary><code>{section(c.cluster)}</code></summary>", "",
                "| object | field | old | new |", "| --- | --- | --- | --- |"]
        for o in c.objects:
            label = f"{o.key.kind} {_code(o.key.describe().partition(' ')[2])}"
            if o.status == ADDED:
                rows.append(f"| {label} | _added_ | | |")
            elif o.status == REMOVED:
                rows.append(f"| {label} | _removed_ | | |")
            else:
                rows.extend(_markdown_field_row(label, fc) for fc in o.fields)
        rows.extend(["", "</details>"])
        blocks.append(rows)
    if cmp.plan:
        rows = ["", f"<details><summary><code>{PLAN_FILE}</code></summary>", "",
                "| field | old | new |", "| --- | --- | --- |"]
        rows.extend(f"| {_code(fc.path_text + (' (order)' if fc.op == 'reordered' else ''))} | "
                    f"{_code(show_value(fc.old))} | {_code(show_value(fc.new))} |" for fc in cmp.plan)
        rows.extend(["", "</details>"])
        blocks.append(rows)
    return blocks


def _markdown_field_row(label: str, fc: FieldChange) -> str:
    path = fc.path_text + (" (order)" if fc.op == "reordered" else "")
    return f"| {label} | {_code(path)} | {_code(show_value(fc.old))} | {_code(show_value(fc.new))} |"

