"""``atomic_write``: replace a file all at once, or not at all.

The data goes to a hidden temporary file in the target's folder
(``.NAME.<8 hex digits>.tmp``), is flushed and ``fsync``-ed, and only then renamed over
the target with ``os.replace`` (atomic on POSIX and Windows when both are in one folder).
A reader therefore sees the old file or the complete new one, never a half-written one.

Permissions: the temporary file is created with ``os.open(..., 0o666)``, so the kernel
applies the process umask itself and the result has the permissions of any freshly
created file, ``0o666 & ~umask`` (0644 under umask 022), unlike ``tempfile.mkstemp``'s
0600. No code reads or changes the umask, so there is no race with other threads. A
default ACL on the folder, if any, applies as it would to any new file; the mode of a
file being replaced is not carried over.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from ..errors import UserInputError

__all__ = ["atomic_write", "write_generated", "Writer"]

#: A function that writes the whole content to the binary file object it is given.
Writer = Callable[[BinaryIO], object]

_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)


def _writer(data: bytes | bytearray | memoryview | str | Writer) -> Writer:
    if isinstance(data, str):
        data = data.encode("utf-8")
    if isinstance(data, (bytes, bytearray, memoryview)):
        return lambda handle: handle.write(data)
    if callable(data):
        return data
    raise TypeError(f"atomic_write: data must be bytes, str or a callable writer(file) (got {type(data).__name__})")


def _create_temporary(path: Path) -> tuple[Path, int]:
    """A new hidden file next to ``path`` (mode ``0o666`` before the umask) and its open descriptor."""
    while True:
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            return temporary, os.open(temporary, _FLAGS, 0o666)
        except FileExistsError:  # 1 in 2**32 per existing temporary file: draw another name
            continue


def atomic_write(path: str | os.PathLike, data: bytes | bytearray | memoryview | str | Writer) -> Path:
    """Write ``data`` to ``path`` atomically and durably; return ``path`` as a ``Path``.

    ``data`` is bytes (written as they are), a ``str`` (written as UTF-8, newlines
    untouched) or a callable ``writer(file)`` that writes binary data to the file object
    it is given (e.g. ``lambda f: fig.savefig(f, format="png")``). The file ends up with
    mode ``0o666 & ~umask`` (0644 under umask 022). If anything fails, including a
    ``KeyboardInterrupt`` inside ``writer``, the temporary file is removed, the error
    propagates and a file already at ``path`` is left untouched. A missing folder raises
    :class:`~dnnergy.errors.UserInputError`. Example: ``atomic_write("r.txt", "héllo\\n")``
    writes the 7 bytes ``b"h\\xc3\\xa9llo\\n"`` and returns ``Path("r.txt")``.
    """
    path = Path(path)
    writer = _writer(data)
    if not path.parent.is_dir():
        raise UserInputError(f"cannot write {path}: folder {path.parent} does not exist")
    temporary, fd = _create_temporary(path)
    try:
        with os.fdopen(fd, "wb") as handle:
            writer(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


def write_generated(path: str | os.PathLike, text: str, *, check: bool = False) -> int:
    """Write a generated file (``docs/cli.md``, ``dnnergy/catalog_data.py``) atomically, or with
    ``check=True`` only compare: the exit status of its generator, 0 when written or current, 1 when stale.

    Example: ``write_generated("docs/cli.md", generate(), check=True)`` is 1 after a help text changed.
    """
    path = Path(path)
    if check:
        return 0 if path.exists() and path.read_text(encoding="utf-8") == text else 1
    atomic_write(path, text)
    print(f"wrote {path}")
    return 0
