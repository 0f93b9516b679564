"""A real local Ray cluster (one start for this module): same records as the local executor, worker death
retried, a failing candidate recorded while the search goes on, and resources no node has refused."""

import json
import os

import pytest

ray = pytest.importorskip("ray")

import edgeprune  # noqa: E402
from edgeprune import data  # noqa: E402
from edgeprune.errors import ConfigError  # noqa: E402
from edgeprune.methods.dense import train_dense  # noqa: E402
from edgeprune.runs.executor import LocalExecutor  # noqa: E402
from edgeprune.runs.ray_executor import RayExecutor, candidate_task  # noqa: E402
from edgeprune.train import default_config  # noqa: E402

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def ray_cluster():
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def dense():
    splits = data.load("digits")
    model, _ = train_dense("lenet300", splits, default_config("lenet300", epochs=3, batch_size=64), None, progress=False)
    return model, splits


def sweep(dense, out, executor):
    model, splits = dense
    return edgeprune.sweep(model, splits, method="mix_and_match", budgets=[0.8], out=out, executor=executor,
                           criteria=["magnitude", "gradient"], strategies=["min", "early_heavy", "late_heavy"], baselines=[],
                           calib_batches=2,
                           finetune={"epochs": 1, "batch_size": 64, "max_batches": 5}, progress=False)


def records(run):
    return {r["id"]: r for r in map(json.loads, (run / "results.jsonl").read_text().splitlines())}


@pytest.mark.slow
def test_ray_gives_the_records_of_the_local_executor(ray_cluster, dense, tmp_path):
    sweep(dense, tmp_path / "local", LocalExecutor(threads=1))
    executor = RayExecutor(workers=2)
    sweep(dense, tmp_path / "ray", executor)
    executor.close()
    assert ray.is_initialized()  # the caller's Ray is left running

    local, remote = records(tmp_path / "local"), records(tmp_path / "ray")
    assert sorted(local) == sorted(remote) and len(local) == 1 + 6
    assert len({s["pid"] for s in executor.stats}) == 2  # both workers took candidates
    for cid, a in local.items():
        b = remote[cid]
        assert b.get("status") == a.get("status") == "ok"
        for key in ("sparsity", "nonzeros", "params", "macs", "setting", "budget_achieved"):
            assert b.get(key) == a.get(key), (cid, key)
        for key in ("val_acc_pruned", "val_acc", "test_acc"):
            assert b.get(key) == pytest.approx(a.get(key), abs=1e-6), (cid, key)
        if cid != "dense":  # the driver wrote every checkpoint
            assert (tmp_path / "ray" / b["checkpoint"]).is_file()


@pytest.mark.slow
def test_a_dead_worker_is_retried_and_a_failing_candidate_recorded(ray_cluster, dense, tmp_path):
    marker = tmp_path / "died-once"

    def flaky(key, box, cand, threads):
        if cand.id == "mam-magnitude-min-b0.8-s0" and not os.path.exists(marker):
            open(marker, "w").close()
            os._exit(1)  # the worker process dies mid-task
        if cand.id == "mam-gradient-late_heavy-b0.8-s0":
            raise RuntimeError("boom in " + cand.id)
        return candidate_task(key, box, cand, threads)

    run = tmp_path / "run"
    executor = RayExecutor(workers=2, task=flaky)
    with pytest.warns(UserWarning) as caught:
        result = sweep(dense, run, executor)
    messages = [str(w.message) for w in caught]
    assert any("mam-magnitude-min-b0.8-s0 failed" in m and "retrying" in m for m in messages)
    assert any("mam-gradient-late_heavy-b0.8-s0 failed again" in m for m in messages)

    got = records(run)
    assert got["mam-magnitude-min-b0.8-s0"]["status"] == "ok"
    failed = got["mam-gradient-late_heavy-b0.8-s0"]
    assert failed["status"] == "failed" and failed["attempts"] == 2
    assert failed["error"] == "RuntimeError: boom in mam-gradient-late_heavy-b0.8-s0"
    assert sum(r["status"] == "ok" for r in got.values() if r["kind"] != "dense") == 5  # the sweep went on
    assert result.chosen is not None and "Failed candidates" in (run / "report.md").read_text()


def test_resources_no_node_has_are_refused(ray_cluster):
    with pytest.raises(ConfigError, match="no node .* --gpus-per-candidate 1 .*largest node: 2 CPUs, 0 GPUs"):
        RayExecutor(gpus_per_candidate=1).connect()
