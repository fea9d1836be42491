"""Atomic writes for certificate material: keys 0600, certificates and CRLs 0640.

A half-written key or CA file would lock every phone out at the next handshake,
so every write goes to a temporary file in the same directory, is fsynced, and
is renamed over the target. Certificates are not secret, but like every site
file they are the group's to read and nobody else's (provisioning/file_modes.py).
"""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE_MODE = 0o600
PUBLIC_MODE = 0o640


def write_atomic(path: Path, data: bytes, mode: int = PUBLIC_MODE) -> Path:
    """Write ``data`` to ``path`` atomically with permission ``mode``; return ``path``.

    The temporary file is created with ``mode`` from the start (``os.open``), so a
    private key is never readable by others, not even for a moment.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)
    return path


def write_private(path: Path, data: bytes) -> Path:
    """Write a private key (or other secret) with mode 0600; return ``path``."""
    return write_atomic(path, data, PRIVATE_MODE)
