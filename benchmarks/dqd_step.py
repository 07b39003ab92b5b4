"""Benchmark the DQD step: one forward + batched backward against per-measure passes.

    python benchmarks/dqd_step.py --suite gpu --out _build/benchmarks --rounds 20   # on a CUDA machine

Every method is timed in the same run, interleaved, and reported as a median and a ratio to the
reference style (one generator + scorer forward and backward per Jacobian row). The book's
performance chapter times the default (CPU) models itself; this script is for longer runs on GPUs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import torch

from qdgs.benchmark import iteration_breakdown, paper_scale_scoring, time_jacobians
from qdgs.search import SearchConfig

PAPER_FACE_ITERATIONS = 60_000


def gpu_suite(rounds: int) -> dict[str, pd.DataFrame]:
    """Paper-scale architectures on CUDA: Jacobian methods and a whole search iteration."""
    if not torch.cuda.is_available():
        raise SystemExit("the gpu suite needs a CUDA device; none is visible (torch.cuda.is_available() is False)")
    scoring = paper_scale_scoring("cuda")
    z = scoring.generator.sample_latents(1, seed=0).cpu().numpy()
    jac = time_jacobians(scoring, z, rounds=rounds, warmup=2)
    config = SearchConfig(iterations=rounds, archive_dims=(50, 25, 5, 25),
                          measure_ranges=((-0.1, 0.1),) * 4, init_batches=2, init_batch_size=16)
    rows = []
    for method in ("batched", "retain", "reference"):
        parts = iteration_breakdown(scoring, config, iterations=rounds, method=method)
        ms = parts.ms.sum()
        rows.append({"method": method, "ms_per_iteration": ms,
                     "projected_minutes_60k": ms * PAPER_FACE_ITERATIONS / 60_000})
    return {"jacobian_gpu": jac, "iteration_gpu": pd.DataFrame(rows)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", choices=("gpu",), default="gpu")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--out", type=Path, default=Path("_build/benchmarks"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name, table in gpu_suite(args.rounds).items():
        table.to_csv(args.out / f"{name}.csv", index=False)
        print(f"\n{name}\n{table.to_string(index=False)}")


if __name__ == "__main__":
    main()
