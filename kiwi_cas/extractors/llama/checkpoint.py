"""A LLaMA training run's whole state on disk, so that a killed run continues where it stopped
(``kiwi-cas train llama --resume``): on 2 CPU cores the shipped recipe takes hours.

A resumed run ends with the adapter an uninterrupted run gives, bit for bit, when the checkpoint
holds everything a step depends on: the trainable weights, the optimizer's moments, the schedule,
the epoch's batch order and the place in it, and the random generators behind the shuffling
(Python's) and the dropout (torch's)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import torch

from kiwi_cas.errors import UsageError

CHECKPOINT = "checkpoint.pt"  # in the output folder while a run is under way; removed when it finishes
CHECKPOINT_EVERY = 50  # steps: a few minutes of a CPU run; the file is the trained weights and their AdamW moments
# (~60 MB for the LoRA adapter, ~1.6 GB when every weight of SmolLM2-135M is trained)


@dataclass
class Progress:
    """Where a run is: steps done, the epoch and the next batch in it, seconds trained in earlier sittings."""

    steps: int = 0
    epoch: int = 0
    batch: int = 0
    seconds: float = 0.0
    resumed_at: list[int] = field(default_factory=list)  # the step of each earlier sitting's last checkpoint


def save(path: Path, recipe: dict, examples: int, progress: Progress, batches: list[list[int]],
         rng: random.Random, trainable: dict[str, torch.Tensor], optim, sched) -> None:
    """Written beside and renamed over the last one, so a kill mid-write leaves the previous checkpoint whole."""
    state = {"config": recipe, "examples": examples, "steps": progress.steps, "epoch": progress.epoch,
             "batch": progress.batch, "seconds": progress.seconds, "resumed_at": progress.resumed_at,
             "batches": batches, "rng": rng.getstate(), "torch_rng": torch.get_rng_state(),
             "cuda_rng": torch.cuda.get_rng_state() if torch.cuda.is_available() else None,
             "adapter": {name: p.detach().clone() for name, p in trainable.items()},
             "optimizer": optim.state_dict(), "schedule": sched.state_dict()}
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def restore(path: Path, recipe: dict, examples: int, rng: random.Random, trainable: dict[str, torch.Tensor],
            optim, sched) -> tuple[Progress, list[list[int]]]:
    """Load the run's state into the given weights, optimizer, schedule and generators; returns where the
    run was and the epoch's batch order. A checkpoint of another recipe or other notes is refused."""
    state = torch.load(path, weights_only=True)  # tensors and plain values: loading runs no code
    if (state["config"], state["examples"]) != (recipe, examples):
        raise UsageError(f"{path} was written by a run with other options or notes; "
                         "give the same ones, or start afresh without resuming")
    with torch.no_grad():
        for name, value in state["adapter"].items():
            trainable[name].copy_(value)
    optim.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["schedule"])
    rng.setstate(state["rng"])
    torch.set_rng_state(state["torch_rng"])
    if torch.cuda.is_available() and state["cuda_rng"] is not None:  # None: the run began on a CPU
        torch.cuda.set_rng_state(state["cuda_rng"])
    progress = Progress(state["steps"], state["epoch"], state["batch"], state["seconds"],
                        state["resumed_at"] + [state["steps"]])
    return progress, state["batches"]
