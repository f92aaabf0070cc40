"""Tiny random transformers models for tests: the offline MiniLM's tokenizer, 2 small layers.

Saved with ``save_pretrained`` like any local checkpoint, so the code under test loads them
by path exactly as it loads a real model (no hub, no ``trust_remote_code``).
"""

from __future__ import annotations

from pathlib import Path


def save_tiny_bert(folder: Path, model_class: str = "BertModel", **config) -> str:
    """Save a random BERT (hidden 32, 2 layers, 2 heads) of ``transformers.<model_class>``
    with the offline MiniLM tokenizer into ``folder``; ``config`` overrides BertConfig
    fields (e.g. ``num_labels=1``). Returns the folder as a string."""
    import transformers
    from transformers import AutoTokenizer, BertConfig

    from align.rerank import default_base_model

    tokenizer = AutoTokenizer.from_pretrained(default_base_model(), local_files_only=True)
    settings = dict(
        vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
        num_attention_heads=2, intermediate_size=64, max_position_embeddings=128,
    )  # fmt: skip
    getattr(transformers, model_class)(BertConfig(**settings | config)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)
