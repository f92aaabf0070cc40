"""Linking photos to graph entities: a photo tower, an entity tower, nearest neighbours.

A photo (a local path or a ``PIL.Image``) is linked to the entity whose representation is
nearest to the photo's embedding:

- **Photo tower** (:class:`PhotoTower`), on top of the workspace's image encoder. For
  ``efficientnet-lite0`` the network is split at block ``tail_from`` (default 11, the first
  block of stage 6): the frozen ImageNet *trunk* (stem + blocks ``0 .. tail_from - 1``,
  ``uint8 [N, 3, 224, 224] -> [N, 112, 14, 14]``) and a trainable *tail* (the remaining
  blocks and the 1x1 head convolution, ``-> [N, 1280, 7, 7]``, average-pooled to
  ``[N, 1280]``), then a linear projection to ``z`` [N, d], L2-normalised. Other image
  encoders: their frozen features ``[N, D]`` -> the projection.
- **Entity tower** (:class:`EntityTower`): each candidate entity's input ``u_e`` [D_u]
  concatenates its own feature vectors (image, text: each L2-normalised, zero where the
  entity lacks it) and the mean of its 1-hop graph neighbours' (its category, its brand...;
  either edge direction) - the graph-enriched part. ``r_e = normalise(W u_e + b_e)`` [d],
  where ``b_e`` [d] is a residual learned for each entity that had labelled photos (zero
  for the others, which stay linkable through ``W``).
- **Score**: ``p(e | photo) = softmax_e(cos(z, r_e) / tau)`` over the candidate entities
  (the node types the photos were labelled with), averaged over the test-time views: the
  centred crop and its mirror image, and in each the ``crops`` windows of ``crop`` x
  ``crop`` cells of the 14 x 14 trunk map (four corners and the centre: the windows the
  tail was trained on, at the cost of the tail only). The best entity is the link unless
  ``p`` is below the threshold (NIL).

Training (:mod:`align.image_train`) is contrastive, photo <-> entity representation, with
the products that share a group node through the graph (``schema:category``) as hard
negatives. The two-tower retrieval design follows CLIP (Radford et al., "Learning
Transferable Visual Models From Natural Language Supervision", ICML 2021); fine-tuning only
the last stages of a frozen ImageNet network follows Yosinski et al. ("How transferable are
features in deep neural networks?", NeurIPS 2014).

**Untrained** (``untrained=True``): no tower is learned; ``z`` is the photo's encoder feature
and ``r_e`` the entity's own image feature (entities with an image): nearest catalogue image,
``tau = 0.05``, never NIL.

A trained image linker lives in ``WORKSPACE/image-linker/``: ``config.json``
(:class:`ImageLinkerConfig`) and ``model.safetensors`` (tail, projections, residuals).
Each :class:`~align.linker.Link` it returns has ``mention`` = the image's file name
(``"<image>"`` for an in-memory image), ``start = end = None``, and ``representation`` =
``[z ; r_e]`` [2d] (the entity half zero for a NIL link).
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fusion.artifacts import CONFIG_FILE, WEIGHTS_FILE, load_into, read_weights, save_pretrained
from fusion.features import FEATURES_FILE, NodeFeatures
from kg.graph import load_graph
from kg.workspace import IMAGE_LINKER_DIR, graph_version

from .base import Link, LinkerError, read_config

FORMAT = "kgfusion-image-linker"
VERSION = 1
LITE0 = "efficientnet-lite0"
MODALITIES = ("image", "text")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")
_GROUP_NAMES = ("category", "categories", "broader", "type", "class", "genre")


def _normalise(x: torch.Tensor) -> torch.Tensor:
    return F.normalize(x, dim=-1)


@dataclass
class ImageLinkerConfig:
    """Everything a trained image linker needs besides its weights (``config.json``).

    ``tail_from``: the EfficientNet-Lite0 block where the trainable tail starts (None: the
    encoder is frozen, only the projection is trained). ``views`` (1: centred crop, 2: and
    its mirror image) and ``crops`` (0: the whole trunk map; 1: its centre window; 5: the
    centre and the four corners, ``crop`` cells wide) are the test-time views. ``input_dims``: the entity input
    blocks ``{modality: dim}`` it was trained on. ``trained_iris``: the entities with a
    learned residual, in the order of the ``entity.residual`` rows.
    """

    format: str = FORMAT
    version: int = VERSION
    image_encoder: str | None = None
    tail_from: int | None = 11
    dim: int = 256
    temperature: float = 0.05
    entity_types: list[str] | None = None
    group_relation: str | None = None
    input_dims: dict[str, int] = field(default_factory=dict)
    trained_iris: list[str] = field(default_factory=list)
    threshold: float = 0.0
    views: int = 2
    crops: int = 5
    crop: int = 12
    graph_version: str | None = None
    trained: bool = False
    metrics: dict = field(default_factory=dict)

    @classmethod
    def load(cls, directory) -> ImageLinkerConfig:
        return read_config(cls, Path(directory) / CONFIG_FILE, FORMAT, VERSION, "image linker")


# ---------------------------------------------------------------------- photo tower
class PhotoTower(nn.Module):
    """Images -> ``z`` [N, d] (see the module docstring).

    ``trunk_inputs(images, views)`` gives what the trainable part starts from, per view:
    the trunk's feature maps ``[N, V, 112, 14, 14]`` (EfficientNet-Lite0 with a tail) or
    the frozen encoder features ``[N, V, D]``; ``forward(x)`` maps one view's inputs to
    ``z``. The trunk never trains, so training caches its outputs once.
    """

    def __init__(self, encoder_name: str, tail_from: int | None, dim: int, device: str = "cpu",
                 batch_size: int = 32, dropout: float = 0.2):  # fmt: skip
        super().__init__()
        from fusion.encoders import get_encoder

        self.encoder_name = encoder_name
        self.encoder = get_encoder(encoder_name, device=device, batch_size=batch_size)
        self.device = self.encoder.device
        self.tail_from = tail_from if encoder_name == LITE0 else None
        if self.tail_from is not None:
            from fusion.encoders.efficientnet_lite0 import HEAD_CHANNELS, load_network

            net = load_network("cpu")
            if not 1 <= self.tail_from < net.num_blocks:
                raise ValueError(
                    f"tail_from={tail_from}: choose a block in 1..{net.num_blocks - 1}"
                )
            self.tail = net.tail_layers(self.tail_from)  # trainable copy, before the head's ReLU6
            in_dim = HEAD_CHANNELS
        else:
            self.tail = None
            in_dim = self.encoder.dim
        self.dropout = nn.Dropout(dropout)
        self.proj = nn.Linear(in_dim, dim)
        self.to(self.device)

    def input_shape(self, views: int, flat: int) -> tuple[int, ...]:
        """The shape ``[V, ...]`` of one photo's trunk outputs, from their flat size."""
        if self.tail is None:
            return (views, flat // views)
        channels = self.tail[0].in_channels
        side = math.isqrt(flat // views // channels)
        return (views, channels, side, side)

    @property
    def input_id(self) -> str:
        """Identity of the trunk outputs (cache key prefix)."""
        base = self.encoder.cache_id
        return f"{base}-trunk{self.tail_from}" if self.tail_from is not None else base

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """One view's trunk outputs ``[N, C, H, W]`` (or features ``[N, D]``) -> ``[N, d]``."""
        if self.tail is not None:
            x = F.relu6(self.tail(x)).mean(dim=(2, 3))
        return _normalise(self.proj(self.dropout(x)))

    @torch.no_grad()
    def trunk_inputs(self, images: list, views: int = 2) -> torch.Tensor:
        """``[N, V, ...]`` float32: view 0 the centred crop, view 1 its mirror image.

        Raises :class:`~fusion.encoders.ImageError` naming the first unreadable image.
        """
        from fusion.encoders import load_image

        pictures = [load_image(image) for image in images]
        if self.tail_from is None:
            batches = [self.encoder.encode(pictures).float()]
            if views > 1:
                from PIL import Image

                mirrored = [p.transpose(Image.Transpose.FLIP_LEFT_RIGHT) for p in pictures]
                batches.append(self.encoder.encode(mirrored).float())
            return torch.stack(batches, dim=1)
        from fusion.encoders.efficientnet_lite0 import MEAN, STD, load_network, preprocess

        net = load_network(str(self.device))
        out = []
        step = self.encoder.batch_size
        for start in range(0, len(pictures), step):
            pixels = preprocess(pictures[start : start + step]).to(self.device)
            per_view = []
            for view in range(views):
                x = pixels.flip(3) if view == 1 else pixels
                x = ((x.float() - MEAN) / STD).contiguous(memory_format=torch.channels_last)
                with torch.inference_mode():
                    x = net.trunk(x, self.tail_from)
                per_view.append(x.float().contiguous().cpu())
            out.append(torch.stack(per_view, dim=1))
        return torch.cat(out)


# ---------------------------------------------------------------------- entity tower
class EntityTower(nn.Module):
    """Entity inputs ``u`` [E, D_u] -> representations ``r`` [E, d] (module docstring).

    ``residual_rows`` [E] (long): the row of ``residual`` for each entity, -1 for none.
    """

    def __init__(self, in_dim: int, dim: int, residuals: int):
        super().__init__()
        self.proj = nn.Linear(in_dim, dim)
        self.residual = nn.Parameter(torch.zeros(residuals, dim))

    def forward(self, u: torch.Tensor, residual_rows: torch.Tensor) -> torch.Tensor:
        r = self.proj(u)
        has = residual_rows >= 0
        if bool(has.any()):
            extra = torch.zeros_like(r)
            extra[has] = self.residual[residual_rows[has]]
            r = r + extra
        return _normalise(r)


@dataclass
class EntityInputs:
    """The linkable entities of an image linker: one row per entity.

    ``inputs`` float32 [E, D_u] (own image | own text | neighbour mean of each, as present
    in ``dims``); ``image`` float32 [E, D_img] the own image feature (normalised, zero where
    missing), ``has_image`` bool [E]; ``groups[r]``: the group nodes (IRIs) of the row
    through the group relation.
    """

    iris: list[str]
    types: list[str]
    gids: np.ndarray
    inputs: torch.Tensor
    image: torch.Tensor | None
    has_image: np.ndarray
    dims: dict[str, int]
    groups: list[tuple[str, ...]]

    def __len__(self) -> int:
        return len(self.iris)

    def row_of(self) -> dict[str, int]:
        return {iri: r for r, iri in enumerate(self.iris)}


def find_group_relation(graph, node_types) -> str | None:
    """The relation whose target groups entities of ``node_types`` into coarse classes:
    the first relation named like ``category`` (then ``broader``, ``type``...) from one of
    those types to another type; None if there is none."""
    relations = [r for r in graph.relations if r.src_type in node_types]
    for wanted in _GROUP_NAMES:
        for relation in relations:
            if relation.name.lower() == wanted and relation.dst_type not in node_types:
                return relation.name
    for relation in relations:
        if "categor" in relation.name.lower():
            return relation.name
    return None


def candidate_table(graph, features: NodeFeatures, node_types, group_relation=None,
                    dims: dict[str, int] | None = None) -> EntityInputs:  # fmt: skip
    """Build the :class:`EntityInputs` of ``node_types`` from the workspace features.

    ``dims`` (from a trained config) fixes the input layout; a modality that is missing
    from the features now is refused (the linker would see other inputs than it learned).
    """
    present = {}
    for mods in features.features.values():
        for modality in MODALITIES:
            if modality in mods:
                present[modality] = mods[modality][0].shape[1]
    if dims is None:
        dims = {m: present[m] for m in MODALITIES if m in present}
    for modality, dim in dims.items():
        if present.get(modality) != dim:
            raise LinkerError(
                f"the image linker was trained with {modality} features of dimension {dim}, "
                f"but the workspace now has {present.get(modality) or 'none'}; retrain it "
                "(`kgf link-train DIR --images LIST`) or re-encode as before"
            )
    n = graph.num_nodes
    blocks, has = {}, {}
    for modality, dim in dims.items():
        x, mask = torch.zeros(n, dim), torch.zeros(n, dtype=torch.bool)
        for node_type, mods in features.features.items():
            if modality in mods:
                vecs, m = mods[modality]
                gids = torch.from_numpy(graph.global_ids(node_type))
                x[gids] = _normalise(vecs.float()) * m[:, None]
                mask[gids] = m
        blocks[modality], has[modality] = x, mask
    # neighbour means, both edge directions (one round of mean aggregation)
    src, dst = torch.from_numpy(graph.src), torch.from_numpy(graph.dst)
    neighbour = {}
    for modality, x in blocks.items():
        total, count = torch.zeros_like(x), torch.zeros(n)
        weight = has[modality].float()
        if len(src):
            total.index_add_(0, src, x[dst])
            total.index_add_(0, dst, x[src])
            count.index_add_(0, src, weight[dst])
            count.index_add_(0, dst, weight[src])
        neighbour[modality] = total / count.clamp(min=1)[:, None]
    gids = np.concatenate([graph.global_ids(t) for t in node_types]).astype(np.int64)
    any_feature = torch.zeros(n, dtype=torch.bool)
    for mask in has.values():
        any_feature |= mask
    gids = gids[any_feature.numpy()[gids]]
    if not len(gids):
        raise LinkerError(
            f"no entity of type {', '.join(node_types)} has an image or text feature; run "
            "`kgf encode DIR` first"
        )
    index = torch.from_numpy(gids)
    parts = [blocks[m][index] for m in dims] + [neighbour[m][index] for m in dims]
    image = blocks["image"][index] if "image" in blocks else None
    has_image = has["image"][index].numpy() if "image" in has else np.zeros(len(gids), bool)
    groups = _groups(graph, gids, group_relation)
    return EntityInputs(
        iris=[graph.nodes[g] for g in gids.tolist()],
        types=[graph.node_types[graph.node_type_id[g]] for g in gids.tolist()],
        gids=gids, inputs=torch.cat(parts, dim=1), image=image, has_image=has_image,
        dims=dict(dims), groups=groups,
    )  # fmt: skip


def _groups(graph, gids: np.ndarray, relation: str | None) -> list[tuple[str, ...]]:
    if relation is None or not len(graph.src):
        return [()] * len(gids)
    names = np.array([graph.predicate_names[p] for p in graph.predicates], dtype=object)
    edge = names[graph.pred] == relation
    src, dst = graph.src[edge], graph.dst[edge]
    found: dict[int, list[str]] = {}
    for s, d in zip(src.tolist(), dst.tolist(), strict=True):
        found.setdefault(s, []).append(graph.nodes[d])
    return [tuple(found.get(int(g), ())) for g in gids]


# ---------------------------------------------------------------------- the linker
def windows(x: torch.Tensor, crops: int, size: int) -> list[torch.Tensor]:
    """Test-time windows of trunk maps ``[N, C, H, W]``: the whole map (``crops = 0``) or
    ``size`` x ``size`` windows: the centre, then the four corners (``crops`` of them, up to
    5). Features ``[N, D]`` and maps no larger than ``size`` are returned whole."""
    if x.dim() != 4 or crops < 1 or size >= x.shape[-1]:
        return [x]
    off = x.shape[-1] - size
    mid = off // 2
    corners = ((mid, mid), (0, 0), (0, off), (off, 0), (off, off))[:crops]
    return [x[..., i : i + size, j : j + size] for i, j in corners]


def image_files(paths) -> list[Path]:
    """Paths, with folders expanded (recursively, sorted) to the image files they hold."""
    out: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
            )
            if not found:
                raise LinkerError(f"{path}: no image files ({', '.join(IMAGE_SUFFIXES)}) in it")
            out += found
        else:
            out.append(path)
    return out


def _mention_name(image) -> str:
    if isinstance(image, str | os.PathLike):
        return os.fspath(image)
    return getattr(image, "filename", None) or "<image>"


class ImageLinker:
    """Links photos to a workspace's entities (see the module docstring).

    Args:
        workspace: a workspace folder with image features (``kgf build``, ``kgf encode``).
        directory: where a trained image linker is read from (default
            ``WORKSPACE/image-linker``).
        untrained: link by the nearest catalogue image instead (no trained model needed).
        device, batch_size: for the image encoder.
    """

    def __init__(self, workspace, *, directory=None, untrained: bool = False,
                 device: str = "auto", batch_size: int = 32, graph=None,
                 features: NodeFeatures | None = None):  # fmt: skip
        self.workspace = Path(workspace)
        self.graph = graph if graph is not None else load_graph(self.workspace)
        if features is None:
            if not (self.workspace / FEATURES_FILE).is_file():
                raise LinkerError(
                    f"{self.workspace} has no features ({FEATURES_FILE}): linking images "
                    f"needs the `encode` step first; run `kgf encode {self.workspace}`"
                )
            features = NodeFeatures.load(self.workspace)
        self.features = features
        encoder = features.spec.image_encoder
        if not encoder or not any("image" in mods for mods in features.features.values()):
            raise LinkerError(
                f"{self.workspace}'s features have no images (image encoder: {encoder}); run "
                f"`kgf encode {self.workspace} --image {LITE0}` on a catalogue with image "
                "references"
            )
        self.directory = Path(directory) if directory else self.workspace / IMAGE_LINKER_DIR
        self.version = graph_version(self.graph)
        if untrained:
            config = ImageLinkerConfig(image_encoder=encoder, tail_from=None, views=1, crops=0)
        elif (self.directory / CONFIG_FILE).is_file():
            config = ImageLinkerConfig.load(self.directory)
            self._check(config, encoder)
        else:
            raise LinkerError(
                f"{self.workspace} has no trained image linker ({self.directory}): train one "
                f"from labelled photos with `kgf link-train {self.workspace} --images "
                "photos.txt` (lines: image path, entity id or IRI), or link by the nearest "
                "catalogue image with `kgf link ... --untrained`"
            )
        self.config = config
        self.untrained = untrained
        self.tower = PhotoTower(encoder, config.tail_from, config.dim, device, batch_size)
        if untrained:
            types = sorted({t for t, mods in features.features.items() if "image" in mods})
            self.candidates = candidate_table(self.graph, features, types, None)
            keep = np.nonzero(self.candidates.has_image)[0]
            self._entity_vecs = self.candidates.image[torch.from_numpy(keep)]
            self._rows = keep
            self.entity_tower = None
        else:
            self.candidates = candidate_table(
                self.graph, features, config.entity_types or [], config.group_relation,
                config.input_dims,
            )  # fmt: skip
            self.entity_tower = EntityTower(
                self.candidates.inputs.shape[1], config.dim, len(config.trained_iris)
            )
            path = self.directory / WEIGHTS_FILE
            tensors = read_weights(path)
            load_into(self.tower, tensors, path, prefix="photo.")
            load_into(self.entity_tower, tensors, path, prefix="entity.")
            self.refresh()
        self.tower.eval()

    # ------------------------------------------------------------------ set-up
    def _check(self, config: ImageLinkerConfig, encoder: str) -> None:
        if config.image_encoder and config.image_encoder != encoder:
            raise LinkerError(
                f"{self.directory} was trained on {config.image_encoder!r} image features, but "
                f"the workspace is encoded with {encoder!r}; retrain with `kgf link-train "
                f"{self.workspace} --images LIST`"
            )
        if config.graph_version and config.graph_version != self.version:
            warnings.warn(
                f"{self.directory} was trained on another version of the graph; links still "
                "work, but retrain with `kgf link-train DIR --images LIST` to learn new entities",
                stacklevel=3,
            )

    def residual_rows(self) -> torch.Tensor:
        """``[E]`` the ``entity.residual`` row of each candidate (-1 where none)."""
        where = {iri: i for i, iri in enumerate(self.config.trained_iris)}
        return torch.tensor([where.get(iri, -1) for iri in self.candidates.iris], dtype=torch.long)

    @torch.no_grad()
    def refresh(self) -> None:
        """Recompute the entity representations ``r`` [E, d] (after training)."""
        self.entity_tower.eval()
        device = self.entity_tower.proj.weight.device
        inputs, rows = self.candidates.inputs.to(device), self.residual_rows().to(device)
        self._entity_vecs = self.entity_tower(inputs, rows).cpu()
        self._rows = np.arange(len(self.candidates))

    def __repr__(self) -> str:
        state = "untrained (nearest catalogue image)" if self.untrained else "trained"
        return (
            f"ImageLinker({str(self.workspace)!r}, entities={len(self._rows)}, "
            f"encoder={self.config.image_encoder!r}, {state})"
        )

    @property
    def entity_vectors(self) -> np.ndarray:
        """``[E', d]`` the linkable entities' representations (rows of :attr:`entity_iris`)."""
        return self._entity_vecs.numpy()

    @property
    def entity_iris(self) -> list[str]:
        return [self.candidates.iris[r] for r in self._rows.tolist()]

    # ------------------------------------------------------------------ linking
    @torch.no_grad()
    def embed(self, images, views: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Photos -> ``(z [N, d] (view mean, normalised), probabilities [N, E'])``."""
        views = self.config.views if views is None else views
        x = self.tower.trunk_inputs(list(images), views)
        return self.score_inputs(x)

    @torch.no_grad()
    def score_inputs(self, x: torch.Tensor, crops: int | None = None):
        """Trunk outputs ``[N, V, ...]`` -> ``(z [N, d], probabilities [N, E'])``; ``crops``
        overrides the configured test-time windows."""
        crops = self.config.crops if crops is None else crops
        self.tower.eval()
        entity = self._entity_vecs.to(self.tower.device)
        zs, probs = [], []
        for view in range(x.shape[1]):
            inputs = x[:, view].to(self.tower.device)
            for window in windows(inputs, crops, self.config.crop):
                z = _normalise(window) if self.untrained else self.tower(window)
                zs.append(z)
                probs.append(torch.softmax(z @ entity.T / self.config.temperature, dim=1))
        z = _normalise(torch.stack(zs).mean(0))
        return z.cpu(), torch.stack(probs).mean(0).cpu()

    def link_images(
        self, images, *, k: int = 5, batch_size: int = 32, progress=False
    ) -> list[Link]:
        """Link each image (path or ``PIL.Image``); see :meth:`link`. ``progress``: a tqdm bar."""
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k={k!r}: ask for at least one alternative (k >= 1)")
        images = list(images)
        links: list[Link] = []
        from kg.progress import progress as make_bar

        bar = make_bar(total=len(images), desc="link", unit="image", enabled=bool(progress))
        for start in range(0, len(images), batch_size):
            chunk = images[start : start + batch_size]
            z, probs = self.embed(chunk)
            links += self._links(chunk, z, probs, k)
            bar.update(len(chunk))
        bar.close()
        return links

    def link(self, image, *, k: int = 5) -> Link:
        """Link one photo: the best entity (or NIL), its probability, ``k`` alternatives."""
        return self.link_images([image], k=k)[0]

    def _links(self, images, z: torch.Tensor, probs: torch.Tensor, k: int) -> list[Link]:
        out = []
        iris, types = self.candidates.iris, self.candidates.types
        entity = self._entity_vecs.numpy()
        for image, vec, p in zip(images, z.numpy(), probs.numpy(), strict=True):
            order = np.argsort(-p, kind="stable")[:k]
            alternatives = [(iris[int(self._rows[j])], float(p[j])) for j in order]
            best = int(order[0])
            score = float(p[best])
            nil = score < self.config.threshold
            row = int(self._rows[best])
            half = np.zeros(entity.shape[1], np.float32) if nil else entity[best]
            out.append(
                Link(
                    mention=_mention_name(image), start=None, end=None,
                    iri=None if nil else iris[row], type=None if nil else types[row],
                    score=score, alternatives=alternatives, nil=nil,
                    representation=np.concatenate([vec, half]).astype(np.float32),
                )
            )  # fmt: skip
        return out

    # ------------------------------------------------------------------ saving
    def save(self, directory=None) -> Path:
        """Write ``config.json`` + ``model.safetensors`` (default ``WORKSPACE/image-linker``)."""
        if self.untrained:
            raise LinkerError("an untrained image linker has nothing to save; train it first")
        directory = Path(directory) if directory else self.directory
        self.config.graph_version = self.version
        tensors = {f"photo.{k}": v for k, v in self.tower.state_dict().items()}
        tensors.update({f"entity.{k}": v for k, v in self.entity_tower.state_dict().items()})
        meta = {"format": FORMAT}
        return save_pretrained(directory, self.config, tensors, metadata=meta, replace=True)
