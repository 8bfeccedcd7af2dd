"""The container format of every file dnnergy saves: a JSON header and named tensors, checksummed.

Compressed models, structured records and pretrained checkpoints are all containers;
they differ in ``kind`` and in what their header holds. Nothing is pickled, so reading a
file never runs code from it. Layout (integers little-endian):

======  ==========  ==============================================================
offset  size        content
======  ==========  ==============================================================
0       8 bytes     magic ``b"\\x89DNRGY\\r\\n"`` (PNG-style: the high byte and the
                    CR LF pair catch text-mode mangling and non-dnnergy files)
8       4 bytes     format version, uint32 (:data:`FORMAT_VERSION`, 1)
12      32 bytes    SHA-256 of every byte from offset 44 to the end of the file
44      8 bytes     header length ``n``, uint64
52      ``n`` bytes header: a UTF-8 JSON object, always with ``"kind"`` (str) and
                    ``"dnnergy_version"`` (str) besides the writer's own keys
52+n    the rest    tensors: the bytes of ``safetensors.torch.save(tensors)``
======  ==========  ==============================================================

Reading checks, in order: magic, version, length, checksum, header, ``kind``; each
failure is a :class:`~dnnergy.errors.UserInputError` that names the file. A damaged
length field reads as "truncated", since that is what it claims.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import torch
from safetensors import SafetensorError
from safetensors.torch import load as _load_tensors
from safetensors.torch import save as _save_tensors

from ..errors import UserInputError
from .atomic import atomic_write

__all__ = ["Container", "MAGIC", "FORMAT_VERSION", "write_container", "read_container", "dumps_container",
           "loads_container"]

#: The first 8 bytes of every dnnergy file.
MAGIC = b"\x89DNRGY\r\n"
#: The format version this code writes and the newest it reads.
FORMAT_VERSION = 1
_PREFIX = 52  # magic + version + digest + header length
_RESERVED = ("kind", "dnnergy_version")


@dataclass(frozen=True, slots=True)
class Container:
    """One container as read back: its ``kind``, format ``version``, ``header`` and ``tensors``.

    ``header`` is the whole stored JSON object, so besides the writer's keys it holds
    ``"kind"`` and ``"dnnergy_version"`` (the dnnergy that wrote the file); JSON arrays
    come back as lists. ``tensors`` are CPU tensors keyed by name, each with its own
    memory. ``path`` is the file read, or ``None`` for :func:`loads_container`.

    Example: ``c = loads_container(dumps_container("weights", {"epochs": 3}, {"w": torch.ones(2, 3)}), kind="weights")``
    has ``c.kind == "weights"``, ``c.version == 1``, ``c.header == {"kind": "weights", "dnnergy_version": "0.1.0",
    "epochs": 3}``, ``c.tensors["w"].shape == (2, 3)`` and ``c.path is None``.
    """

    kind: str
    version: int
    header: dict[str, Any]
    tensors: dict[str, torch.Tensor] = field(repr=False)
    path: Path | None = None

    def __post_init__(self) -> None:
        _check_kind(self.kind)
        if not isinstance(self.version, int) or not 1 <= self.version <= FORMAT_VERSION:
            raise UserInputError(f"Container: version must be an int in 1..{FORMAT_VERSION} (got {self.version!r})")
        if not isinstance(self.header, dict) or self.header.get("kind") != self.kind:
            raise UserInputError(f"Container: header must be a dict whose 'kind' is {self.kind!r}")
        if not isinstance(self.tensors, dict) or not all(
                isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in self.tensors.items()):
            raise UserInputError("Container: tensors must map str names to torch.Tensor")
        if self.path is not None:
            object.__setattr__(self, "path", Path(self.path))


def _check_kind(kind: object) -> None:
    if not isinstance(kind, str) or not kind:
        raise UserInputError(f"container kind must be a non-empty str (got {kind!r})")


# -- writing ----------------------------------------------------------------------
def _plain(value: Any, where: str, ancestors: tuple[int, ...] = ()) -> Any:
    """``value`` as plain JSON data (dicts, lists, scalars); errors name the offending key."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise UserInputError(f"{where} is {value!r}; JSON has no NaN or infinity (store None or a string)")
        return value
    if not isinstance(value, (Mapping, list, tuple)):
        raise TypeError(f"{where} is a {type(value).__name__}, which a container header cannot hold "
                        "(expected str, int, float, bool, None, list, tuple or a mapping with str keys)")
    if id(value) in ancestors:
        raise UserInputError(f"{where} contains itself")
    inner = ancestors + (id(value),)
    if not isinstance(value, Mapping):
        return [_plain(item, f"{where}[{i}]", inner) for i, item in enumerate(value)]
    for key in value:
        if not isinstance(key, str):
            raise TypeError(f"{where} has a key {key!r} of type {type(key).__name__}; header keys must be str")
    return {key: _plain(item, f"{where}[{key!r}]", inner) for key, item in value.items()}


def _header_bytes(kind: str, header: Mapping[str, Any]) -> bytes:
    from .. import __version__  # here, not at import time: dnnergy/__init__ imports this package

    _check_kind(kind)
    if not isinstance(header, Mapping):
        raise TypeError(f"container header must be a mapping (got {type(header).__name__})")
    taken = [key for key in _RESERVED if key in header]
    if taken:
        raise UserInputError(f"header keys {taken} are reserved: the container sets them itself")
    plain = {"kind": kind, "dnnergy_version": __version__, **_plain(header, "header")}
    return json.dumps(plain, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")


def _unshared(tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``tensors`` made safe for safetensors: detached, contiguous, no two overlapping in memory.

    Only what must be copied is: a non-contiguous tensor (packed by ``contiguous()``) and
    a tensor overlapping the bytes of one kept earlier (cloned); the rest are saved from
    their own memory.
    """
    if not isinstance(tensors, Mapping):
        raise TypeError(f"container tensors must be a mapping of name to tensor (got {type(tensors).__name__})")
    out: dict[str, torch.Tensor] = {}
    spans: dict[tuple[torch.device, int], list[tuple[int, int]]] = {}
    for name, tensor in tensors.items():
        if not isinstance(name, str) or name == "__metadata__":
            raise UserInputError(f"tensor name {name!r} is not allowed: names are str other than '__metadata__'")
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(f"tensor {name!r} is a {type(tensor).__name__}, expected a torch.Tensor")
        if tensor.layout != torch.strided or tensor.is_meta:
            raise UserInputError(f"tensor {name!r} is {tensor.layout} on {tensor.device}; only dense tensors "
                                 "with data can be stored (call .to_dense() or materialise it)")
        tensor = tensor.detach()
        if not tensor.is_contiguous():
            out[name] = tensor.contiguous()
            continue
        start = tensor.data_ptr()
        end = start + tensor.numel() * tensor.element_size()
        kept = spans.setdefault((tensor.device, tensor.untyped_storage().data_ptr()), [])
        if any(start < e and s < end for s, e in kept):
            tensor = tensor.clone()
        else:
            kept.append((start, end))
        out[name] = tensor
    return out


def _encode(kind: str, header: Mapping[str, Any], tensors: Mapping[str, torch.Tensor]) -> tuple[bytes, bytes, bytes]:
    """The file as three chunks: the 52-byte prefix, the header JSON and the safetensors bytes."""
    head = _header_bytes(kind, header)
    safe = _unshared(tensors)
    try:
        body = _save_tensors(safe)
    except KeyError as exc:  # safetensors' dtype table
        raise UserInputError(f"safetensors cannot store dtype {exc.args[0]} "
                             f"(tensors {[n for n, t in safe.items() if t.dtype == exc.args[0]]})") from None
    length = len(head).to_bytes(8, "little")
    digest = hashlib.sha256(length)
    digest.update(head)
    digest.update(body)
    return MAGIC + FORMAT_VERSION.to_bytes(4, "little") + digest.digest() + length, head, body


def dumps_container(kind: str, header: Mapping[str, Any], tensors: Mapping[str, torch.Tensor]) -> bytes:
    """The bytes of a container (layout in the module docstring) of ``kind`` with ``header`` and ``tensors``.

    ``header`` maps str keys to JSON data (str, int, finite float, bool, None, lists,
    tuples and mappings); ``"kind"`` and ``"dnnergy_version"`` are reserved. ``tensors``
    may be non-contiguous or share memory, of any dtype safetensors stores (bool, int8..
    int64, float16, bfloat16, float32, float64, ...). Example:
    ``dumps_container("demo", {}, {})[:8] == b"\\x89DNRGY\\r\\n"``.
    """
    return b"".join(_encode(kind, header, tensors))


def write_container(path: str | os.PathLike, kind: str, header: Mapping[str, Any],
                    tensors: Mapping[str, torch.Tensor]) -> Path:
    """Write a container (see :func:`dumps_container`) to ``path`` atomically; return the ``Path``.

    Nothing is written if ``header`` or ``tensors`` are invalid; the file has the
    permissions of :func:`~dnnergy.io.atomic_write`. Example:
    ``write_container("m.dnr", "weights", {"epochs": 3}, {"w": torch.ones(2)})`` then
    ``read_container("m.dnr").header["epochs"] == 3``.
    """
    chunks = _encode(kind, header, tensors)
    return atomic_write(path, lambda handle: handle.writelines(chunks))


# -- reading ----------------------------------------------------------------------
def _not_dnnergy(start: bytes, stream: BinaryIO) -> str:
    """Why a file whose first bytes are ``start`` is no container (``stream`` is the whole file, for zip archives)."""
    if MAGIC.startswith(start):
        return f"truncated ({len(start)} bytes, shorter than the {len(MAGIC)}-byte magic)"
    torch_zip = start[:4] == b"PK\x03\x04" and _zip_holds_pickle(stream)
    pickle = start[:1] == b"\x80" and start[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")  # PROTO opcode
    if torch_zip or pickle:
        return "a PyTorch checkpoint, not a dnnergy file (torch.save zip/pickle; dnnergy files hold no pickle)"
    return f"not a dnnergy file (starts with {start[:8]!r}, expected {MAGIC!r})"


def _zip_holds_pickle(stream: BinaryIO) -> bool:
    """True for a zip archive with a ``.../data.pkl`` entry, as ``torch.save`` writes (listing a zip unpickles nothing)."""
    try:
        stream.seek(0)
        with zipfile.ZipFile(stream) as archive:
            return any(name.endswith("/data.pkl") or name == "data.pkl" for name in archive.namelist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return False


def _tensor_section_length(body: bytes) -> int:
    """The length a safetensors section says it has (8 + its JSON + its last data offset); 0 if unreadable."""
    if len(body) < 8:
        return 8
    size = 8 + int.from_bytes(body[:8], "little")
    if len(body) < size:
        return size
    try:
        entries = json.loads(body[8:size])
        return size + max((v["data_offsets"][1] for k, v in entries.items() if k != "__metadata__"), default=0)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError):
        return 0


def _decode(stream: BinaryIO, kind: str | None, path: Path | None) -> Container:
    where = str(path) if path is not None else "<bytes>"
    if kind is not None:
        _check_kind(kind)
    size = stream.seek(0, io.SEEK_END)
    stream.seek(0)
    prefix = stream.read(_PREFIX)
    if prefix[:8] != MAGIC:
        raise UserInputError(f"{where}: {_not_dnnergy(prefix, stream)}")
    version = int.from_bytes(prefix[8:12], "little")
    if len(prefix) >= 12 and version > FORMAT_VERSION:
        raise UserInputError(f"{where}: written by a newer dnnergy (format {version}); "
                             f"this version reads format {FORMAT_VERSION}")
    if len(prefix) >= 12 and version == 0:
        raise UserInputError(f"{where}: corrupted: format version 0 does not exist")
    length = int.from_bytes(prefix[44:52], "little")
    if len(prefix) < _PREFIX:
        raise UserInputError(f"{where}: truncated ({size} bytes, shorter than the {_PREFIX}-byte prefix)")
    if size < _PREFIX + length:
        raise UserInputError(f"{where}: truncated ({size} bytes; its header length asks for {_PREFIX + length})")
    head = stream.read(length)
    body = stream.read()
    digest = hashlib.sha256(prefix[44:52])
    digest.update(head)
    digest.update(body)
    if digest.digest() != prefix[12:44]:
        need = _PREFIX + length + _tensor_section_length(body)
        if size < need:
            raise UserInputError(f"{where}: truncated ({size} bytes; its length fields ask for at least {need})")
        raise UserInputError(f"{where}: corrupted: checksum mismatch")
    try:
        header = json.loads(head.decode("utf-8"))
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError alike
        raise UserInputError(f"{where}: unreadable header ({exc})") from None
    if not isinstance(header, dict) or not all(isinstance(header.get(key), str) for key in _RESERVED):
        raise UserInputError(f"{where}: unreadable header (a JSON object with str 'kind' and 'dnnergy_version' "
                             f"expected, got {head[:60]!r})")
    if kind is not None and header["kind"] != kind:
        raise UserInputError(f"{where}: is a {header['kind']} file, expected {kind}")
    try:
        tensors = _load_tensors(body)
    except (SafetensorError, KeyError) as exc:  # KeyError: a dtype this safetensors does not know
        raise UserInputError(f"{where}: unreadable tensor section ({type(exc).__name__}: {exc})") from None
    return Container(header["kind"], version, header, tensors, path)


def loads_container(data: bytes, kind: str | None = None) -> Container:
    """The :class:`Container` in ``data`` (bytes from :func:`dumps_container`); checks as :func:`read_container`.

    Errors name the source as ``<bytes>``; ``path`` of the result is ``None``. Example:
    ``loads_container(dumps_container("demo", {"n": 1}, {})).header["n"] == 1``.
    """
    return _decode(io.BytesIO(data), kind, None)


def read_container(path: str | os.PathLike, kind: str | None = None) -> Container:
    """Read and verify the container at ``path``; with ``kind`` given, also require that kind.

    Raises :class:`~dnnergy.errors.UserInputError` naming the file when it is missing,
    not a dnnergy file (a PyTorch checkpoint is called so), truncated, corrupted
    (checksum mismatch), written in a newer format, of another kind, or has an
    unreadable header. Tensors load on the CPU; nothing is unpickled. Example:
    ``read_container("m.dnr", kind="weights").tensors["w"]``.
    """
    path = Path(path)
    try:
        stream = path.open("rb")
    except FileNotFoundError:
        raise UserInputError(f"file not found: {path}") from None
    with stream:
        return _decode(stream, kind, path)
