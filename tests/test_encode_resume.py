"""`kgf encode` keeps its progress in chunks: a run killed (here: an encoder that raises)
after some chunks resumes after the last complete one, and ends with the same features as
an uninterrupted run. Also: damaged cache parts and image files that are devices."""

from __future__ import annotations

import hashlib
import os

import pytest
import torch

import kg
from fusion.cache import EmbeddingCache
from fusion.encoders import Encoder, register
from fusion.features import FeatureSpec, NodeFeatures, build_features
from kg.workspace import WorkspaceError

CALLS: list[int] = []
FAIL_AT = {"call": None}


@register("test-resume-hash")
class HashEncoder(Encoder):
    """A real, deterministic text encoder: the sha256 bytes of each text, in [-1, 1]."""

    name = "test-resume-hash"
    modality = "text"
    dim = 32

    def encode(self, batch: list) -> torch.Tensor:
        CALLS.append(len(batch))
        if FAIL_AT["call"] is not None and len(CALLS) == FAIL_AT["call"]:
            raise KeyboardInterrupt("killed while encoding")
        rows = [list(hashlib.sha256(t.encode()).digest()) for t in batch]
        return torch.tensor(rows, dtype=torch.float32) / 127.5 - 1


SPEC = FeatureSpec(
    text_encoder="test-resume-hash", image_encoder=None, numeric=False, batch_size=1
)  # fmt: skip  -> chunks of 8 texts


@pytest.fixture
def workspace(tmp_path):
    lines = ["@prefix s: <http://schema.org/> ."]
    lines += [f'<http://ex.org/p{i}> a s:Product ; s:name "product {i}" .' for i in range(40)]
    (tmp_path / "cat.ttl").write_text("\n".join(lines))
    graph = kg.load_rdf(tmp_path / "cat.ttl")
    return graph, tmp_path


def test_interrupted_encode_resumes_from_the_last_complete_chunk(workspace):
    graph, tmp = workspace
    reference, _ = build_features(graph, graph.save(tmp / "ref"), SPEC)

    ws = graph.save(tmp / "ws")
    CALLS.clear()
    FAIL_AT["call"] = 4  # 3 chunks of 8 encoded, the 4th raises
    with pytest.raises(KeyboardInterrupt):
        build_features(graph, ws, SPEC)
    # Ctrl-C folds the 3 encoded chunks into the cache file (a kill -9 leaves them as part
    # files instead: tests/test_kill9.py); either way the rerun starts after them
    cache = ws / "features" / "cache"
    parts = sorted(cache.glob("*.part-*.safetensors"))
    assert len(parts) == 3 or (not parts and any(cache.glob("*.safetensors")))

    CALLS.clear()
    FAIL_AT["call"] = None
    features, report = build_features(graph, ws, SPEC)
    assert report.cached == 24 and report.encoded == 16 and sum(CALLS) == 16
    assert not list((ws / "features" / "cache").glob("*.part-*"))  # folded into one file
    x, mask = features.features["Product"]["text"]
    ref_x, ref_mask = reference.features["Product"]["text"]
    assert torch.equal(x, ref_x) and torch.equal(mask, ref_mask)
    loaded = NodeFeatures.load(ws).features["Product"]["text"]
    assert torch.equal(loaded[0], ref_x)

    CALLS.clear()  # a third run encodes nothing
    _, report = build_features(graph, ws, SPEC)
    assert report.encoded == 0 and not CALLS


def test_damaged_cache_part_is_a_workspace_error(workspace):
    graph, tmp = workspace
    ws = graph.save(tmp / "ws")
    FAIL_AT["call"] = None
    cache = EmbeddingCache(ws / "features" / "cache", "x@1")
    cache.put([bytes(32)], torch.ones(1, 4))
    part = cache.checkpoint()
    part.write_bytes(part.read_bytes()[:-3])
    with pytest.raises(WorkspaceError, match=r"part-000000.safetensors.*damaged.*kgf encode"):
        EmbeddingCache(ws / "features" / "cache", "x@1")


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_image_naming_a_device_is_reported_not_read(tmp_path):
    (tmp_path / "cat.ttl").write_text(
        '@prefix s: <http://schema.org/> .\n<http://ex.org/p> a s:Product ; s:name "p" ; '
        's:image "/dev/zero" .\n'
    )
    graph = kg.load_rdf(tmp_path / "cat.ttl")
    from fusion.features import EncodeReport, _image_features

    report = EncodeReport()

    class NoImages(Encoder):
        name, modality, dim = "none", "image", 4

        def encode(self, batch):  # never reached: nothing readable
            raise AssertionError("encoded a device")

    x, mask = _image_features(graph, "Product", NoImages(device="cpu"), tmp_path / "c", report)
    assert not mask.any()
    assert len(report.problems) == 1 and "not a regular file" in report.problems[0]
