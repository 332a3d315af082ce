"""tests/compat_corpus.py: collecting Applications from a checkout and classifying their renders."""

from __future__ import annotations

import sys
from pathlib import Path

from velapy.cue.engine import Evaluator
from velapy.errors import REASON_ENGINE_CRASH, REASON_NEEDS_INPUT, REASON_PROVIDER, REASON_UNKNOWN_DEFINITION
from velapy.load.definitions import Registry

sys.path.insert(0, str(Path(__file__).resolve().parent))
import compat_corpus as cc

APP = """apiVersion: core.oam.dev/v1beta1
kind: Application
metadata: {{name: {name}}}
spec:
  components: [{{name: w, type: {ctype}, properties: {{image: nginx}}}}]
"""


def checkout(tmp: Path) -> Path:
    (tmp / "docs").mkdir()
    (tmp / "docs" / "two.yaml").write_text(APP.format(name="a", ctype="webservice") + "---\n"
                                           + APP.format(name="b", ctype="my-addon-thing"))
    (tmp / "docs" / "other.yml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    (tmp / "docs" / "broken.yaml").write_text("kind: Application\n  bad: [\n")
    (tmp / "docs" / "guide.md").write_text("Text\n\n```yaml\n" + APP.format(name="d", ctype="worker")
                                           + "```\n\n```shell\nvela up\n```\n")
    (tmp / ".git").mkdir()
    (tmp / ".git" / "app.yaml").write_text(APP.format(name="c", ctype="webservice"))
    return tmp


def test_collect_finds_every_application_document(tmp_path: Path) -> None:
    found = list(cc.collect(checkout(tmp_path)))
    assert [w for w, _t in found] == ["docs/guide.md#0.0", "docs/two.yaml#0", "docs/two.yaml#1"]


def test_classify_by_structured_reasons() -> None:
    ok, other = cc.Outcome(True, [1]), cc.Outcome(True, [2])
    fail = cc.Outcome(False, reasons=frozenset({""}))
    assert cc.classify(ok, ok) == cc.IDENTICAL
    assert cc.classify(ok, other) == cc.DEFECT
    assert cc.classify(ok, fail) == cc.BUILTINS_ONLY
    assert cc.classify(fail, ok) == cc.DEFECT
    assert cc.classify(cc.Outcome(False, reasons=frozenset({REASON_UNKNOWN_DEFINITION})), fail) == cc.CUSTOM
    assert cc.classify(cc.Outcome(False, reasons=frozenset({REASON_PROVIDER})), fail) == cc.PROVIDER
    assert cc.classify(cc.Outcome(False, reasons=frozenset({REASON_ENGINE_CRASH})), fail) == cc.DEFECT
    assert cc.classify(cc.Outcome(False, reasons=frozenset({"internal"})), fail) == cc.DEFECT
    assert cc.classify(cc.Outcome(False, reasons=frozenset({REASON_NEEDS_INPUT})), fail) == cc.NEEDS_INPUT
    assert cc.classify(fail, fail) == cc.INVALID


def test_render_reports_reasons(tmp_path: Path, registry: Registry, evaluator: Evaluator) -> None:
    good, unknown = tmp_path / "good.yaml", tmp_path / "unknown.yaml"
    good.write_text(APP.format(name="a", ctype="webservice"))
    unknown.write_text(APP.format(name="b", ctype="my-addon-thing"))
    assert cc.render(str(good), registry, evaluator).ok
    out = cc.render(str(unknown), registry, evaluator)
    assert not out.ok and out.reasons == {REASON_UNKNOWN_DEFINITION}
    assert cc.classify(out, out) == cc.CUSTOM
