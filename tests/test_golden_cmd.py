"""The review workflow end to end: `velapy diff`, `render -o DIR --check`, `velapy golden check|update|diff`.

Every test works on a copy of examples/gitops (three apps, three clusters, committed goldens)
and runs the real CLI with the session's shared engine.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from velapy import cli
from velapy.cue.engine import Evaluator
from velapy.errors import InputError
from velapy.pipeline import Inputs, compile_app, compile_apps, output_files, write_output
from velapy.review.golden import check, load_project

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "gitops"
STOREFRONT = "apps/storefront/app.yaml"
ORDERS = ("apps/orders/app.yaml", "-f", "apps/orders/policies.yaml")
SECRET_VALUES = ("not-a-real-password", "still-not-real")


@pytest.fixture
def repo(tmp_path: Path, evaluator: Evaluator, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A git work tree holding a copy of examples/gitops, committed; the CLI uses the shared engine."""
    dest = tmp_path / "repo"
    shutil.copytree(EXAMPLE, dest)
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "base"]):
        subprocess.run(["git", *args], cwd=dest, check=True, env=env)
    monkeypatch.setattr(cli.base, "open_evaluator", lambda **_kw: nullcontext(evaluator))
    monkeypatch.chdir(dest)
    yield dest


def run(*args: str) -> Result:
    return CliRunner(mix_stderr=False).invoke(cli.main, list(args), catch_exceptions=False)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new))


# ------------------------------------------------------------------------------------------
# the "done when" of the review workflow


def test_production_replicas_report_exactly_production_clusters(repo: Path) -> None:
    edit(repo / STOREFRONT, "replicas: 3", "replicas: 5")
    res = run("diff", STOREFRONT, "--git-base", "main", "--clusters", "clusters.yaml")
    assert res.exit_code == 1, res.stderr
    assert res.stdout == ("clusters/prod-1  Deployment shop/web  spec.replicas: 3 → 5\n\n"
                          "clusters/prod-2  Deployment shop/web  spec.replicas: 3 → 5\n"
                          "2 clusters: 0 added, 0 removed, 2 changed objects\n")


def test_renamed_component_is_removal_and_addition(repo: Path) -> None:
    edit(repo / STOREFRONT, "- name: web\n", "- name: frontend\n")  # the component and its override
    res = run("diff", STOREFRONT, "--git-base", "main", "--clusters", "clusters.yaml", "--output", "json")
    assert res.exit_code == 1, res.stderr
    doc = json.loads(res.stdout)
    for cluster in doc["clusters"]:
        seen = {(o["status"], o["kind"], o["name"]) for o in cluster["objects"]}
        assert ("added", "Deployment", "frontend") in seen and ("removed", "Deployment", "web") in seen
        assert all(o["status"] != "changed" for o in cluster["objects"])
    assert [c["cluster"] for c in doc["clusters"]] == ["prod-1", "prod-2", "test-1"]


def test_secret_change_shows_key_with_masked_value(repo: Path) -> None:
    edit(repo / "apps/orders/app.yaml", "not-a-real-password", "still-not-real")
    base = ["diff", *ORDERS, "--git-base", "main", "--clusters", "clusters.yaml"]
    outputs = {}
    for extra in ([], ["--unified"], ["--output", "json"], ["--output", "markdown"]):
        res = run(*base, *extra)
        assert res.exit_code == 1, res.stderr
        outputs[" ".join(extra)] = res.stdout + res.stderr
    assert "clusters/prod-1  Secret shop/orders-db  stringData.password: <secret> → <secret, changed>" in outputs[""]
    assert "stringData.username" not in outputs[""]
    for text in outputs.values():
        for secret in SECRET_VALUES:
            assert secret not in text
    shown = run(*base, "--show-secrets")
    assert "stringData.password: not-a-real-password → still-not-real" in shown.stdout


def test_unchanged_app_reports_no_difference(repo: Path) -> None:
    res = run("diff", STOREFRONT, "--git-base", "main", "--clusters", "clusters.yaml")
    assert (res.exit_code, res.stdout) == (0, "no differences\n")
    res = run("diff", "rendered/storefront", STOREFRONT, "--clusters", "clusters.yaml", "--output", "markdown")
    assert res.exit_code == 0 and "### velapy: no changes" in res.stdout


def test_rendering_twice_gives_identical_bytes(repo: Path, evaluator: Evaluator) -> None:
    inputs = Inputs(str(repo / STOREFRONT), clusters=str(repo / "clusters.yaml"))
    first = output_files(compile_app(inputs, evaluator))
    assert output_files(compile_app(inputs, evaluator)) == first
    write_output(compile_app(inputs, evaluator), str(repo / "out"))
    on_disk = {p.relative_to(repo / "out").as_posix(): p.read_bytes() for p in (repo / "out").rglob("*")
               if p.is_file() and p.name != ".velapy-manifest"}
    assert on_disk == {k: v.encode() for k, v in first.items()}


def test_golden_check_names_the_stale_app_and_its_clusters(repo: Path) -> None:
    assert run("golden", "check").exit_code == 0
    edit(repo / STOREFRONT, "replicas: 3", "replicas: 4")
    res = run("golden", "check")
    assert res.exit_code == 1
    lines = res.stdout.splitlines()
    assert "stale    storefront  rendered/storefront  (clusters: prod-1, prod-2)" in lines
    assert "fresh    orders      rendered/orders" in lines and "fresh    reports     rendered/reports" in lines
    assert "    clusters/prod-1  Deployment shop/web  spec.replicas: 3 → 4" in lines
    assert lines[-1] == "1 of 3 apps stale: run `velapy golden update` and commit the result"
    res = run("golden", "update")
    assert res.exit_code == 0 and "updated  storefront" in res.stdout and "1 of 3 golden folders updated" in res.stdout
    assert run("golden", "check").exit_code == 0
    assert "replicas: 4" in (repo / "rendered/storefront/clusters/prod-2/shop/deployment_web.yaml").read_text()


def test_golden_check_lists_every_stale_app(repo: Path) -> None:
    edit(repo / STOREFRONT, "storefront:1.4.2", "storefront:1.5.0")
    shutil.rmtree(repo / "rendered/reports")
    res = run("golden", "check")
    assert res.exit_code == 1
    assert "stale    storefront  rendered/storefront  (clusters: prod-1, prod-2, test-1)" in res.stdout
    assert "stale    reports     rendered/reports  (golden folder missing)" in res.stdout
    assert "2 of 3 apps stale" in res.stdout
    assert run("golden", "check", "orders").exit_code == 0  # only the named app


def test_golden_check_renders_all_apps_in_one_batch(repo: Path, evaluator: Evaluator) -> None:
    project = load_project(str(repo / "velapy.yaml"))
    singles = []
    for a in project.apps:
        before = evaluator.calls
        compile_apps([a.inputs], evaluator)
        singles.append(evaluator.calls - before)
    before = evaluator.calls
    results = check(project.apps, evaluator)
    assert evaluator.calls - before == max(singles)
    assert not any(r.stale for r in results)


def test_golden_diff_markdown_for_a_pull_request(repo: Path) -> None:
    edit(repo / STOREFRONT, "replicas: 3", "replicas: 4")
    res = run("golden", "diff", "--git-base", "main", "--output", "markdown")
    assert res.exit_code == 1
    assert res.stdout.startswith("<!-- velapy-diff -->\n### velapy: changes in 1 of 3 applications\n")
    assert "| Deployment `shop/web` | `spec.replicas` | `3` | `4` |" in res.stdout
    assert "Unchanged: `orders`, `reports`." in res.stdout
    doc = json.loads(run("golden", "diff", "--output", "json").stdout)  # against the folders on disk
    assert doc["equal"] is False and [a["name"] for a in doc["apps"]] == ["storefront", "orders", "reports"]
    assert [c["cluster"] for c in doc["apps"][0]["clusters"]] == ["prod-1", "prod-2"]
    assert all(a["equal"] for a in doc["apps"][1:])


def test_render_check(repo: Path) -> None:
    args = ["render", STOREFRONT, "--clusters", "clusters.yaml", "-o", "rendered/storefront"]
    res = run(*args, "--check")
    assert (res.exit_code, res.stdout) == (0, "rendered/storefront is up to date\n")
    (repo / "rendered/storefront/NOTES.md").write_text("not ours: a refresh leaves it alone\n")
    assert run(*args, "--check").exit_code == 0
    edit(repo / STOREFRONT, "replicas: 1", "replicas: 2")
    before = {p: p.read_bytes() for p in (repo / "rendered").rglob("*") if p.is_file()}
    res = run(*args, "--check")
    assert res.exit_code == 1
    assert res.stdout.startswith("rendered/storefront is stale; a refresh would change:\n"
                                 "clusters/test-1  Deployment shop/web  spec.replicas: 1 → 2\n")
    assert res.stderr == ("refresh with: velapy render apps/storefront/app.yaml --clusters clusters.yaml "
                          "-o rendered/storefront\n")
    assert {p: p.read_bytes() for p in (repo / "rendered").rglob("*") if p.is_file()} == before  # nothing written
    res = run("render", STOREFRONT, "--clusters", "clusters.yaml", "-o", "elsewhere", "--check")
    assert res.exit_code == 1 and "elsewhere does not exist" in res.stdout
    assert run("render", STOREFRONT, "--check").exit_code == 2  # --check needs -o


def test_layout_only_change_is_stale_for_check(repo: Path) -> None:
    target = repo / "rendered/reports/clusters/test-1/analytics/cronjob_nightly.yaml"
    target.rename(target.with_name("nightly.yaml"))
    res = run("golden", "check", "reports")
    assert res.exit_code == 1
    assert "clusters/test-1/analytics/cronjob_nightly.yaml  file added" in res.stdout
    assert "1 of 1 apps stale" not in res.stdout and "1 of 1 app stale" in res.stdout


# ------------------------------------------------------------------------------------------
# sides, git and bad input


def test_diff_two_folders_and_app_against_folder(repo: Path) -> None:
    res = run("diff", "rendered/storefront", "rendered/storefront")
    assert (res.exit_code, res.stdout) == (0, "no differences\n")
    res = run("diff", "rendered/orders", "rendered/storefront")
    assert res.exit_code == 1 and "clusters/test-1 (new cluster)" in res.stdout
    for secret in SECRET_VALUES:
        assert secret not in res.stdout


def test_git_base_with_a_rendered_folder(repo: Path) -> None:
    edit(repo / STOREFRONT, "storefront:1.4.2", "storefront:1.4.3")
    assert run("golden", "update", "storefront").exit_code == 0
    res = run("diff", "rendered/storefront", "--git-base", "main")
    assert res.exit_code == 1
    assert res.stdout.count("spec.template.spec.containers[name=web].image: ghcr.io/example/storefront:1.4.2 → "
                            "ghcr.io/example/storefront:1.4.3") == 3


def test_git_base_app_new_at_head(repo: Path) -> None:
    shutil.copytree(repo / "apps/reports", repo / "apps/jobs")
    res = run("diff", "apps/jobs/app.yaml", "--git-base", "main", "--clusters", "clusters.yaml")
    assert res.exit_code == 1
    assert "apps/jobs/app.yaml did not exist at main: every object is new" in res.stderr
    assert "clusters/test-1  CronJob analytics/nightly  added" in res.stdout


def test_git_base_errors(repo: Path, tmp_path: Path) -> None:
    res = run("diff", STOREFRONT, "--git-base", "no-such-rev")
    assert res.exit_code == 2 and "unknown git revision 'no-such-rev'" in res.stderr
    outside = tmp_path / "outside"
    shutil.copytree(repo / "apps/reports", outside)
    res = run("diff", str(outside / "app.yaml"), "--git-base", "main")
    assert res.exit_code == 2 and "not inside a git repository" in res.stderr
    assert "Traceback" not in res.stderr


def test_base_problems_name_the_revision(repo: Path) -> None:
    (repo / "apps/reports/app.yaml").write_text("apiVersion: core.oam.dev/v1beta1\nkind: Application\n"
                                                "metadata: {name: reports}\nspec:\n  components: [\n")
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@e"}
    subprocess.run(["git", "commit", "-qam", "broken"], cwd=repo, check=True, env=env)
    shutil.copy(EXAMPLE / "apps/reports/app.yaml", repo / "apps/reports/app.yaml")
    res = run("diff", "apps/reports/app.yaml", "--git-base", "HEAD", "--clusters", "clusters.yaml")
    assert res.exit_code == 2
    assert "HEAD:apps/reports/app.yaml:" in res.stderr and "velapy-base-" not in res.stderr


def test_diff_usage_errors(repo: Path) -> None:
    assert run("diff", STOREFRONT).exit_code == 2
    assert run("diff", STOREFRONT, STOREFRONT, "--git-base", "main").exit_code == 2
    assert run("diff", STOREFRONT, STOREFRONT, "--unified", "--output", "json").exit_code == 2
    res = run("diff", "nope.yaml", STOREFRONT)
    assert res.exit_code == 2 and "nope.yaml: no such file or folder" in res.stderr


# ------------------------------------------------------------------------------------------
# velapy.yaml


def write_config(repo: Path, text: str) -> str:
    (repo / "velapy.yaml").write_text(text)
    return str(repo / "velapy.yaml")


def test_config_problems_are_located(repo: Path) -> None:
    path = write_config(repo, "apps:\n  - name: a\n    app: apps/storefront/app.yaml\n    golden: out/a\n"
                              "    cluster: clusters.yaml\n  - name: a\n    app: missing.yaml\n    golden: out/b\n")
    with pytest.raises(InputError) as info:
        load_project(path)
    text = info.value.render()
    assert f"{path}:5:" in text and "apps[0].cluster: unknown field cluster" in text
    assert 'did you mean "clusters"?' in text
    with pytest.raises(InputError) as info:
        load_project(write_config(repo, "apps:\n  - {name: a, app: apps/storefront/app.yaml, golden: out/a}\n"
                                        "  - {name: a, app: missing.yaml, golden: out/b}\n"))
    assert "app a is listed twice" in info.value.render()
    with pytest.raises(InputError) as info:
        load_project(write_config(repo, "apps:\n  - {name: b, app: missing.yaml, golden: out/b}\n"))
    assert "no such file: missing.yaml" in info.value.render()


def test_config_refuses_golden_folders_that_overlap(repo: Path) -> None:
    with pytest.raises(InputError) as info:
        load_project(write_config(repo, "apps:\n  - {name: a, app: apps/storefront/app.yaml, golden: apps}\n"
                                        "  - {name: b, app: apps/orders/app.yaml, golden: out}\n"
                                        "  - {name: c, app: apps/reports/app.yaml, golden: out/c}\n"))
    text = info.value.render()
    assert "the golden folder of app a overlaps an input" in text
    assert "the golden folders of apps b and c are nested" in text


def test_config_found_from_a_subfolder_and_unknown_app(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(repo / "apps" / "orders")
    assert run("golden", "check", "orders").exit_code == 0
    res = run("golden", "check", "order")
    assert res.exit_code == 2 and 'no app named order' in res.stderr and 'did you mean "orders"?' in res.stderr
    monkeypatch.chdir(repo.parent)
    res = run("golden", "check")
    assert res.exit_code == 2 and "no velapy.yaml" in res.stderr


# ------------------------------------------------------------------------------------------
# the committed example stays fresh (a refresh is `make golden`)


def test_example_goldens_are_fresh(evaluator: Evaluator) -> None:
    project = load_project(str(EXAMPLE / "velapy.yaml"))
    stale = [r.app.name for r in check(project.apps, evaluator) if r.stale]
    assert not stale, f"examples/gitops goldens are stale: {stale}; refresh with `make golden`"
