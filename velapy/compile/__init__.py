"""Compilation: an Application + definitions + inventory → the execution plan with every cluster's objects.

In: the loaded models. Out: a `Plan`. Stages: resolve the workflow (`workflow`), the placements of
each deploy step (`placement`) and the effective components per step (`policies`); render
component and trait templates in batched engine rounds (`render`) and merge trait patches with
KubeVela's strategies (`patch`); custom PolicyDefinitions (`custompolicy`); assemble labels,
names, gates, rules and warnings into the plan (`plan`); check names against Kubernetes' limits
(`k8snames`).
"""
