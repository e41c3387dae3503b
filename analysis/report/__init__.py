"""Everything a reader sees, drawn from results only: the HTML report and its templates, the figures,
the summary document (`summary.json`, `summary.csv`) and the writer that puts a run on disk, and the
sensitivity and validation pages. Nothing here fits a model; `summary.json` is written from the same
document the report renders, so the two cannot disagree.
"""
