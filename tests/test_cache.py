"""cache: the render cache's files (atomic, bounded, never a Secret) and its use by the evaluator and CLI."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from velapy import cli
from velapy.cue.cache import RenderCache, cache_root
from velapy.cue.engine import Evaluator, Instance, Template

BODY = """
	parameter: {image: string}
	output: {
		apiVersion: "apps/v1"
		kind: "Deployment"
		metadata: name: context.name
		// +patchKey=name
		spec: template: spec: containers: [{name: context.name, image: parameter.image}]
	}
"""
TEMPLATE = Template("demo", BODY, (), "/defs/demo.cue", 3, 1)
SECRET = Template("secret", """
	parameter: {value: string}
	output: {apiVersion: "v1", kind: "Secret", metadata: name: "s", stringData: token: parameter.value}
""", (), "/defs/secret.cue", 3, 1)


@pytest.fixture()
def cached(evaluator: Evaluator, tmp_path: Path) -> Iterator[Evaluator]:
    """An evaluator on the session's engine process with a private cache folder."""
    with evaluator.lend(cache=RenderCache(tmp_path / "cache")) as ev:
        yield ev


@pytest.fixture()
def lent_engine(monkeypatch: pytest.MonkeyPatch, evaluator: Evaluator) -> None:
    """The CLI gets the session's engine process, with the cache the command asks for."""

    @contextlib.contextmanager
    def lend(cache: bool = True) -> Iterator[Evaluator]:
        with evaluator.lend(cache=RenderCache() if cache else None) as ev:
            yield ev

    monkeypatch.setattr(cli.base, "open_evaluator", lend)


def test_cache_folder_follows_the_environment() -> None:
    assert cache_root({"VELAPY_CACHE_DIR": "/x/c", "XDG_CACHE_HOME": "/y"}) == Path("/x/c")
    assert cache_root({"XDG_CACHE_HOME": "/y"}) == Path("/y/velapy")
    assert cache_root({"HOME": "/home/u"}).name == "velapy"


def test_entries_round_trip_and_leave_no_temporary_files(tmp_path: Path) -> None:
    c = RenderCache(tmp_path)
    assert c.get("ab" * 32) is None
    c.put("ab" * 32, {"value": {"x": [1, "two"]}})
    assert c.get("ab" * 32) == {"value": {"x": [1, "two"]}}
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == ["ab" * 32 + ".json"]


def test_a_broken_entry_is_a_miss(tmp_path: Path) -> None:
    c = RenderCache(tmp_path)
    c.put("cd" * 32, {"v": 1})
    next(tmp_path.rglob("*.json")).write_text("{not json")
    assert c.get("cd" * 32) is None


def test_the_folder_is_kept_within_its_limit_dropping_the_least_recently_used(tmp_path: Path) -> None:
    c = RenderCache(tmp_path, max_bytes=4000)
    for n in range(10):
        c.put(f"{n:02d}" * 32, {"pad": "x" * 900})
        path = next(tmp_path.rglob(f"{n:02d}*.json"))
        os.utime(path, (1000 + n, 1000 + n))
    os.utime(next(tmp_path.rglob("00*.json")), (5000, 5000))  # the oldest was used just now
    c.close()
    left = sorted(p.name[:2] for p in tmp_path.rglob("*.json"))
    assert sum(p.stat().st_size for p in tmp_path.rglob("*.json")) <= 3000
    assert "00" in left and "01" not in left and "09" in left


def test_a_cached_instance_costs_no_engine_call_and_gives_the_same_result(cached: Evaluator) -> None:
    insts = [Instance(TEMPLATE, {"image": f"nginx:{i}"}, {"name": f"w{i}"}) for i in range(3)]
    first = cached.evaluate(insts)
    calls = cached.calls
    again = cached.evaluate(insts)
    assert cached.calls == calls
    assert [r.value for r in again] == [r.value for r in first]
    assert again[0].tags == first[0].tags and first[0].tags  # the patchKey tag survives the cache
    cached.evaluate([Instance(TEMPLATE, {"image": "nginx:new"}, {"name": "w0"})])
    assert cached.calls == calls + 1  # a changed parameter is a miss


def test_failures_and_secrets_are_never_stored(cached: Evaluator) -> None:
    assert cached.cache is not None
    (bad,) = cached.evaluate([Instance(TEMPLATE, {"image": 3}, {"name": "w"})])
    (secret,) = cached.evaluate([Instance(SECRET, {"value": "hunter2-token"}, {})])
    assert bad.errors and not secret.errors
    assert cached.cache.written == 0
    assert not any(cached.cache.root.rglob("*.json"))


@pytest.mark.usefixtures("lent_engine")
def test_cli_render_fills_the_cache_and_no_cache_bypasses_it(tmp_path: Path) -> None:
    app = tmp_path / "app.yaml"
    app.write_text(yaml.safe_dump({
        "apiVersion": "core.oam.dev/v1beta1", "kind": "Application", "metadata": {"name": "a"},
        "spec": {"components": [{"name": "web", "type": "webservice", "properties": {"image": "nginx"},
                                 "traits": [{"type": "scaler", "properties": {"replicas": 2}}]}]}}))
    env = {"VELAPY_CACHE_DIR": str(tmp_path / "c1")}
    runner = CliRunner()
    r1 = runner.invoke(cli.main, ["render", str(app), "-o", str(tmp_path / "out1"), "--no-cache"], env=env)
    assert r1.exit_code == 0, r1.output
    assert not (tmp_path / "c1").exists()
    r2 = runner.invoke(cli.main, ["render", str(app), "-o", str(tmp_path / "out2")], env=env)
    assert r2.exit_code == 0, r2.output
    assert len(list((tmp_path / "c1").rglob("*.json"))) == 3  # the component, its trait, the folder record
    r3 = runner.invoke(cli.main, ["render", str(app), "-o", str(tmp_path / "out2"), "--check"], env=env)
    assert r3.exit_code == 0, r3.output
    files = {p.relative_to(tmp_path / "out1"): p.read_bytes() for p in (tmp_path / "out1").rglob("*") if p.is_file()}
    assert files == {p.relative_to(tmp_path / "out2"): p.read_bytes()
                     for p in (tmp_path / "out2").rglob("*") if p.is_file()}


def test_engine_processes_follow_the_free_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    from velapy import pipeline
    monkeypatch.setattr(pipeline.os, "sched_getaffinity", lambda _pid: {0, 1}, raising=False)
    monkeypatch.setattr(pipeline.os, "getloadavg", lambda: (0.1, 0.1, 0.1))
    assert pipeline.engine_processes({}) == 2  # idle: one per core
    monkeypatch.setattr(pipeline.os, "getloadavg", lambda: (1.2, 1.0, 1.0))
    assert pipeline.engine_processes({}) == 1  # one core busy elsewhere
    monkeypatch.setattr(pipeline.os, "getloadavg", lambda: (7.0, 6.0, 5.0))
    assert pipeline.engine_processes({}) == 1  # never fewer than one
    assert pipeline.engine_processes({"VELAPY_ENGINE_PROCESSES": "3"}) == 3


@pytest.mark.usefixtures("lent_engine")
def test_an_unchanged_render_answers_from_the_cache_and_any_change_renders_again(tmp_path: Path) -> None:
    app = tmp_path / "app.yaml"

    def write_app(replicas: int, secret: bool = False) -> None:
        comps: list[dict[str, object]] = [
            {"name": "web", "type": "webservice", "properties": {"image": "nginx"},
             "traits": [{"type": "scaler", "properties": {"replicas": replicas}}]}]
        if secret:
            comps.append({"name": "creds", "type": "k8s-objects", "properties": {"objects": [
                {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"},
                 "stringData": {"token": "hunter2"}}]}})
        app.write_text(yaml.safe_dump({"apiVersion": "core.oam.dev/v1beta1", "kind": "Application",
                                       "metadata": {"name": "a"}, "spec": {"components": comps}}))

    env = {"VELAPY_CACHE_DIR": str(tmp_path / "cache")}
    out = str(tmp_path / "out")
    runner = CliRunner()

    def render(*extra: str) -> str:
        r = runner.invoke(cli.main, ["render", str(app), "-o", out, *extra], env=env)
        assert r.exit_code == 0, r.output
        return r.output

    write_app(2)
    assert "wrote" in render()
    assert "up to date" in render()
    assert "up to date" in runner.invoke(cli.main, ["render", str(app), "-o", out, "--check"], env=env).output
    assert "wrote" in render("--no-cache")
    deployment = next((tmp_path / "out").rglob("deployment_web.yaml"))
    deployment.write_text(deployment.read_text().replace("replicas: 2", "replicas: 9"))
    assert "wrote" in render()  # the folder was edited: render again
    assert "replicas: 2" in deployment.read_text()
    write_app(3)
    check = runner.invoke(cli.main, ["render", str(app), "-o", out, "--check"], env=env)
    assert check.exit_code == 1  # a changed input is never answered from the cache
    assert "wrote" in render() and "replicas: 3" in deployment.read_text()
    write_app(3, secret=True)
    assert "wrote" in render()
    assert "wrote" in render()  # a render holding a Secret is not remembered
    assert not any("hunter2" in p.read_text() for p in (tmp_path / "cache").rglob("*.json"))
