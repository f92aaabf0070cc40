"""``infonce``: two learned towers over the frozen features, trained contrastively.

CLIP's two-tower recipe (Radford et al., "Learning Transferable Visual Models From Natural
Language Supervision", ICML 2021) on frozen encoders, the symmetric InfoNCE loss of
:func:`align.alignment.base.info_nce` (the loss of :mod:`fusion.tasks.contrastive`)::

    zt = normalise(MLP_t(normalise(t)))        [N, dim]
    zv = normalise(MLP_v(normalise(v)))        [N, dim]
    loss = InfoNCE(zt, zv, tau) over batches of ``batch_size`` pairs

``MLP`` = Linear(in, hidden) -> GELU -> Dropout -> Linear(hidden, dim). Adam with weight
decay; a tenth of the pairs (``valid_fraction``) is held out and the epoch with the best
mean Recall@1 (name -> photo and photo -> name) on it is kept. The same loop trains
``infonce-graph`` (:mod:`align.alignment.infonce_graph`), which changes the towers' inputs
and how batches are drawn.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from .base import ALIGNMENTS, Alignment, AlignmentData, AlignmentError, info_nce, recall_at


def tower(width: int, hidden: int, dim: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Dropout(dropout),
                         nn.Linear(hidden, dim))  # fmt: skip


@ALIGNMENTS.register("infonce")
class InfoNCEAlignment(Alignment):
    """Contrastive two-tower alignment (module docstring)."""

    trained_by_epochs = True

    def __init__(self, text_dim: int, image_dim: int, dim: int = 128, seed: int = 0,
                 hidden: int = 512, epochs: int = 40, batch_size: int = 256, lr: float = 1e-3,
                 weight_decay: float = 1e-4, temperature: float = 0.05, dropout: float = 0.1,
                 valid_fraction: float = 0.1, info: dict | None = None, **options):  # fmt: skip
        super().__init__(text_dim, image_dim, dim, seed, info, hidden=hidden, epochs=epochs,
                         batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                         temperature=temperature, dropout=dropout,
                         valid_fraction=valid_fraction, **options)  # fmt: skip
        self.hidden, self.epochs, self.batch_size, self.lr = hidden, epochs, batch_size, lr
        self.weight_decay, self.temperature = weight_decay, temperature
        self.valid_fraction = valid_fraction
        in_t, in_v = self.input_widths()
        with torch.random.fork_rng(devices=[]):  # the initial weights follow ``seed``
            torch.manual_seed(seed)
            self.text_tower = tower(in_t, hidden, dim, dropout)
            self.image_tower = tower(in_v, hidden, dim, dropout)

    def input_widths(self) -> tuple[int, int]:
        return self.text_dim, self.image_dim

    # ------------------------------------------------------------------ towers
    def text_space(self, text: Tensor, context: Tensor | None) -> Tensor:
        return self.text_tower(nn.functional.normalize(text, dim=-1))

    def image_space(self, image: Tensor, context: Tensor | None) -> Tensor:
        return self.image_tower(nn.functional.normalize(image, dim=-1))

    # ------------------------------------------------------------------ training
    def batches(self, data: AlignmentData, generator: torch.Generator) -> list[Tensor]:
        """Row batches of one epoch: a random permutation, cut in ``batch_size`` pieces."""
        order = torch.randperm(len(data), generator=generator)
        return [b for b in order.split(self.batch_size) if len(b) > 1]

    def pair_inputs(self, data: AlignmentData, rows: Tensor, generator=None):
        """``(text, image, text context, image context)`` of ``rows``; ``generator``: in
        training (the graph method drops neighbours then)."""
        return data.text[rows], data.image[rows], None, None

    def fit(self, data: AlignmentData) -> dict:
        if len(data) < 4:
            raise AlignmentError(f"{self.name} needs at least 4 pairs, got {len(data)}")
        device = self._device()
        generator = torch.Generator().manual_seed(self.seed)
        torch_state = torch.random.get_rng_state()
        torch.manual_seed(self.seed)
        order = torch.randperm(len(data), generator=generator)
        n_valid = max(4, int(len(data) * self.valid_fraction)) if len(data) >= 40 else 0
        valid, train = (data.subset(order[:n_valid]) if n_valid else None,
                        data.subset(order[n_valid:]))  # fmt: skip
        optimiser = torch.optim.AdamW(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        best, best_score, best_epoch, history = None, -1.0, 0, []
        try:
            for epoch in range(1, self.epochs + 1):
                self.train()
                total = 0.0
                for rows in self.batches(train, generator):
                    t, v, ct, cv = (x.to(device) if x is not None else None
                                    for x in self.pair_inputs(train, rows, generator))  # fmt: skip
                    loss = info_nce(self.embed_text(t, ct), self.embed_image(v, cv),
                                    self.temperature)  # fmt: skip
                    optimiser.zero_grad()
                    loss.backward()
                    optimiser.step()
                    total += loss.item() * len(rows)
                score = self._valid_score(valid if valid is not None else train)
                history.append({"epoch": epoch, "loss": round(total / len(train), 4),
                                "valid_r1": round(score, 4)})  # fmt: skip
                if score > best_score:
                    best, best_score, best_epoch = copy.deepcopy(self.state_dict()), score, epoch
        finally:
            torch.random.set_rng_state(torch_state)
            self.eval()
        self.load_state_dict(best)
        return self._done({"pairs": len(data), "valid_pairs": n_valid, "best_epoch": best_epoch,
                           "valid_r1": round(best_score, 4), "history": history})  # fmt: skip

    @torch.no_grad()
    def _valid_score(self, data: AlignmentData) -> float:
        self.eval()
        rows = torch.arange(len(data))
        t, v, ct, cv = self.pair_inputs(data, rows)
        zt, zv = self.embed_text(t, ct), self.embed_image(v, cv)
        return (recall_at(zt, zv, (1,))["r@1"] + recall_at(zv, zt, (1,))["r@1"]) / 2
