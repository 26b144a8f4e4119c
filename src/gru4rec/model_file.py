"""The model file: one ``torch.save`` archive of tensors and plain values only.

Contents (a dict): ``format`` ("gru4rec-model"), ``format_version``, ``gru4rec_version``,
``config`` (every hyperparameter), ``item_ids`` (int64 tensor, or list of str),
``item_support`` (int64 tensor, training events per item), ``params`` (name -> float32
tensor) and, optionally, ``optimizer`` (parameter name -> {state name -> float32 tensor}:
the optimiser state a retraining continues from; absent in slim serving files, and in files
of earlier releases, which read as before) and, for a sequence-aware model
(``session_boundary=carry``), ``user_ids`` (like ``item_ids``) and ``user_states`` ((U, sum
of the layer sizes) float32: each user's state at the end of the training data). It loads with
``torch.load(path, weights_only=True)``, so reading a file never runs code from it. Files
are written to a temporary name and renamed into place.

**Integrity.** Since format version 2 a file carries ``checksum``: the SHA-256 of everything
else in it (:func:`payload_digest`: every tensor's dtype, shape and bytes, every plain value,
in a fixed order). Loading recomputes it, so a changed weight, id or setting, or a flipped
byte anywhere, is reported as damage or tampering instead of being loaded. (It detects
accidents and casual edits; someone who rewrites the file can rewrite the checksum too, so
a file from an untrusted source is still untrusted.)

**Compatibility policy.** A release reads its own format version and every earlier one;
files are always written in the newest. Version 1 files (no checksum) load with a warning
that their integrity cannot be checked; saving them again upgrades them. A file of a newer
version than this release knows is refused with the advice to upgrade gru4rec.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gru4rec.config import GRU4RecConfig
from gru4rec.errors import ConfigError, ModelFileError
from gru4rec.nn.network import Network
from gru4rec.nn.optim import state_shapes

__all__ = ["FORMAT", "FORMAT_VERSION", "OptimizerState", "UserStateArrays", "check_integrity",
           "ids_from_file", "ids_to_file", "load_payload", "payload_digest", "read_model_file",
           "save_atomically", "write_model_file"]

log = logging.getLogger(__name__)

FORMAT = "gru4rec-model"
FORMAT_VERSION = 2  # 2: with the checksum; 1 (no checksum) is still read


OptimizerState = dict[str, dict[str, torch.Tensor]]
UserStateArrays = tuple[np.ndarray, torch.Tensor]  # user ids (U,), states (U, sum H)


def write_model_file(path: str | Path, config: GRU4RecConfig, item_ids: np.ndarray,
                     support: np.ndarray, params: dict[str, torch.Tensor],
                     optimizer: OptimizerState | None = None,
                     users: UserStateArrays | None = None) -> None:
    """Atomically write a model file (temp file in the same folder, then rename), with the
    optimiser state when ``optimizer`` is given and the users' states when ``users`` (user
    ids (U,), states (U, sum H)) is.

    Raises:
        ModelFileError: the folder of ``path`` does not exist.
        OSError: the file cannot be written (permissions, disk full); the temporary file is
            removed and ``path`` is left as it was.
    """
    from gru4rec import __version__

    path = Path(path)
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "gru4rec_version": __version__,
        "config": config.to_dict(),
        "item_ids": ids_to_file(item_ids),
        "item_support": torch.as_tensor(support, dtype=torch.int64),
        "params": {n: t.detach().to("cpu", torch.float32).contiguous()
                   for n, t in params.items()},
    }
    if optimizer is not None:
        payload["optimizer"] = {n: {k: t.detach().to("cpu", torch.float32).contiguous()
                                    for k, t in st.items()} for n, st in optimizer.items()}
    if users is not None:
        payload["user_ids"] = ids_to_file(users[0])
        payload["user_states"] = users[1].detach().to("cpu", torch.float32).contiguous()
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ModelFileError(f"cannot save the model to {path}: folder {folder} does not exist")
    payload["checksum"] = payload_digest(payload)
    save_atomically(payload, path)


def save_atomically(payload: Any, path: Path) -> None:
    """``torch.save`` to a temporary file in ``path``'s folder, flushed to disk, then renamed
    onto ``path``, and (on POSIX) the folder flushed too: a reader (or a run killed at any
    moment) sees the old file or the new one, never a part, and after the call returns the
    new one survives a power loss. A writer killed mid-write (SIGKILL) may leave its
    temporary file (``.NAME.*.tmp``) behind, never anything at ``path``.

    Raises:
        OSError: the file cannot be written (disk full, permissions), with ``path`` as its
            ``filename`` and the system's reason (also when torch reports a failed write as
            a RuntimeError); the temporary file is removed and ``path`` is left as it was.
            Only when syncing the folder fails (an I/O error, after the rename) is the new
            file already at ``path``.
    """
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as fh:
            torch.save(payload, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        cause: BaseException | None = exc if isinstance(exc, Exception) else None
        while cause is not None and not isinstance(cause, OSError):
            cause = cause.__cause__ or cause.__context__  # torch wraps a failed write
        if isinstance(cause, OSError) and cause.errno is not None:
            raise OSError(cause.errno, cause.strerror or os.strerror(cause.errno),
                          str(path)) from exc
        raise
    _sync_folder(path.parent)  # the rename is in the folder: unsynced, a power loss can undo it


# the folder cannot be opened or synced there (permissions, a file system without it): the
# file is in place and its data on disk, only the rename's durability is not guaranteed
_SYNC_UNSUPPORTED = {errno.EACCES, errno.EPERM, errno.EINVAL, errno.ENOTSUP, errno.EBADF}


def _sync_folder(folder: Path) -> None:
    """fsync ``folder`` (POSIX), so that a rename in it survives a power loss; a no-op on
    Windows, which cannot open a folder (no ``O_DIRECTORY``)."""
    if not hasattr(os, "O_DIRECTORY"):
        return
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        if exc.errno not in _SYNC_UNSUPPORTED:
            raise


def read_model_file(path: str | Path) -> tuple[GRU4RecConfig, np.ndarray, np.ndarray,
                                                dict[str, torch.Tensor],
                                                OptimizerState | None,
                                                UserStateArrays | None]:
    """Load and verify a model file -> (config, item ids, item support, params on CPU,
    optimiser state on CPU or None when the file has none, (user ids, user states on CPU)
    or None when the file has none).

    Raises:
        ModelFileError: the file does not exist; cannot be loaded as tensors and plain values
            (truncated, corrupted, another kind of file, or holding objects that would run
            code); is not a gru4rec model file or has another format version; or was altered
            (an invalid config, item ids, support, or weights whose names, shapes, dtype or
            finiteness do not match the config).
    """
    path = Path(path)
    payload = load_payload(path)
    if isinstance(payload, dict) and payload.get("format") == "gru4rec-baseline":
        raise ModelFileError(f"{path} is a baseline model file ({payload.get('model')!r}), not "
                             "a GRU4Rec one; load it with gru4rec.baselines.Baseline.load "
                             "(gru4rec run -l reads both)")
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ModelFileError(f"{path} is not a gru4rec model file")
    check_integrity(payload, path, FORMAT_VERSION)
    try:
        config = GRU4RecConfig.from_dict(payload["config"])
        ids = ids_from_file(payload["item_ids"], "item_ids")
        support = payload["item_support"].numpy()
        params = payload["params"]
        _check_params(params, config, len(ids), support)
        optimizer = payload.get("optimizer")
        if optimizer is not None:
            _check_optimizer(optimizer, params, config)
        users = _users(payload, config)
    except (KeyError, TypeError, AttributeError, ConfigError, ValueError) as exc:
        raise ModelFileError(f"{path} is damaged or was altered: {exc}") from None
    return config, ids, support, params, optimizer, users


def payload_digest(payload: dict[str, Any]) -> str:
    """SHA-256 (hex) of a file's payload without its ``checksum``: tensors by dtype, shape
    and bytes, plain values by their repr, dict keys in sorted order."""
    digest = hashlib.sha256()
    _feed(digest, {k: v for k, v in payload.items() if k != "checksum"})
    return digest.hexdigest()


def _feed(digest: Any, value: Any) -> None:
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu().contiguous()
        digest.update(f"T{t.dtype}{tuple(t.shape)}".encode())
        digest.update(t.numpy().reshape(-1).view(np.uint8))  # the bytes, without a copy
    elif isinstance(value, dict):
        digest.update(f"D{len(value)}".encode())
        for key in sorted(value, key=str):
            _feed(digest, str(key))
            _feed(digest, value[key])
    elif isinstance(value, list | tuple):
        digest.update(f"L{len(value)}".encode())
        for item in value:
            _feed(digest, item)
    else:
        digest.update(f"V{type(value).__name__}:{value!r};".encode())


def check_integrity(payload: dict[str, Any], path: Path, newest: int) -> None:
    """Check a loaded payload's format version (1..``newest``) and, from version 2, its
    checksum (see the module docstring).

    Raises:
        ModelFileError: a newer or unknown version, or a checksum that is missing or does
            not match the contents.
    """
    version = payload.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version:
        raise ModelFileError(f"{path} has an unknown format version {version!r}")
    if version > newest:
        raise ModelFileError(f"{path} has format version {version}, newer than this gru4rec "
                             f"reads (up to {newest}); upgrade gru4rec to load it")
    if version == 1:
        log.warning("%s is a format version 1 file without a checksum: its integrity cannot "
                    "be checked (saving it again adds one)", path)
        return
    if payload.get("checksum") != payload_digest(payload):
        raise ModelFileError(f"{path} is damaged or was altered: its checksum does not match "
                             "its contents")


def load_payload(path: Path) -> Any:
    """``torch.load`` of a model file with ``weights_only=True`` (tensors and plain values
    only, so nothing in the file runs), on the CPU.

    Raises:
        ModelFileError: the file does not exist or cannot be loaded that way.
    """
    if not path.is_file():
        raise ModelFileError(f"model file {path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # torch raises many types for truncated/foreign/unsafe files
        # torch's own text would suggest weights_only=False, i.e. running the file's code
        raise ModelFileError(f"{path} is not a readable gru4rec model file: it is truncated, "
                             "corrupted, of another kind, or holds objects other than tensors "
                             "and plain values (which are never loaded)") from None


def ids_to_file(ids: np.ndarray) -> Any:
    """Ids as stored: an int64 tensor, or a list of str."""
    return torch.as_tensor(ids) if ids.dtype.kind in "iu" else ids.tolist()


def ids_from_file(raw: Any, what: str) -> np.ndarray:
    """Stored ids back as an int64 or str array (ValueError naming ``what`` otherwise)."""
    if isinstance(raw, torch.Tensor):
        return raw.numpy().astype(np.int64)
    if isinstance(raw, list) and all(isinstance(x, str) for x in raw):
        return np.asarray(raw, dtype=str)
    raise ValueError(f"{what} must be an int64 tensor or a list of str")


def _users(payload: dict[str, Any], config: GRU4RecConfig) -> UserStateArrays | None:
    """The users' ids and states of the file, checked against the config, or None."""
    if "user_ids" not in payload and "user_states" not in payload:
        return None
    ids = ids_from_file(payload["user_ids"], "user_ids")
    states = payload["user_states"]
    shape = (len(ids), sum(config.layers))
    if not isinstance(states, torch.Tensor) or tuple(states.shape) != shape or \
            states.dtype != torch.float32 or not bool(torch.isfinite(states).all()):
        raise ValueError(f"user_states should be finite float32 of shape {shape}")
    if config.session_boundary != "carry":
        raise ValueError("user states belong to a model with session_boundary=carry")
    return ids, states


def _check_params(params: Any, config: GRU4RecConfig, n_items: int,
                  support: np.ndarray) -> None:
    if not isinstance(params, dict):
        raise ValueError("params must be a dict of tensors")
    want = Network.schema(config, n_items)
    if set(params) != set(want):
        raise ValueError(f"parameter names {sorted(params)} do not match {sorted(want)}")
    for name, shape in want.items():
        t = params[name]
        if not isinstance(t, torch.Tensor) or tuple(t.shape) != shape:
            raise ValueError(f"parameter {name} should have shape {shape}")
        if t.dtype != torch.float32 or not bool(torch.isfinite(t).all()):
            raise ValueError(f"parameter {name} must be finite float32 values")
    if support.shape != (n_items,):
        raise ValueError(f"item_support should have {n_items} entries")


def _check_optimizer(optimizer: Any, params: dict[str, torch.Tensor],
                     config: GRU4RecConfig) -> None:
    """The state names and shapes the config's optimiser keeps, for every parameter."""
    if not isinstance(optimizer, dict) or set(optimizer) != set(params):
        raise ValueError("the optimiser state must have an entry for every parameter")
    for name, st in optimizer.items():
        want = state_shapes(tuple(params[name].shape), config.adapt, config.momentum)
        if not isinstance(st, dict) or set(st) != set(want):
            raise ValueError(f"optimiser state of {name} should hold {sorted(want)}")
        for key, shape in want.items():
            t = st[key]
            if not isinstance(t, torch.Tensor) or tuple(t.shape) != shape or \
                    t.dtype != torch.float32 or not bool(torch.isfinite(t).all()):
                raise ValueError(f"optimiser state {name}.{key} should be finite float32 "
                                 f"of shape {shape}")
