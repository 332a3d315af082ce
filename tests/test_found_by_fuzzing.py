"""Issue 18 §7: what fuzzing and fault injection found, one test per case.

- a webhook URL read from a hub Secret that is no URL: exit 3 naming the Secret, never its value;
- objects whose metadata (or its labels/annotations) is not a mapping: a located exit 2 in both
  `validate` and `render`, never an internal error;
- the stream render (no -o) checks names as `-o` does;
- rendered Secret files and the emulator's audit log are private to their owner (0600).
"""

from __future__ import annotations

import base64
import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from emulator_fixtures import running_fleet
from test_apply_cli import cli
from test_execute_support import configmap, namespace, open_, write_plan

from velapy.errors import InputError
from velapy.execute.progress import Reporter
from velapy.execute.redact import MASK
from velapy.execute.urls import url_problem

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


# ------------------------------------------------------------------------------------------
# metadata that is not a mapping: located exit 2 in validate and render (was: valid, then exit 4)

HEAD = "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata: {name: m, namespace: default}\nspec:\n" \
       "  components:\n"
OBJECTS = "    - name: objs\n      type: k8s-objects\n      properties:\n        objects:\n" \
          "          - apiVersion: v1\n            kind: ConfigMap\n" \
          "            metadata: {{name: c1, labels: {labels}}}\n"
MERGE_PATCH = "    - name: web\n      type: webservice\n      properties: {image: nginx}\n      traits:\n" \
              "        - type: json-merge-patch\n          properties:\n            metadata: {labels: abc}\n"
REF = "    - name: ref\n      type: ref-objects\n      properties:\n" \
      "        objects: [{apiVersion: v1, kind: ConfigMap, name: hubcm}]\n"


@pytest.fixture
def cli_engine(evaluator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from contextlib import nullcontext

    from velapy import cli as velapy_cli

    monkeypatch.setattr(velapy_cli.base, "open_evaluator", lambda *a, **k: nullcontext(evaluator))


def _both(tmp_path: Path, text: str, *extra: str) -> list[Any]:
    app = tmp_path / "app.yaml"
    app.write_text(text)
    return [cli(command, str(app), *extra) for command in ("validate", "render")]


@pytest.mark.parametrize(("component", "where", "shape"), [
    (OBJECTS.format(labels='"abc"'), "app.yaml:12:", "metadata.labels must be a mapping of names to strings, not a "
                                                     "string"),
    (OBJECTS.format(labels="[a, b]"), "app.yaml:12:",
     "metadata.labels must be a mapping of names to strings, not a list"),
    (OBJECTS.format(labels="{team: {a: b}}"), "app.yaml:12:", "metadata.labels.team must be a string, not a mapping"),
    (MERGE_PATCH, "app.yaml:12:", "metadata.labels must be a mapping of names to strings, not a string"),
])
def test_labels_that_are_not_a_mapping_are_a_located_input_error(tmp_path: Path, cli_engine: None, component: str,
                                                                  where: str, shape: str) -> None:
    for res in _both(tmp_path, HEAD + component):
        assert res.returncode == 2, res.stderr  # validate said "valid", render exit 4 (ValueError)
        assert where in res.stderr and shape in res.stderr, res.stderr
        assert "internal error" not in res.stderr


def test_a_hub_manifest_whose_metadata_is_a_string_is_a_located_input_error(tmp_path: Path, cli_engine: None) -> None:
    (tmp_path / "hub").mkdir()
    (tmp_path / "hub" / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: hubcm\ndata: {a: b}\n")
    for res in _both(tmp_path, HEAD + REF, "--resources", str(tmp_path / "hub")):
        assert res.returncode == 2, res.stderr  # was: valid, then exit 4 (AttributeError)
        assert "cm.yaml:3:" in res.stderr and "hub object ConfigMap: metadata must be a mapping" in res.stderr


def test_a_template_or_trait_that_renders_bad_metadata_is_located_at_it(tmp_path: Path, cli_engine: None) -> None:
    defs = tmp_path / "defs"
    defs.mkdir()
    (defs / "bad-meta.cue").write_text(
        '"bad-meta": {\n\ttype: "component"\n'
        '\tattributes: workload: definition: {apiVersion: "v1", kind: "ConfigMap"}\n}\n'
        'template: {\n\tparameter: {tags: _}\n\toutput: {apiVersion: "v1", kind: "ConfigMap", '
        'metadata: labels: parameter.tags}\n}\n')
    (defs / "bad-labels.cue").write_text(
        '"bad-labels": {\n\ttype: "trait"\n\tattributes: appliesToWorkloads: ["*"]\n}\ntemplate: {\n'
        '\tparameter: {tags: _}\n\t// +patchStrategy=retainKeys\n\tpatch: metadata: labels: parameter.tags\n}\n')
    app = tmp_path / "app.yaml"
    app.write_text(HEAD + "    - name: one\n      type: bad-meta\n      properties: {tags: abc}\n")
    res = cli("render", str(app), "-d", str(defs))
    assert res.returncode == 2, res.stderr
    assert "app.yaml:6:" in res.stderr and "the bad-meta template rendered a ConfigMap whose metadata.labels must " \
        "be a mapping of names to strings, not a string" in res.stderr
    app.write_text(HEAD + "    - name: two\n      type: webservice\n      properties: {image: nginx}\n      traits:\n"
                   "        - type: bad-labels\n          properties: {tags: [a, b]}\n")
    res = cli("render", str(app), "-d", str(defs))
    assert res.returncode == 2, res.stderr
    assert "app.yaml:10:" in res.stderr and "trait bad-labels rendered a Deployment whose metadata.labels must be " \
        "a mapping of names to strings, not a list" in res.stderr


# ------------------------------------------------------------------------------------------
# the stream render checks names as -o does

def test_the_stream_render_refuses_names_kubernetes_would_reject(tmp_path: Path, cli_engine: None) -> None:
    app = tmp_path / "app.yaml"
    app.write_text(HEAD + OBJECTS.format(labels="{}").replace("c1", "x" * 300))
    for args in ((), ("--vela-layout",), ("-o", str(tmp_path / "out"))):
        res = cli("render", str(app), *args)
        assert res.returncode == 2, (args, res.stdout[:300])  # the stream printed the object, exit 0
        assert "app.yaml:6:" in res.stderr and "is 300 characters long; Kubernetes allows 253" in res.stderr
        assert res.stdout == ""


# ------------------------------------------------------------------------------------------
# Secret files and the emulator's audit log are readable by their owner only

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "gitops"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_rendered_secret_files_are_0600_and_a_0644_one_is_rewritten_0600(tmp_path: Path, cli_engine: None,
                                                                         umask_022: None) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(EXAMPLE, repo)
    out = tmp_path / "out"
    args = ("render", str(repo / "apps/orders/app.yaml"), "-f", str(repo / "apps/orders/policies.yaml"),
            "--clusters", str(repo / "clusters.yaml"), "-o", str(out))
    assert cli(*args).returncode == 0
    secrets = sorted(out.glob("clusters/*/*/secret_*.yaml"))
    assert secrets and all(_mode(p) == 0o600 for p in secrets), [oct(_mode(p)) for p in secrets]  # was 0644
    others = [p for p in out.rglob("*.yaml") if p not in secrets]
    assert others and all(_mode(p) == 0o644 for p in others)
    secrets[0].chmod(0o644)  # as an older velapy or a git checkout left it
    checked = cli(*args, "--check")  # modes are no content: git does not record them
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert cli(*args).returncode == 0
    assert all(_mode(p) == 0o600 for p in secrets)


def test_golden_update_makes_the_secret_files_of_an_up_to_date_golden_private(
        tmp_path: Path, cli_engine: None, umask_022: None, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(EXAMPLE, repo)  # (copied 0644, as a clone has them)
    monkeypatch.chdir(repo)
    secrets = sorted(repo.glob("rendered/orders/clusters/*/*/secret_*.yaml"))
    assert secrets and all(_mode(p) == 0o644 for p in secrets)
    res = cli("golden", "update")
    assert res.returncode == 0, res.stderr
    assert "fresh    orders" in res.stdout + res.stderr  # nothing to rewrite ...
    assert all(_mode(p) == 0o600 for p in secrets)  # ... yet the Secrets are private now


def test_the_emulator_audit_log_is_0600(tmp_path: Path, umask_022: None) -> None:
    from velapy.kube.emulator.server import AuditLog

    fresh, old = tmp_path / "audit.jsonl", tmp_path / "old.jsonl"
    old.write_text('{"seen": 1}\n')
    old.chmod(0o644)
    for path in (fresh, old):
        log = AuditLog(str(path))
        log({"verb": "create", "objectRef": {"resource": "secrets"}})
        log.close()
        assert _mode(path) == 0o600  # was 0644
    assert old.read_text().startswith('{"seen": 1}\n')  # appended to, not replaced


# ------------------------------------------------------------------------------------------
# the fuzzer's "non-reproducible" engine crash: what an app renders to must not depend on what the
# same evaluator rendered before

PROBE = Path(__file__).resolve().parent.parent / "golden" / "engine-v04-panic-construct"


def test_an_earlier_invalid_render_does_not_make_a_valid_one_crash_the_engine(evaluator: Any, tmp_path: Path) -> None:
    from velapy.cue.engine import WasmCue
    from velapy.errors import VelapyError
    from velapy.pipeline import Inputs, compile_app

    if not isinstance(evaluator.runner, WasmCue):
        pytest.skip("the panic is a bug of the embedded CUE v0.4 engine")
    app = (PROBE / "app.yaml").read_text()
    (tmp_path / "bad.yaml").write_text(app.replace('properties: {value: "x"}', "properties: {}"))
    (tmp_path / "good.yaml").write_text(app)
    ev = evaluator.lend()  # its own memory of templates, on the session's engine process
    try:
        def render(name: str) -> str:
            try:
                compile_app(Inputs(str(tmp_path / name), definition_dirs=(str(PROBE / "definitions"),)), ev)
            except VelapyError as exc:
                return f"exit {exc.exit_code}"
            return "rendered"

        assert render("good.yaml") == "rendered"
        assert render("bad.yaml") == "exit 2"  # (this marks the template as written into each instance)
        assert {t.name for t in ev._inline} == {"crash-probe"}
        assert render("good.yaml") == "rendered"  # was exit 4: "the CUE engine crashed ..."
    finally:
        ev.close()


def test_secret_values_read_from_the_live_hub_are_withheld_from_render_errors(tmp_path: Path,
                                                                                cli_engine: None) -> None:
    defs = tmp_path / "defs"
    defs.mkdir()
    (defs / "set-pw.cue").write_text('"set-pw": {\n\ttype: "trait"\n\tattributes: appliesToWorkloads: ["*"]\n}\n'
                                     'template: {\n\tparameter: {pw: string}\n\tpatch: data: pw: parameter.pw\n}\n')
    app = tmp_path / "app.yaml"
    app.write_text(HEAD + "    - name: ref\n      type: ref-objects\n      properties:\n"
                   "        objects: [{apiVersion: v1, kind: Secret, name: db}]\n"
                   "      traits:\n        - type: set-pw\n          properties: {pw: other}\n")
    value = base64.b64encode(b"HUB-SECRET-value").decode()
    with running_fleet(["local"], tmp_path) as fleet:
        fleet["local"].put_object({"apiVersion": "v1", "kind": "Secret",
                                   "metadata": {"name": "db", "namespace": "default"}, "data": {"pw": value}})
        res = cli("render", str(app), "-d", str(defs), "--resources-from-hub", "--kubeconfig",
                  str(fleet.kubeconfig_path))
    assert res.returncode == 2, res.stderr
    assert 'conflicting values "other" and "<secret>"' in res.stderr  # the value read live, withheld
    assert value not in res.stderr and "HUB-SECRET" not in res.stderr


def test_rendering_with_the_live_hub_checks_names_too(tmp_path: Path, cli_engine: None) -> None:
    app = tmp_path / "app.yaml"
    app.write_text(HEAD + OBJECTS.format(labels="{}").replace("c1", "x" * 300))
    with running_fleet(["local"], tmp_path) as fleet:
        for args in ((), ("-o", str(tmp_path / "out"))):  # (apply of an app file compiles the same way)
            res = cli("render", str(app), "--resources-from-hub", "--kubeconfig", str(fleet.kubeconfig_path), *args)
            assert res.returncode == 2, (args, res.stdout[:200], res.stderr)  # was exit 0
            assert "is 300 characters long; Kubernetes allows 253" in res.stderr
    assert not (tmp_path / "out").exists()
