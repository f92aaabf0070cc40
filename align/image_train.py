"""Training the image linker from labelled photos (see :mod:`align.images` for the model).

Input: photos and the entity each one shows (:func:`read_photo_list`: one ``path, entity``
line per photo, the entity a catalogue id or an IRI; Grocery's ``train.txt`` as it is).

1. **Trunk outputs**, once: every photo through the frozen trunk in two views (the centred
   crop and its mirror image), ``[N, 2, 112, 14, 14]``, kept as float16 in the workspace's
   embedding cache (``features/cache``, keyed by content hash), so retraining runs no trunk.
2. **Hold-out for model selection**, taken from the labelled photos only: per entity with
   at least ``holdout_min_photos`` photos, one visual cluster of its photos (k-means, k = 4,
   over the frozen network's pooled features; the cluster whose size is nearest 20 %).
   Photos of one product taken on one visit are near-duplicates, so a random hold-out
   measures memory (on Grocery a frozen-feature classifier scores 97 % on each product's
   last 15 % of train photos); a held-out cluster stands in for another visit (a linear
   probe scores 78 % on it and 76 % on the real validation photos).
3. **Training**, photo <-> entity representation, contrastive (InfoNCE, van den Oord et
   al. 2018) with the softmax over *all* candidate entities (up to ``max_entities``; above,
   the batch's entities, their group siblings and a random sample)::

       s_ij = cos(z_i, r_j) / tau
       L = CE(s_i, gold_i; label smoothing 0.1)
         + hard * CE(s_i restricted to gold_i and its siblings, gold_i)

   where the *siblings* of an entity are the candidates that share a group node with it
   through the graph's group relation (``schema:category``: the products of the same coarse
   class) - the hard negatives. AdamW, one-cycle learning rate (tail ``lr``, projections
   ``head_lr``), batches of 64; augmentation: a random view and a random ``crop`` x
   ``crop`` window of the 14 x 14 trunk map (a random crop of ~86 % of the image).
4. The epoch with the best hold-out accuracy (scored on the centre windows, to save time)
   is kept. NIL threshold: the ``nil_quantile`` quantile of the hold-out photos'
   probabilities for their correct link (no out-of-catalogue photos are labelled, so the
   threshold keeps ``1 - nil_quantile`` of correct links). Test-time views (here and when
   linking): centred crop and mirror image, each scored on the centre and the four corner
   windows of the trunk map (``crops = 5``), chosen on the hold-out (Grocery: 89.0 % against
   87.6 % for the whole map, 8 epochs: 89.0 % against 87.8 % for 6).
5. With ``refit`` (the default), the towers are then trained afresh on *all* the labelled
   photos for the same number of epochs (the hold-out photos are other visits: the most
   useful photos to learn from); the threshold and the reported hold-out accuracy are those
   of step 4.

Saved as ``WORKSPACE/image-linker/config.json`` + ``model.safetensors``.
"""

from __future__ import annotations

import copy
import csv
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import image_checkpoint as ck
from .base import LinkerError
from .images import (
    EntityTower,
    ImageLinker,
    ImageLinkerConfig,
    PhotoTower,
    candidate_table,
    find_group_relation,
)
from .train import resolve_entity_ids

_HEADER = {"path", "image", "file", "photo", "filename"}
CHECKPOINT = "image-linker.checkpoint"  # in the workspace: epochs of an unfinished run
SAVE_EVERY = 60.0  # seconds between saves of the photo feature cache during the trunk pass


@dataclass
class ImageTrainReport:
    """What :func:`train_image_linker` produced: the linker, its metrics, where it was saved."""

    linker: ImageLinker
    metrics: dict
    path: Path | None


# ---------------------------------------------------------------------- reading
def read_photo_list(path) -> list[tuple[Path, str]]:
    """``[(image path, entity label)]`` from a list file.

    One photo per line: ``path, label`` (comma or tab separated, more columns ignored, a
    header line allowed, blank and ``#`` lines skipped). Relative paths are relative to the
    list file's folder; a leading ``/`` that names no existing file is read the same way.
    Errors name the file and the line.
    """
    path = Path(path)
    if not path.is_file():
        raise LinkerError(f"{path}: no such photo list")
    folder = path.parent
    text = path.read_text(encoding="utf-8-sig")
    delimiter = "\t" if "\t" in text.split("\n", 1)[0] else ","
    out = []
    for line, row in enumerate(csv.reader(text.splitlines(), delimiter=delimiter), start=1):
        row = [cell.strip() for cell in row]
        if not row or not any(row) or row[0].startswith("#"):
            continue
        if line == 1 and row[0].lower() in _HEADER:
            continue
        if len(row) < 2 or not row[0] or not row[1]:
            raise LinkerError(f"{path}, line {line}: expected `image path, entity id or IRI`")
        image = Path(row[0])
        if not image.is_absolute():
            image = folder / image
        elif not image.exists():
            image = folder / row[0].lstrip("/")
        out.append((image, row[1]))
    if not out:
        raise LinkerError(f"{path}: no photos listed")
    return out


# ---------------------------------------------------------------------- trunk outputs
def trunk_outputs(linker: ImageLinker, paths, views: int = 2, progress: bool = False):
    """``[N, V, ...]`` float16 trunk outputs of image files, through the workspace cache."""
    from fusion.cache import EmbeddingCache
    from kg.progress import progress as make_bar

    tower = linker.tower
    cache = EmbeddingCache(
        linker.workspace / "features" / "cache", f"{tower.input_id}-views{views}", torch.float16
    )
    payloads = []
    for p in paths:
        try:
            payloads.append(Path(p).read_bytes())
        except OSError as err:
            raise LinkerError(f"{p}: cannot read the image ({err.strerror or err})") from None
    keys = [cache.key(b) for b in payloads]
    found, values = cache.lookup(keys)
    todo = sorted(set(range(len(paths))) - set(found))
    shape = None
    chunks: dict[int, torch.Tensor] = {}
    step = 64
    bar = make_bar(total=len(todo), unit="photo", desc="photos", enabled=progress and bool(todo))
    saved = time.monotonic()
    try:  # saved every SAVE_EVERY seconds and when interrupted: a rerun starts where it stopped
        for start in range(0, len(todo), step):
            rows = todo[start : start + step]
            x = tower.trunk_inputs([paths[i] for i in rows], views).half()
            shape = x.shape[1:]
            cache.put([keys[i] for i in rows], x.flatten(1))
            for j, i in enumerate(rows):
                chunks[i] = x[j]
            bar.update(len(rows))
            if time.monotonic() - saved > SAVE_EVERY:
                cache.save()
                saved = time.monotonic()
    finally:
        bar.close()
        cache.save()
    if shape is None:
        shape = tower.input_shape(views, values.shape[1])
    out = torch.empty((len(paths), *shape), dtype=torch.float16)
    if found:
        out[found] = values.view(len(found), *shape)
    for i, x in chunks.items():
        out[i] = x
    return out


# ---------------------------------------------------------------------- hold-out
def _kmeans(x: torch.Tensor, k: int, seed: int, iterations: int = 30) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    centres = x[torch.randperm(len(x), generator=generator)[:k]].clone()
    assign = torch.zeros(len(x), dtype=torch.long)
    for _ in range(iterations):
        assign = torch.cdist(x, centres).argmin(1)
        for j in range(k):
            if bool((assign == j).any()):
                centres[j] = x[assign == j].mean(0)
    return assign


def cluster_holdout(pooled: torch.Tensor, labels: np.ndarray, fraction: float = 0.2,
                    min_photos: int = 5, seed: int = 0) -> np.ndarray:  # fmt: skip
    """Bool [N]: per label with ``min_photos`` or more, the photos of one k-means cluster
    (k = 4) of its normalised features ``pooled`` [N, D], the one nearest ``fraction``."""
    x = F.normalize(pooled.float(), dim=1)
    hold = np.zeros(len(labels), bool)
    for label in np.unique(labels):
        idx = np.nonzero(labels == label)[0]
        if len(idx) < min_photos:
            continue
        assign = _kmeans(x[torch.from_numpy(idx)], min(4, len(idx)), seed).numpy()
        sizes = np.bincount(assign, minlength=4)[:4] / len(idx)
        sizes[sizes == 0] = np.inf
        chosen = int(np.argmin(np.abs(sizes - fraction)))
        hold[idx[assign == chosen]] = True
    return hold


# ---------------------------------------------------------------------- training
def _pooled(linker: ImageLinker, x: torch.Tensor) -> torch.Tensor:
    """The untrained network's pooled features of view 0 (for clustering)."""
    tower = linker.tower
    out = []
    with torch.no_grad():
        for start in range(0, len(x), 128):
            v = x[start : start + 128, 0].float().to(tower.device)
            if tower.tail is not None:
                v = F.relu6(tower.tail(v)).mean(dim=(2, 3))
            out.append(v.cpu())
    return torch.cat(out)


def fit_image_linker(
    workspace,
    images,
    iris,
    *,
    types=None,
    group_relation: str | None = "auto",
    tail_from: int | None = 11,
    dim: int = 256,
    epochs: int = 8,
    batch_size: int = 64,
    lr: float = 3e-4,
    head_lr: float = 3e-3,
    weight_decay: float = 1e-4,
    temperature: float = 0.05,
    hard: float = 0.5,
    crop: int = 12,
    label_smoothing: float = 0.1,
    holdout: float = 0.2,
    holdout_min_photos: int = 5,
    refit: bool = True,
    crops: int = 5,
    nil_quantile: float = 0.01,
    max_entities: int = 8192,
    seed: int = 0,
    device: str = "auto",
    progress: bool = False,
    checkpoint: Path | str | None = None,
    resume: bool = False,
) -> tuple[ImageLinker, dict]:
    """Train an image linker on ``images`` (paths) showing entities ``iris`` (see the module
    docstring). Returns the linker (not saved: call ``linker.save()``) and its metrics.

    ``types``: the candidate node types (default: the types of the labelled entities).
    ``group_relation``: the relation giving hard negatives (``"auto"``: one named like
    ``category``; None: none). ``tail_from``: the first trainable EfficientNet-Lite0 block
    (None: frozen encoder, projection only). ``holdout``: the fraction held out per entity
    with at least ``holdout_min_photos`` photos, for selecting the epoch and the NIL
    threshold (0: none; the last epoch is kept and the threshold is 0). ``refit``: train
    again on all photos afterwards. ``crops``: test-time windows per view (0: the whole
    trunk map; 1 to 5: the centre and then the corners, ``crop`` cells wide).
    ``checkpoint``: a folder saved after every epoch (:mod:`align.image_checkpoint`);
    ``resume``: continue from it (the photos' trunk outputs are cached in the workspace in
    any case, so an interrupted run never repeats that pass).
    """
    settings = {k: v for k, v in locals().items() if k not in ("workspace", "images", "iris",
                "progress", "checkpoint", "resume", "device")}  # fmt: skip
    started = time.perf_counter()
    images, iris = _labelled(images, iris)
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        linker = ImageLinker(workspace, untrained=True, device=device)
        config, entities, row_of = _set_up(
            linker, workspace, iris, types, group_relation, tail_from=tail_from, dim=dim,
            temperature=temperature, crops=crops, crop=crop, device=device,
        )  # fmt: skip
        t_trunk = time.perf_counter()
        x = trunk_outputs(linker, images, views=2, progress=progress)
        trunk_seconds = time.perf_counter() - t_trunk
        gold = np.array([row_of[i] for i in iris], np.int64)
        hold = _holdout(linker, x, gold, holdout, holdout_min_photos, seed)
        metrics: dict = {
            "photos": len(images), "entities": len(entities), "train_photos": int((~hold).sum()),
            "holdout_photos": int(hold.sum()), "group_relation": config.group_relation,
        }  # fmt: skip
        options = dict(
            epochs=epochs, batch_size=batch_size, lr=lr, head_lr=head_lr,
            weight_decay=weight_decay, hard=hard, crop=crop, label_smoothing=label_smoothing,
            max_entities=max_entities, progress=progress,
        )  # fmt: skip
        saved = _open_checkpoint(checkpoint, images, iris, settings, resume)
        selected = _select(linker, x, gold, hold, saved, options, metrics)
        if hold.any():
            _calibrate(linker, x, gold, hold, nil_quantile, metrics, options, refit, device,
                       saved, selected)  # fmt: skip
        _finish(linker, metrics, trunk_seconds, started)
        return linker, metrics
    finally:
        torch.random.set_rng_state(state)


def _open_checkpoint(checkpoint, images, iris, settings: dict, resume: bool):
    """The :class:`~align.image_checkpoint.Checkpoint` of this run's photos and settings in
    ``checkpoint`` (a folder), or None without one."""
    if checkpoint is None:
        return None
    return ck.Checkpoint(checkpoint, ck.fingerprint(images, iris, settings), resume)


def _select(linker: ImageLinker, x, gold, hold, saved, options, metrics) -> dict | None:
    """Train the towers and keep the epoch chosen on the hold-out (``metrics["history"]``),
    or restore them from a resumed checkpoint's ``selected`` phase (returned; else None)."""
    selected = saved.phase("selected") if saved is not None else None
    if selected is None:
        metrics["history"] = _train(linker, x, gold, hold, saved, "select", **options)
    else:
        ck.load_module(linker.tower, "photo", selected["tensors"])
        ck.load_module(linker.entity_tower, "entity", selected["tensors"])
        metrics["history"] = selected["history"]
    linker.refresh()
    return selected


def _finish(linker: ImageLinker, metrics: dict, trunk_seconds: float, started: float) -> None:
    """Record the threshold and timings; mark the linker's config trained."""
    config = linker.config
    metrics["threshold"] = config.threshold
    metrics["trunk_seconds"] = round(trunk_seconds, 2)
    metrics["seconds"] = round(time.perf_counter() - started, 2)
    config.trained, config.metrics = True, metrics
    linker.tower.eval()


def _labelled(images, iris) -> tuple[list, list]:
    """The photos and their entities as lists, one entity per photo and at least one photo."""
    images, iris = list(images), list(iris)
    if len(images) != len(iris):
        raise ValueError(f"{len(images)} images but {len(iris)} entities")
    if not images:
        raise LinkerError("no labelled photos to train on")
    return images, iris


def _holdout(linker: ImageLinker, x, gold, fraction, min_photos, seed) -> np.ndarray:
    """Bool [N]: the hold-out photos (:func:`cluster_holdout`; none when ``fraction`` is 0)."""
    if fraction > 0:
        return cluster_holdout(_pooled(linker, x), gold, fraction, min_photos, seed)
    return np.zeros(len(gold), bool)


def _set_up(linker: ImageLinker, workspace, iris, types, group_relation, *, tail_from, dim,
            temperature, crops, crop, device):  # fmt: skip
    """Make ``linker`` a trainable one over the candidate entities of ``types``: its config,
    its candidate table, fresh photo and entity towers. Returns (config, candidates, row of
    each candidate IRI)."""
    graph = linker.graph
    missing = sorted({i for i in iris if not _is_node(graph, i)})
    if missing:
        raise LinkerError(f"{missing[0]!r} is not a node of {workspace}")
    if types is None:
        types = sorted({graph.node_types[graph.node_type_id[graph._node_id(i)]] for i in iris})
    if group_relation == "auto":
        group_relation = find_group_relation(graph, types)
    entities = candidate_table(graph, linker.features, types, group_relation)
    row_of = entities.row_of()
    lost = [i for i in iris if i not in row_of]
    if lost:
        raise LinkerError(
            f"{lost[0]!r} has no image or text feature in {workspace}; run `kgf encode` "
            "after adding its literals"
        )
    config = ImageLinkerConfig(
        image_encoder=linker.config.image_encoder, tail_from=tail_from, dim=dim,
        temperature=temperature, entity_types=list(types), group_relation=group_relation,
        input_dims=entities.dims, trained_iris=sorted(set(iris), key=row_of.get),
        crops=crops, crop=crop,
    )  # fmt: skip
    linker.config, linker.untrained, linker.candidates = config, False, entities
    linker.tower = PhotoTower(config.image_encoder, tail_from, dim, device)
    tower = linker.tower
    linker.entity_tower = EntityTower(entities.inputs.shape[1], dim, len(config.trained_iris))
    linker.entity_tower.to(tower.device)
    return config, entities, row_of


def _calibrate(linker: ImageLinker, x, gold, hold, nil_quantile, metrics, options, refit, device,
               saved=None, selected=None):  # fmt: skip
    """On the hold-out photos: the accuracy and the NIL threshold (the ``nil_quantile`` of the
    right answers' scores) into ``linker.config`` and ``metrics`` (or those of a resumed
    ``selected`` checkpoint phase, stored in ``saved``); with ``refit``, train fresh towers
    again on every photo (``options``: those of :func:`_train`)."""
    config, entities = linker.config, linker.candidates
    tail_from, dim = config.tail_from, config.dim
    if selected is None:
        _, probs = linker.score_inputs(x[torch.from_numpy(np.nonzero(hold)[0])].float())
        truth = torch.from_numpy(gold[hold])
        right = probs.argmax(1) == truth
        metrics["holdout_accuracy"] = float(right.float().mean())
        correct = probs[right, truth[right]] if bool(right.any()) else probs.max(1).values
        config.threshold = float(torch.quantile(correct, nil_quantile)) if nil_quantile else 0.0
        if saved is not None:
            tensors = ck.module_tensors("photo", linker.tower)
            tensors.update(ck.module_tensors("entity", linker.entity_tower))
            info = {"history": metrics["history"], "threshold": config.threshold,
                    "holdout_accuracy": metrics["holdout_accuracy"]}  # fmt: skip
            saved.put("selected", info, tensors)
    else:
        config.threshold = selected["threshold"]
        metrics["holdout_accuracy"] = selected["holdout_accuracy"]
    if refit:
        linker.tower = PhotoTower(config.image_encoder, tail_from, dim, device)
        linker.entity_tower = EntityTower(
            entities.inputs.shape[1], dim, len(config.trained_iris)
        ).to(linker.tower.device)
        everything = np.zeros(len(gold), bool)
        metrics["refit_history"] = _train(linker, x, gold, everything, saved, "refit", **options)
        metrics["refit_photos"] = len(gold)
        linker.refresh()


def _is_node(graph, iri: str) -> bool:
    try:
        graph._node_id(iri)
    except Exception:  # noqa: BLE001 - GraphLookupError: not a node
        return False
    return True


def _siblings(groups: list[tuple[str, ...]]) -> list[np.ndarray]:
    members: dict[str, list[int]] = {}
    for row, names in enumerate(groups):
        for name in names:
            members.setdefault(name, []).append(row)
    return [
        np.array(sorted({r for name in names for r in members[name]}), np.int64) for names in groups
    ]


def _train(linker: ImageLinker, x, gold, hold, checkpoint=None, phase="select", **o) -> list[dict]:
    """The training loop (see the module docstring); ``o``: the options of
    :func:`fit_image_linker`. Returns one record per epoch; keeps the best epoch's weights.
    With a :class:`~align.image_checkpoint.Checkpoint`, continues ``phase`` from its last
    saved epoch and saves after every epoch."""
    from kg.progress import progress as make_bar

    epochs, batch_size, hard = o["epochs"], o["batch_size"], o["hard"]
    tower, entity_tower = linker.tower, linker.entity_tower
    device = tower.device
    entities = linker.candidates
    inputs = entities.inputs.to(device)
    residual_rows = linker.residual_rows().to(device)
    siblings = _siblings(entities.groups)
    has_groups = hard > 0 and any(len(s) > 1 for s in siblings)
    train_idx = np.nonzero(~hold)[0]
    hold_idx = np.nonzero(hold)[0]
    tail_params = list(tower.tail.parameters()) if tower.tail is not None else []
    head = list(tower.proj.parameters()) + list(entity_tower.parameters())
    groups = [{"params": head, "lr": o["head_lr"]}]
    if tail_params:
        groups.append({"params": tail_params, "lr": o["lr"]})
    optimiser = torch.optim.AdamW(groups, weight_decay=o["weight_decay"])
    per_epoch = math.ceil(len(train_idx) / batch_size)
    steps = max(1, epochs * per_epoch)
    generator = torch.Generator().manual_seed(int(torch.randint(0, 2**31 - 1, (1,))))
    rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, (1,))))
    best, best_acc, history, done = None, -1.0, [], 0
    saved = checkpoint.phase(phase) if checkpoint is not None else None
    if saved is not None:
        best, best_acc, history, done = ck.restore_phase(linker, optimiser, generator, rng, saved)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=[g["lr"] for g in groups], total_steps=steps, pct_start=0.1,
        last_epoch=done * per_epoch - 1,
    )  # fmt: skip
    bar = make_bar(
        total=steps, initial=min(done * per_epoch, steps), unit="batch", desc=phase,
        enabled=o["progress"],
    )  # fmt: skip
    for epoch in range(done + 1, epochs + 1):
        tower.train()
        entity_tower.train()
        perm = train_idx[torch.randperm(len(train_idx), generator=generator).numpy()]
        total = 0.0
        for start in range(0, len(perm), batch_size):
            batch = perm[start : start + batch_size]
            loss = _batch_loss(
                linker, x, gold[batch], batch, (inputs, residual_rows), siblings, has_groups,
                generator, rng, o,
            )  # fmt: skip
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            total += loss.item() * len(batch)
            bar.update(1)
        record = {"epoch": epoch, "loss": round(total / max(len(train_idx), 1), 4)}
        if len(hold_idx):
            linker.refresh()
            _, probs = linker.score_inputs(x[torch.from_numpy(hold_idx)].float(), crops=1)
            acc = float((probs.argmax(1).numpy() == gold[hold_idx]).mean())
            record["holdout_accuracy"] = round(acc, 4)
            if acc > best_acc:
                best_acc = acc
                best = (copy.deepcopy(tower.state_dict()), copy.deepcopy(entity_tower.state_dict()))
        history.append(record)
        bar.set_postfix(record)
        if checkpoint is not None:
            ck.save_phase(
                checkpoint, phase, linker, optimiser, generator, rng, best, best_acc, history
            )
    bar.close()
    if best is not None:
        tower.load_state_dict(best[0])
        entity_tower.load_state_dict(best[1])
    return history


def _batch_loss(linker: ImageLinker, x, target, batch, entity_inputs, siblings, has_groups,
                generator, rng, o) -> torch.Tensor:  # fmt: skip
    """InfoNCE of one batch of photos (a random view, a random crop) against their entities
    and sampled negatives, plus the hard-negative term over same-group entities."""
    tower, entity_tower, device = linker.tower, linker.entity_tower, linker.tower.device
    inputs, residual_rows = entity_inputs
    crop, hard = o["crop"], o["hard"]
    view = int(torch.randint(0, x.shape[1], (1,), generator=generator))
    xb = x[torch.from_numpy(batch), view].float().to(device)
    if xb.dim() == 4 and crop and crop < xb.shape[-1]:
        i, j = torch.randint(0, xb.shape[-1] - crop + 1, (2,), generator=generator).tolist()
        xb = xb[:, :, i : i + crop, j : j + crop]
    pool = _negatives(target, siblings, len(linker.candidates), o["max_entities"], rng)
    z = tower(xb)
    r = entity_tower(inputs[pool], residual_rows[pool])
    logits = z @ r.T / linker.config.temperature
    where = torch.from_numpy(np.searchsorted(pool.numpy(), target)).to(device)
    loss = F.cross_entropy(logits, where, label_smoothing=o["label_smoothing"])
    if has_groups:
        mask = torch.zeros_like(logits, dtype=torch.bool)
        for row, t in enumerate(target.tolist()):
            mask[row, torch.from_numpy(np.searchsorted(pool.numpy(), siblings[t]))] = True
        mask[torch.arange(len(batch)), where] = True
        loss = loss + hard * F.cross_entropy(logits.masked_fill(~mask, -1e4), where)
    return loss


def _negatives(target: np.ndarray, siblings, n: int, limit: int, rng) -> torch.Tensor:
    """Sorted candidate rows for one batch: all entities, or - above ``limit`` - the batch's
    entities, their siblings and a random sample (up to ``limit`` in all)."""
    if n <= limit:
        return torch.arange(n)
    chosen = set(target.tolist())
    for t in target.tolist():
        chosen.update(siblings[t][:64].tolist())
    extra = rng.choice(n, size=max(0, limit - len(chosen)), replace=False)
    return torch.from_numpy(np.array(sorted(chosen | set(extra.tolist())), np.int64))


def train_image_linker(
    workspace, photos, *, base: str | None = None, types=None, save: bool = True, **options
) -> ImageTrainReport:
    """Train and save the workspace's image linker from a photo list file (see
    :func:`read_photo_list`) or a list of ``(image path, entity id or IRI)``; ``options`` go
    to :func:`fit_image_linker`. Ids map to IRIs like the text linker's
    (:func:`align.train.resolve_ids`: the mapping's base, else IRI suffixes) among the
    entities of ``types`` (default: the node types that have images)."""
    from fusion.features import FEATURES_FILE, NodeFeatures
    from kg.graph import load_graph

    pairs = read_photo_list(photos) if isinstance(photos, str | Path) else list(photos)
    checkpoint = Path(workspace) / CHECKPOINT if save else None
    workspace = Path(workspace)
    graph = load_graph(workspace)
    if not (workspace / FEATURES_FILE).is_file():
        raise LinkerError(
            f"{workspace} has no features ({FEATURES_FILE}): training the image linker needs "
            f"the `encode` step first; run `kgf encode {workspace}`"
        )
    features = NodeFeatures.load(workspace)
    if types is None:
        types = sorted(t for t, mods in features.features.items() if "image" in mods)
    rows: set[str] = set()
    for node_type in types:
        if node_type not in graph.node_types:
            raise LinkerError(f"{workspace} has no node type {node_type!r}")
        rows.update(graph.node_iris(node_type))
    iri_of = resolve_entity_ids(rows, graph, [label for _, label in pairs], base, workspace)
    linker, metrics = fit_image_linker(
        workspace, [p for p, _ in pairs], [iri_of[label] for _, label in pairs], types=types,
        checkpoint=checkpoint, **options,
    )  # fmt: skip
    path = linker.save() if save else None
    if checkpoint is not None:  # the run is saved: its checkpoint is no longer needed
        ck.discard(checkpoint)
    return ImageTrainReport(linker, metrics, path)
