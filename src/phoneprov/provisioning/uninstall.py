"""Remove what ``phoneprov service install`` wrote, keeping the site unless purged.

Only what install made is removed: files whose first line is install's marker,
the link that points at the environment, a folder that is a Python virtual
environment. Anything else found at those paths is kept and named, so an
administrator's own files survive an uninstall.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from phoneprov.provisioning.install import (
    LINK,
    LOGROTATE,
    PREFIX,
    SITE,
    SYSTEMD_RUNNING,
    UNIT,
    USER,
    Progress,
    Step,
    check_root,
    is_our_link,
    is_ours,
    is_real,
    looking,
    run_command,
    run_steps,
    staged,
    systemctl,
    user_exists,
)

# What `systemctl enable phoneprov` links (the unit's WantedBy=multi-user.target).
WANTS = PurePosixPath("/etc/systemd/system/multi-user.target.wants/phoneprov.service")


@dataclass(frozen=True, slots=True)
class UninstallPlan:
    """What one uninstall removes and what it keeps, in order."""

    root: Path
    steps: tuple[str, ...]
    kept: tuple[str, ...]
    done: bool  # False for --dry-run


def _remove_tree(folder: Path) -> Callable[[], None]:
    return lambda: shutil.rmtree(folder)


def _remove_user() -> None:
    run_command(["userdel", USER], f"removing the user {USER}", "See userdel(8).")


def _uninstall_steps(root: Path, purge: bool) -> tuple[list[Step], list[str]]:
    """The steps of one uninstall, in order, and what it keeps (with the reason)."""
    real = is_real(root)
    systemd = real and SYSTEMD_RUNNING.is_dir()
    steps: list[Step] = []
    kept: list[str] = []
    unit = staged(root, UNIT)
    if systemd and is_ours(unit):
        steps.append(
            ("stop and disable the service (systemctl disable --now phoneprov)",
             systemctl("disable", "--now", "phoneprov.service"))
        )  # fmt: skip
    wants = staged(root, WANTS)
    if not systemd and wants.is_symlink() and os.readlink(wants) == str(UNIT):
        # systemctl enable made it; with systemd running, systemctl disable removes it.
        steps.append((f"remove the link {WANTS} (as systemctl disable does)", wants.unlink))
    for planned in (UNIT, LOGROTATE):
        path = staged(root, planned)
        if is_ours(path):
            steps.append((f"remove {planned}", path.unlink))
        elif path.exists():
            kept.append(f"{planned}: not written by phoneprov service install")
    dropins = UNIT.with_name(UNIT.name + ".d")  # systemctl edit phoneprov writes there
    if staged(root, dropins).is_dir() and purge:
        steps.append((f"remove your drop-ins {dropins}", _remove_tree(staged(root, dropins))))
    elif staged(root, dropins).is_dir():
        kept.append(f"{dropins}: your drop-ins (--purge removes them)")
    link = staged(root, LINK)
    if is_our_link(link):
        steps.append((f"remove the link {LINK}", link.unlink))
    elif link.exists() or link.is_symlink():
        kept.append(f"{LINK}: not the link install made")
    prefix = staged(root, PREFIX)
    if (prefix / "pyvenv.cfg").is_file():
        steps.append((f"remove the environment {PREFIX}", _remove_tree(prefix)))
    elif prefix.exists():
        kept.append(f"{PREFIX}: not a Python environment")
    if systemd and steps:
        steps.append(
            ("reload systemd's unit files (systemctl daemon-reload)", systemctl("daemon-reload"))
        )
    site = staged(root, SITE)
    if site.exists() and purge:
        steps.append((f"remove the site {SITE}: settings, CA, keys, database, uploads, logs",
                      _remove_tree(site)))  # fmt: skip
    elif site.exists():
        kept.append(f"{SITE}: the site (settings, CA, keys, database); --purge removes it")
    if real and user_exists() and purge:
        steps.append((f"remove the system user {USER} (userdel)", _remove_user))
    elif real and user_exists():
        kept.append(f"the system user {USER}, which owns the site (--purge removes it)")
    return steps, kept


def uninstall_service(
    root: Path, *, purge: bool = False, dry_run: bool = False, progress: Progress | None = None
) -> UninstallPlan:
    """Remove what ``install_service`` wrote under ``root``; with ``purge`` the site, the
    drop-ins and the system user too. Returns what was (or, dry, would be) removed.

    Only files carrying install's first line, the link it made and a virtual
    environment are removed. Raises InstallError when a real run is not root or
    a step fails.
    """
    with looking():
        root = check_root(root, dry_run)
        steps, kept = _uninstall_steps(root, purge)
    if not dry_run:
        run_steps(steps, progress)
    return UninstallPlan(
        root=root, steps=tuple(text for text, _ in steps), kept=tuple(kept), done=not dry_run
    )
