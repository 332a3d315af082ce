"""Validation: documents → every problem velapy can find before CUE runs, each located.

In: loaded documents and the definitions registry. Out: a list of `Diagnostic`s (or none):
JSON Schema checks of the Application, Policy and Workflow documents and of every component,
trait, policy and workflow step's properties against its definition's parameter schema
(`documents`); the parameter schemas themselves are computed by the CUE engine (`schemagen`).
"""
