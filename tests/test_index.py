"""EntityIndex: exact = brute force, IVF/HNSW recall, updates, storage, versions, bad input."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

import kg
import kg.index as index_module
from kg.index import EntityIndex, EntityIndexError, StaleIndexError, graph_version

try:
    import faiss  # noqa: F401

    HAVE_FAISS = True
except ImportError:
    HAVE_FAISS = False
needs_faiss = pytest.mark.skipif(not HAVE_FAISS, reason="faiss not installed (extra [index])")
FAISS_KINDS = [pytest.param(k, marks=needs_faiss) for k in ("exact", "ivf", "hnsw")]
ALL_KINDS = ["torch", *FAISS_KINDS]
EXACT_KINDS = ["torch", pytest.param("exact", marks=needs_faiss)]


def data(n=1500, d=16, seed=0):
    rng = np.random.default_rng(seed)
    return [f"http://ex.org/e{i}" for i in range(n)], rng.standard_normal((n, d)).astype("float32")


def brute_force(vectors, queries, k, metric):
    if metric == "cosine":
        vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        queries = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    if metric == "l2":
        scores = -((queries[:, None, :] - vectors[None]) ** 2).sum(-1)
    else:
        scores = queries @ vectors.T
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, order, 1), order


@pytest.fixture
def no_faiss(monkeypatch):
    monkeypatch.setattr(index_module, "_load_faiss", lambda: None)


@pytest.mark.parametrize("metric", ["cosine", "ip", "l2"])
@pytest.mark.parametrize("kind", EXACT_KINDS)
def test_exact_search_equals_brute_force(kind, metric):
    iris, x = data()
    queries = np.random.default_rng(1).standard_normal((7, 16)).astype("float32")
    # chunk_mb=0 forces the smallest torch chunks (1024 rows): the running top-k merges
    index = EntityIndex.build(iris, x, metric=metric, kind=kind, chunk_mb=0)
    assert index.kind == kind and len(index) == 1500
    scores, found = index.search(queries, k=10)
    want_scores, want_rows = brute_force(x, queries, 10, metric)
    assert found == [[iris[r] for r in row] for row in want_rows.tolist()]
    np.testing.assert_allclose(scores, want_scores, rtol=1e-4, atol=1e-3)
    one_scores, one = index.search(queries[0], k=3)  # one vector = Q of 1
    assert one_scores.shape == (1, 3) and one[0] == found[0][:3]


@pytest.mark.parametrize("kind", [pytest.param(k, marks=needs_faiss) for k in ("ivf", "hnsw")])
def test_approximate_recall_on_random_data(kind):
    iris, x = data(n=4000, d=16)
    index = EntityIndex.build(iris, x, kind=kind)
    assert index.kind == kind and index.recall_estimate >= 0.95
    assert (index.config.nprobe if kind == "ivf" else index.config.ef_search) is not None
    rng = np.random.default_rng(2)
    queries = x[rng.choice(4000, 100, replace=False)] + 0.3 * rng.standard_normal((100, 16))
    _, found = index.search(queries.astype("float32"), k=10)
    _, truth = brute_force(x, queries.astype("float32"), 10, "cosine")
    recall = np.mean([len(set(f) & {iris[r] for r in t}) / 10 for f, t in zip(found, truth.tolist(), strict=True)])  # fmt: skip
    assert recall >= 0.9
    assert index.tune(0.99, queries=queries) >= 0.99  # tuned on representative queries
    _, found = index.search(queries.astype("float32"), k=10)
    recall = np.mean([len(set(f) & {iris[r] for r in t}) / 10 for f, t in zip(found, truth.tolist(), strict=True)])  # fmt: skip
    assert recall >= 0.99


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_add_remove_and_replace(kind):
    iris, x = data(n=1200)
    index = EntityIndex.build(iris[:1000], x[:1000], kind=kind)
    gone = iris[:400]  # more than a quarter: torch compacts, HNSW keeps tombstones
    assert index.remove(gone) == 400 and len(index) == 600 and gone[0] not in index
    index.add(iris[1000:], x[1000:])
    assert len(index) == 800 and index.kind == kind
    _, found = index.search(x[:400], k=5)
    assert not set(gone) & {i for row in found for i in row}
    for i in (1000, 1100, 450):  # new and old entities find themselves
        assert index.search_iri(iris[i], k=3)[1][0] != iris[i]
        assert index.search(x[i], k=1)[1][0][0] == iris[i]
    index.add([iris[450]], -x[450])  # replacing an IRI replaces its vector
    assert len(index) == 800 and index.search(-x[450], k=1)[1][0][0] == iris[450]
    with pytest.raises(EntityIndexError, match="not in the index"):
        index.remove(["http://ex.org/nope"])
    assert index.remove(["http://ex.org/nope"], missing_ok=True) == 0
    with pytest.raises(EntityIndexError, match="twice"):
        index.add([iris[0], iris[0]], x[:2])


@needs_faiss
def test_hnsw_rebuilds_when_half_is_dead():
    iris, x = data(n=600)
    index = EntityIndex.build(iris, x, kind="hnsw")
    index.remove(iris[:350])
    _, found = index.search(x[400], k=1)
    assert found[0][0] == iris[400] and index._backend.index.ntotal == 250


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_save_load_round_trip(tmp_path, kind):
    iris, x = data(n=2000)
    index = EntityIndex.build(iris, x, kind=kind, graph_version="v1")
    index.remove(iris[:10])
    folder = index.save(tmp_path / "index")
    names = sorted(p.name for p in folder.iterdir())
    want = ["index.json", "iris.txt", "vectors.safetensors"]
    assert names == (sorted([*want, "faiss.index"]) if kind in ("ivf", "hnsw") else want)
    meta = json.loads((folder / "index.json").read_text())
    assert meta["count"] == 1990 and meta["kind"] == kind and meta["dim"] == 16
    assert meta["graph_version"] == "v1" and meta["metric"] == "cosine"
    loaded = EntityIndex.load(folder, expected_version="v1")
    assert loaded.kind == kind and loaded.iris == index.iris and loaded.config == index.config
    np.testing.assert_array_equal(loaded.search(x[10:20], 5)[0], index.search(x[10:20], 5)[0])
    loaded.remove([iris[10]])
    loaded.add(["http://ex.org/new"], x[0])
    assert loaded.search(x[0], k=1)[1][0][0] == "http://ex.org/new"
    with pytest.raises(kg.WorkspaceError, match="overwrite"):
        index.save(folder)
    index.save(folder, overwrite=True)


@needs_faiss
def test_load_ivf_without_faiss_falls_back_to_torch(tmp_path, monkeypatch):
    iris, x = data(n=2000)
    folder = EntityIndex.build(iris, x, kind="ivf").save(tmp_path / "ivf")
    monkeypatch.setattr(index_module, "_load_faiss", lambda: None)
    with pytest.warns(UserWarning, match="faiss"):
        loaded = EntityIndex.load(folder)
    assert loaded.kind == "torch" and loaded.search(x[5], k=1)[1][0][0] == iris[5]


def test_torch_fallback_when_faiss_is_absent(no_faiss):
    iris, x = data(n=300)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert EntityIndex.build(iris, x).kind == "torch"  # auto: no warning when small
    with pytest.warns(UserWarning, match="kgfusion\\[index\\]"):
        index = EntityIndex.build(iris, x, kind="ivf")
    assert index.kind == "torch" and index.search(x[3], k=1)[1][0][0] == iris[3]
    _, want = brute_force(x, x[:5], 4, "cosine")
    assert index.search(x[:5], k=4)[1] == [[iris[r] for r in row] for row in want.tolist()]


@needs_faiss
def test_auto_picks_exact_for_small_catalogues_and_ivf_for_large(monkeypatch):
    iris, x = data(n=3000)
    assert EntityIndex.build(iris, x).kind == "exact"
    monkeypatch.setattr(index_module, "APPROX_FROM", 2000)  # "large" without the wait
    index = EntityIndex.build(iris, x)
    assert index.kind == "ivf" and index._backend.nlist == 3000 // 39
    monkeypatch.setattr(index_module, "_load_faiss", lambda: None)
    with pytest.warns(UserWarning, match="exact torch search over 3000"):
        assert EntityIndex.build(iris, x).kind == "torch"


def test_graph_version_and_stale_index(tmp_path):
    path = tmp_path / "cat.ttl"
    path.write_text("<http://ex.org/a> <http://schema.org/brand> <http://ex.org/b> .\n")
    graph = kg.load_rdf(path)
    ws = graph.save(tmp_path / "ws", sparql_store=False)
    manifest = json.loads((ws / "manifest.json").read_text())
    version = graph_version(graph)
    assert (
        version == graph_version(manifest) == graph_version(ws) == graph_version(kg.load_graph(ws))
    )
    index = EntityIndex.from_embeddings(graph, {"Entity": np.eye(2, dtype="float32")}, kind="torch")
    assert index.graph_version == version and index.iris == graph.node_iris("Entity")
    folder = index.save(tmp_path / "ws" / "index")
    assert EntityIndex.load(folder, expected_version=graph).graph_version == version
    path.write_text("<http://ex.org/a> <http://schema.org/brand> <http://ex.org/c> .\n")
    changed = kg.load_rdf(path)
    assert graph_version(changed) != version
    with pytest.raises(StaleIndexError, match="kgf index"):
        EntityIndex.load(folder, expected_version=changed)
    with pytest.raises(EntityIndexError, match="rows"):
        EntityIndex.from_embeddings(graph, {"Entity": np.eye(3, dtype="float32")})


@pytest.mark.parametrize("k", [0, -1, 10_001, 51, True, 2.5])
def test_bad_k_is_refused(k):
    iris, x = data(n=50)
    index = EntityIndex.build(iris, x, kind="torch")
    with pytest.raises(EntityIndexError, match="k="):
        index.search(x[0], k=k)


def test_search_iri_excludes_itself_and_checks_k():
    iris, x = data(n=50)
    index = EntityIndex.build(iris, x, kind="torch")
    scores, found = index.search_iri(iris[7], k=49)
    assert iris[7] not in found and len(found) == 49 and np.all(np.diff(scores) <= 1e-6)
    with pytest.raises(EntityIndexError, match="only 49 other"):
        index.search_iri(iris[7], k=50)
    with pytest.raises(EntityIndexError, match="not in the entity index"):
        index.search_iri("http://ex.org/missing", k=1)


def test_empty_index_names_the_build_command(tmp_path):
    for index in (EntityIndex(8), EntityIndex.build([], np.zeros((0, 8), "float32"))):
        with pytest.raises(EntityIndexError, match="empty.*kgf index"):
            index.search(np.ones(8), k=1)
    with pytest.raises(EntityIndexError, match="kgf index"):
        EntityIndex.load(tmp_path)


def test_dimension_and_value_errors():
    iris, x = data(n=20)
    index = EntityIndex.build(iris, x, kind="torch")
    with pytest.raises(EntityIndexError, match="dimension 8; this index has dimension 16"):
        index.search(np.ones(8), k=1)
    with pytest.raises(EntityIndexError, match="dimension 3"):
        index.add(["http://ex.org/x"], np.ones(3))
    with pytest.raises(EntityIndexError, match="NaN"):
        index.add(["http://ex.org/x"], np.full(16, np.nan))
    with pytest.raises(EntityIndexError, match="2 IRIs but 1 vectors"):
        index.add(["http://ex.org/x", "http://ex.org/y"], np.ones(16))
    with pytest.raises(EntityIndexError, match="metric"):
        EntityIndex(4, metric="hamming")
