"""KubeVela's vocabulary → one set of constants: the API versions, label and annotation keys velapy reads and writes.

Input: nothing. Output: names. Every module that writes or reads an OAM label, annotation or API
version takes it from here, so a key is spelled once (KubeVela's `pkg/oam` labels, semantics §3).
"""

APP_API = "core.oam.dev/v1beta1"  # Application, X-Definitions
STANDALONE_API = "core.oam.dev/v1alpha1"  # standalone Policy / Workflow documents

# labels of the OAM contract, on every rendered object
L_APP = "app.oam.dev/name"
L_APP_NS = "app.oam.dev/namespace"
L_COMPONENT = "app.oam.dev/component"
L_REVISION = "app.oam.dev/appRevision"
L_RESOURCE_TYPE = "app.oam.dev/resourceType"
L_CLUSTER = "app.oam.dev/cluster"
L_WORKLOAD_TYPE = "workload.oam.dev/type"
L_TRAIT_TYPE = "trait.oam.dev/type"
L_TRAIT_RESOURCE = "trait.oam.dev/resource"

# annotations
A_FILTER_LABELS = "filter.oam.dev/label-keys"
A_FILTER_ANNOTATIONS = "filter.oam.dev/annotation-keys"
A_INPLACE_UPGRADE = "app.oam.dev/inplace-upgrade"
A_PUBLISH_VERSION = "app.oam.dev/publishVersion"
A_WORKFLOW_NAME = "app.oam.dev/workflowName"
A_USERNAME = "app.oam.dev/username"
A_GROUP = "app.oam.dev/group"
A_SHARED_BY = "app.oam.dev/shared-by"
