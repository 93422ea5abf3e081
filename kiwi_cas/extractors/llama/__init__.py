"""The LLaMA extractor: a causal LM rewrites each sentence with <span class="..."> tags (Kiwi's format)."""
