"""Small helpers shared by tests."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from kiwi_cas.annotator import AnnotatorConfig
from kiwi_cas.cas.io import load_xmi
from kiwi_cas.corpus import RunOptions, discover, run_corpus

KIWI_NS = "org.clinicalnlp.kiwi.type."


def run(inputs, outdir: Path, annotator=None, config: AnnotatorConfig | None = None, **options):
    items = discover([str(i) for i in inputs], outdir, options.get("output_format", "xmi"))
    return run_corpus(items, config or (annotator.config if annotator else AnnotatorConfig()),
                      RunOptions(outdir=outdir, **options), annotator=annotator, show_progress=False)


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
