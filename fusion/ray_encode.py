"""Encoding on Ray: the encoders mapped over shards of inputs, results into the one cache.

``kgf encode WS --ray [ADDRESS]`` (:func:`fusion.features.build_features` with ``ray=``)
keeps everything that touches the workspace in the driver: which inputs are already in the
content-hash cache (:mod:`fusion.cache`), reading images, the cache writes and the
checkpoints. Only the forward passes leave it: each shard of inputs (the chunk that the
single-process encode would run, ``8 x batch_size`` rows) is encoded by a Ray worker that
builds the encoder from its name once per worker process, and the vectors come back in
order. Features therefore equal the single-process encode, and a run killed midway resumes
from the same checkpoints.

Shards go through **Ray Data** (``ray.data.from_items(...).map_batches`` over a pool of
encoder actors) when ``ray.data`` imports, else through plain **Ray tasks**; at most
``2 x workers`` shards are in flight, so memory stays bounded. Ray is an optional extra:
``pip install 'kgfusion[distributed]'``.

Addresses: ``None`` / ``"local"`` start a local Ray for this run (``num_cpus`` cores, all by
default); ``"auto"`` joins the cluster this machine belongs to (``ray start``);
``"HOST:PORT"`` or ``"ray://HOST:PORT"`` a remote one. An address that does not answer
within :data:`CONNECT_TIMEOUT` seconds is a :class:`RayUnavailable` naming it, never a hang.
"""

from __future__ import annotations

import socket
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import numpy as np
import torch

#: Seconds to reach a Ray cluster before giving up with a clear error.
CONNECT_TIMEOUT = 20.0
_ENCODERS: dict[tuple, object] = {}  # per Ray worker process: (name, device, batch) -> encoder


class RayUnavailable(RuntimeError):
    """Ray is not installed, or the cluster at the given address cannot be reached."""


def _import_ray():
    try:
        import ray
    except ImportError:
        raise RayUnavailable(
            "--ray needs Ray: pip install 'kgfusion[distributed]' (or pip install ray)"
        ) from None
    return ray


def _host_port(address: str) -> tuple[str, int] | None:
    """``(host, port)`` of ``HOST:PORT`` / ``ray://HOST:PORT``, else None (``auto``...)."""
    bare = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = bare.rpartition(":")
    if not sep or not port.isdigit():
        return None
    return host.strip("[]") or "127.0.0.1", int(port)


def _check_reachable(address: str, timeout: float) -> None:
    target = _host_port(address)
    if target is None:
        return
    try:
        with socket.create_connection(target, timeout=min(timeout, 10.0)):
            pass
    except OSError as err:
        raise RayUnavailable(
            f"cannot reach the Ray cluster at {address!r} ({err}); start it there with "
            "`ray start --head`, check the address and port (6379 by default, 10001 for "
            "ray://), or run without an address for a local Ray"
        ) from None


@contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None, timeout=None):
    """Connected to Ray for the ``with`` block; a Ray started here is shut down after it.

    Raises:
        RayUnavailable: Ray is not installed, or ``address`` does not answer in ``timeout``
            seconds (default :data:`CONNECT_TIMEOUT`).
    """
    ray = _import_ray()
    timeout = CONNECT_TIMEOUT if timeout is None else timeout
    if ray.is_initialized():  # a caller's own Ray (a notebook, a test): use it as it is
        yield ray
        return
    local = address in (None, "", "local")
    if not local:
        _check_reachable(address, timeout)
    kwargs = {"num_cpus": num_cpus} if local else {"address": address}
    outcome: dict = {}

    def start() -> None:
        try:
            ray.init(include_dashboard=False, log_to_driver=False, logging_level="ERROR", **kwargs)
            outcome["ok"] = True
        except Exception as err:  # ConnectionError, RuntimeError, ValueError...
            outcome["error"] = err

    worker = threading.Thread(target=start, daemon=True)
    worker.start()
    worker.join(timeout if not local else None)
    try:
        if "ok" not in outcome:
            why = outcome.get("error") or f"no answer within {timeout:.0f}s"
            raise RayUnavailable(
                f"cannot connect to Ray at {address or 'a local Ray'!r}: {why}; check the "
                "address (`ray status` on the head node), or run without an address for a "
                "local Ray"
            )
        yield ray
    finally:
        if ray.is_initialized():
            ray.shutdown()


def _local_encoder(name: str, device: str, batch_size: int, precision: str = "fp32"):
    """The encoder ``name`` in this (worker) process, built once."""
    key = (name, device, batch_size, precision)
    if key not in _ENCODERS:
        from .encoders import get_encoder, precision_kwargs

        _ENCODERS[key] = get_encoder(name, device=device, batch_size=batch_size,
                                     **precision_kwargs(name, precision))  # fmt: skip
    return _ENCODERS[key]


def encode_shard(name: str, device: str, batch_size: int, precision: str,
                 inputs: list) -> np.ndarray:  # fmt: skip
    """One shard through encoder ``name`` (in ``precision``, as resolved by the driver, so
    every worker computes the same features): float32 ``[len(inputs), dim]``."""
    encoder = _local_encoder(name, device, batch_size, precision)
    return encoder.encode(list(inputs)).float().cpu().numpy()


class _ShardActor:
    """A Ray Data actor: one encoder per actor; each batch is one shard."""

    def __init__(self, name: str, device: str, batch_size: int, precision: str):
        self.args = (name, device, batch_size, precision)

    def __call__(self, batch: dict) -> dict:
        vectors = encode_shard(*self.args, list(batch["inputs"][0]))
        return {"order": batch["order"], "vectors": [vectors]}


class RayEncoderMap:
    """Maps an encoder (by name) over shards on Ray: :meth:`map` yields ``[n, dim]`` tensors
    in shard order. ``workers``: shards in flight at once (default: the cluster's CPUs)."""

    def __init__(self, ray, encoder, device: str = "cpu", workers: int | None = None,
                 use_data: bool | None = None):  # fmt: skip
        self.ray = ray
        self.args = (encoder.name, "cpu" if device == "auto" else device, encoder.batch_size,
                     getattr(encoder, "precision", "fp32"))  # fmt: skip
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.workers = max(1, workers or cpus)
        if use_data is None:
            try:
                import ray.data  # noqa: F401  (needs pyarrow)

                use_data = True
            except ImportError:
                use_data = False
        self.use_data = use_data
        self.gpus = 1 if self.args[1] == "cuda" else 0

    def map(self, shards: Iterable[list]) -> Iterator[torch.Tensor]:
        if self.use_data:
            yield from self._map_data(list(shards))
            return
        remote = self.ray.remote(num_gpus=self.gpus)(encode_shard)
        pending: deque = deque()
        for inputs in shards:
            pending.append(remote.remote(*self.args, inputs))
            if len(pending) >= 2 * self.workers:
                yield torch.from_numpy(np.array(self.ray.get(pending.popleft())))
        while pending:
            yield torch.from_numpy(np.array(self.ray.get(pending.popleft())))

    def _map_data(self, shards: list[list]) -> Iterator[torch.Tensor]:
        import ray.data

        if not shards:
            return
        items = [{"order": i, "inputs": shard} for i, shard in enumerate(shards)]
        dataset = ray.data.from_items(items).map_batches(
            _ShardActor, fn_constructor_args=self.args, batch_size=1, batch_format="numpy",
            concurrency=min(self.workers, len(shards)), num_gpus=self.gpus,
        )  # fmt: skip
        ready, next_shard = {}, 0
        for row in dataset.iter_rows():  # in any order: re-ordered here
            ready[int(row["order"])] = np.asarray(row["vectors"], dtype=np.float32)
            while next_shard in ready:
                yield torch.from_numpy(ready.pop(next_shard))
                next_shard += 1
