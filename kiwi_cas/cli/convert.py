"""``kiwi-cas import`` and ``kiwi-cas export``: brat notes in, Kiwi annotations out in other formats."""

from __future__ import annotations

from pathlib import Path

import click

from kiwi_cas.cli.options import output_option, typesystem_option
from kiwi_cas.formats.convert import EXPORTERS


@click.command("import")
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["brat"]), default="brat", show_default=True)
@output_option("Output folder: NAME.xmi per note and TypeSystem.xml.")
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


@click.command("export")
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(list(EXPORTERS)), default="brat", show_default=True,
              help=" ".join(f"{name}: {e.help}." for name, e in EXPORTERS.items()))
@output_option("Output folder.")
@typesystem_option("Typesystem of the XMI files (repeatable). Default: TypeSystem.xml beside each.")
@click.option("--with-text", is_flag=True, help="parquet/csv: add the entity and modifier texts (PHI; off by default).")
@click.option("--validated", is_flag=True, help="medcattrainer: mark annotations and relations as reviewed, for "
              "teams that train MedCAT's MetaCAT/RelCAT on unreviewed output (they read validated items only).")
def export(source, fmt, outdir, typesystems, with_text, validated) -> None:
    """Write the Kiwi annotations of XMI files in another format (offsets: characters of the note).

    \b
    Examples:
      kiwi-cas export --format brat annotated/ -o brat_out/
      kiwi-cas export --format medcattrainer annotated/ -o review/
      kiwi-cas export --format parquet annotated/ -o tables/   # then: duckdb -c "from 'tables/entities.parquet'"
    """
    from kiwi_cas.formats.convert import ExportOptions, export_folder

    if with_text and "with_text" not in EXPORTERS[fmt].options:
        raise click.UsageError(f"--with-text is for parquet and csv; {fmt} always holds the note text")
    if validated and "validated" not in EXPORTERS[fmt].options:
        raise click.UsageError("--validated is for medcattrainer")
    n = export_folder(source, outdir, fmt, tuple(typesystems), ExportOptions(with_text, validated))
    click.echo(f"exported {n} documents to {outdir} ({fmt})", err=True)


COMMANDS = [import_, export]
