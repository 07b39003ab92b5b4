"""Tiny same-format stand-ins for the paper's three weight files, and the overrides of a paper dry run.

The ``paper`` profile needs NVIDIA's ``stylegan2-ffhq-256x256.pkl``, OpenAI's CLIP ViT-B/32 and the
reference implementation's ``vae-shapes.pt``; none can be downloaded here. Each writer below saves
a small, randomly initialised network in that file's own format (an NVIDIA persistent-class pickle,
an open_clip model folder, a PyTorch state dict with the reference keys), so the real loading code
runs on it: the unit tests load them directly, and the dry run (``tests/test_paper_dry_run.py``)
passes them to the chapters as a user passes the real files.
"""

from __future__ import annotations

import json
import pickle
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import open_clip
import torch
from torch import nn

from qdgs.generators.reference_vae import ReferenceShapesVAE
from qdgs.generators.stylegan2 import StyleGAN2, StyleGAN2Config
from qdgs.scorers.openai_clip import MODEL_NAME

#: A StyleGAN2 small enough for unit tests (16 px).
TINY_STYLEGAN2 = StyleGAN2Config(z_dim=16, w_dim=16, mapping_layers=2, channels=((4, 8), (8, 8), (16, 4)))
#: The dry run's face generator: the same skip architecture, 32 px, a few channels per block.
DRY_RUN_STYLEGAN2 = StyleGAN2Config(z_dim=32, w_dim=32, mapping_layers=2, channels=((4, 16), (8, 8), (16, 8), (32, 4)))
#: The open_clip name under which unit tests register the tiny CLIP architecture.
TINY_CLIP_NAME = "tiny-ViT-B-32-quickgelu"


# --- StyleGAN2: NVIDIA's persistent-class pickle -------------------------------------------------

class _Persistent:
    """Pickles like NVIDIA's persistent classes: a reconstruct call with source code and state."""

    def __init__(self, class_name: str, state: dict) -> None:
        self.class_name, self.state = class_name, state

    def __reduce_ex__(self, protocol):
        from torch_utils.persistence import _reconstruct_persistent_obj
        meta = dict(type="class", version=6, module_src="raise SystemExit('pickled code was executed')",
                    class_name=self.class_name, state=self.state)
        return _reconstruct_persistent_obj, (meta,)


def _to_persistent(module: nn.Module, name: str) -> _Persistent:
    state = {"training": False, "_parameters": dict(module._parameters), "_buffers": dict(module._buffers),
             "_modules": {k: _to_persistent(v, k) for k, v in module._modules.items()},
             "_init_kwargs": {}, "conv_clamp": getattr(module, "conv_clamp", None), "architecture": "skip"}
    if hasattr(module, "bias_gain"):
        state["bias_gain"] = np.float64(module.bias_gain)  # NVIDIA stores numpy scalars
    return _Persistent(f"training.networks_stylegan2.{name}", state)


@contextmanager
def _nvidia_modules() -> Iterator[types.ModuleType]:
    """Fake ``torch_utils`` / ``dnnlib`` modules, present only while a pickle is *written*; yields ``dnnlib.util``."""
    persistence = types.ModuleType("torch_utils.persistence")

    def _reconstruct_persistent_obj(meta):
        return None

    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"  # pickled by name, as NVIDIA's
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    persistence._reconstruct_persistent_obj = _reconstruct_persistent_obj
    util = types.ModuleType("dnnlib.util")

    class EasyDict(dict):
        pass

    EasyDict.__module__, EasyDict.__qualname__ = "dnnlib.util", "EasyDict"
    util.EasyDict = EasyDict
    fakes = {"torch_utils": types.ModuleType("torch_utils"), "torch_utils.persistence": persistence,
             "dnnlib": types.ModuleType("dnnlib"), "dnnlib.util": util}
    saved = {name: sys.modules[name] for name in fakes if name in sys.modules}
    sys.modules.update(fakes)
    try:
        yield util
    finally:
        for name in fakes:
            sys.modules.pop(name, None)
        sys.modules.update(saved)


def tiny_stylegan2(config: StyleGAN2Config = TINY_STYLEGAN2, seed: int = 0) -> StyleGAN2:
    """A StyleGAN2 with non-trivial noise strengths and biases, so that every tensor matters."""
    torch.manual_seed(seed)
    model = StyleGAN2(config)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model


def write_nvidia_pickle(path: Path, model: StyleGAN2) -> Path:
    """Save ``model`` as NVIDIA's network pickles are laid out (``G_ema``, ``G``, ``training_set_kwargs``)."""
    with _nvidia_modules() as util:
        g = _to_persistent(model, "Generator")
        with open(path, "wb") as f:
            pickle.dump({"G_ema": g, "G": g, "training_set_kwargs": util.EasyDict(resolution=model.config.resolution)},
                        f)
    return path


# --- OpenAI CLIP: an open_clip model folder ------------------------------------------------------

def tiny_clip_config() -> dict:
    """ViT-B-32-quickgelu's open_clip config with tiny widths (same layout, same tokenizer)."""
    cfg = json.loads((open_clip.factory._MODEL_CONFIG_PATHS[0] / f"{MODEL_NAME}.json").read_text())
    cfg["embed_dim"] = 32
    cfg["vision_cfg"].update(width=64, layers=2)
    cfg["text_cfg"].update(width=64, heads=2, layers=2)
    return cfg


def write_clip_folder(folder: Path, seed: int = 0) -> tuple[Path, nn.Module]:
    """An open_clip model folder (the Hugging Face hub layout: ``open_clip_config.json`` and
    ``open_clip_pytorch_model.bin``) holding a tiny ViT-B-32-quickgelu; returns it and the model."""
    folder.mkdir(parents=True, exist_ok=True)
    config = {"model_cfg": tiny_clip_config(),
              "preprocess_cfg": {"mean": list(open_clip.OPENAI_DATASET_MEAN), "std": list(open_clip.OPENAI_DATASET_STD)}}
    (folder / "open_clip_config.json").write_text(json.dumps(config))
    torch.manual_seed(seed)
    model = open_clip.create_model(f"local-dir:{folder}", load_weights=False)
    torch.save(model.state_dict(), folder / "open_clip_pytorch_model.bin")
    return folder, model


# --- the reference shapes VAE: a state dict ------------------------------------------------------

def write_reference_vae(path: Path, seed: int = 0) -> dict[str, torch.Tensor]:
    """A state dict with the reference file's keys and shapes (random weights); returns it."""
    torch.manual_seed(seed)
    state = {k: torch.randn_like(v) * 0.05 for k, v in ReferenceShapesVAE().state_dict().items()}
    torch.save(state, path)
    return state


# --- a paper dry run --------------------------------------------------------------------------

@dataclass(frozen=True)
class PaperWeights:
    """Where the three stand-in weight files were written."""

    stylegan2: Path
    clip: Path
    reference_vae: Path


def write_paper_weights(root: Path) -> PaperWeights:
    """Write the three stand-ins under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    weights = PaperWeights(root / "stylegan2-ffhq-256x256.pkl", root / "openai-clip", root / "vae-shapes.pt")
    write_nvidia_pickle(weights.stylegan2, tiny_stylegan2(DRY_RUN_STYLEGAN2))
    write_clip_folder(weights.clip)
    write_reference_vae(weights.reference_vae)
    return weights


def paper_overrides(weights: PaperWeights, device: str) -> dict[str, dict]:
    """Per-notebook parameters of a paper run that reaches every stage in minutes: the paper's backends
    (from ``weights``) and prompts, with a handful of iterations and epochs and tiny archives."""
    return {
        # label_gap 0: the stand-in VAE's random blobs have near-equal shape measures, which the paper's
        # dropped band could swallow whole, leaving no synthetic set to fine-tune on
        "01_shapes_debiasing": dict(device=device, reference_vae_path=str(weights.reference_vae), scorer_steps=20,
                                    iterations=6, archive_dims=[10, 10], label_gap=0.0, biases=[0.95], seeds=[0],
                                    classifier_size=32, pretrain_epochs=1, finetune_epochs=1, n_test=100,
                                    oracle_images=100, oracle_epochs=1),
        "02_face_synthesis": dict(device=device, stylegan2_path=str(weights.stylegan2), clip_weights=str(weights.clip),
                                  audit_steps=5, calibration_samples=16, iterations=6, archive_dims=[10, 10, 2, 10]),
        "03_face_recognition": dict(device=device, depth=18, width=4, input_size=64, stem_stride=2, epochs=1,
                                    real_epochs=1, seeds=1, batch_size=16),
    }
