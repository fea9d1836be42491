"""Turn a path from the network into a safe relative path, or refuse it.

Pure string checks; the symlink check needs the disk and lives in
``provisioning.bootdir``. Refused: ``..`` segments, percent-encoded dots,
slashes and backslashes (a second decoding layer is how traversal slips past
proxies), backslashes, NUL and control bytes, drive letters and over-long names.
A leading slash means the boot directory's root, as it does for tftpd -s and a
chrooted FTP user: ``/etc/passwd`` is looked up as ``etc/passwd`` inside the root.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from phoneprov.errors import UnsafePathError

MAX_PATH = 512
_ENCODED_TRICKS = re.compile(r"%(2e|2f|5c|00|25)", re.IGNORECASE)


def safe_relative(raw: str, *, already_decoded: bool = False) -> str:
    """Return ``raw`` as a clean relative POSIX path ("" for the root).

    ``raw`` is the path as sent (URL path still percent-encoded, or an FTP/TFTP
    file name when ``already_decoded``). Raises UnsafePathError naming the reason.
    """
    if len(raw) > MAX_PATH:
        raise UnsafePathError(f"path is {len(raw)} characters; at most {MAX_PATH} are accepted")
    if not already_decoded:
        if _ENCODED_TRICKS.search(raw):
            raise UnsafePathError("percent-encoded dot, slash, backslash, NUL or percent in path")
        text = unquote(raw, errors="strict")
    else:
        text = raw
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text):
        raise UnsafePathError("control character or NUL byte in path")
    if "\\" in text:
        raise UnsafePathError("backslash in path")
    if re.match(r"^/*[A-Za-z]:", text):
        raise UnsafePathError("drive letter in path")
    parts = [part for part in text.split("/") if part not in ("", ".")]
    if any(part == ".." for part in parts):
        raise UnsafePathError("'..' in path")
    return "/".join(parts)
