"""Free space for uploads: the reserve, and the error a full disk gives.

Phones upload logs on every boot, and anyone holding the public account may
upload too; if uploads could take the last free bytes, the database and the
security log would be the next writes to fail. Uploads therefore stop at
``[uploads] free_space_reserve`` bytes of free space (checked when one starts,
with its declared size, and every ``CHECK_EVERY`` bytes as it arrives), and a
disk that fills anyway (ENOSPC, or EDQUOT for a quota) gives ``DiskFullError``:
HTTP 507 Insufficient Storage (RFC 4918 §11.5), FTP 452 (RFC 959 §4.2.2),
TFTP error 3 "Disk full or allocation exceeded" (RFC 1350).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from phoneprov.errors import DiskFullError

CHECK_EVERY = 1 << 20  # bytes between free-space checks during an upload (one statvfs call)
_DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})


def is_disk_full(error: OSError) -> bool:
    """True when ``error`` says the disk (or the user's disk quota) is full."""
    return error.errno in _DISK_FULL


def free_bytes(folder: Path) -> int:
    """Bytes an unprivileged writer may still use on the filesystem holding ``folder``."""
    stats = os.statvfs(folder)
    return stats.f_bavail * stats.f_frsize


def human(size: int) -> str:
    """``size`` bytes for a message: 64 MiB, 1.5 GiB, 300 bytes."""
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= factor:
            return f"{size / factor:.1f}".removesuffix(".0") + f" {unit}"
    return f"{size} bytes"


def disk_full(name: str, folder: Path, reason: str) -> DiskFullError:
    """The error for an upload of ``name`` into ``folder`` refused or cut for want of space."""
    return DiskFullError(
        f"upload {name} not stored: {reason}",
        "Free space on that disk (old logs, core files and firmware images are the usual "
        "culprits); phones upload again on their next boot. [uploads] free_space_reserve "
        "in phoneprov.toml is the space uploads leave free for the database and the logs.",
        f"{reason}: {human(_free_or_zero(folder))} free in {folder}",
    )


def below_reserve(folder: Path, incoming: int, reserve: int) -> str:
    """Why ``incoming`` more bytes in ``folder`` would eat into ``reserve``; '' when they fit."""
    if not reserve or free_bytes(folder) - incoming >= reserve:
        return ""
    needs = f", {human(incoming)} declared" if incoming else ""
    return f"the disk is nearly full ([uploads] free_space_reserve = {human(reserve)}{needs})"


def _free_or_zero(folder: Path) -> int:
    try:
        return free_bytes(folder)
    except OSError:
        return 0  # the folder itself is gone: the message still names it
