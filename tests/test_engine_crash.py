"""engine: a Go panic of the CUE engine is isolated to the instances it happens on, reported once."""

from __future__ import annotations

from typing import Any, cast

import pytest

from velapy.cue.engine import Evaluator, Instance, Reply, Template, WasmCue, engine_panic

# The construct the CUE v0.4 engine panics on: a `let` naming a context value that the batch writes
# once at the top level (a large value several context keys or instances share) and that a
# comprehension reads through another `let`.
CRASH = """
	#Edit: {key: *"" | string, value: string}
	parameter: #Edit | close({edits: [...#Edit]})
	let changes = [
		if parameter.edits == _|_ {
			target: *context.name | string
			if parameter.key != "" {target: parameter.key}
			edit: parameter
		},
		if parameter.edits != _|_ for c in parameter.edits {target: c.key, edit: c},
	]
	let owners = context.output.labels
	output: data: [for e in changes {
		if e.target != "" {
			let hits = [for k, v in owners if k == e.target {v}]
			if len(hits) > 0 {
				if e.edit.value != "" {x: e.edit.value}
			}
		}
	}]
	outputs: note: data: context.outputs.labels
"""
CRASHES = Template("crash-probe", CRASH, (), "/defs/crash-probe.cue", 5, 1)
FINE = Template("fine", "\tparameter: {value: string}\n\toutput: data: v: parameter.value\n", (), "/defs/f.cue", 5)
LABELS = {f"team.example.com/k{i}": "a-long-enough-label-value-" + str(i) for i in range(12)}


@pytest.fixture(autouse=True)
def _wasm_only(evaluator: Evaluator) -> None:
    if not isinstance(evaluator.runner, WasmCue):
        pytest.skip("the panic is a bug of the embedded CUE v0.4 engine")


def test_a_panic_is_recognised() -> None:
    text = ("panic: runtime error: invalid memory address or nil pointer dereference [recovered]\n"
            "\tpanic: runtime error: x\n\ngoroutine 1 [running]:\n")
    assert engine_panic(text) == "runtime error: invalid memory address or nil pointer dereference"
    assert engine_panic("x: conflicting values 1 and 2") == ""


def test_instances_that_crash_only_together_are_rescued(evaluator: Evaluator) -> None:
    # shared by two instances, the context is written once: the batch panics; alone each is fine
    ctx = {"name": "web", "output": {"labels": {**LABELS, "web": "yes"}}, "outputs": {"labels": {}}}
    insts = [Instance(CRASHES, {"value": v}, ctx) for v in ("a", "b")] + [Instance(FINE, {"value": "c"}, {})]
    results = evaluator.evaluate(insts)
    assert [r.errors for r in results] == [[], [], []]
    assert [r.value["output"]["data"] for r in results] == [[{"x": "a"}], [{"x": "b"}], {"v": "c"}]


class _PanicsOnMarker:
    """The shared engine, except that a batch holding MARKER ends as the engine's Go panic does.

    The v0.4 panic above depends on how a batch is written (it needs a large context value written
    once and read twice); batches are now written so that it no longer fires, so the isolation of a
    crashing instance is checked with a batch that is made to crash.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.needs_v04_rewrites = inner.needs_v04_rewrites

    def identity(self) -> str:
        return "panics on a marker, over " + str(self.inner.identity())

    def run(self, args: list[str]) -> Reply:
        with open(args[1], encoding="utf-8") as fh:
            if MARKER in fh.read():
                return Reply(2, "", "panic: runtime error: invalid memory address or nil pointer dereference "
                                    "[recovered]\n\ngoroutine 1 [running]:\nmain.main()\n")
        return cast(Reply, self.inner.run(args))

    def describe(self) -> str:
        return "panics on a marker"

    def clone(self) -> _PanicsOnMarker:
        return self

    def close(self) -> None:  # the shared engine belongs to the session
        pass


MARKER = "velapy-test-panic"
PANICS = Template("panics", f"\t// {MARKER}\n\tparameter: {{value: string}}\n\toutput: data: v: parameter.value\n",
                  (), "/defs/panics.cue", 5)


def test_an_instance_that_crashes_alone_gets_one_crash_error(evaluator: Evaluator) -> None:
    with Evaluator(_PanicsOnMarker(evaluator.runner)) as ev:
        insts = [Instance(FINE, {"value": "ok"}, {}), Instance(PANICS, {"value": "a"}, {}),
                 Instance(FINE, {"value": "ok2"}, {})]
        results = ev.evaluate(insts)
    assert results[0].errors == [] and results[0].value["output"]["data"] == {"v": "ok"}
    assert results[2].errors == [] and results[2].value["output"]["data"] == {"v": "ok2"}
    assert len(results[1].errors) == 1 and results[1].errors[0].crashed
    assert "nil pointer dereference" in results[1].errors[0].message
