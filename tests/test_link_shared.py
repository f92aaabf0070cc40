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


def test_via_links_counts_the_other_links_and_never_the_link_itself():
    from fusion.tasks.link_via import ViaLinks

    # products 0-3, brands 0, 1 (ids 4, 5): p1, p2 of brand 0, p3 of brand 1; accessory p0
    # is known to fit p1 (a link), so p2 (same brand as p1) is "like its other links"
    edges = {
        ("Product", "brand", "Brand"): torch.tensor([[1, 2, 3], [0, 0, 1]]),
        ("Brand", "rev_brand", "Product"): torch.tensor([[0, 0, 1], [1, 2, 3]]),
    }
    shared = SharedNeighbours(1, edges, ["Product", "Brand"], {"Product": 4, "Brand": 2},
                              exclude={"fits"})  # fmt: skip
    via = ViaLinks(shared, [(0, torch.tensor([0]), torch.tensor([1]))], 1)
    out = shared.groups.index(("brand", "out"))
    with torch.no_grad():
        via.u[0, out] = 1.0 / SHARED_SCALE  # one unit per share of other links
    r = torch.zeros(3, dtype=torch.long)
    pairs = via(torch.tensor([0, 0, 0]), r, torch.tensor([1, 2, 3]))
    # p1 is the link itself: no other link speaks for it; p2: 1 of 1; p3: other brand
    assert pairs.tolist() == pytest.approx([0.0, 1.0, 0.0])
    table = via.score_tails(torch.tensor([0]), r[:1], torch.tensor([1, 2, 3]))
    assert table[0].tolist() == pytest.approx(pairs.tolist())
    heads = via.score_heads(torch.tensor([2]), r[:1], torch.tensor([0, 1, 3]))
    assert heads[0].tolist() == pytest.approx([1.0, 0.0, 0.0])  # only p0 has links
    with torch.no_grad():  # the reverse: t's other heads share a neighbour with h
        via.u.zero_()
        via.v[0, shared.groups.index(("brand", "out"))] = 1.0 / SHARED_SCALE
    # p1's other accessories: none besides p0 itself -> 0 for (p0, p1)
    assert via(torch.tensor([0]), r[:1], torch.tensor([1])).tolist() == pytest.approx([0.0])
