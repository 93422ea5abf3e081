"""The BERT extractor: one encoder pass per sentence gives entities, modifiers and relations."""
