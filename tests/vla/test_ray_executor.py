"""`--executor ray` on a local Ray cluster started here: a lost worker's episode is run
again elsewhere, and collection and evaluation give what the local pool gives for the
same seeds (the same dataset, the same evaluation JSON)."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def cluster():
    """One local cluster for the module (a RayPool joins it instead of starting one)."""
    ray.init(num_cpus=2, _node_ip_address="127.0.0.1", include_dashboard=False,
             log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def test_a_lost_workers_job_runs_again_on_a_restarted_worker(cluster, tmp_path):
    from vla.run.executor import pool

    marker = str(tmp_path / "died-once")

    def square(x):
        import os
        import pathlib

        if x == 3 and not pathlib.Path(marker).exists():
            pathlib.Path(marker).write_text("")
            os._exit(1)  # the worker process dies mid-job, the first time only
        return os.getpid(), x * x

    with pool("ray", 2) as workers:
        results = [f.result() for f in [workers.submit(square, i) for i in range(6)]]
    assert [r[1] for r in results] == [0, 1, 4, 9, 16, 25]
    assert (tmp_path / "died-once").exists()  # it did die, and job 3 still came back
    assert len({pid for pid, _ in results}) == 3  # the two workers, then the restarted one


def _arrays(dataset) -> dict:
    from vla.data.store import DatasetDir

    out = {}
    for path in sorted(DatasetDir.open(dataset).episode_paths()):
        with h5py.File(path) as f:
            out[path.name] = {k: f[k][()] for k in ("state", "action", "executed_action")}
            out[path.name]["front"] = f["images/front"][()]
    return out


def test_collect_on_ray_writes_the_local_pools_dataset(cluster, tmp_path):
    from vla.data.collect import collect

    local = collect("pick", 3, str(tmp_path / "local"), workers=2, progress=False)
    remote = collect("pick", 3, str(tmp_path / "ray"), workers=2, progress=False,
                     executor="ray")
    assert remote["committed"] == local["committed"] == 3
    a, b = _arrays(tmp_path / "local"), _arrays(tmp_path / "ray")
    assert sorted(a) == sorted(b)
    for name in a:
        for key in a[name]:
            assert np.array_equal(a[name][key], b[name][key]), (name, key)
    assert not (tmp_path / "ray" / "tmp").exists()  # nothing left half-landed


def test_eval_on_ray_prints_the_local_pools_json(cluster, capsys):
    from vla.cli import main

    common = ["eval", "--tasks", "touch", "--splits", "L1", "--episodes", "3", "--json",
              "--workers", "2"]
    assert main(common) == 0
    local = json.loads(capsys.readouterr().out)
    assert main([*common, "--executor", "ray"]) == 0
    remote = json.loads(capsys.readouterr().out)
    assert remote == local
