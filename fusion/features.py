"""Node features per node type and modality, with masks, from a graph's literal columns.

A :class:`FeatureSpec` says which literal columns feed which modality and encoder:

- ``text``: the text columns named in ``text_columns`` (default ``name``, ``title``,
  ``description``, ``label`` and prefixed variants such as ``schema_name``), joined with
  ``". "``. **Language rule:** for each column a node gets one value, in the first
  language of ``languages`` it has (default ``en``, then untagged, then the lexically
  first tag); set ``languages=("de", "en")`` for a German-first catalogue.
- ``image``: the first image reference of a node (any ``image`` column).
- ``numeric``: every ``number`` column of the type, standardised (numeric encoder).

The result, :class:`NodeFeatures`, maps ``node_type -> modality -> (x [N, d], mask [N])``;
``mask[i]`` is False where node ``i`` lacks the modality (no text, no readable image,
no number), and ``x[i]`` is then zero and must not be used (fusion modules mask it out).
Encoder outputs go through :class:`fusion.cache.EmbeddingCache`, so an unchanged
catalogue is not re-encoded.
"""

from __future__ import annotations

import json
import re
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save

from kg.graph import ProductGraph
from kg.tabular.files import read_regular_file
from kg.workspace import WorkspaceError, atomic_write_bytes

from .cache import EmbeddingCache

DEFAULT_TEXT_COLUMNS = ("name", "title", "label", "description")
FEATURES_FILE = "features/features.safetensors"
FEATURES_INFO = "features/features.json"
MAX_IMAGE_BYTES = 256 << 20  # one image file; a device (/dev/zero) or FIFO is never read


def read_image_bytes(path) -> bytes:
    """The bytes of an image file: a regular file of at most :data:`MAX_IMAGE_BYTES`
    (``OSError`` naming the file otherwise: a device, a FIFO, a folder, too large)."""
    return read_regular_file(path, MAX_IMAGE_BYTES)


@dataclass
class FeatureSpec:
    text_encoder: str | None = "minilm"
    image_encoder: str | None = "efficientnet-lite0"
    numeric: bool = True
    text_columns: tuple[str, ...] = DEFAULT_TEXT_COLUMNS
    languages: tuple[str, ...] = ("en",)
    batch_size: int = 64
    device: str = "auto"
    #: "fp32" (default: features bit for bit as before), "bf16" or "auto" (bf16 where the
    #: device multiplies it natively: ~2x the texts per second, :mod:`fusion.precision`);
    #: for the encoders with a bf16 path (transformers models), the others run in float32
    precision: str = "fp32"


@dataclass
class EncodeReport:
    """What an encoding run did: per (type, modality) present / missing counts."""

    counts: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    encoded: int = 0
    cached: int = 0
    seconds: float = 0.0


@dataclass
class NodeFeatures:
    features: dict[str, dict[str, tuple[torch.Tensor, torch.Tensor]]]
    spec: FeatureSpec

    def dims(self) -> dict[str, dict[str, int]]:
        return {
            t: {m: x.shape[1] for m, (x, _) in mods.items()} for t, mods in self.features.items()
        }

    def entity_vectors(
        self, modalities: tuple[str, ...] = ("text", "image")
    ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Per node type, ``(rows [n], vectors [n, D])`` for the nodes having any of
        ``modalities``: each modality L2-normalised (zero where missing), concatenated,
        and normalised again -- an untrained vector for the entity index."""
        out = {}
        for node_type, mods in self.features.items():
            parts = [(x, m) for name, (x, m) in mods.items() if name in modalities]
            if not parts:
                continue
            present = torch.stack([m for _, m in parts]).any(dim=0)
            joined = torch.cat(
                [torch.nn.functional.normalize(x, dim=1) * m[:, None] for x, m in parts], dim=1
            )
            rows = present.nonzero().squeeze(1)
            out[node_type] = (rows, torch.nn.functional.normalize(joined[rows], dim=1))
        return out

    def save(self, workspace: Path) -> None:
        tensors = {}
        for node_type, modalities in self.features.items():
            for modality, (x, mask) in modalities.items():
                tensors[f"{node_type}/{modality}/x"] = x.contiguous()
                tensors[f"{node_type}/{modality}/mask"] = mask.contiguous()
        path = Path(workspace) / FEATURES_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, save(tensors))
        info = {"spec": asdict(self.spec), "dims": self.dims()}
        atomic_write_bytes(Path(workspace) / FEATURES_INFO, json.dumps(info, indent=2).encode())

    @classmethod
    def load(cls, workspace: Path) -> NodeFeatures:
        """The features saved in ``workspace``, verified: each ``x`` ``[N, d]`` finite, its
        mask ``[N]`` bool, ``N`` the type's node count in the manifest (a damaged or
        truncated file is a :class:`~kg.workspace.WorkspaceError` naming it)."""
        from kg.workspace import read_manifest

        path = Path(workspace) / FEATURES_FILE
        if not path.is_file():
            raise FileNotFoundError(
                f"{workspace} has no features; run `kgf encode {workspace}` first"
            )

        def damaged(where: Path, why: str) -> WorkspaceError:
            return WorkspaceError(
                f"{where}: damaged features ({why}); rebuild them with `kgf encode {workspace}`"
            )

        try:
            tensors = load_file(str(path))
        except Exception as err:  # SafetensorError, a truncated header, OSError
            raise damaged(path, f"unreadable: {err}") from None
        info_path = Path(workspace) / FEATURES_INFO
        try:
            info = json.loads(info_path.read_text(encoding="utf-8"))
            spec = info["spec"]
            spec = FeatureSpec(
                **{k: tuple(v) if isinstance(v, list) else v for k, v in spec.items()}
            )
        except FileNotFoundError:
            raise damaged(info_path, "missing") from None
        except (ValueError, TypeError, KeyError, AttributeError) as err:
            raise damaged(info_path, f"{type(err).__name__}: {err}") from None
        counts = read_manifest(workspace).get("node_types", {})
        features: dict = {}
        for key in tensors:
            node_type, modality, part = (key.rsplit("/", 2) + ["", ""])[:3]
            if part not in ("x", "mask"):
                raise damaged(path, f"unexpected tensor {key!r}")
            if part != "x":
                continue
            x, mask = tensors[key], tensors.get(f"{node_type}/{modality}/mask")
            n = counts.get(node_type)
            if mask is None:
                raise damaged(path, f"{key!r} has no mask")
            if x.dim() != 2 or not x.is_floating_point() or mask.dim() != 1:
                raise damaged(path, f"{key!r} {tuple(x.shape)} / mask {tuple(mask.shape)}")
            if mask.dtype != torch.bool or x.shape[0] != mask.shape[0] or x.shape[0] != n:
                raise damaged(
                    path,
                    f"{key!r} has {x.shape[0]} rows and {mask.shape[0]} mask entries "
                    f"({mask.dtype}); the graph has {n} {node_type} nodes",
                )
            if not bool(torch.isfinite(x).all()):
                raise damaged(path, f"{key!r} holds values that are not finite numbers")
            features.setdefault(node_type, {})[modality] = (x, mask)
        for key in tensors:
            node_type, modality, _ = (key.rsplit("/", 2) + ["", ""])[:3]
            if modality not in features.get(node_type, {}):
                raise damaged(path, f"{key!r} has no vectors")
        return cls(features, spec)


def _column_matches(name: str, wanted: tuple[str, ...]) -> str | None:
    for w in wanted:
        if name == w or re.fullmatch(rf"[A-Za-z0-9]+_{re.escape(w)}", name):
            return w
    return None


def node_texts(graph: ProductGraph, node_type: str, spec: FeatureSpec) -> list[str | None]:
    """One text per node of ``node_type`` (None where it has none): see the language rule."""
    n = graph.num_nodes_dict[node_type]
    columns = [c for c in graph.literal_columns() if c.node_type == node_type and c.kind == "text"]
    ordered = sorted(
        (c for c in columns if _column_matches(c.name, spec.text_columns)),
        key=lambda c: spec.text_columns.index(_column_matches(c.name, spec.text_columns)),
    )
    parts: list[list[str]] = [[] for _ in range(n)]
    for column in ordered:
        data = graph.column(node_type, column.predicate, "text")
        best: dict[int, tuple[tuple, str]] = {}
        for index, value, lang in zip(
            data.index.tolist(), data.values, data.languages, strict=True
        ):
            if not value.strip():
                continue
            rank = (
                (spec.languages.index(lang),)
                if lang in spec.languages
                else (len(spec.languages) + (lang is not None), lang or "")
            )
            if index not in best or rank < best[index][0]:
                best[index] = (rank, value.strip())
        for index, (_, value) in best.items():
            parts[index].append(value)
    return [". ".join(p) if p else None for p in parts]


def node_images(graph: ProductGraph, node_type: str) -> list[tuple[str, Path | None] | None]:
    """The first image reference per node: ``(reference, local path or None if remote)``."""
    result: list = [None] * graph.num_nodes_dict[node_type]
    for column in graph.literal_columns():
        if column.node_type != node_type or column.kind != "image":
            continue
        data = graph.column(node_type, column.predicate, "image")
        for index, value, path in zip(data.index.tolist(), data.values, data.paths, strict=True):
            if result[index] is None:
                result[index] = (value, path)
    return result


def node_numbers(graph: ProductGraph, node_type: str) -> tuple[np.ndarray, list[str]]:
    """``[N, C]`` float64 of the type's number columns (NaN where missing) and their names."""
    columns = [
        c for c in graph.literal_columns() if c.node_type == node_type and c.kind == "number"
    ]
    matrix = np.full((graph.num_nodes_dict[node_type], len(columns)), np.nan)
    for j, column in enumerate(columns):
        data = graph.column(node_type, column.predicate, "number")
        matrix[data.index, j] = data.numbers  # several values per node: the last one wins
    return matrix, [c.name for c in columns]


def _encode_cached(
    encoder,
    cache: EmbeddingCache,
    payloads: list[bytes],
    load,
    report: EncodeReport,
    desc: str,
    where=str,
    mapper=None,
):
    """Vectors for ``payloads`` (``[N, dim]``) and a mask of those that could be encoded.

    Cached rows are taken as they are; the rest are turned into encoder inputs by
    ``load(i)`` (which may raise :class:`~fusion.encoders.ImageError`: that row is then
    reported, named by ``where(i)``, and masked) and encoded in chunks, with a progress bar:
    here, or by ``mapper`` (:class:`fusion.ray_encode.RayEncoderMap`) on Ray workers, the
    chunks then coming back in order into the same cache and checkpoints.
    """
    from kg.progress import progress

    from .encoders import ImageError

    keys = [cache.key(p) for p in payloads]
    out = torch.zeros(len(payloads), encoder.dim)
    ok = torch.ones(len(payloads), dtype=torch.bool)
    found, values = cache.lookup(keys)
    if found:
        out[found] = values
    report.cached += len(found)
    todo = sorted(set(range(len(payloads))) - set(found))
    step = max(encoder.batch_size * 8, 1)
    shards = [todo[start : start + step] for start in range(0, len(todo), step)]

    def loaded():
        for shard in shards:
            chunk, inputs = [], []
            for i in shard:
                try:
                    inputs.append(load(i))
                    chunk.append(i)
                except (OSError, ImageError) as err:
                    report.problems.append(f"{where(i)}: {err}")
                    ok[i] = False
            if chunk:
                yield chunk, inputs

    try:  # an interrupted run keeps the chunks it encoded
        for chunk, vectors in progress(
            _encoded(encoder, loaded(), mapper), total=len(shards), desc=desc, unit="chunk"
        ):
            vectors = vectors.float().cpu()
            out[chunk] = vectors
            cache.put([keys[i] for i in chunk], vectors)
            cache.checkpoint()  # a killed run resumes after this chunk
            report.encoded += len(chunk)
    finally:
        cache.save()
    return out, ok


def _encoded(encoder, chunks, mapper=None):
    """``(chunk, vectors)`` for each ``(chunk, inputs)``, in order: here, or on Ray."""
    if mapper is None:
        for chunk, inputs in chunks:
            yield chunk, encoder.encode(inputs)
        return
    held: deque = deque()

    def inputs_only():
        for chunk, inputs in chunks:
            held.append(chunk)
            yield inputs

    for vectors in mapper.map(inputs_only()):
        yield held.popleft(), vectors


def encode_images(encoder, paths: list[Path], cache_dir: Path, report: EncodeReport | None = None):
    """Image files -> ``([N, dim], ok mask [N])`` through the content-hash cache in ``cache_dir``.

    Used for image mentions (store photos) as well as catalogue images; unreadable files are
    masked and reported in ``report.problems`` by path.
    """
    from .encoders import load_image

    report = report if report is not None else EncodeReport()
    cache = EmbeddingCache(cache_dir, encoder.cache_id)
    payloads = [read_image_bytes(p) for p in paths]
    return _encode_cached(
        encoder,
        cache,
        payloads,
        lambda j: load_image(paths[j]),
        report,
        "images",
        where=lambda j: str(paths[j]),
    )


def _text_features(graph, node_type, spec, encoder, cache_dir, report, mapper=None):
    texts = node_texts(graph, node_type, spec)
    present = [i for i, t in enumerate(texts) if t is not None]
    x = torch.zeros(len(texts), encoder.dim)
    mask = torch.zeros(len(texts), dtype=torch.bool)
    if present:
        cache = EmbeddingCache(cache_dir, encoder.cache_id)
        values, ok = _encode_cached(
            encoder,
            cache,
            [texts[i].encode() for i in present],
            lambda j: texts[present[j]],
            report,
            f"text {node_type}",
            mapper=mapper,
        )
        x[present], mask[present] = values, ok
    return x, mask


def _image_features(graph, node_type, encoder, cache_dir, report, mapper=None):
    from .encoders import load_image

    refs = node_images(graph, node_type)
    x = torch.zeros(len(refs), encoder.dim)
    mask = torch.zeros(len(refs), dtype=torch.bool)
    present, paths, payloads = [], [], []
    for i, ref in enumerate(refs):
        if ref is None:
            continue
        value, path = ref
        where = f"{graph.iri(node_type, i)}: image {value}"
        if path is None:
            report.problems.append(f"{where}: remote image, not downloaded")
            continue
        try:
            payloads.append(read_image_bytes(path))
        except OSError as err:
            report.problems.append(f"{where}: {err.strerror or err}")
            continue
        present.append(i)
        paths.append(path)
    if present:
        cache = EmbeddingCache(cache_dir, encoder.cache_id)
        values, ok = _encode_cached(
            encoder, cache, payloads, lambda j: load_image(paths[j]), report, f"image {node_type}",
            where=lambda j: graph.iri(node_type, present[j]), mapper=mapper,
        )  # fmt: skip
        x[present], mask[present] = values, ok
    return x, mask


def _numeric_features(graph, node_type):
    """The type's number columns through the ``numeric`` encoder: ``[N, 2C]`` and a mask."""
    from .encoders import NumericEncoder

    matrix, _ = node_numbers(graph, node_type)
    if not matrix.shape[1]:
        return None
    encoder = NumericEncoder().fit(matrix)
    return encoder.encode(matrix), encoder.mask(matrix)


def build_features(
    graph: ProductGraph,
    workspace: Path | None = None,
    spec: FeatureSpec | None = None,
    ray: str | None = None,
) -> tuple[NodeFeatures, EncodeReport]:
    """Encode every node type's text, image and numeric columns (see module docstring).

    With ``workspace``, the features and the cache are kept there (``features/``). With
    ``ray`` (``"local"``, ``"auto"`` or a cluster address), the forward passes run on Ray
    workers (:mod:`fusion.ray_encode`); the features are the same.
    """
    if ray is None:
        return _build_features(graph, workspace, spec, None)
    from .ray_encode import ray_session

    with ray_session(ray) as session:
        return _build_features(graph, workspace, spec, session)


def _build_features(graph, workspace, spec, ray_session):
    from .encoders import get_encoder, precision_kwargs

    spec = spec or FeatureSpec()
    started = time.perf_counter()
    report = EncodeReport()
    cache_dir = Path(workspace) / "features" / "cache" if workspace else Path(".kgf-cache")
    encoders = {}
    for modality, name in (("text", spec.text_encoder), ("image", spec.image_encoder)):
        if name:
            encoders[modality] = get_encoder(name, device=spec.device, batch_size=spec.batch_size,
                                             **precision_kwargs(name, spec.precision))  # fmt: skip
    mappers: dict = {}
    if ray_session is not None:
        from .ray_encode import RayEncoderMap

        mappers = {m: RayEncoderMap(ray_session, e, spec.device) for m, e in encoders.items()}
    features: dict = {}
    for node_type in graph.node_types:
        mods: dict = {}
        if "text" in encoders:
            mods["text"] = _text_features(
                graph, node_type, spec, encoders["text"], cache_dir, report, mappers.get("text")
            )
        if "image" in encoders and any(r is not None for r in node_images(graph, node_type)):
            mods["image"] = _image_features(
                graph, node_type, encoders["image"], cache_dir, report, mappers.get("image")
            )
        if spec.numeric and (numeric := _numeric_features(graph, node_type)) is not None:
            mods["numeric"] = numeric
        mods = {m: v for m, v in mods.items() if bool(v[1].any())}
        if mods:
            features[node_type] = mods
            report.counts[node_type] = {
                m: {"present": int(mask.sum()), "missing": int((~mask).sum())}
                for m, (_, mask) in mods.items()
            }
    report.seconds = time.perf_counter() - started
    result = NodeFeatures(features, spec)
    if workspace is not None:
        result.save(workspace)
    return result, report
