"""velapy.review.sides: the library behind `velapy diff` and `render -o DIR --check`.

A one-component app (a ConfigMap, one engine round per render) on the session's shared engine;
the CLI end to end is tests/test_golden_cmd.py, this file calls the functions directly.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from velapy.cue.cache import RenderCache
from velapy.cue.engine import Evaluator
from velapy.errors import EXIT_INVALID, InputError
from velapy.pipeline import Inputs, compile_app, output_files, write_output
from velapy.review.diff import ADDED, CHANGED, REMOVED, Comparison
from velapy.review.sides import check_output, diff, fresh_output, owned_files

APP = """\
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata: {name: shop, namespace: shop}
spec:
  components:
    - name: cfg
      type: k8s-objects
      properties:
        objects:
          - apiVersion: v1
            kind: ConfigMap
            metadata: {name: cfg}
            data: {mode: blue}
"""
SECRET = """\
          - apiVersion: v1
            kind: Secret
            metadata: {name: creds}
            stringData: {password: hunter2-not-real}
"""
CONFIGMAP = "clusters/local/shop/configmap_cfg.yaml"


def write_app(path: Path, text: str = APP) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return str(path)


def fields(cmp: Comparison) -> list[tuple[str, str, str, str, list[str]]]:
    """(cluster, status, kind, name, changed field paths) of every object change."""
    return [(c.cluster, o.status, o.key.kind, o.key.name, [f.path_text for f in o.fields])
            for c in cmp.clusters for o in c.objects]


@pytest.fixture
def cached(evaluator: Evaluator, tmp_path: Path) -> Iterator[Evaluator]:
    with evaluator.lend(cache=RenderCache(tmp_path / "cache")) as ev:
        yield ev


# owned_files --------------------------------------------------------------------------------------

def test_owned_files_are_the_plan_and_the_folders_render_writes() -> None:
    files = {"plan.yaml": "p", "clusters/a/x.yaml": "x", "argocd/app.yaml": "a", "flux/k.yaml": "k",
             "README.md": "mine", "notes/clusters/y.yaml": "mine", "clusters": "a file, not the folder",
             "plan.yaml.bak": "mine", "argocdx/z.yaml": "mine"}
    assert owned_files(files) == {"plan.yaml": "p", "clusters/a/x.yaml": "x", "argocd/app.yaml": "a",
                                  "flux/k.yaml": "k"}
    assert owned_files({}) == {}


# check_output -------------------------------------------------------------------------------------

def test_check_of_a_missing_folder_lists_every_file_as_new(evaluator: Evaluator, tmp_path: Path) -> None:
    inputs = Inputs(write_app(tmp_path / "app.yaml"))
    cmp, exists = check_output(inputs, str(tmp_path / "out"), evaluator)
    assert exists is False and not (tmp_path / "out").exists()  # nothing is written
    assert sorted((f.path, f.status) for f in cmp.files) == [
        ("clusters/local/kustomization.yaml", ADDED), (CONFIGMAP, ADDED), ("plan.yaml", ADDED)]
    assert fields(cmp) == [("local", ADDED, "ConfigMap", "cfg", [])]


def test_check_after_a_write_is_equal_and_ignores_files_render_does_not_own(evaluator: Evaluator,
                                                                             tmp_path: Path) -> None:
    inputs = Inputs(write_app(tmp_path / "app.yaml"))
    out = tmp_path / "out"
    write_output(compile_app(inputs, evaluator), str(out))
    (out / "README.md").write_text("notes of the team\n")
    (out / "extra").mkdir()
    (out / "extra" / "x.yaml").write_text("kind: Foreign\n")
    assert check_output(inputs, str(out), evaluator) == (Comparison(), True)
    # a stale object and a deleted file are what a refresh would change
    cm = out / CONFIGMAP
    cm.write_text(cm.read_text().replace("mode: blue", "mode: green"))
    (out / "clusters" / "local" / "kustomization.yaml").unlink()
    cmp, exists = check_output(inputs, str(out), evaluator)
    assert exists is True
    assert fields(cmp) == [("local", CHANGED, "ConfigMap", "cfg", ["data.mode"])]
    assert sorted((f.path, f.status) for f in cmp.files) == [("clusters/local/kustomization.yaml", ADDED),
                                                            (CONFIGMAP, CHANGED)]
    assert cmp.stale_clusters() == ["local"]


def test_check_of_a_file_where_the_folder_should_be_is_a_located_error(evaluator: Evaluator,
                                                                        tmp_path: Path) -> None:
    inputs = Inputs(write_app(tmp_path / "app.yaml"))
    (tmp_path / "out").write_text("not a folder\n")
    with pytest.raises(InputError) as info:
        check_output(inputs, str(tmp_path / "out"), evaluator)
    (d,) = info.value.diagnostics
    assert info.value.exit_code == EXIT_INVALID
    assert (d.message, d.location.file) == (f"-o {tmp_path / 'out'}: exists and is not a folder", str(tmp_path / "out"))


def test_a_checked_folder_is_remembered_until_it_or_an_input_changes(cached: Evaluator, tmp_path: Path) -> None:
    app = write_app(tmp_path / "app.yaml")
    inputs, out = Inputs(app), str(tmp_path / "out")
    assert fresh_output(inputs, out, cached) is None  # no folder yet
    write_output(compile_app(inputs, cached), out)
    assert fresh_output(inputs, out, cached) is None  # written, but not by a remembering check
    assert check_output(inputs, out, cached) == (Comparison(), True)
    remembered = fresh_output(inputs, out, cached)
    assert remembered is not None and remembered.counts == "local 1" and remembered.warnings == ()
    calls = cached.calls
    assert check_output(inputs, out, cached) == (Comparison(), True)
    assert cached.calls == calls  # answered without rendering
    # a foreign file does not matter; a changed output file or a changed input does
    Path(out, "README.md").write_text("x\n")
    assert fresh_output(inputs, out, cached) == remembered
    Path(app).write_text(APP.replace("mode: blue", "mode: blue  # same object, other bytes"))
    assert fresh_output(inputs, out, cached) is None
    write_app(tmp_path / "app.yaml")
    assert fresh_output(inputs, out, cached) == remembered
    cm = Path(out, CONFIGMAP)
    cm.write_text(cm.read_text() + "# edited\n")
    assert fresh_output(inputs, out, cached) is None
    assert fresh_output(Inputs(app, namespace="other"), out, cached) is None  # other options: another key


def test_a_render_holding_a_secret_is_never_remembered(cached: Evaluator, tmp_path: Path) -> None:
    inputs, out = Inputs(write_app(tmp_path / "app.yaml", APP + SECRET)), str(tmp_path / "out")
    write_output(compile_app(inputs, cached), out)
    assert check_output(inputs, out, cached) == (Comparison(), True)
    assert fresh_output(inputs, out, cached) is None
    assert cached.cache is not None
    stored = "".join(p.read_text(errors="replace") for p in Path(cached.cache.root).rglob("*") if p.is_file())
    assert "hunter2-not-real" not in stored and "aHVudGVyMi1ub3QtcmVhbA" not in stored


def test_without_a_cache_nothing_is_remembered(evaluator: Evaluator, tmp_path: Path) -> None:
    inputs, out = Inputs(write_app(tmp_path / "app.yaml")), str(tmp_path / "out")
    write_output(compile_app(inputs, evaluator), out)
    assert check_output(inputs, out, evaluator) == (Comparison(), True)
    assert evaluator.cache is None and fresh_output(inputs, out, evaluator) is None


# diff ---------------------------------------------------------------------------------------------

def test_two_apps_and_an_app_against_a_folder(evaluator: Evaluator, tmp_path: Path) -> None:
    old = write_app(tmp_path / "old" / "app.yaml")
    new = write_app(tmp_path / "new" / "app.yaml", APP.replace("mode: blue", "mode: green"))
    calls = evaluator.calls
    res = diff(old, new, Inputs(""), evaluator)
    assert evaluator.calls == calls + 1  # both sides in one engine round
    assert (res.old_label, res.new_label, res.notes) == (old, new, ())
    assert fields(res.comparison) == [("local", CHANGED, "ConfigMap", "cfg", ["data.mode"])]
    folder = tmp_path / "rendered"
    write_output(compile_app(Inputs(old), evaluator), str(folder))
    (folder / "README.md").write_text("not compared\n")
    same = diff(str(folder), old, Inputs(""), evaluator)
    assert same.comparison.equal and same.comparison.identical
    back = diff(new, str(folder), Inputs(""), evaluator)
    assert fields(back.comparison) == [("local", CHANGED, "ConfigMap", "cfg", ["data.mode"])]


def test_secrets_are_masked_unless_asked(evaluator: Evaluator, tmp_path: Path) -> None:
    old = write_app(tmp_path / "old.yaml", APP + SECRET)
    new = write_app(tmp_path / "new.yaml", APP + SECRET.replace("hunter2-not-real", "other-not-real"))
    masked = diff(old, new, Inputs(""), evaluator)
    shown = diff(old, new, Inputs(""), evaluator, show_secrets=True)
    ((_c, status, kind, _n, paths),) = fields(masked.comparison)
    assert (status, kind, paths) == (CHANGED, "Secret", ["stringData.password"])
    (change,) = masked.comparison.clusters[0].objects[0].fields
    assert "hunter2-not-real" not in repr(change) and "other-not-real" not in repr(change)
    (plain,) = shown.comparison.clusters[0].objects[0].fields
    assert (plain.old, plain.new) == ("hunter2-not-real", "other-not-real")


def test_bad_sides_are_located_errors(evaluator: Evaluator, tmp_path: Path) -> None:
    app = write_app(tmp_path / "app.yaml")
    cases = [
        (("", app, ""), "velapy diff needs two sides: OLD and NEW (or one path with --git-base REV)", ""),
        ((app, str(tmp_path / "nope.yaml"), ""), "no such file or folder", str(tmp_path / "nope.yaml")),
        ((app, app, "main"), "give one path with --git-base: it is compared with itself at the revision", ""),
    ]
    for (old, new, base), message, file in cases:
        with pytest.raises(InputError) as info:
            diff(old, new, Inputs(""), evaluator, git_base=base)
        (d,) = info.value.diagnostics
        assert info.value.exit_code == EXIT_INVALID
        assert (d.message, d.location.file) == (message, file)
    with pytest.raises(InputError) as info:
        diff(app, app, Inputs(""), evaluator, git_base="main")
    assert info.value.diagnostics[0].hint == f"velapy diff {app} --git-base main"


# diff --git-base ----------------------------------------------------------------------------------

def git(repo: Path, *args: str) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.invalid", "GIT_CONFIG_NOSYSTEM": "1", "HOME": "/nonexistent"}
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, env=env)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository whose `main` holds apps/shop.yaml (mode blue) and policies/extra.yaml."""
    root = tmp_path / "repo"
    write_app(root / "apps" / "shop.yaml")
    (root / "policies").mkdir()
    (root / "policies" / "extra.yaml").write_text(
        "apiVersion: core.oam.dev/v1alpha1\nkind: Policy\nmetadata: {name: extra}\ntype: override\n"
        "properties: {components: [{name: ^cfg$}]}\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "base")
    return root


def test_git_base_compares_the_work_tree_with_the_revision(evaluator: Evaluator, repo: Path) -> None:
    app = repo / "apps" / "shop.yaml"
    app.write_text(APP.replace("mode: blue", "mode: green"))
    res = diff("", str(app), Inputs("", files=(str(repo / "policies" / "extra.yaml"),)), evaluator, git_base="main")
    assert (res.old_label, res.new_label, res.notes) == ("main:apps/shop.yaml", str(app), ())
    assert fields(res.comparison) == [("local", CHANGED, "ConfigMap", "cfg", ["data.mode"])]
    same = diff("", str(repo / "apps" / "shop.yaml"), Inputs(""), evaluator, git_base="HEAD")
    assert fields(same.comparison) == [("local", CHANGED, "ConfigMap", "cfg", ["data.mode"])]
    git(repo, "commit", "-qam", "green")
    assert diff("", str(app), Inputs(""), evaluator, git_base="HEAD").comparison.equal


def test_git_base_notes_what_did_not_exist_at_the_revision(evaluator: Evaluator, repo: Path) -> None:
    new_app = write_app(repo / "apps" / "new.yaml")
    res = diff("", new_app, Inputs(""), evaluator, git_base="main")
    assert res.notes == (f"{new_app} did not exist at main: every object is new",)
    assert fields(res.comparison) == [("local", ADDED, "ConfigMap", "cfg", [])]
    policy = repo / "policies" / "new.yaml"
    policy.write_text((repo / "policies" / "extra.yaml").read_text().replace("name: extra", "name: new"))
    res = diff("", str(repo / "apps" / "shop.yaml"), Inputs("", files=(str(policy),)), evaluator, git_base="main")
    assert res.notes == (f"{policy} did not exist at main: the base is rendered without it",)
    folder = repo / "out"
    write_output(compile_app(Inputs(str(repo / "apps" / "shop.yaml")), evaluator), str(folder))
    res = diff("", str(folder), Inputs(""), evaluator, git_base="main")
    assert res.notes == (f"{folder} did not exist at main: everything in it is new",)
    assert res.old_label == "main:out" and fields(res.comparison) == [("local", ADDED, "ConfigMap", "cfg", [])]
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "rendered")
    (folder / CONFIGMAP).unlink()
    gone = diff("", str(folder), Inputs(""), evaluator, git_base="main~0")
    assert fields(gone.comparison) == [("local", REMOVED, "ConfigMap", "cfg", [])]


def test_problems_of_the_base_name_the_revision_not_the_temporary_copy(evaluator: Evaluator, repo: Path) -> None:
    app = repo / "apps" / "shop.yaml"
    app.write_text(APP.replace("type: k8s-objects", "type: k8s-objectz"))
    git(repo, "commit", "-qam", "broken")
    app.write_text(APP)
    with pytest.raises(InputError) as info:
        diff("", str(app), Inputs(""), evaluator, git_base="HEAD")
    (d,) = info.value.diagnostics
    assert info.value.exit_code == EXIT_INVALID
    assert d.location.file == "HEAD:apps/shop.yaml" and d.location.line == 7
    assert "k8s-objectz" in d.message and "velapy-base-" not in info.value.render()


def test_git_base_outside_a_repository_is_a_located_error(evaluator: Evaluator, tmp_path: Path) -> None:
    app = write_app(tmp_path / "plain" / "app.yaml")
    with pytest.raises(InputError) as info:
        diff("", app, Inputs(""), evaluator, git_base="main")
    assert [(d.message, d.location.file) for d in info.value.diagnostics] == [("not inside a git repository", app)]


def test_the_output_files_of_a_plan_are_what_check_compares(evaluator: Evaluator, tmp_path: Path) -> None:
    inputs = Inputs(write_app(tmp_path / "app.yaml"))
    files = output_files(compile_app(inputs, evaluator))
    assert owned_files(files) == files  # render writes only what it owns
