"""`phoneprov service install` and `uninstall`, the unit they write, docs/service.md.

Nothing here changes the machine: installs go into staging roots under tmp
(``--root``), from a copy of this source tree (pip builds in the folder it
installs from, and the copy keeps its build files out of the checkout).

``systemd-analyze verify`` checks the unit offline, with no systemd running,
but needs the ExecStart binary to exist. ``--root=`` would also need systemd's
own units inside the staging root, so the tests verify a copy of the unit whose
ExecStart names the staged phoneprov (or this virtualenv's): that path is the
only line changed. ``systemctl --root=`` enables the staged unit the way
``systemctl enable`` would, which checks its [Install] section.

docs/service.md's console examples run in order against a staging root (the
README's "Set up a real site" commands must be among them): ``sudo``
is dropped, install and uninstall get ``--root`` (install also ``--source``),
``/var/lib/phoneprov`` becomes the staged site and the staged
``/usr/local/bin`` comes first on the PATH. The examples that need a machine
booted with systemd (``systemctl``) are listed in ``SYSTEMD_ONLY``: they are not
run, and the test fails when the document shows any other such command.
"""

from __future__ import annotations

import grp
import hashlib
import json
import os
import pwd
import re
import shutil
import stat
import subprocess
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from tests.serverkit import PHONEPROV, curl, run_cli, start_server, status_of

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "service.md"
README = ROOT / "README.md"
UNIT = "etc/systemd/system/phoneprov.service"
LOGROTATE = "etc/logrotate.d/phoneprov"
PIP_TIMEOUT = 600  # a venv and a pip install from the local wheel cache and the index
SYSTEMD_ONLY = frozenset(
    {
        "sudo systemctl enable --now phoneprov",
        "systemctl status phoneprov",
        "sudo systemctl edit phoneprov",
        "sudo systemctl reload phoneprov",
        "sudo systemctl restart phoneprov",
    }
)
# What the source copy leaves out: virtualenvs, caches, build output, and folders pip
# does not need (the tests, docs and benchmarks are not part of the package).
NOT_SOURCE = shutil.ignore_patterns(
    ".venv", ".git", "__pycache__", "*_cache", ".hypothesis", "build", "dist", "*.egg-info",
    "site", "htmlcov", ".coverage*", "tests", "docs", "bench",
)  # fmt: skip

needs_systemd_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed"
)


def console_steps() -> list[tuple[str, list[str]]]:
    """Every ``$ command`` of docs/service.md's console blocks, with the output it shows."""
    steps: list[tuple[str, list[str]]] = []
    for body in re.findall(r"```console\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S):
        for line in body.splitlines():
            if line.startswith("$ "):
                steps.append((line[2:], []))
            else:
                steps[-1][1].append(line)
    return steps


def doc_install_command() -> str:
    """The document's first install: the one that makes a new site (it names --fqdn)."""
    return next(
        command
        for command, _ in console_steps()
        if "service install" in command and "--fqdn" in command and "--dry-run" not in command
    )


def adapt(command: str, stage: Path, source: Path) -> str:
    """A command of docs/service.md as the test runs it: into ``stage``, not the machine."""
    for sudo in ("sudo -u phoneprov ", "sudo "):
        command = command.removeprefix(sudo)
    command = command.replace(".venv/bin/phoneprov", PHONEPROV)
    command = command.replace("/var/lib/phoneprov", f"{stage}/var/lib/phoneprov")
    if re.search(r"service (un)?install", command) and "--dry-run" not in command:
        command += f" --root {stage}"
        if "service install" in command:
            command += f" --source {source}"
    return command


def run_in(stage: Path, command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``command`` in bash with the staged /usr/local/bin first on the PATH."""
    path = os.pathsep.join(
        [str(stage / "usr/local/bin"), str(Path(PHONEPROV).parent), os.environ["PATH"]]
    )
    return subprocess.run(
        ["bash", "-c", command],
        cwd=stage.parent, capture_output=True, text=True, timeout=timeout, check=False,
        env={**os.environ, "PATH": path, "COLUMNS": "200"},
    )  # fmt: skip


def matches(expected: list[str], actual: list[str]) -> bool:
    """True if ``actual`` equals ``expected`` where a "..." line matches any lines."""
    if not expected:
        return not actual
    if expected[0] == "...":
        return any(matches(expected[1:], actual[i:]) for i in range(len(actual) + 1))
    return bool(actual) and actual[0].rstrip() == expected[0] and matches(expected[1:], actual[1:])


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def verified(unit_text: str, binary: str, folder: Path) -> subprocess.CompletedProcess[str]:
    """``systemd-analyze verify`` on a copy of the unit whose ExecStart runs ``binary``."""
    copy = folder / "phoneprov.service"
    copy.write_text(
        re.sub(r"^ExecStart=\S+", f"ExecStart={binary}", unit_text, count=1, flags=re.M)
    )
    return subprocess.run(
        ["systemd-analyze", "verify", str(copy)], capture_output=True, text=True, timeout=60
    )


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of this source tree for pip to build from."""
    target = tmp_path_factory.mktemp("source") / "phoneprov"
    shutil.copytree(ROOT, target, ignore=NOT_SOURCE)
    return target


@pytest.fixture(scope="module")
def staged(tmp_path_factory: pytest.TempPathFactory, source: Path) -> Iterator[Path]:
    """docs/service.md's install command, run into a staging root."""
    stage = tmp_path_factory.mktemp("staged") / "root"
    result = run_in(stage, adapt(doc_install_command(), stage, source), timeout=PIP_TIMEOUT)
    assert result.returncode == 0, result.stdout + result.stderr
    yield stage


def dry_run_json(*args: str) -> dict[str, object]:
    result = run_cli("service", "install", "--dry-run", "--format", "json", *args, check=True)
    plan: dict[str, object] = json.loads(result.stdout)
    return plan


def test_ok_dry_run_prints_every_file_and_changes_nothing(tmp_path: Path) -> None:
    stage = tmp_path / "root"
    args = ("--root", str(stage), "--fqdn", "prov.example.com")
    text = run_cli("service", "install", "--dry-run", *args, check=True).stdout
    plan = dry_run_json(*args)
    assert not stage.exists()
    files = plan["files"]
    assert isinstance(files, list)
    assert [f["path"] for f in files] == [f"/{UNIT}", f"/{LOGROTATE}"]
    for planned in files:
        assert f"==> {planned['path']} (mode {planned['mode']}) <==\n{planned['content']}" in text
    assert "==> /usr/local/bin/phoneprov -> ../../../opt/phoneprov/bin/phoneprov (link) <==" in text
    for step in ("python -m venv", "pip install", "ports 80, 443, 21 and 69", "write /etc/"):
        assert step in text


def test_ok_dry_run_on_the_machine_changes_nothing() -> None:
    paths = [Path("/", p) for p in (UNIT, LOGROTATE, "opt/phoneprov", "usr/local/bin/phoneprov")]
    before = {path: path.exists() for path in paths}
    result = run_cli("service", "install", "--dry-run", "--fqdn", "prov.example.com", check=True)
    assert f"==> /{UNIT} (mode 0644) <==" in result.stdout
    assert {path: path.exists() for path in paths} == before


@needs_systemd_analyze
def test_ok_generated_unit_passes_systemd_analyze(tmp_path: Path) -> None:
    files = dry_run_json("--root", str(tmp_path / "root"), "--fqdn", "prov.example.com")["files"]
    assert isinstance(files, list)
    unit = files[0]["content"]
    for line in (
        "Type=notify", "User=phoneprov", "ProtectSystem=strict", "NoNewPrivileges=yes",
        "CapabilityBoundingSet=CAP_NET_BIND_SERVICE", "AmbientCapabilities=CAP_NET_BIND_SERVICE",
        "ReadWritePaths=/var/lib/phoneprov", "PrivateTmp=yes", "ProtectHome=yes",
        "Restart=on-failure", "ExecReload=/bin/kill -HUP $MAINPID",
        "ExecStart=/opt/phoneprov/bin/phoneprov serve --site /var/lib/phoneprov --quiet",
    ):  # fmt: skip
        assert re.search(rf"^{re.escape(line)}$", unit, re.M), line
    result = verified(unit, PHONEPROV, tmp_path)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")
    # The exposure score, 0 (confined) to 10; --threshold is in tenths and fails above it.
    security = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", "--threshold=20",
         str(tmp_path / "phoneprov.service")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert security.returncode == 0, security.stdout[-2000:] + security.stderr


@needs_systemd_analyze
def test_ok_staged_unit_passes_systemd_analyze(staged: Path, tmp_path: Path) -> None:
    binary = staged / "opt/phoneprov/bin/phoneprov"
    result = verified((staged / UNIT).read_text(), str(binary), tmp_path)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_ok_staged_command_runs_from_a_clean_path(staged: Path, source: Path) -> None:
    version = tomllib.loads((source / "pyproject.toml").read_text())["project"]["version"]
    for command in (
        [str(staged / "opt/phoneprov/bin/phoneprov"), "--version"],
        [str(staged / "usr/local/bin/phoneprov"), "--version"],
        ["env", "-i", f"PATH={staged / 'usr/local/bin'}", "phoneprov", "--version"],
    ):
        runs = subprocess.run(
            ["env", "-i", *command], capture_output=True, text=True, timeout=60, check=False
        )
        assert (runs.returncode, runs.stdout.strip(), runs.stderr) == (0, version, "")
    # Self-contained: the staged environment runs its own copy of phoneprov.
    where = subprocess.run(
        ["env", "-i", str(staged / "opt/phoneprov/bin/python"), "-c",
         "import phoneprov; print(phoneprov.__file__)"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    assert where.startswith(str(staged / "opt/phoneprov/lib/"))


def test_ok_staged_files_and_site(staged: Path) -> None:
    def mode(relative: str) -> int:
        return stat.S_IMODE((staged / relative).lstat().st_mode)

    assert mode(UNIT) == mode(LOGROTATE) == 0o644
    assert mode("opt/phoneprov") == mode("opt/phoneprov/bin") == 0o755
    assert os.readlink(staged / "usr/local/bin/phoneprov") == "../../../opt/phoneprov/bin/phoneprov"
    site = staged / "var/lib/phoneprov"
    assert mode("var/lib/phoneprov") == 0o750
    assert mode("var/lib/phoneprov/pki/server-ec.key") == 0o600
    settings = tomllib.loads((site / "phoneprov.toml").read_text())
    ports = [settings[s]["port"] for s in ("http", "https", "ftp", "tftp")]
    assert ports == [80, 443, 21, 69]
    assert settings["site"]["fqdns"] == ["prov.example.com", "10.0.0.5"]
    rule = (staged / LOGROTATE).read_text()
    assert "/var/lib/phoneprov/log/access.log /var/lib/phoneprov/log/security.log {" in rule
    assert "copytruncate" in rule


def test_ok_reinstall_keeps_the_site(staged: Path) -> None:
    plan = dry_run_json("--root", str(staged))
    steps = plan["steps"]
    assert isinstance(steps, list)
    assert not any("venv" in step or "create the site" in step for step in steps)
    assert "kept the site /var/lib/phoneprov as it is (its own names, ports and keys)" in str(
        plan["notes"]
    )


@pytest.mark.parametrize(
    ("path", "content"),
    [
        (UNIT, "[Service]\nExecStart=/usr/bin/true\n"),
        (LOGROTATE, "/var/log/other.log {}\n"),
        ("usr/local/bin/phoneprov", "#!/bin/sh\n"),
        ("opt/phoneprov/README", "someone else's\n"),
    ],
    ids=["fail/foreign-unit", "fail/foreign-logrotate", "fail/foreign-command", "fail/foreign-opt"],
)
def test_fail_install_refuses_files_it_did_not_write(
    tmp_path: Path, path: str, content: str
) -> None:
    stage = tmp_path / "root"
    (stage / path).parent.mkdir(parents=True)
    (stage / path).write_text(content)
    result = run_cli("service", "install", "--root", str(stage), "--fqdn", "prov.example.com")
    assert result.returncode == 1
    assert str(stage / path.split("/README")[0]) in result.stderr
    assert "hint:" in result.stderr
    assert (stage / path).read_text() == content
    assert sorted(p.relative_to(stage).as_posix() for p in stage.rglob("*") if p.is_file()) == [
        path
    ]


def test_fail_new_site_needs_fqdn(tmp_path: Path) -> None:
    result = run_cli("service", "install", "--root", str(tmp_path / "root"), "--dry-run")
    assert result.returncode == 2
    assert "does not exist yet and no --fqdn names it" in result.stderr
    assert "--fqdn prov.example.com" in result.stderr


def test_fail_source_that_is_not_phoneprov(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = run_cli(
        "service", "install", "--root", str(tmp_path / "root"), "--fqdn", "x.example.com",
        "--source", str(tmp_path / "empty"),
    )  # fmt: skip
    assert result.returncode == 2
    assert "has no pyproject.toml" in result.stderr
    assert not (tmp_path / "root").exists()


def unprivileged(*args: str) -> subprocess.CompletedProcess[str]:
    """phoneprov as a user who is not root: as root, the user nobody (setpriv changes
    only this one process)."""
    if os.geteuid() != 0:
        return run_cli(*args)
    assert shutil.which("setpriv"), "setpriv (util-linux) is required"
    if not _others_may_run(Path(PHONEPROV)):
        pytest.skip(f"{PHONEPROV} is in a folder other users may not enter (a 0700 clone)")
    return subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", PHONEPROV, *args],
        capture_output=True, text=True, timeout=60, cwd="/",
        env={**_without_coverage(os.environ), "COLUMNS": "200"},
    )  # fmt: skip


def _others_may_run(program: Path) -> bool:
    """Whether a user other than the owner may reach and read ``program`` (nobody runs it)."""
    folders = all(folder.stat().st_mode & 0o001 for folder in program.parents)
    return folders and bool(program.stat().st_mode & 0o004)


def _without_coverage(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment without coverage's: measuring a process of the user nobody would
    write its data file into the checkout, where nobody may not write (a traceback at exit)."""
    return {key: value for key, value in environ.items() if not key.startswith("COVERAGE_")}


def test_fail_install_on_the_machine_needs_root() -> None:
    result = unprivileged("service", "install", "--fqdn", "prov.example.com")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "needs root" in result.stderr and "--dry-run" in result.stderr


def test_fail_staging_root_that_cannot_be_written(tmp_path: Path, source: Path) -> None:
    """A --root the user may not write (as root: nobody, who may not even look in the
    test's tmp folder): an error naming the path, no traceback, nothing written."""
    tmp_path.chmod(0o755)
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    root = locked / "root"
    result = unprivileged(
        "service", "install", "--root", str(root), "--fqdn", "prov.example.com",
        "--source", str(source),
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert re.search(r"^error: (could not|cannot) .*: Permission denied", result.stderr, re.M)
    assert "hint: " in result.stderr and "Traceback" not in result.stderr
    assert not root.exists()


@pytest.mark.skipif(
    shutil.which("logrotate") is None, reason="logrotate not installed (make tools)"
)
def test_ok_logrotate_rule_rotates_a_running_servers_logs(site: Path, tmp_path: Path) -> None:
    files = dry_run_json("--root", str(tmp_path / "root"), "--fqdn", "prov.example.com")["files"]
    assert isinstance(files, list)
    rule = files[1]["content"].replace("/var/lib/phoneprov", str(site))
    # No phoneprov user here: logrotate switches to this process's user instead.
    me = f"{pwd.getpwuid(os.getuid()).pw_name} {grp.getgrgid(os.getgid()).gr_name}"
    config = tmp_path / "phoneprov.logrotate"
    config.write_text(rule.replace("su phoneprov phoneprov", f"su {me}"))
    server = start_server(site)
    try:
        # A wrong password: an access line and a security line naming the file.
        first = curl(
            "--digest", "-u", "PlcmSpIp:wrong", "-o", "/dev/null", "-w", "%{http_code}",
            f"{server.http}/rotate-1.cfg",
        )  # fmt: skip
        assert status_of(first) == 401
        server.wait_for_log("access", "rotate-1.cfg")
        server.wait_for_log("security", "rotate-1.cfg")
        rotated = subprocess.run(
            ["logrotate", "--force", "--state", str(tmp_path / "state"), str(config)],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert rotated.returncode == 0, rotated.stderr
        log = site / "log"
        for name in ("access.log", "security.log"):
            assert "rotate-1.cfg" in (log / f"{name}.1").read_text()
            assert "rotate-1.cfg" not in (log / name).read_text()
        # The server writes on into the truncated files, from their start (no hole).
        curl("-o", "/dev/null", f"{server.http}/rotate-2.cfg")
        server.wait_for_log("access", "rotate-2.cfg")
        assert (log / "access.log").read_bytes()[:1] != b"\0"
    finally:
        server.stop()


def test_ok_uninstall_keeps_the_site_unless_purged(staged: Path, tmp_path: Path) -> None:
    stage = tmp_path / "root"
    shutil.copytree(staged, stage, symlinks=True)
    dropin = stage / "etc/systemd/system/phoneprov.service.d/workers.conf"
    dropin.parent.mkdir()
    dropin.write_text("[Service]\nExecStart=\n")
    enabled = subprocess.run(
        ["systemctl", f"--root={stage}", "enable", "phoneprov.service"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    wants = stage / "etc/systemd/system/multi-user.target.wants/phoneprov.service"
    assert enabled.returncode == 0 and wants.is_symlink(), enabled.stderr
    ca = digest(stage / "var/lib/phoneprov/pki/ca.pem")

    result = run_cli("service", "uninstall", "--root", str(stage), check=True)
    for gone in (UNIT, LOGROTATE, "usr/local/bin/phoneprov", "opt/phoneprov"):
        assert not (stage / gone).exists() and not (stage / gone).is_symlink(), gone
    assert not wants.is_symlink()
    assert digest(stage / "var/lib/phoneprov/pki/ca.pem") == ca
    assert dropin.exists()
    assert "kept: /var/lib/phoneprov: the site" in result.stdout

    again = run_cli("service", "uninstall", "--root", str(stage), check=True)
    assert "nothing to remove" in again.stdout

    run_cli("service", "uninstall", "--root", str(stage), "--purge", check=True)
    assert not (stage / "var/lib/phoneprov").exists()
    assert not dropin.parent.exists()


def test_ok_uninstall_keeps_files_it_did_not_write(tmp_path: Path) -> None:
    stage = tmp_path / "root"
    unit = stage / UNIT
    unit.parent.mkdir(parents=True)
    unit.write_text("[Service]\nExecStart=/usr/bin/true\n")
    result = run_cli("service", "uninstall", "--root", str(stage), check=True)
    assert unit.exists()
    assert f"kept: /{UNIT}: not written by phoneprov service install" in result.stdout


def test_ok_service_doc_examples(staged: Path, source: Path, tmp_path: Path) -> None:
    steps = console_steps()
    shown = {c for c, _ in steps if re.match(r"(sudo )?(systemctl|journalctl)\b", c)}
    assert shown == SYSTEMD_ONLY
    # The staged fixture ran the document's install; the rest runs on a copy of it.
    stage = tmp_path / "root"
    shutil.copytree(staged, stage, symlinks=True)
    site = stage / "var/lib/phoneprov"
    ca = digest(site / "pki/ca.pem")
    for command, expected in steps:
        if command in SYSTEMD_ONLY or command == doc_install_command():
            continue
        result = run_in(stage, adapt(command, stage, source), timeout=PIP_TIMEOUT)
        output = (result.stdout + result.stderr).splitlines()
        assert result.returncode == 0, f"{command}:\n{result.stdout}{result.stderr}"
        if expected:
            assert matches(expected, output), f"{command}:\n{result.stdout}{result.stderr}"
        if "dhcp options" in command:
            assert 'option polycom-boot-server "http://prov.example.com:80/";' in result.stdout
        elif "ca issue-server" in command:
            assert "BEGIN CERTIFICATE" in result.stdout
        elif command.endswith("service install"):  # the upgrade
            assert "kept the site" in result.stdout and digest(site / "pki/ca.pem") == ca
        elif command.endswith("service uninstall"):
            assert not (stage / "opt/phoneprov").exists() and (site / "phoneprov.toml").exists()
        elif command.endswith("--purge"):
            assert not site.exists()
    assert not site.exists(), "the document no longer ends with uninstall --purge"


def test_ok_readme_real_site_commands_are_run_from_the_service_doc() -> None:
    section = README.read_text(encoding="utf-8").split("## Set up a real site", 1)[1]
    section = section.split("\n## ", 1)[0]
    block = re.search(r"```console\n(.*?)```", section, re.S)
    assert block, "README lost its real-site console block"
    commands = [line for line in block.group(1).splitlines() if line.strip()]
    commands += re.findall(r"`(sudo -u phoneprov phoneprov [^`]+)`", section)
    doc = {command for command, _ in console_steps()}
    assert len(commands) == 3 and set(commands) <= doc, set(commands) - doc
