"""Review: two rendered sides (folders, apps, or a git revision) → what changes in which cluster.

In: output folders or applications rendered in memory. Out: a `Comparison` per cluster, object and
field, as text, unified diff, JSON or Markdown (`diff`); the sides named on the command line
(`sides`), the files of a git revision (`gitrev`), and the repo-wide golden folders listed in
`velapy.yaml` (`golden`).
"""
