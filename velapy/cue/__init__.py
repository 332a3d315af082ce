"""The CUE engine: CUE instances → exported values with comment tags, or located errors.

In: template text, parameter and context data per instance. Out: one `Result` per instance.
`engine` runs a real CUE (the embedded WebAssembly build in a Node.js worker, `cue_worker.js`, or a
native `cue`), batching instances into one generated file per call; `cuesyntax` reads CUE syntax
without evaluating it; `cache` keeps results under content keys. The only package that starts the
engine's processes.
"""
