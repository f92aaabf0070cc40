"""The Fashion benchmark's PyKEEN baselines (benchmarks/fashion_kge.py): LCWA over the value
nodes, early stopping on the validation MRR with the best weights restored, and scores that
learn a value only the graph tells (season = a function of the year)."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest
import torch

import kg
from fusion.config import DataConfig
from fusion.tasks.attribute import relation_edge_types
from fusion.tasks.attribute_split import split_attributes
from fusion.trainer import graph_tensors

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import fashion_kge  # noqa: E402

pytestmark = pytest.mark.skipif(fashion_kge.pykeen_missing() is not None, reason="no PyKEEN")
SEASONS = ("Summer", "Winter", "Fall")


def year_season_graph(tmp_path, n=240, seed=0):
    """Products with a year and a season that is a function of the year, and a random colour."""
    rng = random.Random(seed)
    lines = ["@prefix ex: <http://ex.org/> ."]
    lines += [f'ex:y{y} a ex:Year ; ex:name "{2010 + y}" .' for y in range(6)]
    lines += [f'ex:{s} a ex:Season ; ex:name "{s}" .' for s in SEASONS]
    lines += [f'ex:{c} a ex:Colour ; ex:name "{c}" .' for c in ("red", "blue")]
    for i in range(n):
        y = rng.randrange(6)
        lines.append(f"ex:p{i} a ex:Product ; ex:year ex:y{y} ; ex:season ex:{SEASONS[y % 3]} ; "
                     f"ex:colour ex:{rng.choice(('red', 'blue'))} .")  # fmt: skip
    path = tmp_path / "shop.ttl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    edges, num = graph_tensors(kg.load_rdf(path), DataConfig())
    split = split_attributes(edges, relation_edge_types(edges, ["season", "colour"]), num, seed=seed)
    return edges, num, split


def test_value_lcwa_labels_are_the_training_tails(tmp_path):
    edges, num, split = year_season_graph(tmp_path, n=60)
    triples, _, _ = fashion_kge.kge_triples(edges, split, num)
    from pykeen.models import DistMult
    from pykeen.triples import CoreTriplesFactory

    tf = CoreTriplesFactory(triples["train"], num_entities=sum(num.values()), num_relations=3,
                            create_inverse_triples=False)  # fmt: skip
    loop = fashion_kge.value_lcwa_loop()(model=DistMult(triples_factory=tf, embedding_dim=4),
                                         triples_factory=tf)  # fmt: skip
    tails = torch.unique(triples["train"][:, 2])
    assert torch.equal(loop.tails, tails) and len(tails) == 6 + 3 + 2  # years, seasons, colours
    batch = next(iter(loop._create_training_data_loader(tf, None, batch_size=1000, drop_last=False)))
    got = {(h, r, int(tails[c])) for (h, r), row in zip(batch["pairs"].tolist(), batch["target"], strict=True)
           for c in row.nonzero().flatten().tolist()}  # fmt: skip
    assert got == {tuple(t) for t in triples["train"].tolist()}


def test_distmult_learns_the_season_from_the_year_and_keeps_its_best_epoch(tmp_path):
    edges, num, split = year_season_graph(tmp_path)
    res = fashion_kge.run_kge("DistMult", edges, split, num, seed=0, epochs=40, patience=8,
                              batch_size=64)  # fmt: skip
    m = res["metrics"]
    assert m["test/acc.season"] > 0.7  # 1/3 by chance, ~0.33-0.4 for the majority value
    assert 1 <= res["best_epoch"] <= res["epochs"] <= 40
    assert all(k in m for k in ("valid/acc", "test/mrr", "test/acc.colour", "valid/pykeen_mrr"))
    assert 0 < m["test/mrr"] <= 1 and m["test/acc"] <= m["test/mrr"] + 1e-9
