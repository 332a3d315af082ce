"""A notification or webhook step → one HTTP POST per channel; a short note naming only the host.

`webhook`: `url` (`{value}` or `{secretRef: {name, key}}`, read from a Secret in the app's
namespace on the hub) and `data` (the JSON body). `notification`: `slack` (`message` posted as
is), `dingding`, `lark` (each `url` + `message`); email needs an SMTP relay and is refused when
the plan is loaded. A URL can carry a token in its path or query, so no URL is ever printed,
logged or put into an error: only its scheme and host.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

from velapy.errors import ClusterError, Location
from velapy.execute.planfile import Step
from velapy.kube import Client, KubeError, ResourceType

_SECRET = ResourceType("", "v1", "Secret", "secrets", True)
TIMEOUT = 10.0


def host_of(url: str) -> str:
    p = urllib.parse.urlsplit(url)
    return f"{p.scheme}://{p.hostname or '?'}" + (f":{p.port}" if p.port else "")


def _url(step: Step, spec: Any, hub: Client | None, namespace: str) -> str:
    if isinstance(spec, str):
        return spec
    if not isinstance(spec, Mapping):
        raise ClusterError(f"step {step.name}: url must be {{value: ...}} or {{secretRef: {{name, key}}}}")
    if spec.get("value"):
        return str(spec["value"])
    ref = spec.get("secretRef") or {}
    name, key = str(ref.get("name") or ""), str(ref.get("key") or "")
    if not (name and key):
        raise ClusterError(f"step {step.name}: url.secretRef needs name and key")
    if hub is None:
        raise ClusterError(f"step {step.name}: the url is in Secret {namespace}/{name}, which is read from the hub "
                           "`local`; give the hub a kubeconfig context", Location(cluster="local"))
    try:
        secret = hub.get(_SECRET, namespace, name)
    except KubeError as exc:
        raise ClusterError(f"step {step.name}: cannot read Secret {namespace}/{name} on the hub: "
                           f"{exc.diagnostics[0].message}") from None
    raw = ((secret or {}).get("data") or {}).get(key)
    if raw is None:
        raise ClusterError(f"step {step.name}: Secret {namespace}/{name} on the hub has no key {key}")
    return base64.b64decode(str(raw)).decode("utf-8").strip()


def post(url: str, body: Any) -> int:
    """POST JSON; the HTTP status. Errors never quote the URL."""
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise ClusterError(f"webhook to {host_of(url)}: only http and https URLs are sent")
    req = urllib.request.Request(url, data=json.dumps(body).encode("utf-8"), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        raise ClusterError(f"POST to {host_of(url)} answered HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ClusterError(f"POST to {host_of(url)} failed: {type(reason).__name__}") from None


def send_step(step: Step, hub: Client | None, namespace: str) -> str:
    """Send what the step asks for; a note for the progress output."""
    props = step.properties
    notes: list[str] = []
    if step.type == "webhook":
        url = _url(step, props.get("url"), hub, namespace)
        code = post(url, props.get("data") if props.get("data") is not None else {})
        return f"webhook sent to {host_of(url)} (HTTP {code})"
    for channel in ("slack", "dingding", "lark"):
        spec = props.get(channel)
        if not isinstance(spec, Mapping):
            continue
        url = _url(step, spec.get("url"), hub, namespace)
        code = post(url, spec.get("message") or {})
        notes.append(f"{channel} notified via {host_of(url)} (HTTP {code})")
    return "; ".join(notes) or "nothing to send"


__all__ = ["host_of", "post", "send_step"]
