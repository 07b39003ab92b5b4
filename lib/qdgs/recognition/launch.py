"""The command ``torchrun`` launches: train one recognition model on N processes, one per GPU.

    torchrun --nproc_per_node=8 -m qdgs.recognition.launch --profile paper --data QD_DIR --seed 0
    torchrun --nproc_per_node=8 -m qdgs.recognition.launch --profile paper --stage real \\
        --data REAL_DIR --init PRETRAINED/backbone.pt --seed 0

It trains the model that notebook 03 trains for the same parameters, under the same cache key
(:func:`qdgs.recognition.experiment.trained_backbone`), so a notebook run afterwards finds the
model in the cache instead of training it on one device. ``--stage pretrain`` uses the chapter's
``epochs``, ``--stage real`` its ``real_epochs``; ``-p name=value`` overrides any other chapter
parameter (``device``, ``workers``, ``depth``, ``batch_size``, …). The global batch is the
chapter's ``batch_size``, shared out over the ranks, so the loss curve is the one-process curve.
A killed job resumes from its last finished epoch when launched again with the same arguments.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import torch.distributed as dist

from qdgs.params import PROFILES, ParameterError
from qdgs.profiles import spec
from qdgs.recognition.distributed import init_process_group, rank
from qdgs.recognition.experiment import configs, trained_backbone

__all__ = ["main"]


def _overrides(items: list[str]) -> dict:
    """``-p NAME=VALUE`` items as chapter parameters (values parse as Python literals, else strings)."""
    from qdgs.cli import parse_value

    params = {}
    for item in items:
        if "=" not in item:
            raise ParameterError(f"-p expects NAME=VALUE, got {item!r}")
        name, value = item.split("=", 1)
        params[name.strip()] = parse_value(value)
    return params


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m qdgs.recognition.launch", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="identity set: image folder or InsightFace train.rec")
    parser.add_argument("--profile", default="paper", help=f"one of {', '.join(PROFILES)}")
    parser.add_argument("--stage", choices=("pretrain", "real"), default="pretrain",
                        help="pretrain: the chapter's epochs; real: its real_epochs")
    parser.add_argument("--init", type=Path, default=None, help="backbone.pt to start from (the real stage)")
    parser.add_argument("--seed", type=int, default=0, help="training seed (the notebook trains 0 … seeds-1)")
    parser.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                        help="override a recognition-chapter parameter (repeatable)")
    args = parser.parse_args(argv)
    try:
        p = spec("recognition").resolve(args.profile, **_overrides(args.param))
        device = init_process_group(p.device)
    except (ParameterError, RuntimeError, ValueError) as err:  # bad parameters, or not under torchrun
        print(f"qdgs.recognition.launch: error: {err}", file=sys.stderr)
        return 2
    try:
        backbone_config, pretrain, real = configs(p)
        config = replace(real if args.stage == "real" else pretrain, seed=args.seed)
        _, history, path = trained_backbone(args.data, backbone_config, config, init=args.init, device=device,
                                            workers=p.workers)
        if rank() == 0:
            print(history.to_string(index=False))
            print(path / "backbone.pt")
    finally:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
