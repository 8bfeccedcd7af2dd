"""Safe file output for dnnergy: atomic writes and the one container format it saves data in.

* :func:`atomic_write` replaces a file all at once (temporary file, ``fsync``,
  ``os.replace``) with ordinary ``0o666 & ~umask`` permissions.
* :func:`write_container` / :func:`read_container` store a JSON header and named tensors
  in a versioned, SHA-256-checksummed file with no pickle in it; higher layers (compressed
  models, records, checkpoints) choose a ``kind`` and put their own records in the header.

This package knows nothing about models or compression. Example::

    write_container("w.dnr", "weights", {"epochs": 3}, {"fc.weight": torch.ones(2, 3)})
    read_container("w.dnr", kind="weights").tensors["fc.weight"].shape  # torch.Size([2, 3])
"""

from .atomic import Writer, atomic_write, write_generated
from .container import (
    FORMAT_VERSION,
    MAGIC,
    Container,
    dumps_container,
    loads_container,
    read_container,
    write_container,
)

__all__ = [
    "atomic_write",
    "write_generated",
    "Writer",
    "Container",
    "write_container",
    "read_container",
    "dumps_container",
    "loads_container",
    "MAGIC",
    "FORMAT_VERSION",
]
