"""velapy: compile KubeVela Applications into per-cluster manifests and execution plans, and apply them."""

__version__ = "0.1.0"
