"""The output folder, both ways: a Plan → files (the `vela dry-run` stream, the folder of
`render -o`), and an output folder → whether it is still fresh.

In: a `Plan` (or the dry-run blocks of an app). Out: `{relative path: text}` written locked and
atomically into a folder velapy owns (`emit`, `outdir`), the `vela dry-run` text (`dryrun`), and
the freshness record that lets an unchanged render answer without rendering (`freshness`).
"""
