"""Epoch checkpoints of image-linker training, so ``kgf link-train --images --resume``
continues an interrupted run.

One folder (``WORKSPACE/image-linker.checkpoint``) holds ``state.json`` (the phase, the
finished epochs, the history, the best hold-out accuracy, the random generators' states,
the optimiser's hyper-parameters, a fingerprint of the photos and options) and
``tensors.safetensors`` (the two towers, the best epoch's towers, the optimiser's moment
tensors, the torch generator's state). Both are written atomically after every epoch and
read without unpickling anything. The photo features themselves live in the workspace's
embedding cache (see :func:`align.image_train.trunk_outputs`), saved as they are computed.

Phases: ``select`` (training with the hold-out), ``selected`` (its result: the threshold and
the hold-out metrics), ``refit`` (training on all photos).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save

from kg.workspace import atomic_write_bytes, atomic_write_json

from .base import LinkerError

STATE, TENSORS = "state.json", "tensors.safetensors"


def fingerprint(images, iris, options: dict) -> str:
    """sha256 over the photo paths, their entities and the training options."""
    digest = hashlib.sha256()
    for image, iri in zip(images, iris, strict=True):
        digest.update(f"{image}\t{iri}\n".encode())
    digest.update(json.dumps(options, sort_keys=True, default=str).encode())
    return digest.hexdigest()


class Checkpoint:
    """The checkpoint folder of one training run (``folder`` None: nothing is kept)."""

    def __init__(self, folder: Path | None, key: str, resume: bool = False):
        self.folder = Path(folder) if folder is not None else None
        self.key = key
        self.state: dict = {}
        self.tensors: dict[str, torch.Tensor] = {}
        if self.folder is None:
            return
        if not resume:
            self.remove()
            return
        if not (self.folder / STATE).is_file():
            raise LinkerError(
                f"nothing to resume: {self.folder} holds no checkpoint (a finished or never "
                "started run); run without --resume"
            )
        self.state = json.loads((self.folder / STATE).read_text(encoding="utf-8"))
        if self.state.get("key") != key:
            raise LinkerError(
                f"the checkpoint in {self.folder} was made with other photos or options; run "
                "without --resume to start afresh, or with the same options"
            )
        self.tensors = load_file(str(self.folder / TENSORS))

    # ------------------------------------------------------------------ phases
    def phase(self, name: str) -> dict | None:
        """The saved state of phase ``name`` (with ``tensors``), or None."""
        part = self.state.get("phases", {}).get(name)
        if part is None:
            return None
        prefix = f"{name}."
        tensors = {k[len(prefix) :]: v for k, v in self.tensors.items() if k.startswith(prefix)}
        return {**part, "tensors": tensors}

    def put(self, name: str, info: dict, tensors: dict[str, torch.Tensor]) -> None:
        """Record phase ``name`` (``info`` JSON-ready) and write the folder atomically."""
        if self.folder is None:
            return
        self.state = {**self.state, "key": self.key}
        self.state.setdefault("phases", {})[name] = info
        prefix = f"{name}."
        self.tensors = {k: v for k, v in self.tensors.items() if not k.startswith(prefix)}
        self.tensors.update(
            {prefix + k: v.detach().cpu().clone().contiguous() for k, v in tensors.items()}
        )
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self.folder / TENSORS, save(self.tensors))
        atomic_write_json(self.folder / STATE, self.state)

    def remove(self) -> None:
        if self.folder is not None:
            discard(self.folder)


def discard(folder) -> None:
    """Remove a checkpoint folder (a finished run's)."""
    if Path(folder).exists():
        shutil.rmtree(folder)


# ---------------------------------------------------------------------- state helpers
def module_tensors(prefix: str, module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{k}": v for k, v in module.state_dict().items()}


def load_module(module: torch.nn.Module, prefix: str, tensors: dict) -> None:
    module.load_state_dict(
        {k[len(prefix) + 1 :]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
    )


def optimiser_state(optimiser) -> tuple[list, dict[str, torch.Tensor]]:
    """An optimiser's ``state_dict`` as (JSON-ready param groups, flat tensors)."""
    state = optimiser.state_dict()
    tensors = {
        f"opt.{index}.{name}": value if torch.is_tensor(value) else torch.tensor(value)
        for index, slots in state["state"].items()
        for name, value in slots.items()
    }
    return json.loads(json.dumps(state["param_groups"], default=list)), tensors


def load_optimiser(optimiser, groups: list, tensors: dict) -> None:
    slots: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("opt."):
            _, index, name = key.split(".", 2)
            slots.setdefault(int(index), {})[name] = value
    optimiser.load_state_dict({"state": slots, "param_groups": groups})


def numpy_state(rng: np.random.Generator) -> dict:
    return rng.bit_generator.state


def load_numpy_state(rng: np.random.Generator, state: dict) -> None:
    rng.bit_generator.state = state


def save_phase(
    checkpoint, phase, linker, optimiser, generator, rng, best, best_acc, history
) -> None:
    """Save one training phase of the image linker after an epoch: both towers, the best
    epoch's towers, the optimiser, the random generators and the history."""
    groups, tensors = optimiser_state(optimiser)
    tensors.update(module_tensors("photo", linker.tower))
    tensors.update(module_tensors("entity", linker.entity_tower))
    tensors["generator"] = generator.get_state()
    tensors["torch_rng"] = torch.random.get_rng_state()
    if best is not None:
        tensors.update({f"best.photo.{k}": v for k, v in best[0].items()})
        tensors.update({f"best.entity.{k}": v for k, v in best[1].items()})
    info = {
        "epoch": len(history), "history": history, "best_acc": best_acc, "groups": groups,
        "numpy": numpy_state(rng),
    }  # fmt: skip
    checkpoint.put(phase, info, tensors)


def restore_phase(linker, optimiser, generator, rng, saved: dict):
    """Load a phase saved by :func:`save_phase`: returns ``(best, best_acc, history, epochs)``."""
    t = saved["tensors"]
    load_module(linker.tower, "photo", t)
    load_module(linker.entity_tower, "entity", t)
    load_optimiser(optimiser, saved["groups"], t)
    generator.set_state(t["generator"])
    torch.random.set_rng_state(t["torch_rng"])
    load_numpy_state(rng, saved["numpy"])
    best = None
    if any(k.startswith("best.photo.") for k in t):
        pick = lambda p: {k[len(p) :]: v for k, v in t.items() if k.startswith(p)}
        best = (pick("best.photo."), pick("best.entity."))
    return best, saved["best_acc"], saved["history"], saved["epoch"]
