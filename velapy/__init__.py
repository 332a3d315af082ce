"""velapy: compile KubeVela Applications into per-cluster manifests and apply them."""

__version__ = "0.1.0"
