"""Video as a bag of frames: the mean of an image encoder's frame embeddings."""

from __future__ import annotations

import torch

from .base import Encoder, EncoderError, register


@register("video")
class VideoEncoder(Encoder):
    """Frame lists -> ``float32 [N, dim]``: mean of the frames' image embeddings.

    Each video is a list of frames (PIL images or local paths, e.g. key frames extracted
    beforehand); all frames of a batch go through the image encoder together and are
    mean-pooled per video (temporal average pooling, the baseline of Karpathy et al.,
    "Large-scale Video Classification with CNNs", CVPR 2014). A video with no frames is
    missing: its row is zero and ``mask`` is False for it. ``dim`` is the image
    encoder's (1280 with the default EfficientNet-Lite0).
    """

    modality = "video"

    def __init__(
        self,
        image_encoder: str | Encoder = "efficientnet-lite0",
        device: str | torch.device | None = "auto",
        batch_size: int = 64,
    ):
        from .base import get_encoder

        super().__init__(device=device, batch_size=batch_size)
        if isinstance(image_encoder, str):
            image_encoder = get_encoder(image_encoder, device=device, batch_size=batch_size)
        if image_encoder.modality != "image":
            raise EncoderError(
                f"video: needs an image encoder, {image_encoder.name!r} is {image_encoder.modality}"
            )
        self.image_encoder = image_encoder
        self.device = image_encoder.device

    @property
    def dim(self) -> int:  # type: ignore[override]
        return self.image_encoder.dim

    @property
    def version(self) -> str:  # type: ignore[override]
        return f"mean-{self.image_encoder.name}@{self.image_encoder.version}"

    def encode(self, batch: list) -> torch.Tensor:
        videos = [list(frames or ()) for frames in batch]
        counts = torch.tensor([len(v) for v in videos], dtype=torch.long)
        frames = [frame for video in videos for frame in video]
        out = torch.zeros(len(videos), self.dim)
        if frames:
            embedded = self.image_encoder.encode(frames)
            owner = torch.repeat_interleave(torch.arange(len(videos)), counts)
            out.index_add_(0, owner, embedded.float())
            out /= counts.clamp(min=1).unsqueeze(1)
        return out

    def mask(self, batch: list) -> torch.Tensor:
        """``bool [N]``: False for videos with no frames."""
        return torch.tensor([bool(frames) for frames in batch], dtype=torch.bool)
