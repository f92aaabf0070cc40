"""A linear projection of the text encoder, fine-tuned contrastively on matched pairs.

The frozen text encoder's embeddings (mentions ``m`` [P, d], entities ``e`` [E, d]) are
mapped by one matrix ``W`` [d, d], initialised to the identity, and compared by cosine.
Training minimises InfoNCE (van den Oord et al., "Representation Learning with Contrastive
Predictive Coding", 2018) of each matched mention against *every* catalogue entity of the
candidate types - the full-softmax form of the in-batch negatives used to train BLINK's
bi-encoder (Wu et al., "Scalable Zero-shot Entity Linking with Dense Entity Retrieval",
EMNLP 2020)::

    loss = CE( cos(W m_i, W e_j) / tau over j,  gold j ) + reg * ||W - I||^2

with ``tau = 0.05``, Adam, full batch (the mentions are few, the encoder is frozen, so an
epoch costs one [P, E] matrix product). With validation pairs the epoch with the best
validation accuracy@1 is kept; if no epoch beats the identity, the identity is returned
(and the linker then uses no projection).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def _accuracy(w: torch.Tensor, m: torch.Tensor, gold: torch.Tensor, e: torch.Tensor) -> float:
    with torch.no_grad():
        sims = F.normalize(m @ w, dim=1) @ F.normalize(e @ w, dim=1).T
        return float((sims.argmax(1) == gold).float().mean())


def train_projection(
    mentions: np.ndarray,
    gold: np.ndarray,
    entities: np.ndarray,
    *,
    valid: tuple[np.ndarray, np.ndarray] | None = None,
    epochs: int = 60,
    lr: float = 2e-3,
    temperature: float = 0.05,
    reg: float = 1.0,
    seed: int = 0,
) -> tuple[np.ndarray | None, dict]:
    """Fit ``W`` (see module docstring).

    Args:
        mentions: mention embeddings [P, d] of matched pairs.
        gold: the matched entity of each, as a row of ``entities`` [P].
        entities: entity embeddings [E, d] (the candidate pool: all negatives).
        valid: optional ``(mention embeddings, gold rows)`` for early stopping.
    Returns:
        ``W`` float32 [d, d], or None when it did not improve on the identity; and an info
        dict (accuracy@1 before / after on the validation pairs, or the training pairs).
    """
    if not len(mentions):
        return None, {"skipped": "no matched pairs"}
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    m = torch.as_tensor(mentions, dtype=torch.float32)
    e = torch.as_tensor(entities, dtype=torch.float32)
    y = torch.as_tensor(gold, dtype=torch.long)
    if valid is not None and len(valid[0]):
        vm = torch.as_tensor(valid[0], dtype=torch.float32)
        vy = torch.as_tensor(valid[1], dtype=torch.long)
    else:
        vm, vy = m, y
    eye = torch.eye(m.shape[1])
    w = eye.clone().requires_grad_(True)
    optimiser = torch.optim.Adam([w], lr=lr)
    before = _accuracy(eye, vm, vy, e)
    best, best_acc, best_epoch = None, before, 0
    try:
        for epoch in range(1, epochs + 1):
            optimiser.zero_grad()
            sims = F.normalize(m @ w, dim=1) @ F.normalize(e @ w, dim=1).T
            loss = F.cross_entropy(sims / temperature, y) + reg * ((w - eye) ** 2).sum()
            loss.backward()
            optimiser.step()
            acc = _accuracy(w.detach(), vm, vy, e)
            if acc > best_acc:
                best, best_acc, best_epoch = w.detach().clone(), acc, epoch
    finally:
        torch.random.set_rng_state(state)
    info = {"acc1_before": before, "acc1_after": best_acc, "best_epoch": best_epoch}
    return (best.numpy().astype(np.float32) if best is not None else None), info
