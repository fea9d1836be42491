"""The boot directory on disk: every path from the network is resolved here.

A path is joined to the root, symlinks are resolved, and the result must still
be inside the root; otherwise UnsafePathError. Nothing outside the root is ever
opened for reading or writing.
"""

from __future__ import annotations

import os
from pathlib import Path

from phoneprov.errors import UnsafePathError


class BootDir:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def locate(self, relative: str) -> Path:
        """Absolute path of a safe relative path, checked to stay inside the root."""
        candidate = self.root / relative if relative else self.root
        resolved = Path(os.path.realpath(candidate))
        if resolved != self.root and self.root not in resolved.parents:
            raise UnsafePathError(f"{relative!r} leads outside the boot directory (symlink)")
        return resolved

    def folder(self, name: str) -> Path:
        path = self.locate(name)
        path.mkdir(parents=True, exist_ok=True)
        return path
