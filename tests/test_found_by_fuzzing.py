"""Issue 18 §7: what fuzzing and fault injection found, one test per case.

- a webhook URL read from a hub Secret that is no URL: exit 3 naming the Secret, never its value;
- objects whose metadata (or its labels/annotations) is not a mapping: a located exit 2 in both
  `validate` and `render`, never an internal error;
- the stream render (no -o) checks names as `-o` does;
- rendered Secret files and the emulator's audit log are private to their owner (0600).
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from emulator_fixtures import running_fleet
from test_apply_cli import cli
from test_execute_support import configmap, namespace, open_, write_plan

from velapy.errors import InputError
from velapy.execute.notify import url_problem
from velapy.execute.progress import Reporter
from velapy.execute.redact import MASK

# ------------------------------------------------------------------------------------------
# webhook URLs from hub Secrets

HOOK_URL = "http://127.0.0.1:S3CRETPORT/hooks/T0KEN-in-the-path"


def _hook_plan(folder: Path, url: dict[str, Any]) -> Path:
    return write_plan(folder, "app", "shop", [
        {"name": "d", "type": "deploy", "placements": {"a": [configmap("cfg", "shop")]}},
        {"name": "hook", "type": "webhook", "properties": {"url": url, "data": {"event": "deployed"}}}])


def test_a_malformed_url_in_a_hub_secret_fails_the_step_naming_the_secret_not_its_value(tmp_path: Path) -> None:
    with running_fleet(["local", "a"], tmp_path) as fleet:
        for c in fleet:
            c.put_object(namespace("shop"))
        fleet["local"].put_object({"apiVersion": "v1", "kind": "Secret",
                                   "metadata": {"name": "hook", "namespace": "shop"},
                                   "data": {"url": base64.b64encode(HOOK_URL.encode()).decode()}})
        plan = _hook_plan(tmp_path / "p", {"secretRef": {"name": "hook", "key": "url"}})
        res = cli("apply", str(plan), "--kubeconfig", str(fleet.kubeconfig_path), "--state-dir", str(tmp_path / "st"))
        state = str(fleet["local"].get("v1", "ConfigMap", "shop", "velapy-app-state"))
    said = res.stdout + res.stderr
    assert res.returncode == 3, said  # was 4: "internal error: InvalidURL: nonnumeric port: 'S3CRETPORT'"
    assert "step hook: Secret shop/hook on the hub, key url: not a URL that can be sent to: its port is not a number" \
        in said
    assert "S3CRETPORT" not in said and "T0KEN" not in said and "internal error" not in said
    assert "continue with:" in res.stderr  # the run state was saved: fix the Secret, then resume
    assert "not a URL that can be sent to" in state and "S3CRETPORT" not in state


def test_values_read_from_hub_secrets_join_the_redactor() -> None:
    rep = Reporter(__import__("io").StringIO(), redact=lambda s: s.replace("plan-secret", MASK))
    rep.learn_secret(HOOK_URL)
    rep.say(f"the server said: invalid value {HOOK_URL!r} (plan-secret)")
    assert rep.lines == [f"the server said: invalid value '{MASK}' ({MASK})"]


@pytest.mark.parametrize(("url", "why"), [
    ("http://127.0.0.1:S3CRET/x", "its port is not a number"),
    ("http://127.0.0.1:99999/x", "its port is not a number"),
    ("http://[::1/x", "not a URL"),
    ("ftp://example.com/S3CRET", "only http and https"),
    ("http:///S3CRET", "names no host"),
    ("http://example.com/S3CRET path", "a space or a control character"),
    ("http://example.com/ok", ""),
])
def test_url_problems_never_quote_the_url(url: str, why: str) -> None:
    got = url_problem(url)
    assert (why in got) if why else got == ""
    assert "S3CRET" not in got


def test_a_malformed_url_in_the_plan_is_a_located_input_error_before_any_request(tmp_path: Path) -> None:
    plan = _hook_plan(tmp_path / "p", {"value": HOOK_URL})
    with pytest.raises(InputError) as err:
        open_(plan, tmp_path / "no-kubeconfig", tmp_path / "st")
    text = err.value.render()
    assert "plan.yaml:" in text and "step hook: url.value is not a URL that can be sent to: its port is not a number" \
        in text
    assert "S3CRETPORT" not in text and "T0KEN" not in text
