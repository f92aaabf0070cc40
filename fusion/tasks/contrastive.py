"""Contrastive alignment of two modalities of the same node (InfoNCE).

van den Oord et al. (2018), "Representation Learning with Contrastive Predictive Coding";
in the symmetric image-text form of CLIP (Radford et al., 2021). For a batch of ``B``
nodes that have both modalities ``a`` and ``b`` (e.g. image and text), the model's
per-modality vectors (:attr:`fusion.model.FusionOutput.modalities`: early fusion, the
input projections; late fusion, the propagated per-modality vectors) go through a linear
projection head each and are L2-normalised, ``za``, ``zb`` [B, p]; then::

    logits = za @ zb.T / temperature                     # [B, B]
    loss = (CE(logits, arange(B)) + CE(logits.T, arange(B))) / 2

Used as the main task or, with a ``weight``, as an auxiliary loss next to another task
(``[[aux]] name = "contrastive"``). Metrics on held-out nodes: ``mrr`` and ``top1`` of
retrieving each node's ``b`` vector from its ``a`` vector among the split's nodes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..model import ConfigError, FusionGNNConfig, FusionOutput
from .base import Task, move, register_task
from .ranking import rank_metrics, ranks_from_scores

SPLITS = ("train", "valid", "test")


@dataclass
class ContrastiveTaskConfig:
    """``modalities``: the two modalities to align (default: image and text, or the first
    two that some node type has); ``node_types``: restrict to these types."""

    modalities: list[str] | None = None
    node_types: list[str] | None = None
    temperature: float = 0.07
    proj_dim: int = 64
    batch_size: int = 1024
    split: list[float] = field(default_factory=lambda: [0.8, 0.1, 0.1])
    split_seed: int = 0
    weight: float = 1.0

    def __post_init__(self):
        if self.temperature <= 0:
            raise ConfigError(f"contrastive temperature={self.temperature}; expected > 0")
        if self.modalities is not None and len(self.modalities) != 2:
            raise ConfigError(f"contrastive modalities={self.modalities}; name exactly two")


@register_task
class ContrastiveTask(Task):
    """Symmetric InfoNCE between two modality projections (module docstring)."""

    name = "contrastive"
    Config = ContrastiveTaskConfig
    metric = "mrr"

    def __init__(self, config: ContrastiveTaskConfig, graph, edge_index_dict, features=None):
        super().__init__(config, graph, edge_index_dict, features)
        feats = features.features if features is not None else {}
        available = {t: sorted(mods) for t, mods in feats.items()}
        mods = config.modalities
        if mods is None:
            pairs = [m for m in available.values() if {"image", "text"} <= set(m)]
            mods = (
                ["image", "text"]
                if pairs
                else next((m[:2] for m in available.values() if len(m) > 1), None)
            )
        if mods is None:
            raise ConfigError(
                "contrastive task: no node type has two modalities; features per type: "
                f"{available or 'none (run `kgf encode` first)'}"
            )
        self.modalities = list(mods)
        a, b = self.modalities
        types = config.node_types or sorted(available)
        self.nodes: dict[str, dict[str, Tensor]] = {s: {} for s in SPLITS}
        generator = torch.Generator().manual_seed(config.split_seed)
        for t in types:
            if t not in feats or a not in feats[t] or b not in feats[t]:
                continue
            both = torch.nonzero(feats[t][a][1].bool() & feats[t][b][1].bool()).flatten()
            if len(both) < 2:
                continue
            both = both[torch.randperm(len(both), generator=generator)]
            n_test = int(config.split[2] * len(both) + 0.5)
            n_valid = int(config.split[1] * len(both) + 0.5)
            self.nodes["test"][t] = both[:n_test]
            self.nodes["valid"][t] = both[n_test : n_test + n_valid]
            self.nodes["train"][t] = both[n_test + n_valid :]
        if not any(len(v) > 1 for v in self.nodes["train"].values()):
            raise ConfigError(
                f"contrastive task: no node type has at least two nodes with both {a!r} and "
                f"{b!r}; features per type: {available}"
            )
        self.splits = tuple(s for s in SPLITS if sum(len(v) for v in self.nodes[s].values()) > 1)

    def build(self, model_config: FusionGNNConfig) -> None:
        a, b = self.modalities
        t = next(iter(self.nodes["train"]))
        self.head_a = nn.Linear(model_config.modality_output_dim(t, a), self.config.proj_dim)
        self.head_b = nn.Linear(model_config.modality_output_dim(t, b), self.config.proj_dim)

    def _pair(self, out: FusionOutput, t: str, idx: Tensor) -> tuple[Tensor, Tensor]:
        a, b = self.modalities
        za = F.normalize(self.head_a(out.modalities[t][a][0][idx]).float(), dim=-1)
        zb = F.normalize(self.head_b(out.modalities[t][b][0][idx]).float(), dim=-1)
        return za, zb

    def loss(self, out: FusionOutput, batch=None) -> Tensor:
        losses, weights = [], []
        for t, idx in self.nodes["train"].items():
            if len(idx) < 2:
                continue
            if len(idx) > self.config.batch_size:
                idx = idx[torch.randperm(len(idx), device=idx.device)[: self.config.batch_size]]
            za, zb = self._pair(out, t, idx)
            logits = za @ zb.T / self.config.temperature
            target = torch.arange(len(idx), device=logits.device)
            losses.append((F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2)
            weights.append(len(idx))
        w = torch.tensor(weights, dtype=torch.float, device=losses[0].device)
        return (torch.stack(losses) * w).sum() / w.sum()

    @torch.no_grad()
    def evaluate(self, out: FusionOutput, split: str) -> dict[str, float]:
        ranks = []
        for t, idx in self.nodes[split].items():
            if len(idx) < 2:
                continue
            za, zb = self._pair(out, t, idx)
            for start in range(0, len(idx), 1024):
                scores = za[start : start + 1024] @ zb.T
                true = torch.arange(start, start + len(scores), device=scores.device)
                true_score = scores[torch.arange(len(scores), device=scores.device), true]
                ranks.append(ranks_from_scores(true_score, scores)["realistic"])
        metrics = rank_metrics(torch.cat(ranks) if ranks else torch.zeros(0), (1,))
        return {"mrr": metrics["mrr"], "top1": metrics["hits@1"]}

    def info(self) -> dict:
        return {
            "modalities": self.modalities,
            "sizes": {s: {t: len(v) for t, v in self.nodes[s].items()} for s in SPLITS},
        }

    def to_device(self, device):
        self.nodes = move(self.nodes, device)
        return self.to(device)
