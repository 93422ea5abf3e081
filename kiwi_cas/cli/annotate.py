"""``kiwi-cas annotate``: a corpus run on this machine."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from kiwi_cas.cli.options import annotation_options, extractor_options, make_annotator_config, make_read_options, \
    output_option, read_options
from kiwi_cas.errors import EXIT_FILES_FAILED

SHOWN = 5  # failures and warnings named on the console; errors.jsonl has every failure


@click.command()
@click.argument("inputs", nargs=-1, required=True)
@output_option("Output folder. Gets NAME.xmi per input, TypeSystem.xml and errors.jsonl.")
@extractor_options
@annotation_options
@read_options
@click.option("--resume", is_flag=True, help="Skip inputs whose output already exists (outputs are written atomically).")
@click.option("-j", "--jobs", type=click.IntRange(1, 256), default=1, show_default=True,
              help="Parallel worker processes (CPU threads are split).")
@click.option("--batch-size", type=click.IntRange(1, 4096), default=8, show_default=True,
              help="Notes per extractor call.")
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local: this machine (--jobs processes). ray: a Ray cluster (pip install 'kiwi_cas[ray]'); "
                   "--jobs is then the actor pool size (default: what the cluster's CPUs allow).")
@click.option("--address", default=None, metavar="ADDRESS",
              help="Ray cluster to join (e.g. 'auto' or HOST:6379); default: start a local Ray instance.")
@click.option("--cpus-per-job", type=click.FloatRange(0.1, 256), default=1.0, show_default=True,
              help="Ray: CPUs each actor reserves (and its runtime threads).")
@click.option("--gpus-per-job", type=click.FloatRange(0, 16), default=0.0, show_default=True,
              help="Ray: GPUs each actor reserves (LLaMA extractor with vLLM on GPU nodes).")
def annotate(inputs, outdir: Path, extractor, model, runtime, precision, backend, constrained, task, ctakes, entities_from,
             ctakes_assertions, require_mentions, view, sentence_type, write_sentences, typesystems, lenient,
             output_format, replace_invalid_xml_chars, encoding, max_bytes, resume, jobs, batch_size, engine, address,
             cpus_per_job, gpus_per_job) -> None:
    """Annotate XMI (or .txt) files and write XMI with Kiwi annotations added.

    INPUTS are files, folders (searched recursively for *.xmi and *.txt) or globs.
    Failures are listed in OUTDIR/errors.jsonl (never with note text); the run goes on
    and exits with status 1.

    \b
    Examples:
      kiwi-cas annotate ctakes_out/ -o kiwi_out/ --typesystem TypeSystem.xml
      kiwi-cas annotate 'notes/**/*.txt' -o out/ --jobs 2 --resume
      kiwi-cas annotate gold_entities/ -o out/ --task re
      kiwi-cas annotate /shared/notes -o /shared/out --engine ray --address auto
    """
    from kiwi_cas.engines.discover import discover
    from kiwi_cas.engines.local import RunOptions, run_local

    config = make_annotator_config(extractor, model, runtime, precision, backend, constrained, task, ctakes, entities_from,
                                   ctakes_assertions, require_mentions, view, sentence_type, write_sentences)
    read = make_read_options(typesystems, lenient, output_format, replace_invalid_xml_chars, encoding, max_bytes)
    items = discover(list(inputs), outdir, output_format)
    options = RunOptions(outdir=outdir, read=read, resume=resume, jobs=jobs, batch_size=batch_size)
    if engine == "ray":
        from kiwi_cas.engines.ray_engine import RayOptions, run_ray

        jobs_given = click.get_current_context().get_parameter_source("jobs").name != "DEFAULT"
        summary = run_ray(items, config, options,
                          RayOptions(address, jobs if jobs_given else None, cpus_per_job, gpus_per_job))
    else:
        if address is not None or gpus_per_job:
            raise click.UsageError("--address and --gpus-per-job are for --engine ray")
        summary = run_local(items, config, options)
    c = summary.counts
    click.echo(f"files: {summary.ok} ok, {summary.failed} failed, {summary.skipped} skipped (resume)", err=True)
    click.echo(f"written: {c.entities} entities, {c.modifiers} modifiers, {c.relations} relations", err=True)
    if c.dropped:
        click.echo(f"--lenient dropped {c.dropped} structures of unknown types", err=True)
    if c.unaligned:
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(c.unaligned.items()))
        click.echo(f"model output not written (could not be aligned to the note): {reasons}", err=True)
    # s/note too: a slow extractor's notes/s rounds to 0.00
    per_note = f", {summary.seconds / summary.tried:.2f} s/note" if summary.tried else ""
    click.echo(f"speed: {summary.notes_per_second:.2f} notes/s{per_note} over {summary.seconds:.1f}s", err=True)
    for source, message in summary.warnings[:SHOWN]:
        click.echo(f"warning: {source}: {message}", err=True)
    if summary.warned > SHOWN:
        click.echo(f"... and {summary.warned - SHOWN} more warnings", err=True)
    if summary.failed:
        for r in summary.failures[:SHOWN]:
            click.echo(f"failed: {r.source}: {r.error_type}: {r.message}", err=True)
        more = f"all {summary.failed}" if summary.failed > SHOWN else "they are"
        click.echo(f"{more} listed in {outdir / 'errors.jsonl'}", err=True)
        sys.exit(EXIT_FILES_FAILED)


COMMANDS = [annotate]
