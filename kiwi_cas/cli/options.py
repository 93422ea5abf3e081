"""Option decorators shared by commands, and the one place where option values become typed configs.

Allowed values come from the registries (extractors, LLaMA backends, BERT runtimes, tasks),
so a new entry there is a new choice here; numbers have ranges; combinations are checked
by the configs themselves (a :class:`~kiwi_cas.errors.UsageError`, exit 2).
"""

from __future__ import annotations

import codecs
from pathlib import Path
from typing import Callable

import click

from kiwi_cas.annotate.annotator import ENTITY_SOURCES, TASKS, AnnotatorConfig
from kiwi_cas.cas.ctakes import ASSERTION_MODES
from kiwi_cas.annotate.job import OUTPUT_FORMATS, ReadOptions
from kiwi_cas.cas.safexml import DEFAULT_MAX_BYTES
from kiwi_cas.errors import UsageError
from kiwi_cas.extractors.bert.runtime import RUNTIMES
from kiwi_cas.extractors.config import ALL_PRECISIONS
from kiwi_cas.extractors.llama.backends import BACKEND_CHOICES
from kiwi_cas.extractors.registry import EXTRACTORS, extractor_config


def _stack(*decorators: Callable) -> Callable:
    def apply(f: Callable) -> Callable:
        for d in reversed(decorators):
            f = d(f)
        return f
    return apply


def typesystem_option(help_text: str = "Typesystem of the input XMI (repeatable, merged). "
                                       "Default: TypeSystem.xml beside each input.") -> Callable:
    return click.option("--typesystem", "typesystems", multiple=True,
                        type=click.Path(exists=True, dir_okay=False, path_type=Path), help=help_text)


def output_option(help_text: str) -> Callable:
    return click.option("-o", "--output", "outdir", required=True,
                        type=click.Path(file_okay=False, path_type=Path), help=help_text)


extractor_options = _stack(
    click.option("--extractor", type=click.Choice(list(EXTRACTORS)), default="bert", show_default=True,
                 help="bert: fast encoder (default). llama: instruction-tuned LM rewriting sentences with span tags."),
    click.option("--model", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
                 help="Model folder. Default: the embedded MTSamples model of the extractor. For llama, any "
                      "causal-LM folder (e.g. the official Kiwi LLaMA-3 weights) runs with Kiwi's exact templates."),
    click.option("--runtime", type=click.Choice(list(RUNTIMES)), default=None,
                 help="bert only [default: onnx]: onnx (ONNX Runtime, fp32, the same answer whatever the batch), "
                      "torch, or openvino (OpenVINO, fp32, the same ONNX graphs; pip install 'kiwi_cas[openvino]')."),
    click.option("--precision", type=click.Choice(ALL_PRECISIONS), default=None,
                 help="bert [default: fp32]: with --runtime torch, int8 quantizes the encoder's linear layers "
                      "dynamically (faster, but a note's result then depends on its batch; deprecated in torch). "
                      "llama [default: auto = bf16 on CUDA, fp32 on CPU]: bf16 on CPU computes the decoder's matrix "
                      "products in bfloat16, 1.1-1.3x faster on CPUs with AMX (Xeon since Sapphire Rapids), slower "
                      "without, ~7x slower without AVX-512 (emulated; a note says so); figures within 0.006 of "
                      "fp32's on the dev notes and two CV folds."),
    click.option("--backend", type=click.Choice(list(BACKEND_CHOICES)), default=None,
                 help="llama only [default: auto]: auto picks vLLM where CUDA and vllm exist, else transformers."),
    click.option("--constrained/--unconstrained", default=None,
                 help="llama only [default: constrained]: output can only be the input text with tags inserted."),
)

annotation_options = _stack(
    click.option("--task", type=click.Choice(TASKS), default="all", show_default=True,
                 help="all: entities, modifiers, relations. ner: entities only. "
                      "re: keep the entities already in the CAS, add modifiers and relations."),
    click.option("--ctakes", is_flag=True, help="Also write the findings in cTAKES types (mentions with polarity, "
                 "uncertainty, subject; modifiers and text relations). Needs the cTAKES typesystem."),
    click.option("--entities-from", type=click.Choice(ENTITY_SOURCES), default="kiwi", show_default=True,
                 help="With --task re: the entities are the Kiwi entities in the CAS, or cTAKES's mentions "
                      "(DiseaseDisorder/SignSymptom -> problem, Medication -> drug, Procedure -> treatment, "
                      "Lab -> test; subtypes count, generic mentions by typeID)."),
    click.option("--ctakes-assertions", type=click.Choice(ASSERTION_MODES), default="keep", show_default=True,
                 help="With --ctakes, on cTAKES mentions kiwi_cas did not create: keep cTAKES's polarity, "
                      "uncertainty, conditional, subject and links; fill only those unset; or overwrite them "
                      "with Kiwi's (values replaced are recorded and restored by a re-run)."),
    click.option("--require-mentions", is_flag=True, help="With --entities-from ctakes: a CAS without a usable "
                 "cTAKES mention fails (default: a warning naming the types seen)."),
    click.option("--view", default=None, help="CAS view to annotate [default: _InitialView, left as it is, with a "
                 "warning, where it holds no text]. A view named here must hold text."),
    click.option("--sentence-type", default=None, help="Annotation type holding sentences, used as given; "
                 "'builtin' for kiwi_cas's clinical splitter. Default: cTAKES or DKPro Sentence if present "
                 "(joined where a hard line break split a sentence), else the built-in splitter."),
    click.option("--write-sentences", is_flag=True, help="Also write org.clinicalnlp.kiwi.type.Sentence annotations."),
)

read_options = _stack(
    typesystem_option(),
    click.option("--lenient", is_flag=True, help="Drop structures of types missing from the typesystem (and count "
                 "them) instead of failing the file."),
    click.option("--output-format", type=click.Choice(list(OUTPUT_FORMATS)), default="xmi", show_default=True,
                 help="jsoncas (UIMA JSON CAS) carries characters XML 1.0 cannot, such as form feeds."),
    click.option("--replace-invalid-xml-chars", is_flag=True, help="For .txt inputs: replace characters XML 1.0 "
                 "cannot hold by spaces (same length; offsets unchanged)."),
    click.option("--encoding", default="utf-8", show_default=True, help="Encoding of .txt inputs."),
    click.option("--max-bytes", type=click.IntRange(min=1), default=DEFAULT_MAX_BYTES, show_default=True,
                 help="Refuse input files larger than this."),
)


def make_annotator_config(extractor: str, model: Path | None, runtime: str | None, precision: str | None,
                          backend: str | None,
                          constrained: bool | None, task: str, ctakes: bool, entities_from: str,
                          ctakes_assertions: str, require_mentions: bool, view: str | None,
                          sentence_type: str | None,
                          write_sentences: bool) -> AnnotatorConfig:
    """The validated annotator config from the options above (UsageError on a bad combination)."""
    ext = extractor_config(extractor, model=model, runtime=runtime, precision=precision, backend=backend,
                           constrained=constrained)
    return AnnotatorConfig(extractor=ext, task=task, view=view, sentence_type=sentence_type,
                           write_sentences=write_sentences, ctakes=ctakes, entities_from=entities_from,
                           ctakes_assertions=ctakes_assertions, require_mentions=require_mentions)


def make_read_options(typesystems: tuple[Path, ...], lenient: bool, output_format: str,
                      replace_invalid_xml_chars: bool, encoding: str, max_bytes: int) -> ReadOptions:
    try:
        codecs.lookup(encoding)
    except LookupError as exc:
        raise UsageError(f"--encoding {encoding!r}: no such text encoding") from exc
    return ReadOptions(typesystems=tuple(typesystems), lenient=lenient, encoding=encoding, max_bytes=max_bytes,
                       output_format=output_format, replace_invalid_xml_chars=replace_invalid_xml_chars)
