"""``kiwi-cas evaluate``: precision, recall and F1 of predictions against gold notes."""

from __future__ import annotations

import json
from pathlib import Path

import click

from kiwi_cas.cli.options import typesystem_option
from kiwi_cas.errors import UsageError


@click.command()
@click.option("--gold", required=True, type=click.Path(exists=True, path_type=Path),
              help="Gold notes: brat .txt+.ann or XMI with Kiwi annotations.")
@click.option("--pred", required=True, type=click.Path(exists=True, path_type=Path), help="Predicted XMI.")
@click.option("--task", type=click.Choice(["all", "re"]), default="all", show_default=True,
              help="re: predictions were made with gold entities (annotate --task re); checks they match.")
@typesystem_option("Typesystem of the XMI notes (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the full report as JSON.")
def evaluate(gold, pred, task, typesystems, as_json) -> None:
    """Precision, recall and F1 (exact and relaxed) for NER, modifiers and relations.

    \b
    Example:
      kiwi-cas evaluate --gold mtsamples/dev --pred annotated/
    """
    from kiwi_cas.formats.documents import load_documents
    from kiwi_cas.core.evaluate import evaluate as run_eval, format_report

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
                raise UsageError(f"{g.name}: predicted entities differ from gold; run annotate --task re "
                                       "on notes holding the gold entities")
    report = run_eval(gold_docs, pred_docs)
    click.echo(json.dumps(report.as_dict(), indent=2) if as_json else format_report(report))


COMMANDS = [evaluate]
