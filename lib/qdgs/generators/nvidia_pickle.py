"""Reading NVIDIA's network pickles without running the code they carry.

NVIDIA's StyleGAN2 pickles hold "persistent" objects: each carries its own source code, which
``pickle.load`` would import and run. :class:`NetworkUnpickler` (the project's restricted
unpickler, :mod:`qdgs.safe_pickle`, extended) maps every ``dnnlib`` / ``torch_utils`` /
``training`` class to an inert stub that only records its pickled state (parameters, buffers,
sub-modules, a few scalars); tensors are rebuilt with ``torch.load(weights_only=True)``; any other
global is refused. :func:`state_dict_from_stub` then flattens a network's stub into a
``{name: tensor}`` dict with NVIDIA's parameter names, which :mod:`qdgs.generators.stylegan2` loads.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import torch

from qdgs.safe_pickle import CONTAINERS, NUMPY_ARRAYS, RestrictedUnpickler

_STUB_MODULES = ("dnnlib", "torch_utils", "training")
_SAFE_GLOBALS = NUMPY_ARRAYS | CONTAINERS | {("torch", "Size"), ("torch", "device")}


class PersistentStub:
    """An inert stand-in for one of NVIDIA's persistent objects: its class name and pickled state."""

    def __init__(self, class_name: str, state: dict[str, Any]) -> None:
        self.class_name, self.state = class_name, state

    def __repr__(self) -> str:
        return f"PersistentStub({self.class_name})"


class DictStub(dict):
    """An inert stand-in for ``dnnlib.EasyDict`` and other dict-like helper classes."""

    def __setstate__(self, state: Any) -> None:
        self.pickled_state = state


class ObjectStub:
    """An inert stand-in for any other ``dnnlib`` / ``torch_utils`` / ``training`` class."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args, self.kwargs = args, kwargs

    def __setstate__(self, state: Any) -> None:
        self.pickled_state = state


def _reconstruct_persistent(meta: dict[str, Any]) -> PersistentStub:
    """Replaces ``torch_utils.persistence._reconstruct_persistent_obj``: keep the state, skip the source."""
    if not isinstance(meta, dict) or meta.get("type") != "class":
        raise pickle.UnpicklingError("unsupported persistent object in the StyleGAN2 pickle")
    return PersistentStub(str(meta.get("class_name")), meta.get("state") or {})


def _load_storage(data: bytes) -> Any:
    """Replaces ``torch.storage._load_from_bytes`` with a weights-only load (no code runs)."""
    return torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")


class NetworkUnpickler(RestrictedUnpickler):
    """Unpickles NVIDIA network pickles into stubs; refuses every global it does not know to be inert."""

    def __init__(self, file: io.BufferedIOBase) -> None:
        super().__init__(file, _SAFE_GLOBALS, what="the StyleGAN2 pickle")

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch_utils.persistence" and name == "_reconstruct_persistent_obj":
            return _reconstruct_persistent
        if module == "torch.storage" and name == "_load_from_bytes":
            return _load_storage
        if module.split(".")[0] in _STUB_MODULES:
            return DictStub if name.endswith("Dict") else ObjectStub
        if module == "torch._utils" and name.startswith("_rebuild_"):
            return getattr(torch._utils, name)
        if module == "torch" and (name.endswith("Storage") or isinstance(getattr(torch, name, None), torch.dtype)):
            return getattr(torch, name)
        return super().find_class(module, name)


def read_network_pickle(path: str | Path, key: str = "G_ema") -> PersistentStub:
    """The stub of one network (``G_ema`` by default) from an NVIDIA network pickle."""
    try:
        with open(path, "rb") as f:
            data = NetworkUnpickler(f).load()
    except (pickle.UnpicklingError, EOFError, ValueError) as err:  # truncated or not a pickle at all
        raise RuntimeError(f"{path} is unreadable ({type(err).__name__}: {err}); download the NVIDIA network "
                           "pickle again") from err
    if not isinstance(data, dict) or key not in data or not isinstance(data[key], PersistentStub):
        raise RuntimeError(f"{path} is not a StyleGAN2 network pickle with '{key}': use one of NVIDIA's")
    return data[key]


def state_dict_from_stub(stub: PersistentStub, prefix: str = "") -> dict[str, torch.Tensor]:
    """Flatten a module stub's parameters and buffers into NVIDIA-named tensors."""
    out: dict[str, torch.Tensor] = {}
    for group in ("_parameters", "_buffers"):
        for name, value in (stub.state.get(group) or {}).items():
            if value is not None:
                out[prefix + name] = value.detach().clone() if isinstance(value, torch.Tensor) else torch.as_tensor(value)
    for name, child in (stub.state.get("_modules") or {}).items():
        if isinstance(child, PersistentStub):
            out.update(state_dict_from_stub(child, f"{prefix}{name}."))
    return out


def find_stub(stub: PersistentStub, path: str) -> PersistentStub:
    """The sub-module stub at a dotted ``path`` (``"synthesis.b256.conv1"``)."""
    for part in path.split("."):
        stub = stub.state["_modules"][part]
    return stub
