"""Bounds (issue 11, items 5, 8-10): names Kubernetes would reject, inputs too large, alias bombs,
deep nesting and whole-file errors are each a located exit-2 error, given before the work starts.

No test here measures time: each limit is hit by an input far past it, and the check runs before
anything whose cost grows with that input (validation, the engine, the writer).
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from velapy import cli
from velapy.compile import k8snames
from velapy.cue.engine import Evaluator

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "examples" / "demo"

HEAD = "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata: {name: a}\nspec:\n  components:\n"
WEB = "    - name: web\n      type: webservice\n      properties: {image: nginx}\n"
BOMB = "x0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"x{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 9))


@pytest.fixture(autouse=True)
def cli_engine(evaluator: Evaluator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli.base, "open_evaluator", lambda: nullcontext(evaluator))
    for name in ("VELAPY_MAX_COMPONENTS", "VELAPY_MAX_TRAITS", "VELAPY_MAX_FILE_BYTES", "VELAPY_MAX_YAML_DEPTH",
                 "VELAPY_MAX_YAML_NODES", "VELAPY_MAX_INSTANCES"):
        monkeypatch.delenv(name, raising=False)


def run(*args: str) -> Result:
    return CliRunner(mix_stderr=False).invoke(cli.main, list(args), catch_exceptions=False)


def write(path: Path, text: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path)


# ------------------------------------------------------------------------------------------
# 8. sizes


def test_too_many_components(tmp_path: Path) -> None:
    app = write(tmp_path / "app.yaml", HEAD + "".join(
        f"    - name: c{i}\n      type: webservice\n      properties: {{image: nginx}}\n" for i in range(1001)))
    res = run("render", app, "-o", str(tmp_path / "out"))
    assert res.exit_code == 2
    assert res.stderr.startswith(f"error: {app}:5:3: spec.components: components in one Application: 1,001 is "
                                 "more than velapy's limit of 1,000\n  hint:")
    assert "VELAPY_MAX_COMPONENTS" in res.stderr and not (tmp_path / "out").exists()


def test_too_many_traits_and_the_limit_can_be_raised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    traits = "      traits:\n" + "".join(f"        - type: labels\n          properties: {{k{i}: v}}\n"
                                          for i in range(3))
    app = write(tmp_path / "app.yaml", HEAD + WEB + traits)
    monkeypatch.setenv("VELAPY_MAX_TRAITS", "2")
    res = run("validate", app)
    assert res.exit_code == 2 and f"{app}:9:7: spec.components[0].traits: traits on component web: 3 is more" \
        in res.stderr
    monkeypatch.setenv("VELAPY_MAX_TRAITS", "3")
    assert run("validate", app).exit_code == 0
    monkeypatch.setenv("VELAPY_MAX_TRAITS", "many")
    res = run("validate", app)
    assert res.exit_code == 2 and "VELAPY_MAX_TRAITS='many': expected a whole number" in res.stderr


def test_a_file_too_large_is_refused_before_it_is_read(tmp_path: Path) -> None:
    app = write(tmp_path / "app.yaml", HEAD + WEB + "# " + "x" * (4 * 1024 * 1024) + "\n")
    res = run("render", app)
    assert res.exit_code == 2
    assert res.stderr.startswith(f"error: {app}: the file is too large to read: bytes: 4,194,")
    assert "VELAPY_MAX_FILE_BYTES" in res.stderr


def test_too_many_renders_components_times_clusters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VELAPY_MAX_INSTANCES", "1")
    res = run("render", str(DEMO / "app.yaml"), "--clusters", str(DEMO / "clusters.yaml"), "-o", str(tmp_path / "o"))
    assert res.exit_code == 2 and "component renders (components x clusters/namespaces)" in res.stderr
    assert not (tmp_path / "o").exists()


# ------------------------------------------------------------------------------------------
# 9. alias bombs in every YAML input


def _bombed(tmp_path: Path, where: str) -> tuple[list[str], str]:
    """(command line, the file holding the bomb) for a bomb in input `where`."""
    app = write(tmp_path / "app.yaml", HEAD + WEB)
    bomb_app = HEAD.replace("spec:\n  components:\n", "") + BOMB + "spec:\n  components:\n" + WEB
    if where == "app":
        return ["render", write(tmp_path / "bomb.yaml", bomb_app)], str(tmp_path / "bomb.yaml")
    if where == "-f":
        f = write(tmp_path / "policy.yaml", "apiVersion: core.oam.dev/v1alpha1\nkind: Policy\n" + BOMB)
        return ["render", app, "-f", f], f
    if where == "--clusters":
        f = write(tmp_path / "clusters.yaml", BOMB + "clusters: []\n")
        return ["render", app, "--clusters", f, "-o", str(tmp_path / "out")], f
    if where == "--resources":
        f = write(tmp_path / "hub" / "cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n" + BOMB)
        return ["render", app, "--resources", str(tmp_path / "hub")], f
    if where == "-d":
        f = write(tmp_path / "defs" / "t.yaml", "apiVersion: core.oam.dev/v1beta1\nkind: TraitDefinition\n" + BOMB)
        return ["render", app, "-d", str(tmp_path / "defs")], f
    assert where == "velapy.yaml"
    f = write(tmp_path / "velapy.yaml", BOMB + "apps: []\n")
    return ["golden", "check", "--config", f], f


@pytest.mark.parametrize("where", ["app", "-f", "--clusters", "--resources", "-d", "velapy.yaml"])
def test_an_alias_bomb_is_caught_and_located(tmp_path: Path, where: str) -> None:
    args, bomb = _bombed(tmp_path, where)
    res = run(*args)
    assert res.exit_code == 2, res.stderr
    first = next(line for line in res.stderr.splitlines() if not line.startswith("note: "))
    assert first.startswith(f"error: {bomb}:") and "aliases expand to too many nodes: 100,001 is more than " \
        "velapy's limit of 100,000" in first, first
    line, column = first.removeprefix(f"error: {bomb}:").split(":")[:2]
    assert int(line) >= 1 and int(column) >= 1  # a real position inside the file, not just its name


# ------------------------------------------------------------------------------------------
# 10. nesting and whole-file errors are located


def test_deep_nesting_is_located(tmp_path: Path) -> None:
    deep = write(tmp_path / "deep.yaml", HEAD + WEB.replace("{image: nginx}", "{image: nginx, x: "
                                                            + "[" * 200 + "]" * 200 + "}"))
    res = run("render", deep)
    assert res.exit_code == 2
    assert res.stderr.startswith(f"error: {deep}:8:") and "the YAML nests too deeply: levels: 129" in res.stderr
    deeper = write(tmp_path / "deeper.yaml", HEAD + WEB.replace("{image: nginx}", "[" * 5000 + "]" * 5000))
    res = run("render", deeper)
    assert res.exit_code == 2
    assert res.stderr.startswith(f"error: {deeper}:8:") and "the YAML nests too deeply" in res.stderr


def test_not_one_application_is_located(tmp_path: Path) -> None:
    two = write(tmp_path / "two.yaml", HEAD + WEB + "---\n" + HEAD + WEB)
    none = write(tmp_path / "none.yaml", "# nothing here\napiVersion: v1\nkind: ConfigMap\n")
    for cmd in ("validate", "render"):
        res = run(cmd, two)
        assert res.exit_code == 2 and f"error: {two}:11:7: kind: expected exactly one Application in the file, " \
            "found 2" in res.stderr
        res = run(cmd, none)
        assert res.exit_code == 2 and f"error: {none}:3:7: kind: expected exactly one Application" in res.stderr


# ------------------------------------------------------------------------------------------
# 5. Kubernetes names, checked before anything is written


def test_name_rules() -> None:
    assert k8snames.label_problem("a" * 63) == "" and "64 characters" in k8snames.label_problem("a" * 64)
    assert k8snames.label_problem("Prod") and k8snames.label_problem("-a") and not k8snames.label_problem("a-1")
    assert k8snames.name_problem("apps", "Deployment", "a." * 126 + "a") == ""  # 253
    assert "254 characters" in k8snames.name_problem("apps", "Deployment", "a" * 254)
    assert k8snames.name_problem("", "Service", "1web")  # DNS-1035: starts with a letter
    assert k8snames.name_problem("", "Service", "w" * 64) and not k8snames.name_problem("", "Service", "w" * 63)
    assert k8snames.name_problem("rbac.authorization.k8s.io", "ClusterRole", "system:Admin") == ""
    assert k8snames.name_problem("rbac.authorization.k8s.io", "Role", "a/b")
    assert k8snames.label_value_problem("") == "" and k8snames.label_value_problem("x" * 64)
    assert k8snames.label_value_problem("a b")


def test_an_object_kubernetes_cannot_read_is_refused(tmp_path: Path) -> None:
    """Found by the fuzzer: `apiVersion: 1` rendered, and velapy's own diff could not read it back."""
    objs = ("    - name: objs\n      type: k8s-objects\n      properties:\n        objects:\n"
            "          - {apiVersion: 1, kind: ConfigMap, metadata: {name: c}}\n")
    app = write(tmp_path / "app.yaml", HEAD + objs)
    res = run("render", app, "-o", str(tmp_path / "out"))
    assert res.exit_code == 2 and "the apiVersion of ConfigMap 'c' must be a non-empty string, not 1" in res.stderr
    assert f"{app}:6:7: spec.components[0]" in res.stderr


def test_a_long_namespace_fails_before_writing(tmp_path: Path) -> None:
    app = write(tmp_path / "app.yaml", HEAD + WEB)
    out = tmp_path / "out"
    res = run("render", app, "-n", "n" * 254, "-o", str(out))
    assert res.exit_code == 2 and "-n: the namespace" in res.stderr and "254 characters long" in res.stderr
    assert not out.exists()


def test_invalid_object_names_are_located_at_their_component(tmp_path: Path) -> None:
    objs = ("    - name: objs\n      type: k8s-objects\n      properties:\n        objects:\n"
            "          - {apiVersion: v1, kind: ConfigMap, metadata: {name: Bad_Name}}\n"
            f"          - {{apiVersion: v1, kind: Service, metadata: {{name: {'s' * 64}}}}}\n")
    app = write(tmp_path / "app.yaml", HEAD + WEB + objs)
    out = tmp_path / "out"
    res = run("render", app, "-o", str(out))
    assert res.exit_code == 2
    lines = [x for x in res.stderr.splitlines() if x.startswith("error:")]
    assert any(x.startswith(f"error: {app}:9:7: spec.components[1]: the name of ConfigMap 'Bad_Name' must be")
               for x in lines), lines
    assert any("the name of Service" in x and "Kubernetes allows 63 for a Service" in x for x in lines)
    assert not out.exists()


def test_a_valid_253_character_name_is_written(tmp_path: Path) -> None:
    name = ("a" * 60 + ".") * 4 + "b" * 9  # 253 characters: longer than a file name may be
    objs = ("    - name: objs\n      type: k8s-objects\n      properties:\n        objects:\n"
            f"          - {{apiVersion: v1, kind: ConfigMap, metadata: {{name: {name}}}}}\n")
    app = write(tmp_path / "app.yaml", HEAD + objs)
    out = tmp_path / "out"
    res = run("render", app, "-o", str(out))
    assert res.exit_code == 0, res.stderr
    files = [p for p in out.rglob("configmap_*.yaml")]
    assert len(files) == 1 and len(files[0].name) <= 210 and name in files[0].read_text()
