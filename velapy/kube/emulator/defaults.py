"""A built-in object as written → the object kube-apiserver stores: canonical quantities, defaults, no empty maps.

What a real API server does to every write before it stores it, for the kinds velapy distributes:
* quantities (`cpu: "0.5"`, `memory: 1024Mi`) are parsed and written back in canonical form
  (`500m`, `1Gi`): the rules of k8s.io/apimachinery/pkg/api/resource/quantity.go
  (`Quantity.CanonicalizeBytes`), implemented here with exact fractions;
* defaults are filled in as the `SetDefaults_*` functions of pkg/apis/core/v1/defaults.go,
  pkg/apis/apps/v1/defaults.go, pkg/apis/batch/v1/defaults.go and pkg/apis/autoscaling/v2/defaults.go
  set them (only the fields listed there; admission plugins such as DefaultStorageClass are not
  played);
* maps and lists that are empty are dropped (Go's `omitempty` on map and slice fields), while empty
  structs such as `securityContext: {}` and `resources: {}` stay, as the server's JSON has them.

`canonical_quantity` raises `QuantityError` for text that is no quantity (the server's 400/422).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from fractions import Fraction
from typing import Any

# --------------------------------------------------------------------------------------------------
# resource.Quantity

_QUANTITY = re.compile(r"^([+-]?)(\d+\.?\d*|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?\d+)?$")
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_BINARY = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL_SUFFIX = {v: k for k, v in _DECIMAL.items()}
_BINARY_SUFFIX = {v: k for k, v in _BINARY.items()}


class QuantityError(ValueError):
    pass


def _ceil_nano(value: Fraction) -> Fraction:
    """Quantities keep nano precision; a finer value is rounded away from zero, as ParseQuantity does."""
    scaled = value * 10**9
    if scaled.denominator == 1:
        return value
    whole = math.ceil(scaled) if scaled > 0 else math.floor(scaled)
    return Fraction(whole, 10**9)


def canonical_quantity(value: Any) -> str:
    """A quantity (text or JSON number) → its canonical text (`0.5` → `500m`, `1024Mi` → `1Gi`)."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise QuantityError(f"quantities must match the regular expression "
                            f"'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$' (got {value!r})")
    text = repr(value) if isinstance(value, float) else str(value)
    m = _QUANTITY.match(text.strip())
    if not m:
        raise QuantityError("quantities must match the regular expression "
                            "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
    sign, digits, suffix = m.group(1), m.group(2), m.group(3) or ""
    number = Fraction(digits)
    if sign == "-":
        number = -number
    if suffix in _BINARY:
        fmt, amount = "binary", number * 2 ** _BINARY[suffix]
    elif suffix[:1] in ("e", "E"):
        fmt, amount = "exponent", number * Fraction(10) ** int(suffix[1:])
    else:
        fmt, amount = "decimal", number * Fraction(10) ** _DECIMAL[suffix]
    amount = _ceil_nano(amount)
    if amount == 0:
        return "0"
    if fmt == "binary" and (-1024 < amount < 1024 or amount.denominator != 1):
        fmt = "decimal"  # small or fractional byte counts are shown in decimal SI (no rounding)
    if fmt == "binary":
        whole, exp = int(amount), 0
        while whole % 1024 == 0 and exp < 60:
            whole //= 1024
            exp += 10
        return f"{whole}{_BINARY_SUFFIX[exp]}"
    # decimal: the smallest exponent (a multiple of 3) that makes the mantissa whole, then strip 000s
    exp = -9
    mantissa = amount * 10**9
    while exp < 18 and mantissa.denominator == 1 and mantissa.numerator % 1000 == 0:
        mantissa /= 1000
        exp += 3
    while mantissa.denominator != 1:  # cannot happen after nano rounding; kept for safety
        mantissa *= 1000
        exp -= 3
    suffix_text = _DECIMAL_SUFFIX[exp] if fmt == "decimal" else (f"e{exp}" if exp else "")
    return f"{int(mantissa)}{suffix_text}"


# --------------------------------------------------------------------------------------------------
# helpers

Obj = dict[str, Any]


def _dict(parent: Obj, key: str) -> Obj | None:
    value = parent.get(key)
    return value if isinstance(value, dict) else None


def _dicts(parent: Obj | None, key: str) -> list[Obj]:
    if parent is None:
        return []
    value = parent.get(key)
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _quantity_map(parent: Obj | None, key: str, where: str, errors: list[tuple[str, str]]) -> None:
    values = _dict(parent, key) if parent is not None else None
    if values is None:
        return
    for name, v in list(values.items()):
        try:
            values[name] = canonical_quantity(v)
        except QuantityError as e:
            errors.append((f"{where}.{key}[{name}]", f"Invalid value: {v!r}: {e}"))


# --------------------------------------------------------------------------------------------------
# pod spec (core/v1 SetDefaults_PodSpec, SetDefaults_Container, probes, volumes)

def _probe(p: Obj | None) -> None:
    if p is None:
        return
    p.setdefault("timeoutSeconds", 1)
    p.setdefault("periodSeconds", 10)
    p.setdefault("successThreshold", 1)
    p.setdefault("failureThreshold", 3)
    http = _dict(p, "httpGet")
    if http is not None:
        http.setdefault("scheme", "HTTP")


def _pull_policy(image: str) -> str:
    """core/v1 SetDefaults_Container: Always for `:latest` or no tag, else IfNotPresent (a digest counts as set)."""
    if "@" in image:
        return "IfNotPresent"
    last = image.rsplit("/", 1)[-1]
    tag = last.split(":", 1)[1] if ":" in last else ""
    return "Always" if tag in ("", "latest") else "IfNotPresent"


def _container(c: Obj, where: str, errors: list[tuple[str, str]]) -> None:
    if isinstance(c.get("image"), str) and "imagePullPolicy" not in c:
        c["imagePullPolicy"] = _pull_policy(c["image"])
    c.setdefault("terminationMessagePath", "/dev/termination-log")
    c.setdefault("terminationMessagePolicy", "File")
    c.setdefault("resources", {})
    res = _dict(c, "resources")
    _quantity_map(res, "limits", f"{where}.resources", errors)
    _quantity_map(res, "requests", f"{where}.resources", errors)
    for port in _dicts(c, "ports"):
        port.setdefault("protocol", "TCP")
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        _probe(_dict(c, probe))
    for env in _dicts(c, "env"):
        ref = _dict(_dict(env, "valueFrom") or {}, "fieldRef")
        if ref is not None:
            ref.setdefault("apiVersion", "v1")


def pod_spec(spec: Obj, where: str, errors: list[tuple[str, str]]) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    for key in ("initContainers", "containers"):
        for i, c in enumerate(_dicts(spec, key)):
            _container(c, f"{where}.{key}[{i}]", errors)
    for v in _dicts(spec, "volumes"):
        for source in ("configMap", "secret"):
            s = _dict(v, source)
            if s is not None:
                s.setdefault("defaultMode", 420)
        empty = _dict(v, "emptyDir")
        if empty is not None and "sizeLimit" in empty:
            try:
                empty["sizeLimit"] = canonical_quantity(empty["sizeLimit"])
            except QuantityError as e:
                errors.append((f"{where}.volumes.emptyDir.sizeLimit", f"Invalid value: {e}"))
    _quantity_map(spec, "overhead", where, errors)


def _template(spec: Obj, where: str, errors: list[tuple[str, str]]) -> None:
    template = _dict(spec, "template")
    if template is None:
        return
    pod = _dict(template, "spec")
    if pod is not None:
        pod_spec(pod, f"{where}.template.spec", errors)


# --------------------------------------------------------------------------------------------------
# kinds

def _deployment(obj: Obj, errors: list[tuple[str, str]]) -> None:
    spec = obj.setdefault("spec", {})  # apps/v1 SetDefaults_Deployment
    spec.setdefault("replicas", 1)
    strategy = spec.setdefault("strategy", {})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        ru = strategy.setdefault("rollingUpdate", {})
        ru.setdefault("maxUnavailable", "25%")
        ru.setdefault("maxSurge", "25%")
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    _template(spec, "spec", errors)


def _statefulset(obj: Obj, errors: list[tuple[str, str]]) -> None:
    spec = obj.setdefault("spec", {})  # apps/v1 SetDefaults_StatefulSet
    spec.setdefault("replicas", 1)
    spec.setdefault("podManagementPolicy", "OrderedReady")
    strategy = spec.setdefault("updateStrategy", {})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        strategy.setdefault("rollingUpdate", {}).setdefault("partition", 0)
    spec.setdefault("revisionHistoryLimit", 10)
    retention = spec.setdefault("persistentVolumeClaimRetentionPolicy", {})
    retention.setdefault("whenDeleted", "Retain")
    retention.setdefault("whenScaled", "Retain")
    for i, claim in enumerate(_dicts(spec, "volumeClaimTemplates")):
        cs = _dict(claim, "spec")
        if cs is not None:
            _pvc_spec(cs, f"spec.volumeClaimTemplates[{i}].spec", errors)
    _template(spec, "spec", errors)


def _daemonset(obj: Obj, errors: list[tuple[str, str]]) -> None:
    spec = obj.setdefault("spec", {})  # apps/v1 SetDefaults_DaemonSet
    strategy = spec.setdefault("updateStrategy", {})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        ru = strategy.setdefault("rollingUpdate", {})
        ru.setdefault("maxUnavailable", 1)
        ru.setdefault("maxSurge", 0)
    spec.setdefault("revisionHistoryLimit", 10)
    _template(spec, "spec", errors)


def _replicaset(obj: Obj, errors: list[tuple[str, str]]) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    _template(spec, "spec", errors)


def _job_spec(spec: Obj, where: str, errors: list[tuple[str, str]]) -> None:
    # batch/v1 SetDefaults_Job: completions and parallelism 1 when both are unset
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
        spec["parallelism"] = 1
    spec.setdefault("parallelism", 1)
    spec.setdefault("backoffLimit", 6)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    if spec.get("podFailurePolicy") is None:
        spec.setdefault("podReplacementPolicy", "TerminatingOrFailed")
    template = _dict(spec, "template")
    pod = _dict(template, "spec") if template is not None else None
    if pod is not None:
        pod_spec(pod, f"{where}.template.spec", errors)


def _job(obj: Obj, errors: list[tuple[str, str]]) -> None:
    _job_spec(obj.setdefault("spec", {}), "spec", errors)


def _cronjob(obj: Obj, errors: list[tuple[str, str]]) -> None:
    spec = obj.setdefault("spec", {})  # batch/v1 SetDefaults_CronJob
    spec.setdefault("concurrencyPolicy", "Allow")
    spec.setdefault("suspend", False)
    spec.setdefault("successfulJobsHistoryLimit", 3)
    spec.setdefault("failedJobsHistoryLimit", 1)
    jt = _dict(spec, "jobTemplate")
    js = _dict(jt, "spec") if jt is not None else None
    if js is not None:
        # a CronJob's job template gets the pod defaults; the Job defaults come when the Job is created
        template = _dict(js, "template")
        pod = _dict(template, "spec") if template is not None else None
        if pod is not None:
            pod_spec(pod, "spec.jobTemplate.spec.template.spec", errors)


def _pvc_spec(spec: Obj, where: str, errors: list[tuple[str, str]]) -> None:
    spec.setdefault("volumeMode", "Filesystem")  # core/v1 SetDefaults_PersistentVolumeClaimSpec
    res = _dict(spec, "resources")
    _quantity_map(res, "requests", f"{where}.resources", errors)
    _quantity_map(res, "limits", f"{where}.resources", errors)


def _pvc(obj: Obj, errors: list[tuple[str, str]]) -> None:
    _pvc_spec(obj.setdefault("spec", {}), "spec", errors)
    obj.setdefault("status", {}).setdefault("phase", "Pending")
    _quantity_map(_dict(obj, "status"), "capacity", "status", errors)


def _service(obj: Obj, errors: list[tuple[str, str]]) -> None:
    spec = obj.setdefault("spec", {})  # core/v1 SetDefaults_Service
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    kind = spec["type"]
    for port in _dicts(spec, "ports"):
        port.setdefault("protocol", "TCP")
        if "port" in port and port.get("targetPort") in (None, 0, ""):
            port["targetPort"] = port["port"]
    if kind == "ExternalName":
        return
    spec.setdefault("internalTrafficPolicy", "Cluster")
    if kind in ("NodePort", "LoadBalancer"):
        spec.setdefault("externalTrafficPolicy", "Cluster")
    if kind == "LoadBalancer":
        spec.setdefault("allocateLoadBalancerNodePorts", True)
    if spec.get("clusterIP") != "None" or spec.get("selector"):
        spec.setdefault("ipFamilies", ["IPv4"])  # the service IP allocator of a single-stack IPv4 cluster
        spec.setdefault("ipFamilyPolicy", "SingleStack")


def _hpa(obj: Obj, errors: list[tuple[str, str]]) -> None:
    spec = obj.setdefault("spec", {})  # autoscaling/v2 SetDefaults_HorizontalPodAutoscaler
    spec.setdefault("minReplicas", 1)
    if not spec.get("metrics") and obj.get("apiVersion") == "autoscaling/v2":
        spec["metrics"] = [{"type": "Resource", "resource": {"name": "cpu", "target": {
            "type": "Utilization", "averageUtilization": 80}}}]
    behavior = _dict(spec, "behavior")
    if behavior is not None:  # only a behavior that is set gets its missing rules
        up = behavior.setdefault("scaleUp", {})
        up.setdefault("stabilizationWindowSeconds", 0)
        up.setdefault("selectPolicy", "Max")
        up.setdefault("policies", [{"type": "Pods", "value": 4, "periodSeconds": 15},
                                   {"type": "Percent", "value": 100, "periodSeconds": 15}])
        down = behavior.setdefault("scaleDown", {})
        down.setdefault("selectPolicy", "Max")
        down.setdefault("policies", [{"type": "Percent", "value": 100, "periodSeconds": 15}])
    for i, metric in enumerate(_dicts(spec, "metrics")):
        for source in ("resource", "containerResource", "pods", "object", "external"):
            target = _dict(_dict(metric, source) or {}, "target")
            if target is None:
                continue
            for key in ("value", "averageValue"):
                if key in target:
                    try:
                        target[key] = canonical_quantity(target[key])
                    except QuantityError as e:
                        errors.append((f"spec.metrics[{i}].{source}.target.{key}", f"Invalid value: {e}"))


def _namespace(obj: Obj, errors: list[tuple[str, str]]) -> None:
    # the NamespaceLifecycle finalizer and the immutable name label (kube-apiserver since 1.22)
    obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
    name = (obj.get("metadata") or {}).get("name")
    if name:
        obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = name


def _pod(obj: Obj, errors: list[tuple[str, str]]) -> None:
    spec = _dict(obj, "spec")
    if spec is not None:
        pod_spec(spec, "spec", errors)


def _quota(obj: Obj, errors: list[tuple[str, str]]) -> None:
    _quantity_map(_dict(obj, "spec"), "hard", "spec", errors)


def _limit_range(obj: Obj, errors: list[tuple[str, str]]) -> None:
    for i, item in enumerate(_dicts(_dict(obj, "spec"), "limits")):
        for key in ("max", "min", "default", "defaultRequest", "maxLimitRequestRatio"):
            _quantity_map(item, key, f"spec.limits[{i}]", errors)


def _role_binding(obj: Obj, errors: list[tuple[str, str]]) -> None:
    for s in _dicts(obj, "subjects"):  # rbac/v1 SetDefaults_Subject
        if "apiGroup" not in s:
            s["apiGroup"] = "" if s.get("kind") == "ServiceAccount" else "rbac.authorization.k8s.io"


_KINDS: dict[tuple[str, str], Callable[[Obj, list[tuple[str, str]]], None]] = {
    ("apps", "Deployment"): _deployment,
    ("apps", "StatefulSet"): _statefulset,
    ("apps", "DaemonSet"): _daemonset,
    ("apps", "ReplicaSet"): _replicaset,
    ("batch", "Job"): _job,
    ("batch", "CronJob"): _cronjob,
    ("", "PersistentVolumeClaim"): _pvc,
    ("", "Service"): _service,
    ("", "Namespace"): _namespace,
    ("", "Pod"): _pod,
    ("", "ResourceQuota"): _quota,
    ("", "LimitRange"): _limit_range,
    ("autoscaling", "HorizontalPodAutoscaler"): _hpa,
    ("rbac.authorization.k8s.io", "RoleBinding"): _role_binding,
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): _role_binding,
}

# map-typed fields (Go map with omitempty): an empty one is not in the server's JSON
_MAP_FIELDS = frozenset({"labels", "annotations", "data", "binaryData", "stringData", "nodeSelector", "matchLabels",
                         "limits", "requests", "hard", "capacity", "parameters"})


def drop_empty(value: Any) -> Any:
    """Empty lists everywhere and empty maps at map-typed fields removed (in place); the value."""
    if isinstance(value, dict):
        for k in list(value):
            v = value[k]
            drop_empty(v)
            if (isinstance(v, list) and not v) or (isinstance(v, dict) and not v and k in _MAP_FIELDS):
                del value[k]
    elif isinstance(value, list):
        for v in value:
            drop_empty(v)
    return value


def canonicalize(group: str, kind: str, obj: Obj) -> list[tuple[str, str]]:
    """Canonical quantities and the server's defaults on a built-in object (in place); invalid quantities
    as (field, message) pairs."""
    errors: list[tuple[str, str]] = []
    fill = _KINDS.get((group, kind))
    if fill is not None:
        fill(obj, errors)
    drop_empty(obj)
    if kind == "Service" and group == "":
        spec = _dict(obj, "spec")
        if spec is not None and spec.get("selector") == {}:
            del spec["selector"]
    return errors


def canonical_quantities(group: str, kind: str, obj: Obj) -> None:
    """Only the quantities of an applied configuration in canonical form (no defaults): what the server's
    typed comparison of `0.5` and `500m` sees as equal."""
    errors: list[tuple[str, str]] = []
    spec = _dict(obj, "spec")
    if spec is None:
        return
    pods: list[tuple[Obj, str]] = []
    if kind == "Pod":
        pods.append((spec, "spec"))
    tmpl = _dict(spec, "template")
    if tmpl is not None and _dict(tmpl, "spec") is not None:
        pods.append((tmpl["spec"], "spec.template.spec"))
    jt = _dict(spec, "jobTemplate")
    jts = _dict(jt, "spec") if jt is not None else None
    jtt = _dict(jts, "template") if jts is not None else None
    if jtt is not None and _dict(jtt, "spec") is not None:
        pods.append((jtt["spec"], "spec.jobTemplate.spec.template.spec"))
    for pod, where in pods:
        for key in ("initContainers", "containers"):
            for i, c in enumerate(_dicts(pod, key)):
                res = _dict(c, "resources")
                _quantity_map(res, "limits", f"{where}.{key}[{i}].resources", errors)
                _quantity_map(res, "requests", f"{where}.{key}[{i}].resources", errors)
    if kind == "PersistentVolumeClaim":
        res = _dict(spec, "resources")
        _quantity_map(res, "requests", "spec.resources", errors)
        _quantity_map(res, "limits", "spec.resources", errors)
    for claim in _dicts(spec, "volumeClaimTemplates"):
        res = _dict(_dict(claim, "spec") or {}, "resources")
        _quantity_map(res, "requests", "", errors)
    if kind == "ResourceQuota":
        _quantity_map(spec, "hard", "spec", errors)
