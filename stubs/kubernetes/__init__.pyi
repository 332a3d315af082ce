# The part of the kubernetes client (pinned 37.0.2) that velapy.kube.client uses, typed as that
# release types it. mypy reads these instead of the installed package, whose ~2,000 modules cost
# it a minute on a clean checkout (see pyproject.toml [tool.mypy] mypy_path).
from kubernetes import client as client
from kubernetes import config as config
