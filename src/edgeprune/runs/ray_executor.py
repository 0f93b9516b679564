"""Candidates as Ray tasks: the search's shared context goes to the object store once, results stream back.

The driver puts the heavy, read-only part of the search context (dense model, data splits, scores) into
the object store with one ``ray.put``. Each candidate is a task with ``num_cpus=cpus_per_candidate`` and
``num_gpus=gpus_per_candidate``; it fetches the context once per worker process (cached), rebuilds the
masks from the shared scores, sets torch's threads to its CPUs, trains and measures, and returns its
record and the trained weights. At most ``workers`` tasks are in flight; the driver takes results as they
finish (``ray.wait``), writes the checkpoint and appends the record — it is the only writer of the run
directory. A task that raises or whose worker dies is resubmitted once, then recorded as failed.

With ``address`` the cluster is joined (and its resources checked) when the executor is made; without it a
local Ray instance is started when the first candidate is due (about 10 s here) and shut down by
:meth:`RayExecutor.close`. An already initialised Ray (``ray.init`` by the caller) is used as is.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from urllib.parse import urlparse

import torch

from edgeprune.errors import ConfigError, DependencyError
from edgeprune.runs.execution import candidate_progress, describe_failure, pending, warn

START_HINT = "start one with `ray start --head` (then --ray-address auto), or omit --ray-address to start a local Ray"

# per worker process: the search context of the current run (key -> context), fetched once
_WORKER_CONTEXT: dict[str, object] = {}


def _import_ray():
    try:
        import ray  # noqa: PLC0415  (optional dependency: the ray extra)
    except ImportError:
        raise DependencyError("--executor ray needs the ray package: pip install 'edgeprune[ray]'") from None
    return ray


def _host_port(address: str) -> tuple[str, int] | None:
    """(host, port) of a GCS ``host:port`` or Ray Client ``ray://host:port`` address; None for 'auto'."""
    if address == "auto":
        return None
    parsed = urlparse(address if "://" in address else f"gcs://{address}")
    try:
        port = parsed.port
    except ValueError:
        port = None
    if not parsed.hostname or port is None:
        raise ConfigError(f"--ray-address {address!r} must look like HOST:PORT, ray://HOST:PORT or auto")
    return parsed.hostname, port


def check_reachable(address: str, timeout: float = 3.0) -> None:
    """Fail fast (instead of Ray's long connection retries) when nothing listens at ``address``."""
    target = _host_port(address)
    if target is None:
        return
    try:
        with socket.create_connection(target, timeout=timeout):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(f"Ray cluster at {address!r} is unreachable ({reason}); {START_HINT}") from None


def largest_node(nodes: list[dict]) -> tuple[float, float]:
    """(CPUs, GPUs) of the best-equipped alive node, from ``ray.nodes()``."""
    best = (0.0, 0.0)
    for node in nodes:
        if node.get("Alive", node.get("alive", True)):
            res = node.get("Resources", {})
            best = max(best, (float(res.get("CPU", 0)), float(res.get("GPU", 0))))
    return best


def check_resources(nodes: list[dict], cpus: float, gpus: float, where: str) -> None:
    """ConfigError unless one alive node offers ``cpus`` CPUs and ``gpus`` GPUs (else tasks would hang)."""
    fits = any(
        float(n.get("Resources", {}).get("CPU", 0)) >= cpus and float(n.get("Resources", {}).get("GPU", 0)) >= gpus
        for n in nodes if n.get("Alive", n.get("alive", True))
    )
    if not fits:
        cpu, gpu = largest_node(nodes)
        raise ConfigError(
            f"no node of {where} can run a candidate with --cpus-per-candidate {cpus:g} --gpus-per-candidate {gpus:g} "
            f"(largest node: {cpu:g} CPUs, {gpu:g} GPUs); ask for less"
        )


def candidate_task(key: str, box: list, cand, threads: int):
    """Body of one Ray task: train and measure ``cand`` against the shared context; writes nothing."""
    import ray  # noqa: PLC0415  (optional dependency: the ray extra)

    started, cpu_started, wall_started = time.perf_counter(), time.process_time(), time.time()
    torch.set_num_threads(max(int(threads), 1))
    ctx = _WORKER_CONTEXT.get(key)
    if ctx is None:
        _WORKER_CONTEXT.clear()  # a new run: drop the previous one
        ctx = _WORKER_CONTEXT[key] = ray.get(box[0])
    fetched = time.perf_counter()
    record, model = ctx.train(cand)
    state = None if model is None else ctx.portable(model)
    info = {
        "pid": os.getpid(), "started_unix": wall_started, "fetch_seconds": fetched - started,
        "task_seconds": time.perf_counter() - started, "cpu_seconds": time.process_time() - cpu_started,
    }
    return record, state, info


class RayExecutor:
    """Run each candidate as a Ray task; stream records back; retry once; record failures."""

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        workers: int | None = None,
        cpus_per_candidate: float = 1,
        gpus_per_candidate: float = 0,
        retries: int = 1,
        task=candidate_task,
    ):
        self.ray = _import_ray()
        self.address = address
        self.workers = workers
        self.cpus = cpus_per_candidate
        self.gpus = gpus_per_candidate
        self.retries = retries
        self._task_fn = task
        self._remote = None
        self._started = False
        self._shared: tuple[int, str, object] | None = None  # (id(ctx), key, ObjectRef)
        self.stats: list[dict] = []  # per finished task: timings seen by the driver and the task
        self.startup_seconds: float | None = None
        if self.ray.is_initialized():
            return
        if address is not None:  # joining is quick: do it now, so a bad cluster fails before any work
            check_reachable(address)
            self.connect()
        else:  # a local Ray will be this machine: check now; start it only when there is work
            local = [{"Resources": {"CPU": os.cpu_count() or 1, "GPU": torch.cuda.device_count()}}]
            check_resources(local, self.cpus, self.gpus, "this machine")

    # -- cluster ------------------------------------------------------------------------------------------
    def connect(self) -> None:
        """Start or join Ray (once), then check that some node fits one candidate."""
        ray = self.ray
        if not ray.is_initialized():
            t0 = time.perf_counter()
            common = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING}
            if self.address is None:
                # the local Ray is this machine; enough logical CPUs for the workers asked for
                cpus = max(int((self.workers or 0) * self.cpus), os.cpu_count() or 1)
                ray.init(address="local", num_cpus=cpus, num_gpus=torch.cuda.device_count(), **common)
            else:
                try:
                    ray.init(address=self.address, **{k: v for k, v in common.items() if k != "include_dashboard"})
                except (ConnectionError, TimeoutError, RuntimeError) as exc:
                    raise ConfigError(
                        f"could not join the Ray cluster at {self.address!r} ({describe_failure(exc)}): check that it is "
                        f"the head's GCS port (6379 by default) and, with Ray's token authentication, that this process "
                        f"may connect (same token, or RAY_AUTH_MODE=disabled on both sides); {START_HINT}"
                    ) from None
            self._started = True
            self.startup_seconds = time.perf_counter() - t0
        where = f"the Ray cluster at {self.address!r}" if self.address else "the Ray cluster"
        try:
            check_resources(ray.nodes(), self.cpus, self.gpus, where)
        except ConfigError:
            self.close()
            raise
        if self.workers is None:
            total = ray.cluster_resources()
            slots = int(total.get("CPU", 1) // self.cpus) if self.cpus else 1
            if self.gpus:
                slots = min(slots, int(total.get("GPU", 0) // self.gpus))
            self.workers = max(slots, 1)
        if self._remote is None:
            self._remote = ray.remote(self._task_fn).options(
                num_cpus=self.cpus, num_gpus=self.gpus, max_retries=0, retry_exceptions=False,
            )

    def _share(self, ctx):
        """The ObjectRef of the context's worker view; ray.put once per search context."""
        if self._shared is None or self._shared[0] != id(ctx):
            key = uuid.uuid4().hex
            self._shared = (id(ctx), key, self.ray.put(ctx.for_workers()))
        return self._shared[1], self._shared[2]

    # -- the contract ---------------------------------------------------------------------------------------
    def run(self, ctx, plan, *, progress: bool = True, title: str = "candidates") -> list[dict]:
        todo = pending(ctx.store, plan)
        if not todo:
            return []
        self.connect()
        ray = self.ray
        key, ref = self._share(ctx)
        queue = list(todo)
        attempts: dict[str, int] = {}
        first_try: dict[str, float] = {}
        in_flight: dict = {}  # ObjectRef -> (candidate, submitted at)
        records = []
        with candidate_progress(progress, title, plan, todo) as shown:
            try:
                while queue or in_flight:
                    while queue and len(in_flight) < self.workers:
                        cand = queue.pop(0)
                        attempts[cand.id] = attempts.get(cand.id, 0) + 1
                        first_try.setdefault(cand.id, time.perf_counter())
                        job = self._remote.remote(key, [ref], cand, max(int(self.cpus), 1))
                        in_flight[job] = (cand, time.perf_counter())
                    shown.describe(f"{title}: {len(in_flight)} running, {len(queue)} queued")
                    done, _ = ray.wait(list(in_flight), num_returns=1)
                    job = done[0]
                    cand, submitted = in_flight.pop(job)
                    try:
                        record, state, info = ray.get(job)
                    except Exception as exc:  # noqa: BLE001  task exception, worker death, lost object
                        reason = describe_failure(exc)
                        if attempts[cand.id] <= self.retries:
                            warn(f"candidate {cand.id} failed ({reason}); retrying")
                            queue.insert(0, cand)
                            continue
                        warn(f"candidate {cand.id} failed again ({reason}); recorded as failed")
                        spent = time.perf_counter() - first_try[cand.id]
                        record, state, info = ctx.failed(cand, reason, attempts[cand.id], spent), None, {}
                    arrived = time.perf_counter()
                    self.stats.append({"id": cand.id, "attempts": attempts[cand.id],
                                       "driver_seconds": arrived - submitted, **info})
                    records.append(ctx.finish(cand, record, state))
                    shown.finished(records[-1])
            except BaseException:
                for job in in_flight:  # Ctrl-C or a driver error: do not leave tasks running
                    ray.cancel(job, force=True)
                raise
        return records

    def close(self) -> None:
        """Shut down the Ray instance this executor started (a caller's Ray is left running)."""
        if self._started and self.ray.is_initialized():
            self.ray.shutdown()
        self._started = False
        self._shared = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
