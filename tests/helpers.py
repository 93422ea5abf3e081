"""Small helpers shared by tests."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

from kiwi_cas.annotate.annotator import AnnotatorConfig
from kiwi_cas.cas.io import load_xmi
from kiwi_cas.annotate.job import ReadOptions
from kiwi_cas.engines.discover import discover
from kiwi_cas.engines.local import RunOptions, run_local

KIWI_NS = "org.clinicalnlp.kiwi.type."


def cli(*args, expect: int = 0):
    """Run ``kiwi-cas ARGS`` in-process (click's CliRunner): the model stays loaded between calls.

    Checks the exit code and that no user-facing path ends in a traceback.
    """
    from click.testing import CliRunner

    from kiwi_cas.cli import main

    result = CliRunner().invoke(main, [str(a) for a in args])
    assert "Traceback" not in result.stderr + result.stdout
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == expect, (result.exit_code, result.stderr[-2000:])
    return result


RUN_FIELDS = {"resume", "jobs", "batch_size"}


def run(inputs, outdir: Path, annotator=None, config: AnnotatorConfig | None = None, **options):
    """A corpus run as ``kiwi-cas annotate`` does it; ``options`` are RunOptions and ReadOptions fields."""
    read = ReadOptions(**{k: v for k, v in options.items() if k not in RUN_FIELDS})
    items = discover([str(i) for i in inputs], outdir, read.output_format)
    return run_local(items, config or (annotator.config if annotator else AnnotatorConfig()),
                     RunOptions(outdir=outdir, read=read, **{k: v for k, v in options.items() if k in RUN_FIELDS}),
                     annotator=annotator, show_progress=False)


def type_counts(path: Path, typesystems=()) -> Counter:
    """Indexed feature structures per type name, over all views, as cassis reads them back."""
    cas = load_xmi(path, tuple(typesystems)).cas
    counts: Counter = Counter()
    for view in cas.views:
        for fs in cas.get_view(view.sofa.sofaID).select_all_fs():
            counts[fs.type.name] += 1
    return counts


def without_kiwi(counts: Counter) -> Counter:
    return Counter({k: v for k, v in counts.items() if not k.startswith(KIWI_NS)})


def kiwi_only(counts: Counter) -> Counter:
    return Counter({k: v for k, v in counts.items() if k.startswith(KIWI_NS)})


def noise_of_annotate(*args) -> list[str]:
    """Run ``kiwi-cas annotate ARGS`` in a fresh process (warnings are shown once per process) and
    return its stderr lines that warn or trace back; the run itself must succeed."""
    proc = subprocess.run([sys.executable, "-m", "kiwi_cas.cli", "annotate", *map(str, args)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return [line for line in proc.stderr.splitlines() if "warn" in line.lower() or "traceback" in line.lower()]


def tiny_llama(folder: Path) -> Path:
    """A tiny randomly initialised Llama with the shipped base's tokenizer, saved as a full model folder."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig as HFLlamaConfig, LlamaForCausalLM

    from kiwi_cas.extractors.llama.base_model import base_path

    tokenizer = AutoTokenizer.from_pretrained(base_path())
    torch.manual_seed(0)
    tiny = LlamaForCausalLM(HFLlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                                          num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                          max_position_embeddings=2048, bos_token_id=tokenizer.bos_token_id,
                                          eos_token_id=tokenizer.eos_token_id))
    tiny.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
