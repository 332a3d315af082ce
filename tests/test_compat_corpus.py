"""tests/compat_corpus.py: collecting Applications from a checkout and classifying their renders."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from velapy.cue.engine import Evaluator
from velapy.errors import (
    REASON_ENGINE_CRASH,
    REASON_LIVE_CLUSTER,
    REASON_NEEDS_INPUT,
    REASON_PROVIDER,
    REASON_UNKNOWN_DEFINITION,
)
from velapy.load.definitions import Registry, load_registry

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
    assert cc.classify(cc.Outcome(False, reasons=frozenset({REASON_LIVE_CLUSTER})), fail) == cc.LIVE
    assert cc.classify(fail, fail) == cc.INVALID
    # with a definition the corpus holds, a failure is to examine, not "invalid"
    assert cc.classify(fail, fail, found=True) == cc.FOUND_FAILS
    assert cc.classify(cc.Outcome(False, reasons=frozenset({REASON_PROVIDER})), fail, found=True) == cc.PROVIDER


def test_render_reports_reasons(tmp_path: Path, registry: Registry, evaluator: Evaluator) -> None:
    good, unknown = tmp_path / "good.yaml", tmp_path / "unknown.yaml"
    good.write_text(APP.format(name="a", ctype="webservice"))
    unknown.write_text(APP.format(name="b", ctype="my-addon-thing"))
    assert cc.render(str(good), registry, evaluator).ok
    out = cc.render(str(unknown), registry, evaluator)
    assert not out.ok and out.reasons == {REASON_UNKNOWN_DEFINITION}
    assert cc.classify(out, out) == cc.CUSTOM


def test_collect_reads_indented_blocks_fills_placeholders_and_skips_addon_templates(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    block = "".join("    " + line + "\n" for line in APP.format(name="TEST_NS", ctype="worker").splitlines())
    (docs / "tabs.mdx").write_text("<Tabs>\n  <TabItem>\n\n    ```yaml title=\"app.yaml\"\n" + block
                                   + "    ```\n\n```shell\nkind: Application\n```\n")
    addon = tmp_path / "addons" / "x"
    addon.mkdir(parents=True)
    (addon / "metadata.yaml").write_text("name: x\n")
    (addon / "template.yaml").write_text(APP.format(name="own", ctype="webservice"))
    found = list(cc.collect(tmp_path, [("TEST_NS", "filled")]))
    assert [w for w, _t in found] == ["docs/tabs.mdx#0.0"]
    assert yaml.safe_load(found[0][1])["metadata"]["name"] == "filled"


def test_distinct_counts_copies_once() -> None:
    found = [("a#0", "x: 1\n"), ("b#0", "x: 2\n"), ("c#0", "x: 1\n")]
    assert cc.distinct(iter(found)) == [("a#0", "x: 1\n", 2), ("b#0", "x: 2\n", 1)]


TRAIT_CUE = """"{name}": {{
\ttype: "trait"
\tattributes: {{}}
}}
template: {{
\tparameter: {{replicas: *1 | int}}
\tpatch: spec: replicas: parameter.replicas
}}
"""


def test_definitions_found_in_the_corpus_nearest_first(tmp_path: Path, registry: Registry) -> None:
    for where in ("a/defs", "b/defs"):
        (tmp_path / where).mkdir(parents=True)
        (tmp_path / where / "scale.cue").write_text(TRAIT_CUE.format(name="my-scale"))
    # a definition velapy rejects is still found by its name (here: no template)
    (tmp_path / "b" / "defs" / "tf.yaml").write_text(
        "apiVersion: core.oam.dev/v1beta1\nkind: ComponentDefinition\nmetadata: {name: my-tf}\n"
        "spec: {schematic: {terraform: {configuration: 'x'}}}\n")
    index = cc.DefinitionIndex()
    index.add_root(tmp_path)
    app = yaml.safe_load(APP.format(name="a", ctype="my-tf"))
    app["spec"]["components"][0]["traits"] = [{"type": "my-scale"}, {"type": "scaler"}]
    app["spec"]["workflow"] = {"steps": [{"type": "step-group", "subSteps": [{"type": "my-step"}]}]}
    assert cc.wanted(app) == {("component", "my-tf"), ("trait", "my-scale"), ("trait", "scaler"),
                              ("workflow-step", "my-step")}
    got = cc.missing_files(app, registry, index, tmp_path / "b" / "apps" / "app.yaml")
    assert got == [tmp_path / "b" / "defs" / "tf.yaml", tmp_path / "b" / "defs" / "scale.cue"]
    near_a = cc.missing_files(app, registry, index, tmp_path / "a" / "app.yaml")
    assert near_a[1] == tmp_path / "a" / "defs" / "scale.cue"


def test_render_with_a_found_definition(tmp_path: Path, evaluator: Evaluator) -> None:
    (tmp_path / "scale.cue").write_text(TRAIT_CUE.format(name="my-scale"))
    app = yaml.safe_load(APP.format(name="a", ctype="webservice"))
    app["spec"]["components"][0]["traits"] = [{"type": "my-scale", "properties": {"replicas": 3}}]
    (tmp_path / "app.yaml").write_text(yaml.safe_dump(app))
    out = cc.render_with(str(tmp_path / "app.yaml"), [], [tmp_path / "scale.cue"], evaluator)
    assert out.ok
    ((_title, _comp, objects),) = out.objects
    assert [o["spec"]["replicas"] for _t, _r, o in objects if o["kind"] == "Deployment"] == [3]


def test_an_addon_definition_wins_over_a_fixture_elsewhere_in_the_repository(tmp_path: Path) -> None:
    repo, catalog = tmp_path / "repo", tmp_path / "catalog" / "addons" / "fluxcd" / "definitions"
    for where in (repo / "docs" / "defs", repo / "references" / "testdata", catalog):
        where.mkdir(parents=True)
        (where / "scale.cue").write_text(TRAIT_CUE.format(name="my-scale"))
    index = cc.DefinitionIndex()
    index.add_root(repo)
    index.add_root(catalog, addon=True)
    # beside the app (same top folder): the repository's own; elsewhere: the addon's, not the fixture's
    assert index.lookup("trait", "my-scale", repo / "docs" / "app.yaml") == repo / "docs" / "defs" / "scale.cue"
    assert index.lookup("trait", "my-scale", repo / "examples" / "app.yaml") == catalog / "scale.cue"


def test_gist_groups_alike_failures() -> None:
    a = "error: /x/rds.yaml:4: component definition alibaba-rds has no CUE template\n  hint: ..."
    b = "error: /y/vpc.yaml:9: component definition alibaba-vpc has no CUE template"
    assert cc.gist(a) == cc.gist(b) == "component definition X has no CUE template"


DEPLOYING_STEP = """import ("vela/op")

"my-deploy": {
\ttype: "workflow-step"
}
template: {
\tdeploy: op.#Deploy & {policies: parameter.policies}
\tparameter: policies: [...string]
}
"""
INLINE_STEP = """import ("vela/op")

"my-inline": {
\ttype: "workflow-step"
}
template: {
\tdeploy: op.#Deploy & {
\t\tpolicies: []
\t\tinlinePolicies: [{type: "override", name: "x", properties: components: [{traits: []}]}]
\t}
\tparameter: {}
}
"""
QUIET_STEP = """"my-note": {
\ttype: "workflow-step"
}
template: {
\tparameter: {}
}
"""


def _custom_step_app(tmp_path: Path, evaluator: Evaluator, step: str) -> tuple[str, Registry, cc.Outcome]:
    for name, text in (("deploy", DEPLOYING_STEP), ("inline", INLINE_STEP), ("note", QUIET_STEP)):
        (tmp_path / f"{name}.cue").write_text(text)
    app = yaml.safe_load(APP.format(name="a", ctype="webservice"))
    app["spec"]["workflow"] = {"steps": [{"name": "s", "type": step, "properties": {}}]}
    (tmp_path / "app.yaml").write_text(yaml.safe_dump(app))
    registry = load_registry([str(tmp_path / f"{n}.cue") for n in ("deploy", "inline", "note")])
    streamed = cc.render(str(tmp_path / "app.yaml"), registry, evaluator)
    assert streamed.ok
    return str(tmp_path / "app.yaml"), registry, streamed


@pytest.mark.parametrize(("step", "cause"), [("my-deploy", ""), ("my-inline", cc.PROVIDER), ("my-note", "")])
def test_render_o_of_a_custom_deploying_step(tmp_path: Path, evaluator: Evaluator, step: str, cause: str) -> None:
    """Issue 22 item 2 in the corpus: the dry-run stream renders the components; `render -o` places
    them for an op.#Deploy with the step's policies, and refuses, located, one with inline policies,
    which only KubeVela's controller runs: counted as "controller", neither identical nor a defect.
    A step that deploys nothing rightly plans nothing."""
    app, registry, streamed = _custom_step_app(tmp_path, evaluator, step)
    planned, why = cc.plan_check(app, registry, evaluator, streamed)
    assert planned == cause
    if cause:
        assert "workflow step s (type my-inline) deploys the application's components" in why
        assert "app.yaml:" in why and "spec.workflow.steps[0].type" in why


def test_an_empty_plan_for_a_deploying_custom_step_is_a_defect(tmp_path: Path, evaluator: Evaluator,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Were velapy to plan a deploying custom step as a plain step again (issue 22 item 2 before its
    fix: no objects, exit 0, no warning), the corpus check says so."""
    import velapy.compile.plan as plan_module
    monkeypatch.setattr(plan_module, "deploying_actions", lambda d: [])
    app, registry, streamed = _custom_step_app(tmp_path, evaluator, "my-deploy")
    planned, why = cc.plan_check(app, registry, evaluator, streamed)
    assert planned == cc.DEFECT
    assert why.startswith("render -o: a plan without objects while the dry-run stream shows 1; "
                          "the steps s (my-deploy)")
