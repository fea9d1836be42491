"""The files an import neither parses nor catalogs: kept, moved to upload folders, or left.

- What phones uploaded and read back (``<mac>-phone.cfg`` and ``<mac>-web.cfg``
  overrides, ``<mac>-directory.xml`` contacts and the ``000000000000-directory.xml``
  seed) goes to the site's upload folder for its kind, wherever the old master
  file's ``OVERRIDES_DIRECTORY`` / ``CONTACTS_DIRECTORY`` had it.
- Logs, call lists and core files stay behind (history of the old server), and
  so do uploaded certificate requests and keys (never copied).
- A ``.cfg`` no master file lists was read by no phone: left behind, said so.
- Anything else (images, ring tones, language files, licences) is served as
  it is, at the same path.
"""

from __future__ import annotations

import posixpath
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from phoneprov.errors import UnsafePathError
from phoneprov.protocols.paths import safe_relative
from phoneprov.protocols.polycom import UploadKind, canonical_name, upload_kind_of
from phoneprov.provisioning.migrate.report import Item, Status
from phoneprov.provisioning.migrate.scan import SourceDir

SEED_DIRECTORY = "000000000000-directory.xml"
_CARRIED = (UploadKind.PHONE_OVERRIDE, UploadKind.WEB_OVERRIDE, UploadKind.DIRECTORY)


@dataclass(frozen=True, slots=True)
class Copy:
    """A file to put in the boot directory: from the old directory, to a boot-relative path."""

    source: str
    target: str


def plan_files(
    source: SourceDir,
    remaining: Iterable[str],
    folders: dict[UploadKind, str],
    boot_dir: Path,
) -> tuple[list[Copy], list[Item]]:
    """Copies into ``boot_dir`` and report items for the files in ``remaining``.

    A target that exists with other bytes is left as it is (and reported), so
    nothing already in the site is overwritten.
    """
    copies: list[Copy] = []
    items: list[Item] = []
    left: Counter[tuple[str, str]] = Counter()
    for rel in sorted(remaining):
        folder, name = posixpath.split(rel)
        upload = upload_kind_of(name)
        if upload is not None and upload[0] in _CARRIED:
            target = posixpath.join(folders[upload[0]], canonical_name(name))
        elif name.lower() == SEED_DIRECTORY:
            target = posixpath.join(folders[UploadKind.DIRECTORY], SEED_DIRECTORY)
        elif upload is not None:
            kind = upload[0]
            secret = kind in (UploadKind.CSR, UploadKind.KEY)
            left[
                (
                    folder or ".",
                    "certificate requests and keys" if secret else "logs, call lists or core files",
                )
            ] += 1
            continue
        elif name.lower().endswith(".cfg"):
            items.append(
                Item(
                    Status.SKIPPED,
                    rel,
                    None,
                    "no master file lists it, so no phone read it; not carried over",
                )
            )
            continue
        else:
            target = rel
        try:
            safe_relative(target, already_decoded=True)
        except UnsafePathError as error:
            items.append(
                Item(Status.SKIPPED, rel, None, f"phoneprov cannot serve this name: {error}")
            )
            continue
        existing = boot_dir / target
        if existing.exists() and (
            not existing.is_file() or existing.read_bytes() != source.files[rel].read_bytes()
        ):
            items.append(
                Item(
                    Status.SKIPPED,
                    rel,
                    None,
                    f"boot/{target} is already in the site with other content; left as it is",
                )
            )
            continue
        copies.append(Copy(rel, target))
        how = "served as it is" if target == rel and upload is None else "the phone's own file"
        items.append(Item(Status.KEPT, rel, None, f"copied to boot/{target} ({how})"))
    items.extend(
        Item(
            Status.SKIPPED,
            folder,
            None,
            f"{count} phone upload(s) ({what}) of the old server; not carried over",
        )
        for (folder, what), count in sorted(left.items())
    )
    return copies, items
