"""Corpus formats other than XMI (brat standoff)."""
