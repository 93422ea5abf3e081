"""kiwi_cas: Kiwi-style clinical information extraction for Apache UIMA XMI CAS files.

The data path is: read CAS -> find sentences -> extract -> write annotations -> save.

Python API (the extractor loads once, on first use)::

    import kiwi_cas

    annotator = kiwi_cas.KiwiAnnotator()                     # embedded BERT model, task "all"
    outcome = kiwi_cas.annotate_path(annotator, "note.xmi")  # XMI (TypeSystem.xml beside it) or .txt
    outcome.output, outcome.counts                           # XMI bytes, what was written

    outcome = kiwi_cas.annotate_bytes(annotator, xmi_bytes,
                                      options=kiwi_cas.ReadOptions(typesystems=(Path("TypeSystem.xml"),)))

    cas = kiwi_cas.load_cas(Path("note.xmi")).cas            # a cassis Cas with the Kiwi types merged in
    annotator.process(cas)                                   # annotated in place
"""

__version__ = "0.1.0"

from kiwi_cas.annotate.annotator import AnnotatorConfig, KiwiAnnotator  # noqa: E402
from kiwi_cas.annotate.job import Outcome, ReadOptions, Source, annotate_bytes, annotate_path, \
    annotate_sources  # noqa: E402
from kiwi_cas.cas.io import load_input as load_cas  # noqa: E402
from kiwi_cas.core.spans import Counts, Extraction, Relation, Span  # noqa: E402
from kiwi_cas.errors import InputError, KiwiError, SetupError, UsageError  # noqa: E402
from kiwi_cas.extractors.config import BertConfig, LlamaConfig  # noqa: E402

__all__ = [
    "__version__",
    "AnnotatorConfig",
    "BertConfig",
    "Counts",
    "Extraction",
    "InputError",
    "KiwiAnnotator",
    "KiwiError",
    "LlamaConfig",
    "Outcome",
    "ReadOptions",
    "Relation",
    "SetupError",
    "Source",
    "Span",
    "UsageError",
    "annotate_bytes",
    "annotate_path",
    "annotate_sources",
    "load_cas",
]
