"""The vLLM backend: one generate call for all prompts, prefix caching for the shared instruction.

Constrained decoding uses vLLM's structured output with a grammar that admits exactly the
source text with well-formed tags inserted between tokens. vLLM loads full model folders,
so a LoRA adapter is merged into its base once and the merged folder cached.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import time
from pathlib import Path
from typing import Sequence

from kiwi_cas.extractors.llama.backends import GenRequest, GenStats, ModelSource, load_merged, max_new_tokens
from kiwi_cas.extractors.llama.constrained import MAX_ATTRIBUTES, MAX_VALUE, PARTS
from kiwi_cas.extractors.llama.precision import resolve_precision
from kiwi_cas.extractors.settings import mark_cache_source, models_home, remove_stale_caches


class VllmBackend:
    """vLLM on a GPU: one generate call for all prompts, prefix caching for the shared instruction.

    Constrained decoding uses vLLM's structured output with a grammar (``source_grammar``).
    """

    def __init__(self, source: ModelSource, batch_size: int = 0, precision: str = "auto", max_model_len: int = 4096,
                 gpu_memory_utilization: float = 0.85) -> None:
        """``batch_size`` is not used: vLLM schedules all prompts of a call itself. ``precision`` ``auto``
        is bfloat16 on a GPU and float32 on CPU (vLLM has no float32 products around bfloat16 ones)."""
        from vllm import LLM  # imported only when this backend is used

        import torch

        model_dir = merged_folder(source.base, source.adapter) if source.adapter else source.base
        # auto: on CPU, float32 as CPU training computes: vLLM's default there is the config's dtype, and
        # its all-bfloat16 model changed a greedy choice on the example notes; on a GPU, bfloat16 (a
        # merged adapter folder is stored in float32)
        self.precision = resolve_precision(precision, "cuda" if torch.cuda.is_available() else "cpu")
        dtype = "bfloat16" if self.precision == "bf16" else "float32"
        self.llm = LLM(model=str(model_dir), enable_prefix_caching=True, max_model_len=max_model_len,
                       gpu_memory_utilization=gpu_memory_utilization, seed=0, dtype=dtype)
        self.tokenizer = self.llm.get_tokenizer()
        self.stats = GenStats()

    def _params(self, req: GenRequest, constrained: bool):
        from vllm import SamplingParams

        kwargs = dict(temperature=0.0, max_tokens=max_new_tokens(self.tokenizer, req),
                      stop=["<EOS>"])
        if constrained:
            grammar = source_grammar(req.source, req.labels, req.attributes, req.forced)
            try:
                from vllm.sampling_params import StructuredOutputsParams

                kwargs["structured_outputs"] = StructuredOutputsParams(grammar=grammar)
            except ImportError:  # older vLLM
                from vllm.sampling_params import GuidedDecodingParams

                kwargs["guided_decoding"] = GuidedDecodingParams(grammar=grammar)
        return SamplingParams(**kwargs)

    def generate(self, requests: Sequence[GenRequest], constrained: bool) -> list[str]:
        t0 = time.perf_counter()
        params = [self._params(r, constrained) for r in requests]
        results = self.llm.generate([r.prompt for r in requests], params, use_tqdm=False)
        texts = [r.outputs[0].text for r in results]
        self.stats.prompts += len(requests)
        self.stats.generated_tokens += sum(len(r.outputs[0].token_ids) for r in results)
        self.stats.seconds += time.perf_counter() - t0
        return texts


def source_grammar(source: str, labels: Sequence[str], attributes: dict[str, tuple[str, ...]] | None = None,
                   forced: Sequence[tuple[int, int, str]] | None = None) -> str:
    """EBNF (xgrammar's GBNF dialect) for ``source`` with spans tagged between its tokens.

    Two rules per gap between the source's word parts (``PARTS``), one for "outside a span"
    and one for "inside": an opening tag only outside and followed by at least one part, a
    closing tag only inside, every span closed at the end; linear in the text
    (a regular expression for the same language grows exponentially). A leading space (the
    gap after the prompt) is optional. With ``attributes`` (joint format) an opening tag may
    carry ``name="value"`` pairs, names from its label's list. With ``forced`` spans (source
    offsets) exactly those are tagged. The transformers backend's automaton (``constrained.py``)
    admits the same language (a test holds both to one list of cases).
    """
    lead = ""
    if source.startswith(" "):
        lead, source = '" "? ', source[1:]
        forced = [(s - 1, e - 1, label) for s, e, label in forced] if forced is not None else None
    if forced is not None:
        pieces, pos = [], 0
        for s, e, label in forced:
            pieces += [_literal(source[pos:s]), _open_tag(label, attributes), _literal(source[s:e]), _literal("</span>")]
            pos = e
        pieces.append(_literal(source[pos:]))
        return f"root ::= {lead}" + " ".join(p for p in pieces if p != '""')
    if not labels:
        return f"root ::= {lead}{_literal(source)}"
    parts = [_literal(p) for p in PARTS.findall(source)]
    n = len(parts)
    rules = [f"root ::= {lead}o0",
             "open ::= " + " | ".join(_open_tag(label, attributes) for label in labels),
             f'close ::= {_literal("</span>")}']
    for k, part in enumerate(parts):
        rules.append(f"o{k} ::= {part} o{k + 1} | open {part} i{k + 1}")
        rules.append(f"i{k} ::= {part} i{k + 1} | close o{k}")
    rules += [f'o{n} ::= ""', f"i{n} ::= close"]
    return "\n".join(rules)


def _open_tag(label: str, attributes: dict[str, tuple[str, ...]] | None) -> str:
    """The opening tag of ``label``; in the joint format followed by any number of its modifier attributes."""
    head = '<span class="' + label + '"'
    names = (attributes or {}).get(label, ())
    if not names:
        return _literal(head + ">")
    name = "(" + " | ".join(_literal(" " + n + '="') for n in names) + ")"
    value = '[^"\\n]{0,%d}' % MAX_VALUE
    repeat = ")" + "{0,%d}" % MAX_ATTRIBUTES
    return "(" + " ".join([_literal(head), "(" + name, value, _literal('"') + repeat, _literal(">")]) + ")"


#: characters an EBNF string literal writes as escapes (other control characters as \\xHH)
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _literal(text: str) -> str:
    """A double-quoted EBNF string literal."""
    return '"' + "".join(_ESCAPES.get(ch) or (f"\\x{ord(ch):02x}" if ord(ch) < 32 else ch) for ch in text) + '"'


def merged_folder(base: Path, adapter: Path) -> Path:
    """A full model folder (base + LoRA merged) for vLLM, cached beside the adapter's base.

    Keyed by the adapter's content, so a retrained adapter in the same folder gets a fresh
    merge; merged in float32 (as the transformers backend merges) and written atomically.
    A fresh merge removes the earlier merges of the same adapter folder: each is a full model
    (about 0.5 GB for the shipped base), and a retrained adapter's old weights are never read again.
    """
    digest = hashlib.sha256()
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        digest.update((adapter / name).read_bytes())
    target = models_home() / f"merged-{adapter.name}-{digest.hexdigest()[:12]}"
    if (target / "config.json").exists():
        return target
    import torch
    from transformers import AutoTokenizer

    model = load_merged(ModelSource(base, adapter), torch.float32)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        AutoTokenizer.from_pretrained(base).save_pretrained(tmp)
        mark_cache_source(tmp, adapter)
        tmp.rename(target)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not (target / "config.json").exists():  # not merely a concurrent merge that won the rename
            raise
    remove_stale_caches(target, adapter)
    return target
