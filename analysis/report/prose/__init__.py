"""Sentences generated from typed results: the rendering floor, which imports the standard library and
`analysis.results` only."""
