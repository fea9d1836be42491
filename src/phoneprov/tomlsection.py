"""Typed reading of one TOML table of ``phoneprov.toml``: every error names the key and the file.

Split from config.py, which holds the settings themselves.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from phoneprov.errors import ConfigError
from phoneprov.protocols.polycom import UploadKind

_SIZE_RE = re.compile(r"^\s*(\d+)\s*(B|KiB|MiB|GiB|KB|MB|GB)?\s*$", re.IGNORECASE)
_UNITS = {
    "b": 1,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
}


def parse_size(value: object, key: str, path: Path) -> int:
    """Parse ``10MiB``, ``512KiB`` or a plain integer number of bytes."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    match = _SIZE_RE.match(str(value))
    if not match:
        raise ConfigError(
            f"{path}: {key} = {value!r} is not a size",
            "Write a size like 10MiB, 512KiB or a number of bytes.",
        )
    return int(match.group(1)) * _UNITS[(match.group(2) or "b").lower()]


class Section:
    """Typed access to one TOML table; every error names the key and the file."""

    def __init__(self, data: dict[str, Any], name: str, path: Path) -> None:
        self.data = data
        self.name = name
        self.path = path
        self.used: set[str] = set()

    def _get(self, key: str, default: Any, kind: type | tuple[type, ...], what: str) -> Any:
        self.used.add(key)
        if key not in self.data:
            return default
        value = self.data[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ConfigError(
                f"{self.path}: [{self.name}] {key} = {value!r} is not {what}",
                f"Set {key} to {what} (default: {default!r}).",
            )
        return value

    def boolean(self, key: str, default: bool) -> bool:
        return bool(self._get(key, default, bool, "true or false"))

    def integer(self, key: str, default: int, low: int = 0, high: int = 2**31) -> int:
        value = int(self._get(key, default, int, "a whole number"))
        if not low <= value <= high:
            raise ConfigError(
                f"{self.path}: [{self.name}] {key} = {value} is out of range",
                f"Use a value from {low} to {high}.",
            )
        return value

    def port(self, key: str, default: int) -> int:
        return self.integer(key, default, 0, 65535)

    def number(self, key: str, default: float) -> float:
        return float(self._get(key, default, (int, float), "a number"))

    def text(self, key: str, default: str) -> str:
        return str(self._get(key, default, str, "a string"))

    def strings(self, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        value = self._get(key, list(default), list, "a list of strings")
        if not all(isinstance(item, str) for item in value):
            raise ConfigError(
                f"{self.path}: [{self.name}] {key} must list strings",
                'Write it as ["a", "b"].',
            )
        return tuple(value)

    def choice(self, key: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.text(key, default)
        if value not in choices:
            raise ConfigError(
                f"{self.path}: [{self.name}] {key} = {value!r} is not one of {', '.join(choices)}",
                f"Set {key} to one of: {', '.join(choices)}.",
            )
        return value

    def size(self, key: str, default: int) -> int:
        self.used.add(key)
        return (
            parse_size(self.data[key], f"[{self.name}] {key}", self.path)
            if (key in self.data)
            else default
        )

    def upload_kinds(self, key: str, default: frozenset[UploadKind]) -> frozenset[UploadKind]:
        names = self.strings(key, tuple(sorted(k.value for k in default)))
        valid = {k.value for k in UploadKind}
        bad = [n for n in names if n not in valid]
        if bad:
            raise ConfigError(
                f"{self.path}: [{self.name}] {key} names unknown upload kinds: {', '.join(bad)}",
                f"Known kinds: {', '.join(sorted(valid))}.",
            )
        return frozenset(UploadKind(n) for n in names)

    def check_unknown(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise ConfigError(
                f"{self.path}: [{self.name}] has unknown keys: {', '.join(unknown)}",
                "Check the spelling against the commented file `phoneprov init` writes.",
            )


def seconds(section: Section, key: str, default: float, low: float, high: float) -> float:
    value = section.number(key, default)
    if not low <= value <= high:
        raise ConfigError(
            f"{section.path}: [{section.name}] {key} = {value} is out of range",
            f"Use {low:g} to {high:g} seconds.",
        )
    return value
