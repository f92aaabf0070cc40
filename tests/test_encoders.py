"""fusion.encoders: registry, MiniLM, E5, EfficientNet-Lite0, image loading, numeric, video."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch
from PIL import Image

from fusion.encoders import (
    Encoder,
    EncoderError,
    ImageError,
    UnknownEncoderError,
    get_encoder,
    is_missing_text,
    list_encoders,
    load_image,
    register,
    resolve_device,
)
from fusion.encoders.base import length_buckets, mean_pool
from fusion.encoders.efficientnet_lite0 import (
    BLOCK_CHANNELS,
    HEAD_CHANNELS,
    Conv2dSame,
    EfficientNetLite0,
    load_network,
    weights_path,
)

os.environ.setdefault("HF_HUB_OFFLINE", "1")


# ----------------------------------------------------------------------------- registry
def test_registry_lists_builtins_and_builds_cheaply():
    names = list_encoders()
    for name in ("minilm", "e5-multilingual", "efficientnet-lite0", "numeric", "video"):
        assert name in names
    expected = {
        "minilm": ("text", 384),
        "e5-multilingual": ("text", 384),
        "efficientnet-lite0": ("image", 1280),
        "video": ("video", 1280),
    }
    for name, (modality, dim) in expected.items():
        encoder = get_encoder(name, device="cpu", batch_size=8)
        assert isinstance(encoder, Encoder)
        assert (encoder.name, encoder.modality, encoder.dim) == (name, modality, dim)
        assert encoder.version and encoder.device == torch.device("cpu")
    assert get_encoder("numeric").modality == "numeric"
    same = get_encoder("minilm")
    assert get_encoder(same) is same


def test_unknown_name_lists_registered_and_suggests():
    with pytest.raises(UnknownEncoderError, match=r"did you mean 'minilm'.*efficientnet-lite0"):
        get_encoder("minlm")
    with pytest.raises(UnknownEncoderError, match=r"registered: .*minilm.*hf:"):
        get_encoder("word2vec")
    with pytest.raises(EncoderError, match="batch_size"):
        get_encoder("minilm", batch_size=0)


def test_register_refuses_a_taken_name():
    with pytest.raises(EncoderError, match="already taken"):

        @register("minilm")
        class Other(Encoder):
            modality, dim = "text", 3

            def encode(self, batch):
                return torch.zeros(len(batch), 3)


def test_device_auto():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device(None).type == expected
    assert resolve_device("cpu") == torch.device("cpu")


def test_helpers():
    for missing in (None, "", "   ", "\n\t", "\u200b", float("nan")):
        assert is_missing_text(missing)
    for present in ("a", " x ", "0"):
        assert not is_missing_text(present)
    batches = list(length_buckets([3, 9, 1, 9, 5], 2))
    assert [b.tolist() for b in batches] == [[1, 3], [4, 0], [2]]
    hidden = torch.tensor([[[1.0], [3.0], [100.0]]])
    assert mean_pool(hidden, torch.tensor([[1, 1, 0]])).item() == 2.0


# ----------------------------------------------------------------------------- MiniLM
TEXTS = [
    "Sony turntable PSLX350H belt drive",
    "red toy car",
    "Bose Acoustimass 5 Series III speaker system",
    "Ünïcödé café crème brûlée 東京 🚗",
    "short",
    "a much longer product description " * 30,  # > 256 tokens: truncated
]


@pytest.fixture(scope="module")
def minilm():
    return get_encoder("minilm", device="cpu", batch_size=4)


@pytest.mark.slow
def test_minilm_shape_normalised_order_and_batch_independent(minilm):
    x = minilm.encode(TEXTS)
    assert x.shape == (len(TEXTS), 384) and x.dtype == torch.float32 and x.device.type == "cpu"
    assert torch.allclose(x.norm(dim=1), torch.ones(len(TEXTS)), atol=1e-5)
    # length bucketing reorders internally; rows must still follow the input order
    perm = [4, 2, 0, 5, 1, 3]
    assert torch.allclose(minilm.encode([TEXTS[i] for i in perm]), x[perm], atol=1e-5)
    single = get_encoder("minilm", device="cpu", batch_size=1).encode(TEXTS[:3])
    assert torch.allclose(single, x[:3], atol=1e-5)
    # usable as an ordinary tensor (not an inference tensor) in a training graph
    layer = torch.nn.Linear(384, 2)
    layer(x).sum().backward()
    assert layer.weight.grad is not None
    assert minilm.encode([]).shape == (0, 384)


@pytest.mark.slow
def test_minilm_semantics_empty_and_long_text(minilm):
    a, b, c = minilm.encode(["red toy car", "toy automobile in red", "stainless steel knife"])
    assert a @ b > a @ c + 0.2
    empty = minilm.encode([""])  # encodes what it is given; callers mask missing text
    assert torch.isfinite(empty).all() and is_missing_text("")
    assert minilm.max_length == 256
    long = "word " * 20_000  # 100k characters
    x = minilm.encode([long, long + " a completely different ending"])
    assert x.shape == (2, 384)
    assert torch.allclose(x[0], x[1], atol=1e-6)  # truncated at 256 tokens
    with pytest.raises(EncoderError, match="text encoder got int"):
        minilm.encode(["ok", 3])


@pytest.mark.slow
def test_minilm_matches_sentence_transformers(minilm):
    st = pytest.importorskip("sentence_transformers")
    model = st.SentenceTransformer(str(minilm.folder), device="cpu")
    reference = model.encode(TEXTS, convert_to_tensor=True, normalize_embeddings=True)
    assert (minilm.encode(TEXTS) - reference.cpu()).abs().max() < 1e-5


# ----------------------------------------------------------------------------- E5
@pytest.mark.slow
def test_e5_shape_prefix_and_cross_lingual():
    passage = get_encoder("e5-multilingual", batch_size=2)
    query = get_encoder("e5-multilingual", kind="query")
    texts = ["red toy car", "rotes Spielzeugauto", "coche de juguete rojo",
             "quarterly tax report for the finance department"]  # fmt: skip
    x = passage.encode(texts)
    assert x.shape == (4, 384) and x.dtype == torch.float32
    assert torch.allclose(x.norm(dim=1), torch.ones(4), atol=1e-4)
    sim = x @ x.T
    for i in range(3):
        for j in range(3):
            if i != j:
                assert sim[i, j] > sim[i, 3] + 0.05, (texts[i], texts[j])
    # the engine adds the prefix: an already prefixed text is not prefixed twice
    assert torch.allclose(passage.encode(["passage: red toy car"]), x[:1], atol=1e-6)
    q = query.encode(["red toy car"])
    assert not torch.allclose(q, x[:1], atol=1e-3)
    assert passage.version != query.version
    with pytest.raises(EncoderError, match="kind"):
        get_encoder("e5-multilingual", kind="document")


# ----------------------------------------------------------------------------- images
@pytest.mark.slow
def test_efficientnet_strict_load_matches_checkpoint():
    state = torch.load(weights_path(), map_location="cpu", weights_only=True)
    net = load_network("cpu", fold=False)
    assert set(net.state_dict()) == set(state)
    for key, value in state.items():
        assert torch.equal(net.state_dict()[key].cpu(), value), key
    assert sum(p.numel() for p in net.parameters()) == 4_652_008  # Lite0: 4.65 M parameters
    broken = dict(state)
    broken.pop("_fc.bias")
    with pytest.raises(RuntimeError, match="_fc.bias"):
        EfficientNetLite0().load_state_dict(broken, strict=True)
    # the encoder's folded network computes the same function
    x = torch.randn(2, 3, 96, 128)
    with torch.inference_mode():
        reference, folded = net(x), load_network("cpu")(x)
    assert torch.allclose(folded, reference, atol=1e-3, rtol=1e-4)


def test_tf_same_padding_output_sizes():
    for size in (7, 8, 223, 224):
        conv = Conv2dSame(1, 1, 3, stride=2)
        assert conv(torch.zeros(1, 1, size, size)).shape[-1] == math.ceil(size / 2)
        conv5 = Conv2dSame(1, 1, 5, stride=1)
        assert conv5(torch.zeros(1, 1, size, size)).shape[-1] == size


# Grocery Store photos (Klasson et al. 2019) whose product is an ImageNet class.
IMAGENET = {
    "Banana": 954,
    "Granny-Smith": 948,
    "Lemon": 951,
    "Orange": 950,
    "Pineapple": 953,
    "Pomegranate": 957,
    "Green-Bell-Pepper": 945,
    "Zucchini": 939,
}


@pytest.mark.slow
def test_efficientnet_recognises_imagenet_classes_in_grocery_photos(shared_data):
    root = shared_data("images/grocery")
    lines = [line.split(",")[0].strip() for line in (root / "train.txt").read_text().splitlines()]
    photos, targets = [], []
    for name, target in IMAGENET.items():
        first = [p for p in lines if p.split("/")[-2] == name][:2]  # the first two, no picking
        assert len(first) == 2, name
        photos += [root / p for p in first]
        targets += [target, target]
    encoder = get_encoder("efficientnet-lite0", device="cpu", batch_size=8)
    logits = encoder.classify(photos)
    assert logits.shape == (16, 1000)
    top5 = logits.topk(5).indices
    hits = sum(t in row for t, row in zip(targets, top5.tolist(), strict=True))
    assert hits >= 12, f"only {hits}/16 photos have their ImageNet class in the top 5"
    top1 = (logits.argmax(1) == torch.tensor(targets)).sum().item()
    assert top1 >= 10
    # encode() is the pooled feature the classifier reads
    features = encoder.encode(photos[:4])
    assert features.shape == (4, 1280) and (features >= 0).all()  # after ReLU6
    net = load_network("cpu")
    assert torch.allclose(net._fc(features), logits[:4], atol=1e-3)


@pytest.mark.slow
def test_efficientnet_image_modes_paths_and_batches(tmp_path):
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 255, (90, 120, 3), dtype=np.uint8))
    transparent = Image.new("RGBA", (40, 40), (0, 0, 0, 0))
    palette = rgb.convert("P", palette=Image.Palette.ADAPTIVE)
    palette_alpha = palette.copy()
    palette_alpha.info["transparency"] = 0
    images = [
        rgb,
        rgb.convert("L"),
        rgb.convert("CMYK"),
        palette,
        palette_alpha,
        rgb.convert("RGBA"),
        transparent,
        rgb.convert("LA"),
        Image.fromarray((rng.integers(0, 65535, (50, 60))).astype(np.uint16)),
        Image.new("RGB", (1, 500), (10, 200, 30)),
    ]
    for image in images:
        converted = load_image(image)
        assert converted.mode == "RGB" and converted.size == image.size
    assert load_image(transparent).getpixel((0, 0)) == (255, 255, 255)  # composited on white
    encoder = get_encoder("efficientnet-lite0", device="cpu", batch_size=4)
    x = encoder.encode(images)
    assert x.shape == (len(images), 1280) and torch.isfinite(x).all()
    assert torch.allclose(encoder.encode(images[:1]), x[:1], atol=1e-4)  # batch-independent
    path = tmp_path / "photo.png"
    rgb.save(path)
    assert torch.allclose(encoder.encode([path, str(path)]), x[[0, 0]], atol=1e-4)
    cmyk = tmp_path / "cmyk.jpg"
    rgb.convert("CMYK").save(cmyk)
    assert load_image(cmyk).mode == "RGB"


def test_load_image_errors(tmp_path, monkeypatch):
    good = tmp_path / "good.jpg"
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(
        good, quality=95
    )
    data = good.read_bytes()
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(data[: len(data) // 2])
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 50)
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    cases = {
        truncated: "truncated",
        corrupt: "corrupt|not an image",
        text: "not an image",
        tmp_path / "missing.jpg": "no such file",
        tmp_path: "not a file",
        "https://shop.example/img/1.jpg": "remote image not downloaded",
        "HTTP://shop.example/img/2.png": "remote image not downloaded",
    }
    for ref, reason in cases.items():
        with pytest.raises(ImageError, match=reason) as info:
            load_image(ref)
        assert info.value.path == str(ref)
    assert load_image(f"file://{good}").size == (64, 64)
    # EXIF orientation 6 (camera held upright): stored 20 x 10, shown 10 x 20
    rotated = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("RGB", (20, 10)).save(rotated, exif=exif)
    assert load_image(rotated).size == (10, 20)
    # decompression bombs: above the limit (PIL warns) and above twice the limit (PIL errors)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    for side in (40, 100):  # 1600 > 1000, 10000 > 2000
        bomb = tmp_path / f"bomb{side}.png"
        Image.new("L", (side, side)).save(bomb)
        with pytest.raises(ImageError, match="decompression bomb"):
            load_image(bomb)
    encoder = get_encoder("efficientnet-lite0", device="cpu")
    with pytest.raises(ImageError, match="remote"):
        encoder.encode(["https://shop.example/x.jpg"])


# ----------------------------------------------------------------------------- numeric
def test_numeric_standardises_and_masks_missing():
    encoder = get_encoder("numeric")
    with pytest.raises(EncoderError, match="fit"):
        encoder.encode([1.0])
    values = [10.0, None, 30.0, float("nan"), 20.0, math.inf]
    encoder.fit(values)
    assert encoder.dim == 2
    x = encoder.encode(values)
    mask = encoder.mask(values)
    assert mask.tolist() == [True, False, True, False, True, False]
    z, present = x[:, 0], x[:, 1]
    assert torch.allclose(z[mask].mean(), torch.tensor(0.0), atol=1e-6)
    assert torch.allclose(z[mask].std(unbiased=False), torch.tensor(1.0), atol=1e-6)
    assert (z[~mask] == 0).all() and torch.equal(present.bool(), mask)
    # several columns, a constant one and an all-missing one
    rows = [[1.0, 5.0, None], [3.0, 5.0, None], [None, 5.0, None]]
    multi = get_encoder("numeric").fit(rows)
    out = multi.encode(rows)
    assert out.shape == (3, 6) and torch.isfinite(out).all()
    assert out[:, 1].abs().max() == 0  # constant column: std 1, z = 0
    assert multi.mask(rows).tolist() == [True, True, True]
    assert multi.mask([[None, None, None]]).tolist() == [False]
    reused = get_encoder("numeric", mean=multi.mean, std=multi.std)
    assert torch.equal(reused.encode(rows), out) and reused.version == multi.version
    with pytest.raises(EncoderError, match="columns"):
        multi.encode([[1.0, 2.0]])
    with pytest.raises(EncoderError, match="numbers"):
        multi.fit([["a", 1.0, 2.0]])


# ----------------------------------------------------------------------------- video
class _ColourEncoder(Encoder):
    """Test stand-in: an image's mean RGB."""

    name, modality, dim, version = "colour", "image", 3, "1"

    def encode(self, batch):
        means = [np.asarray(load_image(b), dtype=np.float32).mean((0, 1)) for b in batch]
        return torch.from_numpy(np.stack(means))


@pytest.mark.slow
def test_video_mean_pools_frames_and_masks_empty():
    video = get_encoder("video", image_encoder=_ColourEncoder())
    red, blue = Image.new("RGB", (8, 8), (255, 0, 0)), Image.new("RGB", (8, 8), (0, 0, 255))
    clips = [[red, blue], [], [blue, blue, blue], None]
    x = video.encode(clips)
    assert x.shape == (4, 3)
    assert torch.allclose(x[0], torch.tensor([127.5, 0.0, 127.5]))
    assert torch.allclose(x[2], torch.tensor([0.0, 0.0, 255.0]))
    assert (x[1] == 0).all() and (x[3] == 0).all()
    assert video.mask(clips).tolist() == [True, False, True, False]
    assert video.version.startswith("mean-colour@")
    default = get_encoder("video", device="cpu")
    out = default.encode([[red, blue], []])
    assert out.shape == (2, 1280)
    frames = get_encoder("efficientnet-lite0", device="cpu").encode([red, blue])
    assert torch.allclose(out[0], frames.mean(0), atol=1e-5)
    with pytest.raises(EncoderError, match="image encoder"):
        get_encoder("video", image_encoder=get_encoder("minilm"))


def test_efficientnet_trunk_and_tail_compose_to_features():
    # random weights, eval mode: the cut at any block computes the same function
    torch.manual_seed(0)
    net = EfficientNetLite0().eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        reference = net.features(x)
        for cut in (0, 1, 11, net.num_blocks):
            trunk = net.trunk(x, cut)
            width = BLOCK_CHANNELS[cut - 1] if cut else 32
            assert trunk.shape[:2] == (2, width)
            head = net.tail(trunk, cut)
            assert head.shape == (2, HEAD_CHANNELS, 2, 2)  # 64 / 32
            assert torch.allclose(head.mean(dim=(2, 3)), reference, atol=1e-5)
        layers = net.tail_layers(11)  # a trainable copy: same function, own parameters
        assert layers[0].in_channels == BLOCK_CHANNELS[10] == 112
        trunk = net.trunk(x, 11)
        assert torch.allclose(
            torch.nn.functional.relu6(layers(trunk)), net.tail(trunk, 11), atol=1e-5
        )
    assert all(p.requires_grad for p in layers.parameters())
    assert not any(p is q for p in layers.parameters() for q in net.parameters())
    for bad in (-1, net.num_blocks + 1):
        with pytest.raises(ValueError, match="choose a block"):
            net.trunk(x, bad)
    with pytest.raises(ValueError, match=r"choose a block in 1\.\.15"):
        net.tail_layers(0)
