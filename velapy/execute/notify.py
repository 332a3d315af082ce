"""A notification or webhook step → one HTTP POST per channel; a short note naming only the host.

`webhook`: `url` (`{value}` or `{secretRef: {name, key}}`, read from a Secret in the app's
namespace on the hub) and `data` (the JSON body). `notification`: `slack` (`message` posted as
is), `dingding`, `lark` (each `url` + `message`); email needs an SMTP relay and is refused when
the plan is loaded. A URL can carry a token in its path or query, so no URL is ever printed,
logged or put into an error: only its scheme and host.

A URL in the plan (`value`) is checked when the plan is loaded (`url_problem`: exit 2, located in
plan.yaml, before any request); one read from a hub Secret is checked when the step runs, after
the Secret's value joined the run's redactor (`learn`), and a malformed one fails the step naming
the Secret and key (exit 3: fix the Secret, then `velapy resume`), never quoting the value.
"""

from __future__ import annotations

import base64
import http.client
import json
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

from velapy.errors import ClusterError, Location
from velapy.execute.planfile import Step
from velapy.execute.urls import host_of, spec_problem, url_problem
from velapy.kube import Client, KubeError, ResourceType

_SECRET = ResourceType("", "v1", "Secret", "secrets", True)
TIMEOUT = 10.0


def _url(step: Step, spec: Any, hub: Client | None, namespace: str,
         learn: Callable[[str], None] = lambda _v: None) -> str:
    bad = spec_problem(spec)
    if bad:  # load_plan refuses these first; a plan built in memory may still hold one
        raise ClusterError(f"step {step.name}: {bad}")
    if isinstance(spec, str):
        return spec
    if spec.get("value"):
        return str(spec["value"])
    ref = spec["secretRef"]
    name, key = str(ref["name"]), str(ref["key"])
    if hub is None:
        raise ClusterError(f"step {step.name}: the url is in Secret {namespace}/{name}, which is read from the hub "
                           "`local`; give the hub a kubeconfig context", Location(cluster="local"))
    try:
        secret = hub.get(_SECRET, namespace, name)
    except KubeError as exc:
        raise ClusterError(f"step {step.name}: cannot read Secret {namespace}/{name} on the hub: "
                           f"{exc.diagnostics[0].message}") from None
    data = (secret or {}).get("data") if isinstance(secret, Mapping) else None
    raw = data.get(key) if isinstance(data, Mapping) else None
    where = f"step {step.name}: Secret {namespace}/{name} on the hub, key {key}"
    if raw is None:
        raise ClusterError(f"step {step.name}: Secret {namespace}/{name} on the hub has no key {key}",
                           Location(cluster="local"))
    learn(str(raw))
    try:
        text = base64.b64decode(str(raw), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        raise ClusterError(f"{where}: the value is not base64-encoded UTF-8 text", Location(cluster="local")) from None
    learn(text)
    url = text.strip()
    learn(url)
    bad = url_problem(url)
    if bad:
        raise ClusterError(f"{where}: not a URL that can be sent to: {bad} (the value is withheld; fix the Secret, "
                           "then resume)", Location(cluster="local"))
    return url


def post(url: str, body: Any) -> int:
    """POST JSON; the HTTP status. Errors never quote the URL."""
    bad = url_problem(url)
    if bad:
        raise ClusterError(f"webhook to {host_of(url)}: {bad}")
    req = urllib.request.Request(url, data=json.dumps(body).encode("utf-8"), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        raise ClusterError(f"POST to {host_of(url)} answered HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", exc)  # (http.client.InvalidURL is a ValueError that quotes the URL)
        raise ClusterError(f"POST to {host_of(url)} failed: {type(reason).__name__}") from None


def send_step(step: Step, hub: Client | None, namespace: str,
              learn: Callable[[str], None] = lambda _v: None) -> str:
    """Send what the step asks for; a note for the progress output. `learn` gets every value read
    from a hub Secret before anything else happens with it (the run's redactor)."""
    props = step.properties
    notes: list[str] = []
    if step.type == "webhook":
        url = _url(step, props.get("url"), hub, namespace, learn)
        code = post(url, props.get("data") if props.get("data") is not None else {})
        return f"webhook sent to {host_of(url)} (HTTP {code})"
    for channel in ("slack", "dingding", "lark"):
        spec = props.get(channel)
        if not isinstance(spec, Mapping):
            continue
        url = _url(step, spec.get("url"), hub, namespace, learn)
        code = post(url, spec.get("message") or {})
        notes.append(f"{channel} notified via {host_of(url)} (HTTP {code})")
    return "; ".join(notes) or "nothing to send"


__all__ = ["host_of", "post", "send_step", "spec_problem", "url_problem"]
