"""Loading: files on disk → located plain data and the models every later stage reads.

In: the Application file and `-f` documents, definition folders, the cluster inventory, a folder of
hub objects (`--resources`). Out: `Document`s with file:line:col for every node (`yamlio`), a
frozen `Application` (`application`), a `Registry` of X-Definitions kept as text (`definitions`),
an `Inventory` of clusters (`clusters`), `HubObjects` resolved through the API resource table
(`refobjects`, `apiresources`); and the bounds (`limits`) and Secret redaction (`redact`) that
apply to documents as they are read. Nothing here evaluates CUE.
"""
