"""``model.pt`` read torch-free, without unpickling: the format check and the stored scalars.

The Scipion plugin checks a model file before any run (load model, 'Start from a trained model')
in an environment without torch; nothing here unpickles (no code in a file can run): the pickle
stream of the ``torch.save`` zip archive is walked opcode by opcode.  The engine itself loads
model files with ``weights_only=True`` (:mod:`scnet.modelfile`).  Standard library only.
"""
from __future__ import annotations

import os
import pickletools
import zipfile
from typing import Dict, Iterable, List, Optional, Sequence

MODEL_FORMAT = "scnet-model-1"  # the "format" entry of model.pt


def _pickle_strings(data: bytes) -> Iterable[str]:
    for op, arg, _ in pickletools.genops(data):
        if isinstance(arg, str):
            yield arg


def model_file_errors(path: str) -> List[str]:
    """Torch-free check that ``path`` looks like an SC-Net ``model.pt`` (not another ``.pt``).

    A ``torch.save`` file is a zip archive holding ``<name>/data.pkl``; the SC-Net model's
    pickle holds the string :data:`MODEL_FORMAT` under the key ``format``.  Nothing is
    unpickled (no code can run); the engine loads it later with ``weights_only=True``.
    """
    if not path:
        return ["Give the model file (model.pt)."]
    if not os.path.isfile(path):
        return [f"Model file not found: {path}."]
    try:
        with zipfile.ZipFile(path) as z:
            pkl = [n for n in z.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
            if not pkl:
                return [f"{path} is a zip archive but not a torch file (no data.pkl); give the model.pt "
                        f"written by `scnet train`."]
            data = z.read(pkl[0])
    except zipfile.BadZipFile:
        return [f"{path} is not a torch model file (expected the zip archive written by `scnet train`); "
                f"it may be truncated or another kind of file."]
    except (OSError, EOFError, RuntimeError) as exc:  # truncated member, CRC error...
        return [f"{path} cannot be read ({exc}); it may be truncated: copy it again."]
    try:
        strings = set(_pickle_strings(data))
    except Exception as exc:  # broken pickle stream
        return [f"{path}: its content is damaged ({exc}); copy the model again."]
    if MODEL_FORMAT in strings and "state_dict" in strings and "normalisation" in strings:
        return []
    if "optimizer" in strings and "state_dict" in strings:
        return [f"{path} is a training checkpoint (checkpoint.pt), not a model: give model.pt from the same folder."]
    return [f"{path} is a torch file but not an SC-Net model (no '{MODEL_FORMAT}' format entry): give the "
            f"model.pt written by `scnet train`."]


NETWORK_OPTIONS = ("base_width", "depth", "upsampling_block")  # the training options that shape the network
_MEMO_OPS = ("MEMOIZE", "BINPUT", "LONG_BINPUT", "PUT")
_NUMBER_OPS = ("BINFLOAT", "FLOAT", "BININT", "BININT1", "BININT2", "LONG1", "INT")


def _model_file_scalars(path: str, keys: Sequence[str]) -> Dict[str, object]:
    """The first number or bool stored after each of ``keys`` in ``model.pt``'s pickle, read torch-free
    without unpickling (opcodes only; nothing runs); keys not found (or an unreadable file) are absent."""
    found: Dict[str, object] = {}
    try:
        with zipfile.ZipFile(path) as z:
            pkl = [n for n in z.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
            data = z.read(pkl[0]) if pkl else b""
        pending = None
        for op, arg, _ in pickletools.genops(data):
            if pending is not None:
                if op.name in ("NEWTRUE", "NEWFALSE"):
                    found[pending], pending = op.name == "NEWTRUE", None
                    continue
                if op.name in _NUMBER_OPS:
                    found[pending], pending = arg, None
                    continue
                if op.name not in _MEMO_OPS:
                    pending = None
            if isinstance(arg, str) and arg in keys and arg not in found:
                pending = arg
    except Exception:  # unreadable: model_file_errors says why
        return {}
    return found


def model_file_voxel_size(path: str) -> Optional[float]:
    """The training voxel size (A/px) stored in ``model.pt``, read torch-free without unpickling; None if absent."""
    v = _model_file_scalars(path, ("voxel_size",)).get("voxel_size")
    return float(v) if isinstance(v, float) and v > 0 else None


def model_file_network(path: str) -> Dict[str, object]:
    """The network options (:data:`NETWORK_OPTIONS`) of ``model.pt``'s ``model_config``, read torch-free
    without unpickling (``model_config`` is stored before ``train_config``, so the first value of each key
    is the network's); options not found are absent."""
    return _model_file_scalars(path, NETWORK_OPTIONS)


def init_model_errors(model_network: Dict[str, object], network: Dict[str, object], path: str) -> List[str]:
    """A model to start a training from (``--init-model``, 'Start from a trained model') must have the
    new training's network: keys present in both dicts are compared."""
    diff = [f"{k} {model_network[k]!r} in the model, {network[k]!r} here"
            for k in sorted(set(model_network) & set(network)) if model_network[k] != network[k]]
    if not diff:
        return []
    return [f"Initial model {path}: its network differs from this training's ({', '.join(diff)}). Train with "
            f"the model's network options (base width, depth, up-sampling block) or from scratch."]
