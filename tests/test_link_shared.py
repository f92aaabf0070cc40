"""The link task's shared-neighbour term and its candidate sets."""

import pytest
import torch

from fusion.model import ConfigError
from fusion.tasks.link import SHARED_SCALE, LinkTaskConfig, SharedNeighbours


def test_shared_neighbours_count_per_predicate_and_skip_the_predicted_relation():
    # products 0, 1, 2; brands 0, 1: p0 and p1 share brand 0, p2 has brand 1
    edges = {
        ("Product", "brand", "Brand"): torch.tensor([[0, 1, 2], [0, 0, 1]]),
        ("Brand", "rev_brand", "Product"): torch.tensor([[0, 0, 1], [0, 1, 2]]),
        ("Product", "accessoryFor", "Product"): torch.tensor([[0], [2]]),
    }
    shared = SharedNeighbours(1, edges, ["Product", "Brand"], {"Product": 3, "Brand": 2},
                              exclude={"accessoryFor"})  # fmt: skip
    assert shared.groups == [("brand", "in"), ("brand", "out")]
    with torch.no_grad():
        shared.weight[0, 1] = 1.0 / SHARED_SCALE  # one unit per shared brand
    r = torch.zeros(3, dtype=torch.long)
    pairs = shared(torch.tensor([0, 0, 1]), r, torch.tensor([1, 2, 1]))
    assert pairs.tolist() == pytest.approx([1.0, 0.0, 1.0])
    table = shared.score_all(torch.tensor([0]), r[:1], torch.tensor([0, 1, 2]))
    assert table.shape == (1, 3) and table[0].tolist() == pytest.approx([1.0, 1.0, 0.0])


def test_candidates_must_be_seen_or_all():
    assert LinkTaskConfig(relations=["r"]).candidates == "seen"
    with pytest.raises(ConfigError, match="task.candidates='some'"):
        LinkTaskConfig(relations=["r"], candidates="some")
