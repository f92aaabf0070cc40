"""Fusion modules: the generic cases for every registered variant, then variant specifics."""

from __future__ import annotations

import pytest
import torch
from generic_cases import (  # noqa: F401  (one_thread: an autouse fixture)
    IN_DIMS,
    MASK_BITS,
    OUT_DIM,
    FusionCases,
    fusion_inputs,
    one_thread,
)

from fusion.fuse import FUSIONS, build_from_config, get_fusion, list_fusions
from fusion.registry import Registry, UnknownNameError


class TestEveryFusion(FusionCases):
    """Shapes, masks, gradients, save/load, seeds, devices for every name in FUSIONS."""


def test_all_variants_registered():
    assert list_fusions() == ["attention", "concat", "gated", "lowrank", "mean", "tensor"]


def test_attention_weights_cover_present_modalities_only():
    module = get_fusion("attention", IN_DIMS, OUT_DIM)
    x, mask = fusion_inputs()
    w = module.weights(x, mask)
    assert module.modalities == sorted(IN_DIMS)  # the column order
    bits = MASK_BITS[:, [list(IN_DIMS).index(m) for m in module.modalities]]
    assert w.shape == (MASK_BITS.shape[0], len(IN_DIMS))
    assert torch.all(w[~bits] == 0)
    sums = w.sum(dim=1)
    has_any = MASK_BITS.any(dim=1)
    assert torch.allclose(sums[has_any], torch.ones(int(has_any.sum())))
    assert torch.all(sums[~has_any] == 0)
    assert module.last_weights is w


def test_mean_of_single_modality_is_its_projection():
    module = get_fusion("mean", IN_DIMS, OUT_DIM)
    x, mask = fusion_inputs()
    out = module(x, mask)
    only_text = MASK_BITS[:, 0] & ~MASK_BITS[:, 1:].any(dim=1)
    proj = module.projs[module.modalities.index("text")]
    assert torch.allclose(out[only_text], proj(x["text"][only_text]))


def test_gated_single_modality_gets_full_gate():
    module = get_fusion("gated", IN_DIMS, OUT_DIM)
    x, mask = fusion_inputs()
    out = module(x, mask)
    only_image = MASK_BITS[:, 1] & ~MASK_BITS[:, [0, 2]].any(dim=1)
    proj = module.projs[module.modalities.index("image")]
    expected = torch.tanh(proj(x["image"][only_image]))
    assert torch.allclose(out[only_image], expected, atol=1e-6)


def test_tensor_fusion_missing_modality_is_the_constant_one_slice():
    """With the last modality missing, vec(Z) equals [h1;1] x [h2;1] x e_last."""
    module = get_fusion("tensor", {"a": 3, "b": 2}, 4, hidden=2)
    x = {"a": torch.randn(5, 3), "b": torch.randn(5, 2)}
    mask = {"a": torch.ones(5, dtype=torch.bool), "b": torch.zeros(5, dtype=torch.bool)}
    seen = {}
    module.post.register_forward_hook(lambda m, i, o: seen.update(z=i[0]))
    module(x, mask)
    z = seen["z"].view(5, 3, 3)
    h1 = torch.relu(module.projs[0](x["a"]))
    assert torch.allclose(z[:, :2, 2], h1) and torch.all(z[:, 2, 2] == 1)
    assert torch.all(z[:, :, :2] == 0)


def test_tensor_fusion_refuses_huge_products():
    with pytest.raises(ValueError, match="lowrank"):
        get_fusion("tensor", {m: 10 for m in "abcdef"}, 8, hidden=16)


def test_input_errors_name_the_modality():
    module = get_fusion("mean", IN_DIMS, OUT_DIM)
    x, mask = fusion_inputs()
    with pytest.raises(ValueError, match="image"):
        module({**x, "image": torch.randn(16, 4)}, mask)
    with pytest.raises(ValueError, match="audio"):
        module({**x, "audio": torch.randn(16, 4)}, mask)
    with pytest.raises(ValueError, match="text"):
        module(x, {**mask, "text": torch.ones(3, dtype=torch.bool)})
    with pytest.raises(ValueError, match="no 'image' features"):
        module({"text": x["text"]}, {"image": torch.ones(16, dtype=torch.bool)})


def test_modality_order_does_not_depend_on_dict_order():
    a = get_fusion("concat", IN_DIMS, OUT_DIM)
    b = build_from_config({**a.config, "in_dims": dict(reversed(list(IN_DIMS.items())))})
    b.load_state_dict(a.state_dict())
    x, mask = fusion_inputs()
    assert torch.equal(a(x, mask), b(x, mask))


def test_build_from_config_and_unknown_names():
    module = get_fusion("lowrank", IN_DIMS, OUT_DIM, rank=2)
    again = build_from_config(module.config)
    assert type(again) is type(module) and again.config == module.config
    with pytest.raises(UnknownNameError, match="did you mean 'gated'"):
        FUSIONS.get("gatd")
    with pytest.raises(ValueError, match="name"):
        build_from_config({"in_dims": IN_DIMS})


def test_registry_rejects_taken_names():
    reg: Registry = Registry("thing")

    @reg.register("a")
    class A:
        pass

    with pytest.raises(ValueError, match="already taken"):

        @reg.register("a")
        class B:
            pass

    assert reg.names() == ["a"] and "a" in reg and len(reg) == 1
    assert isinstance(reg.get("a"), A) and A.name == "a"
    with pytest.raises(KeyError, match="registered: a"):
        reg.get("zzz")
