"""engine: batched evaluation, errors mapped to instance and template file:line, runner selection."""

from __future__ import annotations

from pathlib import Path

import pytest

from velapy.cue.engine import Evaluator, Instance, Template, select_runner
from velapy.errors import EngineError

BODY = """
	parameter: {image: string, replicas: *1 | int}
	output: {
		apiVersion: "apps/v1"
		kind: "Deployment"
		metadata: name: strings.ToLower(context.name)
		spec: replicas: parameter.replicas
		spec: template: spec: containers: [{name: context.name, image: parameter.image}]
	}
	// +patchStrategy=jsonMergePatch
	patch: {
		metadata: labels: x: "y"
	}
"""
TEMPLATE = Template("demo", BODY, ('"strings"',), "/defs/demo.cue", 20, 11)


def test_many_instances_cost_one_engine_call(evaluator: Evaluator) -> None:
    before = evaluator.calls
    insts = [Instance(TEMPLATE, {"image": f"nginx:{i}"}, {"name": f"Web{i}"}) for i in range(40)]
    results = evaluator.evaluate(insts)
    assert evaluator.calls == before + 1
    assert [r.value["output"]["metadata"]["name"] for r in results] == [f"web{i}" for i in range(40)]
    assert results[7].value["output"]["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:7"
    assert results[0].tags[("patch",)] == {"patchStrategy": "jsonMergePatch"}


def test_identical_instances_are_evaluated_once_and_context_is_not_exported(evaluator: Evaluator) -> None:
    inst = Instance(TEMPLATE, {"image": "a"}, {"name": "x", "big": list(range(50))})
    a, b = evaluator.evaluate([inst, inst])
    assert a is b
    assert "context" not in a.value


def test_errors_are_mapped_to_their_instance_and_template_line(evaluator: Evaluator) -> None:
    good = Instance(TEMPLATE, {"image": "ok"}, {"name": "ok"})
    wrong_type = Instance(TEMPLATE, {"image": 3}, {"name": "a"})
    conflict = Instance(Template("c", "\toutput: a: 1\n\toutput: a: 2\n", (), "/defs/c.cue", 5, 11), None, {})
    r_good, r_wrong, r_conflict = evaluator.evaluate([good, wrong_type, conflict])
    assert not r_good.errors and r_good.value["output"]["metadata"]["name"] == "ok"
    assert r_wrong.errors and r_wrong.errors[0].in_parameter
    assert r_wrong.errors[0].path == "parameter.image"
    err = r_conflict.errors[0]
    assert err.path == "output.a" and "conflicting values" in err.message
    assert {(f, line) for f, line, _c in err.positions} == {("/defs/c.cue", 5), ("/defs/c.cue", 6)}


def test_missing_required_parameter_is_reported(evaluator: Evaluator) -> None:
    (r,) = evaluator.evaluate([Instance(TEMPLATE, {}, {"name": "x"})])
    assert any("incomplete" in e.message for e in r.errors)


def test_vela_definitions_that_declare_context_still_work(evaluator: Evaluator) -> None:
    t = Template("ctx", "\tcontext: name: string\n\toutput: {kind: \"X\", n: context.name}\n", (), "/d.cue", 1, 1,
                 declares_context=True)
    (r,) = evaluator.evaluate([Instance(t, None, {"name": "n1"})])
    assert r.value["output"] == {"kind": "X", "n": "n1"}


def test_runner_selection_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match="not an executable"):
        select_runner({"VELAPY_CUE": str(tmp_path / "nope"), "PATH": ""})
    with pytest.raises(EngineError, match="make setup"):
        select_runner({"PATH": "", "VELAPY_ENGINE_DIR": str(tmp_path)})


def test_only_the_context_keys_a_template_reads_are_sent() -> None:
    from velapy.cue.engine import context_keys_used

    assert context_keys_used('a: context.name + context["ns"]\nb: context . output.spec') == {"name", "ns", "output"}
    assert context_keys_used("x: context") is None  # used whole: everything is sent
    assert context_keys_used("contexts: 1") == frozenset()


def test_a_comment_naming_the_context_does_not_count_as_reading_it() -> None:
    from velapy.cue.engine import context_keys_used

    # the built-in env trait says "a `let` naming the context that ..." in a comment: read as a use
    # of the whole context, it made every cluster's instance distinct (7,500 evaluations at 300x50)
    assert context_keys_used("// the context that a comprehension reads\na: context.name") == {"name"}
    assert context_keys_used('a: "http://\\(context.cluster)" // context') == {"cluster"}
    assert context_keys_used("a: 'x // y'\nb: context") is None  # no comment here: a whole use
    assert context_keys_used('a: "unterminated context') is None  # does not lex: read as written


def test_instances_differing_only_in_unread_context_are_one_evaluation(evaluator: Evaluator) -> None:
    before = evaluator.calls
    big = [{"name": f"c{i}", "properties": {"x": "y" * 50}} for i in range(40)]
    insts = [Instance(TEMPLATE, {"image": "same"}, {"name": "web", "components": big, "cluster": f"c{i}"})
             for i in range(10)]
    results = evaluator.evaluate(insts)
    assert evaluator.calls == before + 1
    assert all(r is results[0] for r in results)


def test_dynamic_labels_in_comprehensions_work_on_the_embedded_engine(evaluator: Evaluator) -> None:
    from velapy.cue.engine import rewrite_dynamic_labels

    body = '\t_del: {for k in parameter.unset {(k): ""}}\n\toutput: {kind: "X", keys: [for k, _ in _del {k}]}\n'
    assert rewrite_dynamic_labels('x: {(a.b + "-"): 1}\nif (c) {}\ns: "(k): v"') == \
        'x: {"\\(a.b + "-")": 1}\nif (c) {}\ns: "(k): v"'
    (r,) = evaluator.evaluate([Instance(Template("dyn", body, (), "/d.cue", 1), {"unset": ["a", "b"]}, {})])
    assert not r.errors and r.value["output"]["keys"] == ["a", "b"]


def test_iterating_an_absent_optional_field_yields_nothing(evaluator: Evaluator) -> None:
    from velapy.cue.engine import guard_optional_iteration

    assert guard_optional_iteration('x: [for v in p.a.b {v}]\ns: "for v in p.a {"') == \
        'x: [if p.a.b != _|_ for v in p.a.b {v}]\ns: "for v in p.a {"'
    body = ('\tparameter: {mounts?: {pvc?: [...string]}}\n'
            '\t_names: *[for v in parameter.mounts.pvc {v}] | []\n'
            '\toutput: {kind: "X", n: list.Concat([_names, ["z"]])}\n')
    t = Template("opt", body, ('"list"',), "/d.cue", 1)
    none, some = evaluator.evaluate([Instance(t, {}, {}), Instance(t, {"mounts": {"pvc": ["a"]}}, {})])
    assert none.value["output"]["n"] == ["z"] and some.value["output"]["n"] == ["a", "z"]


def test_positions_map_back_whatever_the_current_directory(evaluator: Evaluator, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    conflict = Instance(Template("c2", "\toutput: b: 1\n\toutput: b: 2\n", (), "/defs/c2.cue", 7, 11), None, {})
    (r,) = evaluator.evaluate([conflict])
    assert {(f, line) for f, line, _c in r.errors[0].positions} == {("/defs/c2.cue", 7), ("/defs/c2.cue", 8)}


def test_a_large_round_is_split_over_two_engine_processes_in_order(evaluator: Evaluator) -> None:
    with evaluator.lend(parallel=2) as ev:  # the session's process, and one more for the second half
        insts = [Instance(TEMPLATE, {"image": f"img:{i}"}, {"name": f"N{i}"}) for i in range(30)]
        bad = Instance(TEMPLATE, {"image": 7}, {"name": "bad"})
        results = ev.evaluate([*insts[:20], bad, *insts[20:]])
        assert ev.calls == 1 and ev.processes == 2
        names = [r.value["output"]["metadata"]["name"] for k, r in enumerate(results) if k != 20]
        assert names == [f"n{i}" for i in range(30)]
        assert results[20].errors and results[20].errors[0].path == "parameter.image"


def test_a_non_concrete_helper_field_does_not_fail_the_instance(evaluator: Evaluator) -> None:
    """KubeVela checks only the result fields: a template's own open helper (`language: string`) is fine."""
    from velapy.cue.engine import root_tags

    body = ('\tlanguage: "go" | "java"\n'
            '\t// +patchStrategy=jsonMergePatch\n'
            '\tpatch: {\n\t\tmetadata: labels: lang: parameter.lang\n\t}\n'
            '\tparameter: lang: string\n')
    t = Template("helper", body, (), "/d.cue", 1)
    good, bad = evaluator.evaluate([Instance(t, {"lang": "x"}, {}), Instance(t, {"lang": 1}, {})])
    assert not good.errors and good.value == {"patch": {"metadata": {"labels": {"lang": "x"}}}}
    assert good.tags[("patch",)] == {"patchStrategy": "jsonMergePatch"}
    assert bad.errors and bad.errors[0].in_parameter
    assert root_tags("x: 1\n// +a=b\n\n// +c=d\npatch: {\n\t// +e=f\n\tq: 1\n}\n", "patch") == {"c": "d"}


CONTEXT_HELPER = '''
	srcName: context.output.metadata.name
	outputs: ref: {
		apiVersion: "v1"
		kind:       "ConfigMap"
		data: {
			if srcName != _|_ {
				name: srcName
			}
			if srcName == _|_ {
				name: context.name
			}
		}
	}
'''


def test_a_helper_reading_a_missing_context_field_is_tolerated(evaluator: Evaluator) -> None:
    # KubeVela's traitDef.Complete validates without concreteness: the helper is incomplete,
    # `if srcName != _|_` takes the other branch (the kruise-rollout addon's trait)
    t = Template("rollout", CONTEXT_HELPER, (), "/defs/rollout.cue", 10)
    without, with_meta = evaluator.evaluate([
        Instance(t, {}, {"name": "web", "output": {"apiVersion": "apps/v1", "kind": "Deployment"}}),
        Instance(t, {}, {"name": "web", "output": {"kind": "Deployment", "metadata": {"name": "real"}}}),
    ])
    assert not without.errors and without.value["outputs"]["ref"]["data"] == {"name": "web"}
    assert not with_meta.errors and with_meta.value["outputs"]["ref"]["data"] == {"name": "real"}
    # a missing field used by a result is still an error, and so is one that is not the context's
    used = Template("used", "outputs: ref: {kind: \"ConfigMap\", apiVersion: \"v1\", data: name: "
                            "context.output.metadata.name}", (), "/defs/used.cue", 1)
    own = Template("own", "_h: {a: 1}\nhelper: _h.b\noutputs: ref: {kind: \"ConfigMap\", apiVersion: \"v1\"}",
                   (), "/defs/own.cue", 1)
    r_used, r_own = evaluator.evaluate([Instance(used, {}, {"output": {"kind": "Deployment"}}), Instance(own, {}, {})])
    assert r_used.errors and r_own.errors
