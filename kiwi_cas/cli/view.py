"""``kiwi-cas view``: a self-contained HTML viewer for annotated notes."""

from __future__ import annotations

from pathlib import Path

import click

from kiwi_cas.cli.options import typesystem_option


@click.command()
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option("-o", "--output", "output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The HTML file to write (it holds note text: PHI).")
@click.option("--gold", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Gold folder (brat or Kiwi XMI): mark matches, misses and false positives; P/R/F1 per type.")
@typesystem_option("Typesystem of the XMI files (repeatable). Default: TypeSystem.xml beside each.")
def view(source: Path, output: Path, gold: Path | None, typesystems) -> None:
    """Write one HTML file showing the annotations of an XMI file or a folder (XMI or brat).

    The page needs no server and loads nothing from the network: open it from disk in any
    browser. Spans are coloured bars on stacked lanes (nested spans stay visible),
    relations are curves from entity to modifier, negated/uncertain/conditional/other-subject
    entities are patterned; click a span for its features. Folders get a corpus summary
    (counts per type and per note, failed files from errors.jsonl).

    \b
    Examples:
      kiwi-cas view kiwi_out/ -o kiwi_out/report.html
      kiwi-cas view kiwi_out/ -o dev_report.html --gold mtsamples/dev
    """
    from kiwi_cas.view import build_view

    info = build_view(source, output, gold, tuple(typesystems))
    extra = f", compared with {info['gold']} gold notes" if gold else ""
    click.echo(f"wrote {output}: {info['documents']} notes, {info['failed']} failed{extra}", err=True)


COMMANDS = [view]
