"""No Secret value in any error, warning or log line (issue 11, item 6).

Every test plants SENTINEL under a Secret's data/stringData, makes velapy fail (or succeed) at a
different stage, and checks that the sentinel appears nowhere in what velapy printed.
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from velapy import cli
from velapy.cue.engine import Evaluator
from velapy.errors import InputError
from velapy.load import redact
from velapy.load.definitions import load_registry
from velapy.validate.documents import validate_files

SENTINEL = "SENTINEL-hunter2-do-not-print"

APP = """\
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata: {{name: a}}
spec:
  components:
    - name: c
      type: {ctype}
      properties:
{props}
{traits}
"""

SECRET_OBJECT = """\
        objects:
          - apiVersion: v1
            kind: Secret
            metadata: {{name: s}}
            stringData:
              password: {value}
"""


@pytest.fixture
def cli_engine(evaluator: Evaluator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli.base, "open_evaluator", lambda **_kw: nullcontext(evaluator))


def run(*args: str) -> Result:
    return CliRunner(mix_stderr=False).invoke(cli.main, list(args), catch_exceptions=False)


def app_file(tmp_path: Path, value: str, traits: str = "", ctype: str = "k8s-objects") -> Path:
    path = tmp_path / "app.yaml"
    path.write_text(APP.format(ctype=ctype, props=SECRET_OBJECT.format(value=value), traits=traits))
    return path


def no_leak(res: Result) -> None:
    assert SENTINEL not in res.stdout + res.stderr, res.stdout + res.stderr


def test_a_tagged_stringdata_value_in_the_app_is_not_quoted(tmp_path: Path, cli_engine: None) -> None:
    app = app_file(tmp_path, f"!!int {SENTINEL}")
    for cmd in ("render", "validate", "plan"):
        res = run(cmd, str(app))
        assert res.exit_code == 2
        no_leak(res)
        assert f"{app}:14:25: " in res.stderr and "cannot read this value as !!int" in res.stderr


def test_a_tagged_value_in_the_resources_folder_is_not_quoted(tmp_path: Path, cli_engine: None) -> None:
    hub = tmp_path / "hub"
    hub.mkdir()
    (hub / "secret.yaml").write_text(f"apiVersion: v1\nkind: Secret\nmetadata: {{name: s, namespace: default}}\n"
                                     f"data:\n  token: !!bool {SENTINEL}\n")
    app = tmp_path / "app.yaml"
    app.write_text(APP.format(ctype="ref-objects", traits="",
                              props="        objects:\n          - {resource: secret, name: s}\n"))
    res = run("render", str(app), "--resources", str(hub))
    assert res.exit_code == 2
    no_leak(res)
    assert f"{hub / 'secret.yaml'}:5:10: data.token: cannot read this value as !!bool" in res.stderr


def test_a_cue_error_quoting_a_secret_value_is_scrubbed(tmp_path: Path, cli_engine: None) -> None:
    defs = tmp_path / "defs"
    defs.mkdir()
    (defs / "clash.cue").write_text('clash: {\n\ttype: "trait"\n\tattributes: {appliesToWorkloads: ["*"]}\n}\n'
                                    'template: {\n\tpatch: stringData: password: "other-value"\n'
                                    '\tparameter: {}\n}\n')
    app = app_file(tmp_path, SENTINEL, traits="      traits:\n        - type: clash")
    res = run("render", str(app), "-d", str(defs))
    assert res.exit_code == 2
    no_leak(res)
    assert 'conflicting values "other-value" and "<secret>"' in res.stderr


def test_a_secret_renders_and_only_the_object_file_holds_it(tmp_path: Path, cli_engine: None) -> None:
    app = app_file(tmp_path, SENTINEL)
    out = tmp_path / "out"
    res = run("render", str(app), "-o", str(out))
    assert res.exit_code == 0
    no_leak(res)
    holding = [p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file() and SENTINEL in p.read_text()]
    assert holding == ["clusters/local/default/secret_s.yaml"]  # the manifest kubectl applies; not the plan
    res = run("plan", str(app), "--format", "yaml")
    no_leak(res)


SEALED = """\
sealed: {
\ttype: "component"
\tattributes: workload: type: "autodetects.core.oam.dev"
}
template: {
\toutput: parameter.objects[0]
\tparameter: objects: [...{
\t\tapiVersion: string
\t\tkind:       string
\t\tmetadata: name: string
\t\tstringData?: [string]: int
\t}]
}
"""


def test_schema_messages_under_a_secret_withhold_the_value(tmp_path: Path, evaluator: Evaluator) -> None:
    """A JSON Schema message about a value under a Secret's stringData (here: a definition whose
    parameter schema wants integers there) keeps its location and drops the value."""
    (tmp_path / "defs").mkdir()
    (tmp_path / "defs" / "sealed.cue").write_text(SEALED)
    second = ("          - apiVersion: v1\n            kind: Secret\n            metadata: {name: t}\n"
              f"            stringData: {SENTINEL}\n")
    app = tmp_path / "app.yaml"
    app.write_text(APP.format(ctype="sealed", traits="", props=SECRET_OBJECT.format(value=SENTINEL) + second))
    with pytest.raises(InputError) as info:
        validate_files(str(app), [], load_registry([tmp_path / "defs"]), evaluator)
    (one, two) = info.value.diagnostics
    assert (one.message, one.location.line, one.location.path) == (
        f"expected an integer {redact.WITHHELD}", 14, "spec.components[0].properties.objects[0].stringData.password")
    assert (two.message, two.location.line) == (f"expected a mapping {redact.WITHHELD}", 18)
    assert SENTINEL not in info.value.render()


def test_redact_finds_secrets_anywhere_and_scrubs_every_form() -> None:
    data = {"spec": {"objects": [{"kind": "Secret", "data": {"a": 'p"w\\1', "b": 12345},
                                  "stringData": {"c": ["listed"]}}]}}
    assert redact.secret_strings(data) == {'p"w\\1', "12345", "listed"}
    assert redact.is_secret_value_path(data, ["spec", "objects", 0, "data", "a"])
    assert not redact.is_secret_value_path(data, ["spec", "objects", 0, "kind"])
    exc = InputError('found "p\\"w\\\\1" and 12345 and listed')
    assert redact.scrub_error(exc, redact.secret_strings(data)).render() == \
        "error: found \"<secret>\" and <secret> and <secret>"


@pytest.mark.parametrize(("value", "text", "expected"), [
    # where the value stands: masked
    ("SHARD", 'conflicting values "SHARD" and "x"', 'conflicting values "<secret>" and "x"'),
    ("SHARD", "token=SHARD; next", "token=<secret>; next"),
    ("SHARD", "SHARD", "<secret>"),
    ("SHARD", "the value is SHARD. Next: -SHARD- and .SHARD", "the value is <secret>. Next: -<secret>- and .<secret>"),
    ("SHARD", "postgres://u:SHARD@db/x", "postgres://u:<secret>@db/x"),
    ("SHARD", 'found "line one\\nSHARD"', 'found "line one\\n<secret>"'),  # after a JSON escape
    ("p\"w\\1", 'found "p\\"w\\\\1"', 'found "<secret>"'),  # JSON-escaped form
    ("-----BEGIN KEY-----", 'key: "-----BEGIN KEY-----"', 'key: "<secret>"'),
    ("Zm9vYmFyYmF6cXV4LXNlY3JldA", "id=pre-Zm9vYmFyYmF6cXV4LXNlY3JldA-post", "id=pre-<secret>-post"),  # long: anywhere
    # inside an unrelated name: kept
    ("SHARD", "invalid name load-test-SHARD", "invalid name load-test-SHARD"),
    ("orders", "applying Deployment shop/orders-api", "applying Deployment shop/orders-api"),
    ("orders", "service orders.shop.svc", "service orders.shop.svc"),
    ("orders", "reorders and orders_v2", "reorders and orders_v2"),
    # short values and YAML words are not searched for in text
    ("ab", "ab cd", "ab cd"),
    ("true", "ready: true", "ready: true"),
])
def test_mask_where_the_value_stands(value: str, text: str, expected: str) -> None:
    assert redact.mask(text, [value]) == expected


def test_a_name_containing_a_secret_value_is_printed_whole(tmp_path: Path, cli_engine: None) -> None:
    """Issue 22 item 11: `load-test-SHARD` was printed `load-test-<secret>` because a Secret's value
    was `SHARD`; the value itself, where a message quotes it, is still masked."""
    defs = tmp_path / "defs"
    defs.mkdir()
    (defs / "clash.cue").write_text('clash: {\n\ttype: "trait"\n\tattributes: {appliesToWorkloads: ["*"]}\n}\n'
                                    'template: {\n\tpatch: stringData: password: "other-value"\n'
                                    '\tparameter: {}\n}\n')
    second = "    - name: load-test-SHARD\n      type: {}\n      properties: {{image: nginx}}\n"
    clash = "      traits:\n        - type: clash\n"
    app = app_file(tmp_path, "SHARD", traits=clash + second.format("load-test-SHARD-x"))
    res = run("render", str(app), "-d", str(defs))
    assert res.exit_code == 2
    assert 'unknown component type "load-test-SHARD-x" (component load-test-SHARD)' in res.stderr, res.stderr
    app = app_file(tmp_path, "SHARD", traits=clash + second.format("webservice"))
    res = run("render", str(app), "-d", str(defs))
    assert res.exit_code == 2
    assert 'conflicting values "other-value" and "<secret>"' in res.stderr, res.stderr
    assert "SHARD" not in res.stderr.replace("load-test-SHARD", "")
