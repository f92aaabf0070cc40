"""``infonce-graph``: the contrastive towers with graph neighbours, hard negatives by graph.

As ``infonce`` (:mod:`align.alignment.infonce`), with the product's graph context in each
tower and batches drawn through the graph:

- **Graph neighbours in each tower.** ``c`` [d_t] is the mean text feature of the product's
  neighbour nodes (its colour, category, season... nodes, :class:`AlignmentData`); the
  towers read ``[normalise(t) ; c]`` and ``[normalise(v) ; c]``. In training each
  neighbour is dropped with probability ``neighbour_dropout`` and the whole context with
  ``context_dropout``, independently per tower, so that a tower also works from a part
  of the facts (a search query names some attributes, a shopper's photo none).
- **Hard negatives through the graph.** Each epoch the products are ordered by two of
  their neighbours drawn at random (and a random key), cut into groups of ``group``
  consecutive products, and the shuffled groups make the batches: most products of a batch
  share a category or a colour with ``group - 1`` others, whose names and photos are the
  negatives that the in-batch InfoNCE must tell apart (the in-batch hard negatives of
  Karpukhin et al., "Dense Passage Retrieval", EMNLP 2020, chosen by the graph as
  ``align.image_train`` does with categories).

Without neighbours (``AlignmentData.neighbours`` None) the context is zero and this is
``infonce`` with wider inputs.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .base import ALIGNMENTS, AlignmentData
from .infonce import InfoNCEAlignment


@ALIGNMENTS.register("infonce-graph")
class GraphInfoNCEAlignment(InfoNCEAlignment):
    """InfoNCE towers with graph context and graph hard negatives (module docstring)."""

    uses_graph = True

    def __init__(self, text_dim: int, image_dim: int, dim: int = 128, seed: int = 0, *,
                 neighbour_dropout: float = 0.5, context_dropout: float = 0.2,
                 group: int = 4, **options):  # fmt: skip
        self.neighbour_dropout, self.context_dropout, self.group = (
            neighbour_dropout, context_dropout, group)  # fmt: skip
        super().__init__(text_dim, image_dim, dim, seed, neighbour_dropout=neighbour_dropout,
                         context_dropout=context_dropout, group=group, **options)  # fmt: skip

    def input_widths(self) -> tuple[int, int]:
        return 2 * self.text_dim, self.image_dim + self.text_dim

    def _with_context(self, x: Tensor, context: Tensor | None) -> Tensor:
        x = nn.functional.normalize(x, dim=-1)
        if context is None:
            context = torch.zeros(len(x), self.text_dim, device=x.device)
        return torch.cat([x, context], dim=1)

    def text_space(self, text: Tensor, context: Tensor | None) -> Tensor:
        return self.text_tower(self._with_context(text, context))

    def image_space(self, image: Tensor, context: Tensor | None) -> Tensor:
        return self.image_tower(self._with_context(image, context))

    def pair_inputs(self, data: AlignmentData, rows: Tensor, generator=None):
        sub = data.subset(rows)
        if sub.neighbours is None or generator is None:
            context = sub.context()
            return sub.text, sub.image, context, context
        contexts = []
        for _ in range(2):  # one draw per tower
            keep = torch.rand(sub.neighbours.shape, generator=generator) >= self.neighbour_dropout
            context = sub.context(keep)
            whole = torch.rand(len(rows), generator=generator) >= self.context_dropout
            contexts.append(context * whole[:, None])
        return sub.text, sub.image, contexts[0], contexts[1]

    def batches(self, data: AlignmentData, generator: torch.Generator) -> list[Tensor]:
        if data.neighbours is None or self.group < 2:
            return super().batches(data, generator)
        nb = data.neighbours
        n, k = nb.shape
        counts = (nb >= 0).sum(1).clamp(min=1)
        pick = lambda: nb[torch.arange(n), (torch.rand(n, generator=generator) * counts).long()]
        first, second = pick(), pick()
        noise = torch.rand(n, generator=generator)
        order = sorted(range(n), key=lambda i: (int(first[i]), int(second[i]), float(noise[i])))
        groups = torch.as_tensor(order).split(self.group)
        shuffled = torch.randperm(len(groups), generator=generator).tolist()
        flat = torch.cat([groups[g] for g in shuffled])
        return [b for b in flat.split(self.batch_size) if len(b) > 1]
