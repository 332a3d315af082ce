"""validate --clusters: topology cluster names and selectors checked against the inventory."""

from __future__ import annotations

from pathlib import Path

import pytest

from velapy.errors import InputError
from velapy.pipeline import Inputs, validate

APP = """apiVersion: core.oam.dev/v1beta1
kind: Application
metadata: {name: a}
spec:
  components: [{name: w, type: webservice, properties: {image: nginx}}]
  policies:
    - {name: t, type: topology, properties: {clusters: [prod-1, prdo-2]}}
    - {name: s, type: topology, properties: {clusterLabelSelector: {env: staging}}}
"""


def test_validate_checks_cluster_names_only_with_an_inventory(tmp_path: Path) -> None:
    app = tmp_path / "app.yaml"
    app.write_text(APP)
    inv = tmp_path / "clusters.yaml"
    inv.write_text("clusters:\n  - {name: prod-1, labels: {env: prod}}\n  - {name: prod-2, labels: {env: prod}}\n")
    validate(Inputs(str(app)))  # no inventory: names cannot be checked, nothing fails
    with pytest.raises(InputError) as exc:
        validate(Inputs(str(app), clusters=str(inv)))
    text = exc.value.render()
    assert "app.yaml:7:" in text and "failed to get cluster prdo-2" in text and 'did you mean "prod-2"' in text
    assert "prod-1:" not in text
    assert "env" in text and len(exc.value.diagnostics) == 2  # the selector matches no cluster
