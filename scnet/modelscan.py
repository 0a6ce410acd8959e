"""``model.pt`` read torch-free, without unpickling: the format check and the stored scalars.

The Scipion plugin checks a model file before any run (load model, 'Start from a trained model')
in an environment without torch; nothing here unpickles (no code in a file can run): the pickle
stream of the ``torch.save`` zip archive is walked opcode by opcode.  The engine itself loads
model files with ``weights_only=True`` (:mod:`scnet.modelfile`).  Standard library only.

Bounds, checked before anything is read (here and by the engine, :func:`archive_errors`): a regular
file (a FIFO or ``/dev/zero`` is never read); the archive's entries, once inflated, no larger than
the file holds (``torch.save`` stores them uncompressed: a 2 MB file cannot inflate to 2 GB); and the
network the header asks for (:func:`network_tensor_count`) no larger than the weights stored.
"""
from __future__ import annotations

import os
import pickletools
import zipfile
from typing import Dict, Iterable, List, Optional, Sequence

from .files import file_errors

MODEL_FORMAT = "scnet-model-1"  # the "format" entry of model.pt
MAX_ENTRIES = 10_000            # a model.pt holds one entry per tensor (tens to hundreds)
INFLATE_SLACK = 2 ** 20         # bytes an archive may inflate beyond its own size (headers, tiny entries)


class _Unreadable(Exception):
    """A model file refused before its content is read (the message says why)."""


def archive_errors(path: str, what: str = "model") -> List[str]:
    """[] when ``path`` is a regular file holding a zip archive whose entries, inflated, fit in the file
    (``torch.save`` stores them uncompressed); else one message.  Reads only the zip directory."""
    errors = file_errors(path, f"The {what} file", f"Give the {what}.pt written by `scnet train`.")
    if errors:
        return errors
    size = os.path.getsize(path)
    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, RuntimeError):
        return [f"{path} is not a torch {what} file (expected the zip archive written by `scnet train`); it may "
                f"be truncated or another kind of file."]
    if len(infos) > MAX_ENTRIES:
        return [f"{path} holds {len(infos)} archive entries; an SC-Net {what} file holds far fewer. It was not "
                f"written by `scnet train`."]
    inflated = sum(max(0, i.file_size) for i in infos)
    if inflated > 2 * size + INFLATE_SLACK:
        return [f"{path}: its archive entries inflate to {inflated / 1e6:.0f} MB but the file is {size / 1e6:.1f} MB "
                f"(an SC-Net {what} file is stored uncompressed); it was not written by `scnet train` and is not "
                f"read."]
    return []


def _pickle_bytes(path: str, what: str = "model") -> bytes:
    """The ``data.pkl`` entry of a torch file, after :func:`archive_errors`; raises ``_Unreadable``."""
    for why in archive_errors(path, what):
        raise _Unreadable(why)
    try:
        with zipfile.ZipFile(path) as z:
            pkl = [n for n in z.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
            if not pkl:
                raise _Unreadable(f"{path} is a zip archive but not a torch file (no data.pkl); give the model.pt "
                                  f"written by `scnet train`.")
            return z.read(pkl[0])
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, ValueError) as exc:  # truncated member, CRC...
        raise _Unreadable(f"{path} cannot be read ({exc}); it may be truncated: copy it again.") from None


def stored_bytes(path: str) -> int:
    """Bytes of tensor data in a torch file (its ``data/`` entries); 0 when unreadable."""
    try:
        with zipfile.ZipFile(path) as z:
            return sum(i.file_size for i in z.infolist() if "/data/" in i.filename)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, RuntimeError):
        return 0


def network_tensor_count(model_config: Dict[str, object]) -> int:
    """Values in the ``state_dict`` of ``scnet.model.SCNet`` for a ``model_config`` (torch-free; tested
    against the network): per level a 3^3 convolution without bias and a BatchNorm (weight, bias, running
    mean and variance, step count), the bottleneck, the decoder, the lifted 3^3 and the 1x1 head; a row-blind
    network (``row_gap`` set, the slab mode) also its 1x1 mix of the two branches."""
    from .choices import NETWORK_DEFAULTS
    bw = int(model_config.get("base_width", NETWORK_DEFAULTS["base_width"]))
    depth = int(model_config.get("depth", NETWORK_DEFAULTS["depth"]))
    mw = int(model_config.get("max_width", 64))
    c = [min(bw * 2 ** k, mw) for k in range(depth)]

    def cbr(cin, cout):
        return 27 * cin * cout + 4 * cout + 1
    n, cin = 0, 1
    for k in range(depth):
        n, cin = n + cbr(cin, c[k]), c[k]
    n += cbr(c[-1], c[-1])
    for k in range(depth - 2, -1, -1):
        n += cbr(c[k + 1] + c[k], c[k])
    n += 27 * (c[0] + 1) * c[0] + c[0] + c[0] + 1
    if model_config.get("row_gap") is not None:
        n += 2 * c[0] * c[0] + c[0]
    return n


MAX_DEPTH = 5


def network_size_errors(model_config: Dict[str, object], stored: int, path: str) -> List[str]:
    """The network a header asks for must be one SC-Net builds (depth 1..5, widths >= 1) and no larger than
    the ``stored`` bytes of weights (4 bytes a value): checked before any network is built."""
    try:
        depth = int(model_config.get("depth", 1))
        widths = [int(model_config.get(k, 1)) for k in ("base_width", "max_width")]
        count = network_tensor_count(model_config)
    except (TypeError, ValueError, OverflowError):
        return [f"{path}: its network configuration {model_config} is not a valid one; the file is damaged."]
    if not 1 <= depth <= MAX_DEPTH or min(widths) < 1:
        return [f"{path}: its network configuration {model_config} is not one SC-Net builds (depth 1..{MAX_DEPTH}, "
                f"widths >= 1); the file is damaged or was edited."]
    if 4 * count > stored + INFLATE_SLACK:
        return [f"{path}: the weights do not match the network configuration stored with them (it asks for "
                f"{count} values, {4 * count / 1e6:.1f} MB, the file holds {stored / 1e6:.1f} MB of weights); the "
                f"file is damaged or was edited. Re-run `scnet train`."]
    return []


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
    try:
        data = _pickle_bytes(path)
    except _Unreadable as exc:
        return [str(exc)]
    try:
        strings = set(_pickle_strings(data))
    except Exception as exc:  # broken pickle stream
        return [f"{path}: its content is damaged ({exc}); copy the model again."]
    if MODEL_FORMAT in strings and "state_dict" in strings and "normalisation" in strings:
        return network_size_errors(_scalars(data, NETWORK_OPTIONS + ("max_width",)), stored_bytes(path), path)
    if "optimizer" in strings and "state_dict" in strings:
        return [f"{path} is a training checkpoint (checkpoint.pt), not a model: give model.pt from the same folder."]
    return [f"{path} is a torch file but not an SC-Net model (no '{MODEL_FORMAT}' format entry): give the "
            f"model.pt written by `scnet train`."]


NETWORK_OPTIONS = ("base_width", "depth", "upsampling_block")  # the training options that shape the network
_MEMO_OPS = ("MEMOIZE", "BINPUT", "LONG_BINPUT", "PUT")
_NUMBER_OPS = ("BINFLOAT", "FLOAT", "BININT", "BININT1", "BININT2", "LONG1", "INT")


def _scalars(data: bytes, keys: Sequence[str]) -> Dict[str, object]:
    """The first number or bool stored after each of ``keys`` in a pickle stream (opcodes only)."""
    found: Dict[str, object] = {}
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
    return found


def _model_file_scalars(path: str, keys: Sequence[str]) -> Dict[str, object]:
    """The first number or bool stored after each of ``keys`` in ``model.pt``'s pickle, read torch-free
    without unpickling (opcodes only; nothing runs); keys not found (or an unreadable file) are absent."""
    try:
        return _scalars(_pickle_bytes(path), keys)
    except Exception:  # unreadable: model_file_errors says why
        return {}


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
