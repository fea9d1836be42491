"""Install phoneprov as a systemd service, or stage that install under a root.

``install_service`` first decides everything (each file with its mode and
content, the link, every step) and checks nothing is in the way, so a
``--dry-run`` shows exactly what a real run then does, and a refusal leaves the
machine as it was. The files come from templates in ``phoneprov/templates``.

The layout is fixed, so the docs, the unit and the logrotate rule agree:

- ``/opt/phoneprov``: a virtual environment holding phoneprov and its libraries;
- ``/usr/local/bin/phoneprov``: a link to its command, on every user's PATH;
- ``/var/lib/phoneprov``: the site, owned by the system user ``phoneprov``;
- ``/etc/systemd/system/phoneprov.service`` and ``/etc/logrotate.d/phoneprov``.

With a staging root (``--root DIR``, for packagers and tests) the same tree is
written under DIR and nothing outside it changes: creating the system user,
handing the site to it and telling systemd are left as notes for whoever
installs the staged tree.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from importlib import metadata, resources
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlparse

import jinja2

from phoneprov.config import SETTINGS_FILE
from phoneprov.errors import InputError, InstallError
from phoneprov.provisioning.site import check_fqdn, init_site

USER = "phoneprov"
PREFIX = PurePosixPath("/opt/phoneprov")
SITE = PurePosixPath("/var/lib/phoneprov")
UNIT = PurePosixPath("/etc/systemd/system/phoneprov.service")
LOGROTATE = PurePosixPath("/etc/logrotate.d/phoneprov")
LINK = PurePosixPath("/usr/local/bin/phoneprov")
# Relative, so the link also resolves inside a staging root.
LINK_TARGET = "../../../opt/phoneprov/bin/phoneprov"
# The ports phones expect; the unit's CAP_NET_BIND_SERVICE lets the service bind them.
SERVICE_PORTS = {"http_port": 80, "https_port": 443, "ftp_port": 21, "tftp_port": 69}
# The first line of every file install writes: uninstall removes only files carrying it,
# and install replaces only those (an administrator's own unit is never overwritten).
MARKER = "Written by `phoneprov service install`"
SYSTEMD_RUNNING = Path("/run/systemd/system")  # what sd_booted(3) checks
PIP_TAIL = 12  # lines of pip's output quoted when it fails

Step = tuple[str, Callable[[], None]]
Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class PlannedFile:
    """One file install writes: where it belongs on the machine, its mode, its text."""

    path: PurePosixPath
    mode: int
    content: str


@dataclass(frozen=True, slots=True)
class InstallPlan:
    """Everything one install does, in order; ``steps`` are done by a real run."""

    root: Path
    source: str
    files: tuple[PlannedFile, ...]
    steps: tuple[str, ...]
    notes: tuple[str, ...]  # what is left to the administrator or the packager
    done: bool  # False for --dry-run


def staged(root: Path, path: PurePosixPath) -> Path:
    """``path`` (an absolute path on the machine) inside ``root``."""
    return root / path.relative_to("/")


def is_real(root: Path) -> bool:
    """True when ``root`` is the machine itself, not a staging folder."""
    return root.resolve() == Path("/")


def _templates() -> jinja2.Environment:
    folder = resources.files("phoneprov") / "templates"
    return jinja2.Environment(
        loader=jinja2.FunctionLoader(lambda name: (folder / name).read_text()),
        autoescape=False,  # systemd and logrotate syntax, not HTML
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )


def render_files() -> tuple[PlannedFile, ...]:
    """The systemd unit and the logrotate rule, rendered from their templates."""
    env = _templates()
    values = {
        "marker": MARKER,
        "user": USER,
        "prefix": PREFIX,
        "site": SITE,
        "site_name": SITE.relative_to("/var/lib"),
    }
    return (
        PlannedFile(UNIT, 0o644, env.get_template("phoneprov.service.j2").render(values)),
        PlannedFile(LOGROTATE, 0o644, env.get_template("phoneprov.logrotate.j2").render(values)),
    )


def default_source() -> str:
    """What pip installs when ``--source`` is not given: the folder this phoneprov was
    installed from (a checkout, ``pip install -e .``), else this version from the index."""
    version = metadata.version("phoneprov")
    origin = metadata.distribution("phoneprov").read_text("direct_url.json")
    if origin:
        url = urlparse(json.loads(origin).get("url", ""))
        if url.scheme == "file" and Path(unquote(url.path)).is_dir():
            return unquote(url.path)
    return f"phoneprov=={version}"


def _check_source(source: str) -> str:
    """A folder or file pip can install (made absolute), or a requirement for the index."""
    path = Path(source)
    example = f"phoneprov=={metadata.version('phoneprov')}"
    if path.is_dir() and not (path / "pyproject.toml").is_file():
        raise InputError(
            f"--source {source}: {path.resolve()} has no pyproject.toml",
            "Give the phoneprov source folder (the one with pyproject.toml), a wheel, "
            f"or a requirement such as {example}.",
        )
    if path.exists():
        return str(path.resolve())
    if "/" in source or source.startswith("."):
        raise InputError(
            f"--source {source}: {path.resolve()} does not exist",
            f"Give the phoneprov source folder, a wheel file, or a requirement such as {example}.",
        )
    return source  # a requirement for the package index


def is_ours(path: Path) -> bool:
    """True when ``path`` is a file whose first line is install's marker."""
    try:
        return MARKER in path.read_text(errors="replace").split("\n", 1)[0]
    except OSError:
        return False


def _check_in_the_way(root: Path) -> None:
    """Refuse, before changing anything, when a path install writes holds something else."""
    for planned in (UNIT, LOGROTATE):
        path = staged(root, planned)
        if path.exists() and not is_ours(path):
            raise InstallError(
                f"{path} exists and was not written by phoneprov service install",
                "Move it away (settings of your own go in a drop-in: systemctl edit "
                "phoneprov), then run install again.",
            )
    link = staged(root, LINK)
    if (link.exists() or link.is_symlink()) and not is_our_link(link):
        raise InstallError(
            f"{link} exists and is not the link to {PREFIX}/bin/phoneprov",
            "Was phoneprov installed with pip into the system Python? Remove it (pip "
            f"uninstall phoneprov, or rm {LINK}), then run install again.",
        )
    prefix = staged(root, PREFIX)
    if prefix.is_dir() and any(prefix.iterdir()) and not (prefix / "pyvenv.cfg").is_file():
        raise InstallError(
            f"{prefix} holds files but is not a Python environment",
            f"Move {prefix} away: install puts phoneprov's virtual environment there.",
        )


def is_our_link(link: Path) -> bool:
    """True when ``link`` is the link to the environment's command that install makes."""
    return link.is_symlink() and os.readlink(link) == LINK_TARGET


def check_root(root: Path, dry_run: bool) -> Path:
    """The staging root as an absolute path; InstallError when a real run is not root."""
    if root.exists() and not root.is_dir():
        raise InputError(f"--root {root} is not a folder", "Give a folder to stage into.")
    if is_real(root) and not dry_run and os.geteuid() != 0:
        raise InstallError(
            "installing the service writes to /etc, /opt and /var/lib and needs root",
            "Run it with sudo; or pass --dry-run to see what it would write, or --root DIR "
            "to stage the files in a folder.",
        )
    return root.resolve()


def _make_dirs(folder: Path) -> None:
    """Create ``folder`` and its missing parents 0755: everyone runs what is below them."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for path in reversed(missing):
        path.mkdir()
        os.chmod(path, 0o755)


def run_command(command: list[str], what: str, hint: str, *, umask: int = -1) -> None:
    """Run a command; InstallError quoting the end of its output when it fails."""
    try:
        result = subprocess.run(command, capture_output=True, text=True, umask=umask, check=False)
    except OSError as error:
        raise InstallError(f"{what}: cannot run {command[0]}: {error.strerror}", hint) from None
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip().splitlines()
        tail = "\n".join(output[-PIP_TAIL:])
        raise InstallError(f"{what} failed (exit status {result.returncode}):\n{tail}", hint)


def _write(root: Path, planned: PlannedFile) -> None:
    """Write one file whole (a temporary file renamed over it), with its mode."""
    path = staged(root, planned.path)
    _make_dirs(path.parent)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(planned.content)
    os.chmod(partial, planned.mode)
    os.replace(partial, path)


def user_exists() -> bool:
    """True when the service user exists on this machine."""
    try:
        pwd.getpwnam(USER)
    except KeyError:
        return False
    return True


def _create_user() -> None:
    run_command(
        ["useradd", "--system", "--user-group", "--home-dir", str(SITE), "--no-create-home",
         "--shell", "/usr/sbin/nologin", "--comment", "phoneprov provisioning server", USER],
        f"creating the system user {USER}",
        "Check that useradd (package passwd) is installed, then run install again.",
    )  # fmt: skip


@contextlib.contextmanager
def looking() -> Iterator[None]:
    """Planning only looks at paths; one it may not look at is turned into an
    InstallError naming it, before anything was changed."""
    try:
        yield
    except OSError as error:
        raise InstallError(
            f"cannot look at {error.filename or 'a path install needs'}: {error.strerror or error}",
            "Run it as root, or give a --root folder you may read and write.",
        ) from None


def run_steps(steps: list[Step], progress: Progress | None) -> None:
    """Carry out ``steps`` in order, telling ``progress`` each one before it starts.

    Raises InstallError naming the step and the path when one fails; the steps
    before it stay done.
    """
    for text, action in steps:
        if progress is not None:
            progress(text)
        try:
            action()
        except OSError as error:
            where = f" ({error.filename})" if error.filename else ""
            raise InstallError(
                f"could not {text}: {error.strerror or error}{where}",
                "Fix that (permissions, free space, a read-only file system), then run the "
                "same command again: it carries on from there.",
            ) from None


def _chown_tree(folder: Path) -> None:
    """Give ``folder`` and everything in it to the service user (links not followed)."""
    entry = pwd.getpwnam(USER)
    for here, dirs, files in os.walk(folder):
        os.chown(here, entry.pw_uid, entry.pw_gid)
        for name in (*dirs, *files):
            os.chown(Path(here) / name, entry.pw_uid, entry.pw_gid, follow_symlinks=False)


def _venv(prefix: Path) -> None:
    _make_dirs(prefix.parent)
    run_command(
        [sys.executable, "-m", "venv", str(prefix)],
        f"creating the environment {prefix}",
        "On Debian install python3-venv (apt install python3-venv), then run install again.",
        umask=0o022,  # the service user runs it: readable by all, writable by root only
    )


def _pip(prefix: Path, source: str) -> None:
    run_command(
        [str(prefix / "bin" / "python"), "-m", "pip", "install", "--upgrade", "--no-input",
         "--disable-pip-version-check", source],
        f"pip install {source} into {prefix}",
        "Check --source and the connection to the package index, then run install again: "
        "it carries on from here.",
        umask=0o022,
    )  # fmt: skip


def _link(link: Path) -> None:
    if is_our_link(link):
        return
    _make_dirs(link.parent)
    os.symlink(LINK_TARGET, link)


def _init(site: Path, fqdns: tuple[str, ...]) -> None:
    _make_dirs(site.parent)
    init_site(site, list(fqdns), ports=SERVICE_PORTS)


def systemctl(*args: str) -> Callable[[], None]:
    return lambda: run_command(
        ["systemctl", *args],
        f"systemctl {' '.join(args)}",
        "See systemctl status phoneprov and journalctl -u phoneprov.",
    )


def _install_steps(
    root: Path, source: str, fqdns: tuple[str, ...], files: tuple[PlannedFile, ...]
) -> tuple[list[Step], list[str]]:
    """The steps of one install, in order, and the notes for the administrator."""
    real = is_real(root)
    prefix, site, link = staged(root, PREFIX), staged(root, SITE), staged(root, LINK)
    steps: list[Step] = []
    notes: list[str] = []
    if not root.exists():
        steps.append((f"create the staging folder {root}", lambda: root.mkdir(parents=True)))
    if not real:
        notes.append(
            f"--root changes no user account: on the target machine, create the system user "
            f"with useradd --system --user-group --home-dir {SITE} --no-create-home "
            f"--shell /usr/sbin/nologin {USER}, then chown -R {USER}:{USER} {SITE}"
        )
    elif not user_exists():
        steps.append((f"create the system user {USER} (useradd --system)", _create_user))
    if not (prefix / "pyvenv.cfg").is_file():
        steps.append((f"create the environment {PREFIX} (python -m venv)", lambda: _venv(prefix)))
    steps.append(
        (f"install {source} into {PREFIX} (pip install --upgrade)", lambda: _pip(prefix, source))
    )
    steps.append((f"link {LINK} -> {PREFIX}/bin/phoneprov", lambda: _link(link)))
    if (site / SETTINGS_FILE).is_file():
        ignored = f"; --fqdn {' '.join(fqdns)} names only a new site" if fqdns else ""
        notes.append(f"kept the site {SITE} as it is (its own names, ports and keys){ignored}")
    else:
        steps.append(
            (
                f"create the site {SITE} for {', '.join(fqdns)}, ports 80, 443, 21 and 69 "
                "(as phoneprov init does)",
                lambda: _init(site, fqdns),
            )
        )
    if real:
        steps.append((f"give {SITE} to the user {USER} (chown -R)", lambda: _chown_tree(site)))
    for planned in files:
        steps.append((f"write {planned.path} ({planned.mode:04o})", partial(_write, root, planned)))
    if real and SYSTEMD_RUNNING.is_dir():
        steps.append(
            ("reload systemd's unit files (systemctl daemon-reload)", systemctl("daemon-reload"))
        )
        notes.append("start it now and at every boot: systemctl enable --now phoneprov")
    elif real:
        notes.append(
            "systemd is not running on this machine: on the one that boots with it, run "
            "systemctl daemon-reload, then systemctl enable --now phoneprov"
        )
    else:
        notes.append(
            f"the environment's commands start with #!{prefix}/bin/python: they run in "
            f"place; a package must build its environment at {PREFIX} itself"
        )
        notes.append(
            "on the target machine: systemctl daemon-reload, then systemctl enable --now phoneprov"
        )
    return steps, notes


def install_service(
    root: Path,
    *,
    source: str | None = None,
    fqdns: tuple[str, ...] = (),
    dry_run: bool = False,
    progress: Progress | None = None,
) -> InstallPlan:
    """Install (or with ``dry_run`` only plan) the service under ``root`` ("/" for the
    machine itself); returns the plan, with ``done`` set when it was carried out.

    Raises InputError for a bad --source, --fqdn or --root, InstallError when a
    path is in the way, a real run is not root, or a step fails (the steps before
    it stay done; running install again carries on).
    """
    with looking():
        root = check_root(root, dry_run)
        names = tuple(check_fqdn(name) for name in fqdns)
        chosen = _check_source(source) if source else default_source()
        if not names and not (staged(root, SITE) / SETTINGS_FILE).is_file():
            raise InputError(
                f"the site {staged(root, SITE)} does not exist yet and no --fqdn names it",
                "Pass --fqdn with the name (or address) phones use to reach this server, "
                "e.g. --fqdn prov.example.com; repeat it for more names.",
            )
        _check_in_the_way(root)
        files = render_files()
        steps, notes = _install_steps(root, chosen, names, files)
    if not dry_run:
        run_steps(steps, progress)
    return InstallPlan(
        root=root,
        source=chosen,
        files=files,
        steps=tuple(text for text, _ in steps),
        notes=tuple(notes),
        done=not dry_run,
    )
