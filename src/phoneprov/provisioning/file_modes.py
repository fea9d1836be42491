"""File modes of a site: nothing phoneprov keeps is readable by other users.

Phones upload overrides and contacts that can hold passwords their users typed
on the phone; the logs name accounts and addresses; the database holds password
hashes and the sealed secrets. phoneprov therefore runs with umask ``027``
(``SITE_UMASK``, set by the ``phoneprov`` command for everything it does): the
files it creates are 0640 and its folders 0750. The owner is the user phoneprov
runs as; the group, which may read but never write, is that user's group (or
systemd's ``Group=``), for administrators and log shippers; others get nothing.
Private keys are 0600 whatever the umask (pki/files.py, store/secrets.py).

A site made by an older phoneprov, or copied without its modes, may still hold
files others can read: ``tighten`` takes those permission bits away, and
``serve`` calls it before it opens anything.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

SITE_UMASK = 0o027  # group: no write; others: nothing
FAILED_KEPT = 20  # paths named in a report; the count covers the rest


@dataclass(frozen=True, slots=True)
class Tightened:
    """What ``tighten`` changed: how many paths, and those it could not change."""

    changed: int
    failed: tuple[Path, ...]
    failed_count: int


def tighten(site_dir: Path) -> Tightened:
    """Take group write and all permissions of others from every file and folder of
    the site (the folder itself included); returns what changed.

    Symbolic links are neither changed nor followed: what they point to is not the
    site's. A path that cannot be changed (another user owns it) is reported, not
    raised: the server still starts, and the caller says which paths to fix.
    """
    changed = 0
    failed: list[Path] = []
    failed_count = 0
    for root, dirs, files in os.walk(site_dir, followlinks=False):
        here = Path(root)
        targets = [here] if here == site_dir else []
        targets.extend(here / name for name in (*dirs, *files))
        for path in targets:
            try:
                info = path.lstat()
                if stat.S_ISLNK(info.st_mode) or not info.st_mode & SITE_UMASK:
                    continue
                os.chmod(path, stat.S_IMODE(info.st_mode) & ~SITE_UMASK)
            except FileNotFoundError:
                continue  # removed meanwhile (a finished upload's temporary file)
            except OSError:
                failed_count += 1
                if len(failed) < FAILED_KEPT:
                    failed.append(path)
                continue
            changed += 1
    return Tightened(changed, tuple(failed), failed_count)
