"""Extractors: plain text in, plain spans out. Nothing under this package imports cassis."""
