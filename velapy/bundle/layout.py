"""The output folder's names → one place: what `render -o` writes where, for every reader and writer.

    OUT/plan.yaml                                   PLAN_FILE
    OUT/clusters/<cluster>/                         cluster_dir(cluster)
    OUT/clusters/<cluster>/kustomization.yaml       KUSTOMIZATION
    OUT/clusters/<cluster>/<namespace>/...          namespaced objects
    OUT/clusters/<cluster>/_cluster/...             CLUSTER_SCOPED_DIR: cluster-scoped objects
    OUT/argocd/, OUT/flux/                          HANDOFF_DIRS: the GitOps hand-off (`render --emit`)
"""

PLAN_FILE = "plan.yaml"
CLUSTERS_DIR = "clusters"
CLUSTER_SCOPED_DIR = "_cluster"
KUSTOMIZATION = "kustomization.yaml"
ARGOCD_DIR = "argocd"
FLUX_DIR = "flux"
HANDOFF_DIRS = (ARGOCD_DIR, FLUX_DIR)


def cluster_dir(cluster: str) -> str:
    """`clusters/<cluster>`: the bundle `kubectl apply -k` takes for one cluster."""
    return f"{CLUSTERS_DIR}/{cluster}"
