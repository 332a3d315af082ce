"""A planned object + the live one → what velapy applies, whether it must, and whether it is healthy.

Pure functions, no cluster access:
* `desired`: the plan's object without server-owned fields, with the app's owner labels and the
  digest annotation, and `apply-once` paths taken from the live object (KubeVela copies the live
  value in, so velapy keeps co-owning the field at the value another controller chose and never
  resets it; `*` keeps the whole live object);
* `unchanged`: the live object already holds every field velapy would apply (a drift-free
  re-apply then sends nothing);
* `ownership`: who owns a live object (KubeVela's `app.oam.dev/name` + `app.oam.dev/namespace`);
* `health`: KubeVela's idea of a healthy workload (rollout complete, Job succeeded, PVC bound).
"""

from __future__ import annotations

import base64
import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from velapy.oam import A_SHARED_BY, L_APP, L_APP_NS

A_DIGEST = "velapy.dev/digest"
A_TRACKING = "velapy.dev/tracking-id"
SERVER_FIELDS = ("resourceVersion", "uid", "managedFields", "creationTimestamp", "generation", "selfLink",
                 "deletionTimestamp", "deletionGracePeriodSeconds")
# apply order: CRDs, then Namespaces, then the rest (reversed for deletion)
_ORDER = {("apiextensions.k8s.io", "CustomResourceDefinition"): 0, ("", "Namespace"): 1}


def apply_rank(group: str, kind: str) -> int:
    return _ORDER.get((group, kind), 2)


_SEGMENT = re.compile(r'([^.\[\]]+)|\[(\d+)\]|\["([^"]*)"\]|\[\'([^\']*)\'\]')


def field_path(text: str) -> list[str | int]:
    """crossplane fieldpath syntax: `spec.replicas`, `spec.containers[0].image`, `metadata.labels["a.b"]`."""
    out: list[str | int] = []
    for m in _SEGMENT.finditer(text):
        if m.group(1) is not None:
            out.append(m.group(1))
        elif m.group(2) is not None:
            out.append(int(m.group(2)))
        else:
            out.append(m.group(3) if m.group(3) is not None else m.group(4))
    return out


_MISSING = object()


def _get(obj: Any, path: list[str | int]) -> Any:
    cur = obj
    for step in path:
        if isinstance(step, int):
            if not isinstance(cur, list) or step >= len(cur):
                return _MISSING
            cur = cur[step]
        else:
            if not isinstance(cur, dict) or step not in cur:
                return _MISSING
            cur = cur[step]
    return cur


def _set(obj: Any, path: list[str | int], value: Any) -> None:
    cur = obj
    for i, step in enumerate(path):
        last = i == len(path) - 1
        if isinstance(step, int):
            if not isinstance(cur, list) or step >= len(cur):
                return  # the desired object has no such element: nothing to keep
            if last:
                if value is _MISSING:
                    return
                cur[step] = copy.deepcopy(value)
                return
            cur = cur[step]
        else:
            if not isinstance(cur, dict):
                return
            if last:
                if value is _MISSING:
                    cur.pop(step, None)
                else:
                    cur[step] = copy.deepcopy(value)
                return
            if step not in cur:
                if value is _MISSING:
                    return
                cur[step] = [] if isinstance(path[i + 1], int) else {}
            cur = cur[step]


def json_copy(value: Any) -> Any:
    """A deep copy of plain JSON data (dicts, lists, scalars): several times faster than copy.deepcopy, which
    keeps a memo for shared and cyclic objects that such data never has."""
    if isinstance(value, dict):
        return {k: json_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_copy(v) for v in value]
    return value


def apply_once_applies(rule: Mapping[str, Any] | None, keep: bool) -> bool:
    """Does an applyOnce rule act now (keep = re-applying the finished plan, else a new plan)?"""
    if not rule:
        return False
    affect = str(rule.get("affect") or "always")
    return affect == "always" or affect == ("onStateKeep" if keep else "onUpdate")


def desired(obj: Mapping[str, Any], *, app: str, namespace: str, digest: str, tracking: str, namespaced: bool,
            live: Mapping[str, Any] | None, rules: Mapping[str, Any], keep: bool,
            shared_by: str = "") -> dict[str, Any] | None:
    """The object velapy applies; None when apply-once `*` keeps the live object as it is."""
    out: dict[str, Any] = json_copy(dict(obj))
    out.pop("status", None)
    meta = dict(out.get("metadata") or {})
    for f in SERVER_FIELDS:
        meta.pop(f, None)
    if not namespaced:
        meta.pop("namespace", None)
    labels = dict(meta.get("labels") or {})
    labels[L_APP] = app
    labels[L_APP_NS] = namespace
    meta["labels"] = labels
    annotations = dict(meta.get("annotations") or {})
    annotations[A_DIGEST] = digest
    annotations[A_TRACKING] = tracking
    if shared_by:
        annotations[A_SHARED_BY] = shared_by
    meta["annotations"] = annotations
    out["metadata"] = meta
    rule = rules.get("applyOnce")
    if live is not None and apply_once_applies(rule, keep):
        assert rule is not None
        for text in rule.get("path") or []:
            if text == "*":
                return None
            path = field_path(str(text))
            if path:
                _set(out, path, _get(live, path))
    return out


def contains(want: Any, have: Any) -> bool:
    """Every field of `want` is in `have` with the same value (lists: same length, item by item)."""
    if isinstance(want, dict):
        if not isinstance(have, dict):
            return False
        return all((have.get(k) is None) if v is None else (k in have and contains(v, have[k]))
                   for k, v in want.items())
    if isinstance(want, list):
        if not isinstance(have, list) or len(want) != len(have):
            return False
        return all(contains(w, h) for w, h in zip(want, have, strict=True))
    if isinstance(want, bool) or isinstance(have, bool):
        return want is have
    if isinstance(want, int | float) and isinstance(have, int | float):
        return float(want) == float(have)
    return bool(want == have)


def same_digest(want: Mapping[str, Any], live: Mapping[str, Any] | None) -> bool:
    """The live object was applied by velapy from the same digest as `want`."""
    if live is None:
        return False
    want_digest = ((want.get("metadata") or {}).get("annotations") or {}).get(A_DIGEST)
    live_digest = ((live.get("metadata") or {}).get("annotations") or {}).get(A_DIGEST)
    return want_digest is not None and want_digest == live_digest


def unchanged(want: Mapping[str, Any], live: Mapping[str, Any] | None) -> bool:
    """A re-apply of `want` would change nothing, as far as can be told without the server: the same digest,
    and the live object still holds every field velapy applies, as sent (someone changing one is drift).
    A server stores quantities canonically (`0.5` → `500m`), so a live object may differ from what was sent
    and still be unchanged: `same_digest` without `unchanged` leaves the decision to `same_object` on the
    server's dry-run answer."""
    return live is not None and same_digest(want, live) and contains(dict(want), dict(live))


def _comparable(obj: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(obj))
    out.pop("status", None)
    meta = out.get("metadata") or {}
    meta.pop("resourceVersion", None)
    for entry in meta.get("managedFields") or []:
        if isinstance(entry, dict):
            entry.pop("time", None)
    return out


def same_object(trial: Mapping[str, Any], live: Mapping[str, Any]) -> bool:
    """The server's answer to a dry-run apply equals the live object (status, resourceVersion and the
    managers' timestamps aside): applying for real would write nothing."""
    return bool(trial) and _comparable(trial) == _comparable(live)


def stored_form(want: Mapping[str, Any]) -> dict[str, Any]:
    """`want` as the API server stores it, for comparing with the live object: a Secret's `stringData` is
    write-only (merged into `data`, base64-encoded), so it is compared as `data`."""
    if want.get("kind") != "Secret" or want.get("apiVersion") != "v1" or not isinstance(want.get("stringData"), dict):
        return dict(want)
    out = dict(want)
    data = dict(out.get("data") or {})
    for k, v in (out.pop("stringData") or {}).items():
        data[str(k)] = base64.b64encode(str(v).encode("utf-8")).decode("ascii")
    out["data"] = data
    return out


def owner(live: Mapping[str, Any]) -> tuple[str, str] | None:
    """(namespace, name) of the app owning `live`, or None when no app does."""
    labels = (live.get("metadata") or {}).get("labels") or {}
    name = labels.get(L_APP)
    if not name:
        return None
    return str(labels.get(L_APP_NS) or ""), str(name)


def shared_by(live: Mapping[str, Any]) -> list[str]:
    text = ((live.get("metadata") or {}).get("annotations") or {}).get(A_SHARED_BY) or ""
    return [s for s in str(text).split(",") if s]


@dataclass(frozen=True)
class Health:
    healthy: bool
    failed: bool = False  # will not get healthy by waiting (Job failed, rollout deadline exceeded)
    message: str = ""
    ready: str = ""  # READY column: "2/3"
    up_to_date: str = ""
    available: str = ""


def _int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _condition(obj: Mapping[str, Any], ctype: str) -> Mapping[str, Any] | None:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if isinstance(c, dict) and c.get("type") == ctype:
            return c
    return None


def health(obj: Mapping[str, Any]) -> Health:
    """KubeVela-like health of a live object (kinds without a rule are healthy once they exist)."""
    kind = str(obj.get("kind") or "")
    group = str(obj.get("apiVersion") or "").rpartition("/")[0]
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    meta = obj.get("metadata") or {}
    generation = _int(meta.get("generation"), 0)
    observed = _int(status.get("observedGeneration"), 0)
    if group == "apps" and kind in ("Deployment", "StatefulSet"):
        want = _int(spec.get("replicas"), 1)
        ready = _int(status.get("readyReplicas"))
        updated = _int(status.get("updatedReplicas"))
        available = _int(status.get("availableReplicas")) if kind == "Deployment" else ready
        cols = {"ready": f"{ready}/{want}", "up_to_date": str(updated), "available": str(available)}
        if kind == "Deployment":
            prog = _condition(obj, "Progressing")
            if prog is not None and prog.get("reason") == "ProgressDeadlineExceeded":
                return Health(False, True, "rollout exceeded its progress deadline", **cols)
        if generation and observed < generation:
            return Health(False, False, f"waiting for the controller to see generation {generation}", **cols)
        if updated < want or ready < want or available < want or _int(status.get("replicas"), want) > want:
            return Health(False, False, f"rollout {ready}/{want} ready, {updated} up to date", **cols)
        return Health(True, False, "", **cols)
    if group == "apps" and kind == "DaemonSet":
        want = _int(status.get("desiredNumberScheduled"))
        ready = _int(status.get("numberReady"))
        updated = _int(status.get("updatedNumberScheduled"))
        available = _int(status.get("numberAvailable"))
        cols = {"ready": f"{ready}/{want}", "up_to_date": str(updated), "available": str(available)}
        if generation and observed < generation:
            return Health(False, False, f"waiting for the controller to see generation {generation}", **cols)
        if ready < want or updated < want or available < want:
            return Health(False, False, f"{ready}/{want} pods ready", **cols)
        return Health(True, False, "", **cols)
    if group == "apiextensions.k8s.io" and kind == "CustomResourceDefinition":
        # its kind is served only once the API server has Established it (a moment after the create)
        names = _condition(obj, "NamesAccepted")
        if names is not None and names.get("status") == "False":
            return Health(False, True, f"names not accepted: {names.get('message') or names.get('reason') or ''}")
        established = _condition(obj, "Established")
        if established is None or established.get("status") != "True":
            return Health(False, False, "waiting for the CRD to be Established")
        return Health(True, False, "")
    if group == "batch" and kind == "Job":
        completions = _int(spec.get("completions"), 1)
        succeeded = _int(status.get("succeeded"))
        cols = {"ready": f"{succeeded}/{completions}"}
        failed = _condition(obj, "Failed")
        if failed is not None and failed.get("status") == "True":
            return Health(False, True, f"job failed: {failed.get('reason') or ''}".strip(), **cols)
        complete = _condition(obj, "Complete")
        if (complete is not None and complete.get("status") == "True") or succeeded >= completions:
            return Health(True, False, "", **cols)
        return Health(False, False, f"{succeeded}/{completions} completions", **cols)
    if group == "" and kind == "PersistentVolumeClaim":
        phase = str(status.get("phase") or "Pending")
        return Health(phase == "Bound", phase == "Lost", f"phase {phase}", ready=phase)
    return Health(True)


__all__ = ["A_DIGEST", "A_SHARED_BY", "A_TRACKING", "L_APP", "L_APP_NS", "Health", "apply_once_applies",
           "apply_rank", "contains", "desired", "field_path", "health", "owner", "same_digest", "same_object",
           "shared_by", "stored_form", "unchanged"]
