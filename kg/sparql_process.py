"""SPARQL queries in worker processes that are killed at their time limit.

pyoxigraph evaluates lazily, but a query may compute for hours before its first row (a
join of unconstrained patterns under ``COUNT`` or ``ORDER BY``), and a thread cannot be
stopped. So each query runs in a worker process (``python -m kg.sparql_process STORE``)
that opens the store read-only; past the time limit the worker is killed (SIGKILL), the
caller gets :class:`kg.sparql.SparqlTimeout`, and a fresh worker is started for the next
query. At most ``max_concurrent`` queries run at once; one more raises
:class:`kg.sparql.SparqlBusy` at once, rather than queueing behind slow queries.

Protocol (one JSON object per line, UTF-8, on the worker's stdin / stdout; no pickle):
the worker says ``{"ready": true}`` (or ``{"error": ...}``) once its store is open, then
answers each ``{"query": str, "max_rows": int | null}`` with ``{"result": QueryResult}`` or
``{"error": "query" | "internal", "message": str}``. It exits at the end of its stdin, or
when its parent process is gone.

An in-memory graph (no ``sparql/`` folder) is copied once into a temporary store on disk
that the workers open; :meth:`QueryRunner.close` removes it.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import weakref
from dataclasses import asdict
from pathlib import Path

from .sparql_query import QueryResult, SparqlBusy, SparqlError, SparqlTimeout, check_read_only

STARTUP_TIMEOUT_S = 120.0  # opening a store; not counted in a query's time limit
_RUNNERS: weakref.WeakSet = weakref.WeakSet()


class _Worker:
    """One worker process, ready for queries."""

    def __init__(self, store: Path):
        root = str(Path(__file__).resolve().parent.parent)  # the folder holding `kg`
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [root, *filter(None, [os.environ.get("PYTHONPATH")])]
        ))  # fmt: skip
        self.process = subprocess.Popen(
            [sys.executable, "-m", "kg.sparql_process", str(store)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=root, env=env,
        )  # fmt: skip
        answer = self._read(STARTUP_TIMEOUT_S)
        if answer is None or "ready" not in answer:
            self.kill()
            why = answer["message"] if answer else f"exit code {self.process.returncode}"
            raise RuntimeError(f"the SPARQL worker for {store} did not start ({why})")

    @property
    def pid(self) -> int:
        return self.process.pid

    def ask(self, query: str, max_rows: int | None, timeout: float) -> QueryResult:
        """Run one query; past ``timeout`` seconds the process is killed (SparqlTimeout)."""
        request = json.dumps({"query": query, "max_rows": max_rows}) + "\n"
        try:
            self.process.stdin.write(request.encode("utf-8"))
            self.process.stdin.flush()
        except OSError:
            self.kill()
            raise RuntimeError(
                "the SPARQL worker stopped; the next query starts a new one"
            ) from None
        answer = self._read(timeout)
        if answer is None:
            if self.timed_out:
                raise SparqlTimeout(
                    f"the query did not finish within {timeout:g} s and was stopped: add "
                    "LIMIT, narrow the patterns or avoid large joins and aggregates"
                )
            raise RuntimeError(
                f"the SPARQL worker stopped (exit code {self.process.returncode}); "
                "the next query starts a new one"
            )
        if "result" in answer:
            return QueryResult(**answer["result"])
        if answer.get("error") == "query":
            raise SparqlError(answer["message"])
        raise RuntimeError(f"the SPARQL worker failed: {answer.get('message')}")

    def _read(self, timeout: float) -> dict | None:
        """The worker's next answer; None (and the worker killed) when it gives none
        within ``timeout`` seconds or stops."""
        self.timed_out = False

        def expire():
            self.timed_out = True
            self.process.kill()

        timer = threading.Timer(timeout, expire)
        timer.daemon = True
        timer.start()
        try:
            line = self.process.stdout.readline()
        finally:
            timer.cancel()
        if not line or self.timed_out:  # killed (maybe just after it answered): discard it
            self.kill()
            return None
        return json.loads(line)

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """Stop the process now and reap it."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            with contextlib.suppress(OSError):
                stream.close()


class QueryRunner:
    """Read-only SPARQL over one store, in killable worker processes.

    Args:
        store: a pyoxigraph store folder (a workspace's ``sparql/``), opened read-only.
        max_concurrent: queries running at once; one more raises :class:`SparqlBusy`.

    Use as a context manager, or call :meth:`close` (also done at interpreter exit).
    Thread-safe: each query takes a slot and a worker for its duration.
    """

    def __init__(self, store, max_concurrent: int = 2, *, _owned_dir: Path | None = None):
        if max_concurrent < 1:
            raise ValueError(f"max_concurrent={max_concurrent}: allow at least one query")
        self.store = Path(store)
        if not self.store.is_dir():
            raise SparqlError(f"no SPARQL store at {self.store}: rebuild the workspace")
        self.max_concurrent = max_concurrent
        self._slots = threading.BoundedSemaphore(max_concurrent)
        self._idle: list[_Worker] = []
        self._busy: set[_Worker] = set()
        self._lock = threading.Lock()
        self._closed = False
        self._owned_dir = _owned_dir
        _RUNNERS.add(self)

    @classmethod
    def for_graph(cls, graph, max_concurrent: int = 2) -> QueryRunner:
        """A runner over ``graph``'s workspace store, or over a temporary copy of an
        in-memory graph's triples (removed by :meth:`close`)."""
        if graph._store_path is not None:
            return cls(graph._store_path, max_concurrent)
        from .workspace import build_sparql_store

        folder = Path(tempfile.mkdtemp(prefix="kgf-sparql-"))
        try:
            build_sparql_store(graph, folder / "sparql")
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return cls(folder / "sparql", max_concurrent, _owned_dir=folder)

    @property
    def active(self) -> int:
        """Queries running now."""
        with self._lock:
            return len(self._busy)

    def pids(self) -> list[int]:
        """Process ids of the live workers (idle and busy)."""
        with self._lock:
            return [w.pid for w in [*self._idle, *self._busy]]

    def run(self, query: str, timeout: float, max_rows: int | None = None) -> QueryResult:
        """Run ``query`` (checked by :func:`kg.sparql.check_read_only`) in a worker.

        Raises:
            SparqlError: syntax error, update or SERVICE; SparqlTimeout: still running
            after ``timeout`` seconds (the worker is killed); SparqlBusy: every slot taken.
        """
        check_read_only(query)
        if self._closed:
            raise RuntimeError("this SPARQL runner is closed")
        if not self._slots.acquire(blocking=False):
            retry = max(1, math.ceil(timeout))
            raise SparqlBusy(
                f"{self.max_concurrent} SPARQL queries are already running (the limit): "
                f"retry in {retry} s",
                retry_after=retry,
            )
        try:
            worker = self._take()
            try:
                result = worker.ask(query, max_rows, timeout)
            finally:
                self._give_back(worker)
            return result
        finally:
            self._slots.release()

    def _take(self) -> _Worker:
        with self._lock:
            while self._idle:
                worker = self._idle.pop()
                if worker.alive:
                    self._busy.add(worker)
                    return worker
                worker.kill()
        worker = _Worker(self.store)  # outside the lock: starting takes a moment
        with self._lock:
            self._busy.add(worker)
        return worker

    def _give_back(self, worker: _Worker) -> None:
        with self._lock:
            self._busy.discard(worker)
            if worker.alive and not self._closed:
                self._idle.append(worker)
                return
        worker.kill()

    def close(self) -> None:
        """Kill every worker and remove a temporary store; later queries are refused."""
        with self._lock:
            self._closed = True
            workers = [*self._idle, *self._busy]
            self._idle.clear()
        for worker in workers:
            worker.kill()
        if self._owned_dir is not None:
            shutil.rmtree(self._owned_dir, ignore_errors=True)
            self._owned_dir = None

    def __enter__(self) -> QueryRunner:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@atexit.register
def _close_all() -> None:
    for runner in list(_RUNNERS):
        runner.close()


# ---------------------------------------------------------------------- the worker
def _watch_parent(parent: int) -> None:
    """Exit when the parent process is gone (its pipes may not close while a query runs)."""
    import time

    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


def _send(message: dict) -> None:
    sys.stdout.buffer.write(json.dumps(message, ensure_ascii=False).encode("utf-8") + b"\n")
    sys.stdout.buffer.flush()


def worker_main(store: str) -> int:
    """Serve queries on stdin / stdout (see the module docstring) until stdin ends."""
    import pyoxigraph as ox

    from .sparql_query import execute

    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()
    try:
        opened = ox.Store.read_only(store)
    except OSError as err:
        _send({"error": "internal", "message": f"cannot open {store}: {err}"})
        return 1
    _send({"ready": True})
    for line in sys.stdin.buffer:
        request = json.loads(line)
        try:
            result = execute(opened, request["query"], request.get("max_rows"))
        except SparqlError as err:
            _send({"error": "query", "message": str(err)})
        except Exception as err:  # noqa: BLE001 - reported to the parent, which raises
            _send({"error": "internal", "message": f"{type(err).__name__}: {err}"})
        else:
            _send({"result": asdict(result)})
    return 0


if __name__ == "__main__":
    sys.exit(worker_main(sys.argv[1]))
