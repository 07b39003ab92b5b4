"""Data-parallel training on the CPU (gloo, 2 processes) follows one process at the same global batch.

The ranks run in spawned processes with a deadline, so a hung collective fails the test instead of
hanging it. Faults injected into the ranks show that the comparisons can fail: overlapping shards,
gradients summed instead of averaged, and per-shard BatchNorm. Summed gradients are caught on the
gradients of one step, not on the loss curve: every step of this run (as of real IR training) has a
gradient norm of 18–160, above the trainer's clipping norm of 5, and clipping erases a factor of 2.
"""

import contextlib
import importlib
import os
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from qdgs.recognition import IResNet, TrainConfig, make_head, train
from qdgs.recognition import distributed as ddp
from qdgs.seeds import seeded_init
from recognition_fixtures import TINY, toy_faces, write_identity_folder
from torch import nn

training = importlib.import_module("qdgs.recognition.train")  # the module (the package exports the function)

#: AdaFace (its norm statistics are synchronised too), augmentation on, 6 steps of 8 faces per epoch.
#: At the paper's lr 0.01 the run is well conditioned: scaling the initial weights by 1 + 1e-6 moves
#: the 12 step losses by at most 5e-6 (at lr 0.05 by 2e-2, so no tolerance could tell faults from rounding).
CONFIG = TrainConfig(head="adaface", scale=16.0, margin=0.2, epochs=2, batch_size=8, lr=0.01, augment_p=0.5,
                     schedule="cosine", warmup_epochs=0.5, margin_warmup_epochs=1)
#: Largest difference allowed between 2 ranks and 1 process (per-step losses, final weights, one
#: step's gradients relative to the largest). Measured: ≤ 5e-6 (float32 sums in another order).
TOLERANCE = 1e-4
DEADLINE_S = 300


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _summing_hook(state, bucket):
    """A DDP communication hook that sums the gradients over the ranks instead of averaging them."""
    return dist.all_reduce(bucket.buffer(), async_op=True).get_future().then(lambda f: f.value()[0])


class _SummingDDP(nn.parallel.DistributedDataParallel):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.register_comm_hook(None, _summing_hook)


@contextlib.contextmanager
def _fault(name: str | None, world: int):
    """Break data parallelism in one way for the duration (in this rank's process)."""
    saved = training.local_rows, ddp.DistributedDataParallel, ddp.sync_batchnorm
    if name == "overlap":  # every rank takes the first rows
        training.local_rows = lambda b: slice(0, b // world)
    elif name == "summed":
        ddp.DistributedDataParallel = _SummingDDP
    elif name == "unsynced":  # per-shard BatchNorm statistics
        ddp.sync_batchnorm = lambda module, device: module
    try:
        yield
    finally:
        training.local_rows, ddp.DistributedDataParallel, ddp.sync_batchnorm = saved


def _one_step_gradients() -> dict[str, torch.Tensor]:
    """Gradients of the first step's loss (before clipping) with respect to every backbone and head parameter."""
    data = toy_faces()
    with seeded_init(0, "test", "init"):
        backbone, head = IResNet(TINY), make_head("adaface", data.num_classes, TINY.embedding_dim, 16.0, 0.2)
    recognizer = training.Recognizer(backbone, head)
    model = ddp.data_parallel(recognizer, torch.device("cpu"))
    x, y = training.EpochBatches(data, CONFIG, 0, training.local_rows(CONFIG.batch_size))[0]
    _, logits = model(x, y)
    F.cross_entropy(logits, y).backward()
    return {n: p.grad.clone() for n, p in recognizer.named_parameters()}


def _rank_main(rank: int, world: int, port: int, out: str, jobs: list[tuple[str, dict]]) -> None:
    """One rank: join the gloo group, run each job (a ``train`` call or one gradient step, possibly with a
    fault), save rank 0's result."""
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world,
                            timeout=timedelta(seconds=DEADLINE_S))
    try:
        for name, job in jobs:
            job = dict(job)
            with _fault(job.pop("fault", None), world):
                if job.pop("gradients", False):
                    result = _one_step_gradients()
                else:
                    r = train(toy_faces(), TINY, CONFIG, progress_bar=False, **job)
                    result = {"steps": r.steps, "history": r.history, "backbone": r.backbone.state_dict()}
            torch.save(result, Path(out) / f"{name}-{rank}.pt")
    finally:
        dist.destroy_process_group()


def _spawn(tmp_path: Path, jobs: list[tuple[str, dict]], world: int = 2) -> dict[str, dict]:
    """Run ``jobs`` on ``world`` gloo ranks; rank 0's result of each job by name."""
    ctx = mp.start_processes(_rank_main, args=(world, _free_port(), str(tmp_path), jobs), nprocs=world,
                             join=False, start_method="spawn")
    deadline = time.monotonic() + DEADLINE_S
    while not ctx.join(timeout=5):
        if time.monotonic() > deadline:
            for p in ctx.processes:
                p.kill()
            pytest.fail(f"{world} gloo ranks did not finish within {DEADLINE_S} s")
    return {name: torch.load(tmp_path / f"{name}-0.pt", weights_only=False) for name, _ in jobs}


def _curve_difference(a: dict, b: dict) -> float:
    """Largest absolute difference between two runs' per-step losses and final backbone weights."""
    losses = np.abs(a["steps"].loss.to_numpy() - b["steps"].loss.to_numpy()).max()
    weights = max(float((a["backbone"][k].float() - b["backbone"][k].float()).abs().max()) for k in a["backbone"])
    return max(float(losses), weights)


def _gradient_difference(a: dict, b: dict) -> float:
    """Largest difference between two sets of gradients, relative to the largest gradient of ``b``
    (not per parameter: some BatchNorm biases have a gradient of exactly 0 but for rounding)."""
    return max(float((a[k] - b[k]).abs().max()) for k in b) / max(float(g.abs().max()) for g in b.values())


def test_local_rows_share_out_the_global_batch(monkeypatch):
    monkeypatch.setattr(ddp, "world_size", lambda: 4)
    shards = []
    for r in range(4):
        monkeypatch.setattr(ddp, "rank", lambda r=r: r)
        shards.append(ddp.local_rows(64))
    assert [(s.start, s.stop) for s in shards] == [(0, 16), (16, 32), (32, 48), (48, 64)]
    with pytest.raises(ValueError, match="multiple of 4"):
        ddp.local_rows(30)


def test_two_gloo_ranks_follow_one_process_and_resume(tmp_path):
    torch.set_num_threads(1)
    single = train(toy_faces(), TINY, CONFIG, progress_bar=False)
    one = {"steps": single.steps, "backbone": single.backbone.state_dict()}
    one_step = _one_step_gradients()
    ckpt = str(tmp_path / "ckpt")
    faults = ("overlap", "summed", "unsynced")
    runs = _spawn(tmp_path, [("ddp", {}), ("first", {"checkpoint_dir": ckpt, "stop_after": 1}),
                             ("resumed", {"checkpoint_dir": ckpt}), ("gradients", {"gradients": True}),
                             *((f"{f} gradients", {"gradients": True, "fault": f}) for f in faults),
                             *((f, {"fault": f}) for f in ("overlap", "unsynced"))])

    # one step: DDP's gradients are the single process's on the whole global batch, and each fault shows
    assert _gradient_difference(runs["gradients"], one_step) < TOLERANCE
    for f in faults:
        assert _gradient_difference(runs[f"{f} gradients"], one_step) > 100 * TOLERANCE, f
    # the loss curve, step by step, and the final weights
    ddp_run = runs["ddp"]
    assert len(ddp_run["steps"]) == len(one["steps"]) == 12 and list(ddp_run["history"].epoch) == [1, 2]
    assert _curve_difference(ddp_run, one) < TOLERANCE
    for f in ("overlap", "unsynced"):
        assert _curve_difference(runs[f], one) > 100 * TOLERANCE, f
    # stopped after epoch 1 and started again from the checkpoint: the uninterrupted DDP run, exactly
    assert len(runs["first"]["steps"]) == 6
    for k, v in ddp_run["backbone"].items():
        assert torch.equal(v, runs["resumed"]["backbone"][k]), k
    assert ddp_run["steps"].loss.tolist() == runs["resumed"]["steps"].loss.tolist()


def test_global_batchnorm_without_a_process_group_is_batchnorm():
    x = torch.randn(6, 3, 4, 4)
    plain, synced = nn.BatchNorm2d(3), ddp.sync_batchnorm(nn.BatchNorm2d(3), torch.device("cpu"))
    assert isinstance(synced, ddp.GlobalBatchNorm)
    assert torch.equal(plain(x), synced(x)) and torch.equal(plain.running_var, synced.running_var)


def test_the_command_outside_torchrun_says_how_to_launch_it(monkeypatch, capsys):
    from qdgs.recognition.launch import main

    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    assert main(["--data", "somewhere", "--profile", "smoke", "-p", "device=cpu"]) == 2
    assert "launch this with torchrun" in capsys.readouterr().err
    assert main(["--data", "somewhere", "-p", "workers=-1"]) == 2
    assert "workers" in capsys.readouterr().err


@pytest.mark.slow
def test_torchrun_command_trains_the_model_the_notebook_then_reuses(tmp_path, monkeypatch):
    from qdgs.profiles import spec
    from qdgs.recognition import experiment as ex

    write_identity_folder(tmp_path / "set", toy_faces(n_ids=4, per=8, size=64))
    cache = tmp_path / "cache"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               "-m", "qdgs.recognition.launch", "--profile", "smoke", "--data", str(tmp_path / "set"),
               "-p", "batch_size=8", "-p", "device=cpu"]
    env = {**os.environ, "QDGS_CACHE": str(cache), "OMP_NUM_THREADS": "1", "QDGS_PROGRESS": "0"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=DEADLINE_S, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    printed = Path(done.stdout.strip().splitlines()[-1])
    assert printed.name == "backbone.pt" and printed.is_file()

    monkeypatch.setenv("QDGS_CACHE", str(cache))
    monkeypatch.setattr(ex, "train", lambda *a, **k: pytest.fail("the notebook retrained a model torchrun made"))
    p = spec("recognition").resolve("smoke", batch_size=8)
    backbone_config, pretrain, _ = ex.configs(p)
    _, history, path = ex.trained_backbone(tmp_path / "set", backbone_config, pretrain, progress_bar=False)
    assert path / "backbone.pt" == printed and list(history.epoch) == [1] and history.images.iloc[0] == 32
