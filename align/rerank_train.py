"""Training the cross-encoder reranker (:mod:`align.rerank`) from labelled pairs.

:func:`fit_reranker` takes the labelled (record, entity IRI, 0/1) pairs that train the
linker (:mod:`align.train`) and a validation split of the training data, then

1. adds **hard negatives** for every mention with a match: the ``candidate_negatives``
   best-retrieved wrong candidates of the linker's candidate generator (BM25 + dense, as
   :mod:`align.train` mines them) and ``graph_negatives`` entities that share a neighbour in
   the graph with the true entity (same brand, same category: :func:`graph_negatives`);
2. serialises both sides Ditto-style (:mod:`align.serialize`) and fine-tunes the
   cross-encoder (AdamW, linear warm-up and decay; the fresh head at ``head_lr``, 40x the
   encoder's rate by default, so that the logits can leave 0 within the first epoch;
   class-balanced binary cross-entropy on one logit; forward passes under bf16 autocast
   where the CPU has native bf16, ``train_precision``; fused AdamW) for ``epochs`` passes; each training example is augmented with probability ``augment``
   (span deletion or attribute shuffle, Ditto section 4);
3. keeps the epoch with the best validation average precision (or, with ``soup``, the
   greedy soup of the epoch checkpoints: :func:`greedy_soup`), and starts a fit again at
   half the learning rates when its validation AP after one epoch is not halfway from the
   match rate to the feature scorer's (:func:`ap_floor`; some seeds fail to learn);
4. fits the :class:`~align.calibration.Calibrator` on the validation pairs over
   ``[cross-encoder logit, logit of the linker's feature-scorer probability]``, and the
   cascade band of feature decision probabilities outside which the cross-encoder is skipped
   (:func:`align.pair_decision.fit_cascade`); the decision is ``p >= F*/2`` thereafter, half
   the best F1 of the calibrated validation probabilities (Lipton et al. 2014: the
   F1-optimal cut of calibrated probabilities; :func:`align.pair_decision.f1_optimal_cut`);
5. calibrates the NIL threshold of reranked linking on the validation mentions
   (:func:`align.calibrate.calibrate_nil` with the reranker), stored apart from the pair one.

:func:`train_reranker` saves it in ``WORKSPACE/reranker`` with the sha256 of the linker
weights it was calibrated with; :class:`align.Linker` then uses it (``kgf link``,
``kgf link-evaluate``, the service's ``/link``) until the linker is retrained.

Bad input: a pair file naming ids the catalogue or the mentions table lacks is read with
those pairs dropped (:func:`load_known_pairs`: a warning with the count and examples; an
error when none remain); one class only is refused by name (:func:`~align.calibration.
check_labels`). Trains on CPU in minutes for a few thousand pairs with ``max_length`` 128.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from urllib.parse import quote, unquote

import numpy as np
import torch

from fusion.artifacts import WEIGHTS_FILE
from kg.progress import progress as make_bar
from kg.progress import stage
from kg.workspace import LINKER_DIR, sha256_file

from .base import LinkerError
from .calibration import check_labels
from .rerank import (
    DEFAULT_PRECISION,
    RERANKER_DIR,
    CrossEncoder,
    Reranker,
    RerankerConfig,
    autocast,
    resolve_train_precision,
)
from .rerank_calibration import calibrate_reranker
from .scorer import average_precision
from .serialize import MAX_WORDS
from .serialize import augment as augment_text
from .tables import read_pairs, read_table
from .train import _hold_out, _mapping_base, _negatives


# ---------------------------------------------------------------------- pairs
def load_known_pairs(linker, mentions: dict[str, dict], pairs_csv, base: str | None = None,
                     **cols) -> tuple[list, list, np.ndarray]:  # fmt: skip
    """``(records, iris, labels)`` of a pairs CSV, leaving out pairs whose catalogue id has
    no entity or whose mention id is not in ``mentions`` (one warning: how many, and up to
    three examples). :class:`LinkerError` when no pair remains."""
    pairs = read_pairs(pairs_csv, **cols)
    rows = linker.entities.row_of
    base = base if base is not None else _mapping_base(linker.graph)
    by_suffix = {}
    if base is None:
        for iri in rows:
            by_suffix.setdefault(unquote(iri.rstrip("/").rsplit("/", 1)[-1].rsplit("#", 1)[-1]),
                                 []).append(iri)  # fmt: skip

    def iri_of(i: str) -> str | None:
        if i in rows:
            return i
        if base is not None:
            iri = base + quote(i, safe="")
            return iri if iri in rows else None
        hits = by_suffix.get(i, [])
        return hits[0] if len(hits) == 1 else None

    kept, unknown = [], []
    for left, right, label in pairs:
        iri = iri_of(left)
        if iri is None or right not in mentions:
            unknown.append(f"({left!r}, {right!r})")
        else:
            kept.append((mentions[right], iri, label))
    if unknown and not kept:
        raise LinkerError(
            f"{pairs_csv}: none of its {len(pairs)} pairs names a known catalogue entity and "
            f"mention (e.g. {', '.join(unknown[:3])}); was the workspace built from this "
            "catalogue, and is this the right mentions table?"
        )
    if unknown:
        warnings.warn(
            f"{pairs_csv}: {len(unknown)} of {len(pairs)} pairs name an unknown catalogue id "
            f"or mention id and are left out, e.g. {', '.join(unknown[:3])}",
            stacklevel=2,
        )
    return [k[0] for k in kept], [k[1] for k in kept], np.array([k[2] for k in kept], np.int64)


def graph_negatives(entities, positives: list[tuple[int, int]], n: int, exclude: list[set[int]],
                    rng: np.random.Generator, types=None) -> list[tuple[int, int]]:  # fmt: skip
    """Up to ``n`` entities (of ``types``; default the true entity's type) per ``(mention
    index, true row)`` that share a graph neighbour (a brand, a category) with the true
    entity and are not in ``exclude[mention]``."""
    if n <= 0 or not len(entities.graph.src):
        return []
    graph = entities.graph
    row_of_gid = {int(g): r for r, g in enumerate(entities.gids.tolist())}
    neighbours: dict[int, set[int]] = {}  # entity row -> neighbour gids
    members: dict[int, list[int]] = {}  # neighbour gid -> entity rows
    for s, d in zip(graph.src.tolist(), graph.dst.tolist(), strict=True):
        for a, b in ((s, d), (d, s)):
            r = row_of_gid.get(a)
            if r is not None:
                neighbours.setdefault(r, set()).add(b)
                members.setdefault(b, []).append(r)
    out = []
    for mention, row in positives:
        pool = {x for g in neighbours.get(row, ()) for x in members[g] if len(members[g]) < 5000}
        wanted = types or (entities.types[row],)
        pool = {x for x in pool if entities.types[x] in wanted} - exclude[mention] - {row}
        if pool:
            picked = rng.choice(sorted(pool), size=min(n, len(pool)), replace=False)
            out += [(mention, int(r)) for r in picked]
    return out


# ---------------------------------------------------------------------- examples
def _examples(linker, reranker, records, iris, labels, *, candidate_negatives: int,
              graph_negative_n: int, types, rng, progress: bool):  # fmt: skip
    """Serialised training examples ``(lefts, rights, labels)``: the labelled pairs plus
    the mined hard negatives."""
    mentions, groups = linker.group_pairs(records, iris)
    labels = np.asarray(labels, np.float32)
    first = [g[0][0] for g in groups]  # a pair index per mention, for its record
    mined = _negatives(linker, mentions, groups, labels, candidate_negatives, types, progress)
    labelled = [{row for _, row in g} for g in groups]
    positives = [(i, row) for i, g in enumerate(groups) for p, row in g if labels[p]]
    exclude = [s | {r for j, r in mined if j == i} for i, s in enumerate(labelled)]
    from_graph = graph_negatives(linker.entities, positives, graph_negative_n, exclude, rng, types)
    pairs = [(i, row, float(labels[p])) for i, g in enumerate(groups) for p, row in g]
    pairs += [(i, row, 0.0) for i, row in mined + from_graph]
    texts = [reranker.mention_text(records[p]) for p in first]
    lefts = [texts[i] for i, _, _ in pairs]
    rights = [reranker.entity_text(linker.entities, row) for _, row, _ in pairs]
    info = {"labelled": len(labels), "candidate_negatives": len(mined),
            "graph_negatives": len(from_graph)}  # fmt: skip
    return lefts, rights, np.array([y for _, _, y in pairs], np.float32), info


def _cap(examples, info: dict, max_examples: int | None, seed: int):
    """``(lefts, rights, labels)`` cut to ``max_examples`` (:func:`_subsample`; noted in
    ``info``)."""
    lefts, rights, y = examples
    if not max_examples or len(y) <= max_examples:
        return examples
    keep = _subsample(y, max_examples, seed)
    info["subsampled_to"] = len(keep)
    return [lefts[i] for i in keep], [rights[i] for i in keep], y[keep]


def _in_precision(reranker: Reranker, precision: str, logits: np.ndarray, valid) -> np.ndarray:
    """Switch the trained ``reranker`` to ``precision`` (stored in its config) and return the
    validation logits [V] as it now scores them (``logits``, those of the kept epoch, when
    it was trained and scores in fp32), so that the calibrator is fitted on what inference
    will give."""
    reranker.config.precision = precision
    scoring = reranker.encoder.set_precision(precision)
    if scoring == "fp32" and reranker.config.train_precision == "fp32":
        return logits
    return reranker.encoder.logits(*valid)


def _subsample(y: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Indices of at most ``n`` examples: every match (up to ``n``), then non-matches drawn
    at random; in the original order."""
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(y > 0.5), np.flatnonzero(y <= 0.5)
    pos = rng.permutation(pos)[:n]
    neg = rng.permutation(neg)[: max(0, n - len(pos))]
    return np.sort(np.concatenate([pos, neg]))


def _freeze(model, layers: int) -> None:
    """No gradients for the embeddings and the first ``layers`` transformer layers."""
    if layers <= 0:
        return
    for name, param in model.named_parameters():
        parts = name.split(".")
        if "embeddings" in parts:
            param.requires_grad_(False)
        elif "layer" in parts:
            index = parts[parts.index("layer") + 1]
            if index.isdigit() and int(index) < layers:
                param.requires_grad_(False)


CURVE_EVERY = 20  # steps per point of the training-loss curve in the fit's history


RESTARTS = 2  # fresh starts (new head, new order, half the learning rates) after a failed one


def ap_floor(feature_ap: float, match_rate: float) -> float:
    """The validation AP a cross-encoder must reach after its first epoch, halfway from a
    random ranking's (the ``match_rate``) to the linker's feature scorer's
    ``feature_ap``: below it, the fit has failed (it is to add to those features)."""
    return match_rate + 0.5 * max(feature_ap - match_rate, 0.0)


def _epoch(encoder: CrossEncoder, data, step, batch_size: int, augment: float, rng,
           epoch: int, progress: bool) -> tuple[float, list[float]]:  # fmt: skip
    """One pass over ``data`` in a random order; ``step = (optimiser, schedule, loss_fn,
    params, precision)``: the forward pass runs under :func:`align.rerank.autocast` of
    ``precision``, the loss on float32 logits. Returns (the summed loss, the mean loss of
    every :data:`CURVE_EVERY` steps)."""
    lefts, rights, y = data
    optimiser, schedule, loss_fn, params, precision = step
    encoder.model.train()
    order = rng.permutation(len(y))
    bar = make_bar(total=len(y), desc=f"rerank epoch {epoch}", unit="pair", enabled=progress)
    total, curve, window = 0.0, [], []
    for start in range(0, len(order), batch_size):
        part = order[start : start + batch_size]
        a = [lefts[i] for i in part]
        b = [rights[i] for i in part]
        if augment > 0:
            a = [augment_text(t, rng) if rng.random() < augment else t for t in a]
            b = [augment_text(t, rng) if rng.random() < augment else t for t in b]
        with autocast(precision):
            logits = encoder.forward(encoder.encode(a, b))
        loss = loss_fn(logits.float(), torch.from_numpy(y[part]))
        optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimiser.step()
        schedule.step()
        total += loss.item() * len(part)
        window.append(loss.item())
        if len(window) == CURVE_EVERY:
            curve.append(round(float(np.mean(window)), 4))
            window = []
        bar.update(len(part))
    bar.close()
    if window:
        curve.append(round(float(np.mean(window)), 4))
    return total, curve


def adamw(groups: list[dict], **options) -> torch.optim.AdamW:
    """AdamW over ``groups``, fused into one kernel where torch has it for the parameters'
    device (CPU since torch 2.4): the same update as the per-tensor loop, but that loop
    cost about a third of a MiniLM training step on a CPU (ten elementwise passes over
    22.7 M parameters, the 11.7 M of the word embeddings included, every step)."""
    try:
        return torch.optim.AdamW(groups, fused=True, **options)
    except (RuntimeError, TypeError, ValueError):  # an older torch or an unsupported device
        return torch.optim.AdamW(groups, foreach=True, **options)


def param_groups(model, lr: float, head_lr: float) -> list[dict]:
    """AdamW groups of a :class:`~align.rerank.PairModel`: the trainable encoder parameters
    at ``lr``, the fresh head at ``head_lr``."""
    head = [p for p in model.head.parameters() if p.requires_grad]
    ids = {id(p) for p in head}
    body = [p for p in model.parameters() if p.requires_grad and id(p) not in ids]
    return [{"params": body, "lr": lr}, {"params": head, "lr": head_lr}]


def train_cross_encoder(encoder: CrossEncoder, data, valid, *, epochs: int, lr: float,
                        batch_size: int, augment: float, seed: int, progress: bool,
                        balance: float = 1.0, head_lr: float | None = None,
                        precision: str = "fp32", floor: float | None = None,
                        restarts: int = RESTARTS, soup: bool = False) -> dict:  # fmt: skip
    """Fine-tune ``encoder`` on ``data = (lefts, rights, labels)``; keep the epoch with the
    best average precision on ``valid = (lefts, rights, labels)``, or with ``soup`` the
    greedy soup of the epochs (:func:`greedy_soup`). ``head_lr`` (default
    ``40 * lr``) is the head's learning rate; ``precision`` (``fp32`` / ``bf16`` / ``auto``,
    :func:`align.rerank.resolve_train_precision`) the arithmetic of the forward passes
    (bf16: autocast, float32 master weights and loss; the validation logits that choose the
    epoch under the same autocast). Returns ``(info, the validation logits [V] of
    the kept epoch)``; ``info["history"]`` has per epoch the mean loss, the validation AP and
    ``curve``, the mean loss of every :data:`CURVE_EVERY` steps. ``balance``: the power of
    the class ratio that weights the matches (see :func:`fit_reranker`).

    **Restarts.** Some fits fail: the validation AP stays near the match rate for whole
    epochs (the failed runs of BERT fine-tuning: Dodge et al., "Fine-Tuning Pretrained
    Language Models: Weight Initializations, Data Orders, and Early Stopping", 2020; Mosbach
    et al., "On the Stability of Fine-tuning BERT", ICLR 2021, who trace them to too high a
    learning rate). A fit whose validation AP after its first epoch is below ``floor``
    (:func:`ap_floor`; None: never checked) is started again from the base weights with a
    new head and data order (seed ``seed + 1000 k``) at half the learning rates, up to
    ``restarts`` times; the last attempt runs to the end. ``info["restarts"]`` lists the
    failed attempts (seed, learning rate, validation AP)."""
    precision = resolve_train_precision(precision)
    y = data[2]
    checked = floor is not None and restarts > 0
    initial = {k: v.detach().clone() for k, v in encoder.model.state_dict().items()} if checked else None
    # class-balanced: matches are rare, and an unweighted loss sits at the prior for an epoch
    # or more; the calibrator refits the probabilities afterwards
    weight = (float((y <= 0.5).sum()) / max(float((y > 0.5).sum()), 1.0)) ** float(balance)
    head_lr = 40 * lr if head_lr is None else head_lr
    failed = []
    for attempt in range(restarts + 1):
        rates, attempt_seed = (lr / 2**attempt, head_lr / 2**attempt), seed + 1000 * attempt
        try:
            fit, logits = _fit(encoder, data, valid, epochs=epochs, rates=rates,
                               batch_size=batch_size, augment=augment, seed=attempt_seed,
                               progress=progress, weight=weight, precision=precision,
                               floor=floor if attempt < restarts else None, new_head=attempt > 0,
                               soup=soup)  # fmt: skip
            return fit | {"restarts": failed}, logits
        except FitFailed as failure:
            failed.append({"seed": attempt_seed, "lr": rates[0], "valid_ap": failure.valid_ap})
            stage(f"rerank: validation AP {failure.valid_ap:.4f} after epoch 1 is below "
                  f"{floor:.4f}: the fit failed; starting again at half the learning rates",
                  progress)  # fmt: skip
            encoder.model.load_state_dict(initial)
    raise AssertionError("unreachable: the last attempt is never checked against the floor")


class FitFailed(Exception):
    """A fit whose validation AP after epoch 1 (``valid_ap``) is below its floor."""

    def __init__(self, valid_ap: float):
        super().__init__(f"validation AP {valid_ap:.4f} after epoch 1")
        self.valid_ap = valid_ap


def _fit(encoder: CrossEncoder, data, valid, *, epochs: int, rates: tuple[float, float],
         batch_size: int, augment: float, seed: int, progress: bool, weight: float,
         precision: str, floor: float | None, new_head: bool, soup: bool = False):  # fmt: skip
    """One attempt of :func:`train_cross_encoder` from the encoder's current weights (with a
    head drawn from ``seed`` when ``new_head``) at ``rates = (encoder lr, head lr)``;
    ``weight``: the loss's ``pos_weight``. Returns ``(info, validation logits)``; raises
    :class:`FitFailed` when the validation AP after epoch 1 is below ``floor``."""
    y = data[2]
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    model = encoder.model
    if new_head:
        model.reset_head(seed)
    groups = param_groups(model, *rates)
    params = [p for g in groups for p in g["params"]]
    optimiser = adamw(groups, weight_decay=0.01)
    steps = epochs * ((len(y) + batch_size - 1) // batch_size)
    warm = max(1, steps // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda s: min((s + 1) / warm, max(0.0, (steps - s) / max(steps - warm, 1)))
    )
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(weight))
    best, states, history = None, [], []  # the best epoch; with soup, every epoch
    step = (optimiser, schedule, loss_fn, params, precision)
    for epoch in range(1, epochs + 1):
        started = time.process_time()
        total, curve = _epoch(encoder, data, step, batch_size, augment, rng, epoch, progress)
        cpu = time.process_time() - started
        with autocast(precision):
            scores = encoder.logits(valid[0], valid[1])
        ap = average_precision(scores, valid[2])
        history.append({"epoch": epoch, "loss": total / len(y), "valid_ap": ap, "curve": curve,
                        "cpu_s": round(cpu, 1), "cpu_ms_per_example": round(1e3 * cpu / len(y), 2)})  # fmt: skip
        stage(f"rerank: epoch {epoch}: loss {total / len(y):.4f}, valid AP {ap:.4f}", progress)
        if epoch == 1 and floor is not None and ap < floor:
            raise FitFailed(ap)
        if soup or best is None or ap >= best[1]:  # ties: the later epoch
            entry = ({k: v.detach().clone() for k, v in model.state_dict().items()}, ap, scores)
            states += [entry] if soup else []
            best = (*entry, epoch) if best is None or ap >= best[1] else best
    if soup:
        state, ap, scores, members = greedy_soup(encoder, states, valid, precision)
    else:
        state, ap, scores, members = *best[:3], [best[3]]
    model.load_state_dict(state)
    model.eval()
    fit = {"history": history, "best_epoch": members[0], "soup": members, "valid_ap": ap,
           "precision": precision}  # fmt: skip
    return fit, scores


def average_states(states: list[dict]) -> dict:
    """The element-wise mean of ``states`` (state dicts of one architecture); tensors that are
    not floating point (position ids) are taken from the first."""
    first = states[0]
    return {k: torch.stack([s[k] for s in states]).mean(0) if v.is_floating_point() else v
            for k, v in first.items()}  # fmt: skip


def greedy_soup(encoder: CrossEncoder, states, valid, precision: str):
    """The greedy soup of a fit's epoch checkpoints (Wortsman et al., "Model soups: averaging
    weights of multiple fine-tuned models improves accuracy without increasing inference
    time", ICML 2022; checkpoints of one run averaged as in Vaswani et al. 2017): start
    from the epoch with the best validation AP, then add each other epoch, best first, to
    the uniform weight average when the average's validation AP does not fall. ``states``:
    per epoch ``(state dict, valid AP, valid logits [V])``. Never below the best epoch on
    validation; one model at inference. Returns ``(state, valid AP, valid logits, the
    1-based epochs averaged)``."""
    order = sorted(range(len(states)), key=lambda i: (-states[i][1], -i))
    members = [order[0]]
    state, ap, scores = states[order[0]]
    for i in order[1:]:
        candidate = average_states([states[j][0] for j in [*members, i]])
        encoder.model.load_state_dict(candidate)
        encoder.model.eval()
        with autocast(precision):
            trial = encoder.logits(valid[0], valid[1])
        trial_ap = average_precision(trial, valid[2])
        if trial_ap >= ap:
            members, state, ap, scores = [*members, i], candidate, trial_ap, trial
    return state, ap, scores, [m + 1 for m in members]


def fit_reranker(
    linker, records, iris, labels, valid=None, *,
    base_model: str | None = None, max_length: int = 128, max_words: int = MAX_WORDS,
    epochs: int = 3, lr: float = 5e-5, head_lr: float | None = None, pooling: str = "mean",
    batch_size: int = 16, candidate_negatives: int = 3, graph_negative_n: int = 1,
    augment: float = 0.3, freeze_layers: int = 0, layers: int | None = None,
    max_examples: int | None = None, threads: int | None = None, balance: float = 1.0,
    precision: str = DEFAULT_PRECISION, train_precision: str = DEFAULT_PRECISION,
    cascade: bool = True, restarts: int = RESTARTS, soup: bool = False, seed: int = 0,
    known_matches: str = "auto", progress: bool = False,
) -> Reranker:  # fmt: skip
    """Train a :class:`~align.rerank.Reranker` on pairs ``(records[i], iris[i], labels[i])``
    against ``linker`` (whose trained feature scorer it is combined with); ``valid = (records,
    iris, labels)`` chooses the epoch and fits the calibrator (default: a fifth of the
    training mentions held out). See the module docstring; returns the reranker (not saved:
    :meth:`Reranker.save`). ``threads``: ``torch.set_num_threads`` (1 is best on a loaded
    machine); ``layers``: keep the base model's first ``layers`` layers; ``freeze_layers``:
    no gradients for the embeddings and the first ``freeze_layers``; ``max_examples``: at
    most this many examples (every match kept, non-matches sampled); ``balance``: weight the matches by
    (#non-matches / #matches) ** ``balance`` in the loss (``pos_weight``: 1 balances the
    classes, 0.5 halfway on a log scale, 0 or False not at all); ``head_lr``: the fresh head's
    learning rate (default ``40 * lr``); ``pooling``: a key of :data:`align.rerank.POOLINGS`;
    ``precision``: what it scores in (:func:`_in_precision`); ``train_precision``: what it
    is fine-tuned in (``auto``: bf16 autocast where the CPU has
    native bf16, else fp32; :func:`train_cross_encoder`); ``cascade``: store the band of
    feature decision probabilities outside which the cross-encoder is skipped
    (:func:`align.pair_decision.fit_cascade`, chosen on ``valid``); ``restarts``: how often
    a fit whose validation AP after one epoch is below :func:`ap_floor` of the feature
    scorer's starts again (:func:`train_cross_encoder`; 0: never); ``soup``: keep the greedy
    soup of the epochs (:func:`greedy_soup`); ``known_matches``: auto / on / off (:mod:`align.known_matches`)."""
    started = time.perf_counter()
    labels = check_labels(labels, "training pairs")
    if len(records) != len(iris) or len(iris) != len(labels):
        raise ValueError("records, iris and labels must have the same length")
    if valid is None:
        records, iris, labels, valid = _hold_out(records, iris, labels, seed)
    v_records, v_iris, v_labels = valid
    v_labels = check_labels(v_labels, "validation pairs")
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads or previous_threads)
    try:
        encoder = CrossEncoder.from_base(base_model, max_length, layers, pooling)
        _freeze(encoder.model, freeze_layers)
        c = linker.config
        config = RerankerConfig(
            base_model=base_model or "minilm", max_length=max_length, max_words=max_words,
            pooling=pooling,
            mention={"id_col": c.id_col, "text_cols": c.text_cols, "title_col": c.title_col},
        )  # fmt: skip
        reranker = Reranker(encoder, config)
        rows = linker.entities.row_of
        types = sorted({linker.entities.types[rows[i]] for i in iris})
        stage("rerank: mining hard negatives and serialising the pairs", progress)
        lefts, rights, y, info = _examples(
            linker, reranker, records, iris, labels, candidate_negatives=candidate_negatives,
            graph_negative_n=graph_negative_n, types=types, rng=np.random.default_rng(seed),
            progress=progress,
        )  # fmt: skip
        lefts, rights, y = _cap((lefts, rights, y), info, max_examples, seed)
        v_lefts, v_rights = [reranker.mention_text(r) for r in v_records], [
            reranker.entity_text(linker.entities, rows[i]) for i in v_iris]  # fmt: skip
        scorer = linker.score_pairs(v_records, v_iris, rerank=False)
        floor = ap_floor(average_precision(scorer, v_labels), float(np.mean(v_labels)))
        stage(f"rerank: fine-tuning on {len(y):,} pairs for {epochs} epoch(s)", progress)
        fit, valid_logits = train_cross_encoder(
            encoder, (lefts, rights, y), (v_lefts, v_rights, v_labels), epochs=epochs, lr=lr,
            batch_size=batch_size, augment=augment, seed=seed, progress=progress, balance=balance,
            head_lr=head_lr, precision=train_precision, floor=floor, restarts=restarts, soup=soup,
        )  # fmt: skip
        config.train_precision = fit["precision"]
        valid_logits = _in_precision(reranker, precision, valid_logits, (v_lefts, v_rights))
        config.metrics = calibrate_reranker(
            linker, reranker, valid_logits, (v_records, v_iris, v_labels), scorer, types,
            progress, cascade, (known_matches, (records, iris, labels), v_lefts))  # fmt: skip
    finally:
        torch.set_num_threads(previous_threads)
    config.metrics.update(pairs=info, train_examples=len(y), fit=fit, balanced=balance,
                          seconds=round(time.perf_counter() - started, 1))  # fmt: skip
    config.trained = True
    return reranker


def train_reranker(workspace, mentions_csv, pairs_csv, valid_csv=None, *, id_col: str = "id",
                   base: str | None = None, linker=None, save: bool = True, **kwargs) -> Reranker:  # fmt: skip
    """Train and save ``WORKSPACE/reranker`` from a DeepMatcher-layout mentions table and
    labelled pairs (as :func:`align.train.train_linker`, whose trained linker it needs:
    run that first). ``kwargs`` go to :func:`fit_reranker`."""
    from .linker import Linker

    linker = linker or Linker(workspace, rerank=False)
    if not linker.config.trained:
        raise LinkerError(
            f"{workspace} has no trained linker; the reranker combines with its feature "
            f"scorer: run `kgf link-train {workspace} ...` first"
        )
    table = read_table(mentions_csv, id_col)
    train = load_known_pairs(linker, table, pairs_csv, base)
    valid = load_known_pairs(linker, table, valid_csv, base) if valid_csv else None
    reranker = fit_reranker(linker, *train, valid, **kwargs)
    weights = Path(workspace) / LINKER_DIR / WEIGHTS_FILE
    reranker.config.linker_sha256 = sha256_file(weights) if weights.is_file() else ""
    if save:
        reranker.save(Path(workspace) / RERANKER_DIR)
    return reranker
