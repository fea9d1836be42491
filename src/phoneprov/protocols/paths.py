"""Turn a path from the network into a safe relative path, or refuse it.

Pure string checks; the symlink check needs the disk and lives in
``provisioning.bootdir``. Refused: ``..`` segments, percent-encoded dots,
slashes and backslashes (a second decoding layer is how traversal slips past
proxies), backslashes, NUL and control bytes, bytes that are not UTF-8, drive
letters and over-long names.
A leading slash means the boot directory's root, as it does for tftpd -s and a
chrooted FTP user: ``/etc/passwd`` is looked up as ``etc/passwd`` inside the root.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from phoneprov.errors import UnsafePathError

MAX_PATH = 512
_ENCODED_TRICKS = re.compile(r"%(2e|2f|5c|00|25)", re.IGNORECASE)
# What bytes that are not UTF-8 become once decoded: U+FFFD from a lenient decoder
# (pyftpdlib decodes commands with errors="replace"), lone surrogates from
# errors="surrogateescape". No phone file name contains either.
_NOT_UTF8 = re.compile("[\ud800-\udfff\ufffd]")


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
        try:
            text = unquote(raw, errors="strict")
        except UnicodeDecodeError:
            # RFC 3986 §2.5: percent-escapes stand for UTF-8 octets; `%c0%ae` (an
            # over-long ".") and `%ff` are not, and no file name can be made of them.
            raise UnsafePathError("percent-escapes in path are not valid UTF-8") from None
    else:
        text = raw
    if _NOT_UTF8.search(text):
        raise UnsafePathError("path is not valid UTF-8")
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
