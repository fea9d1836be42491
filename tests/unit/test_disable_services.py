"""scripts/disable-services.sh, which `make tools` runs after apt-get install, against a
staging root shaped like Debian's /etc: the boot links of the services it installed go,
everything else stays. It never runs on / here."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "disable-services.sh"
WANTS = "etc/systemd/system/multi-user.target.wants"


def link(root: Path, path: str, target: str) -> None:
    where = root / path
    where.parent.mkdir(parents=True, exist_ok=True)
    where.symlink_to(target)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A machine with ssh enabled before `make tools`, and the links `apt-get install`
    made for vsftpd (systemd) and tftpd-hpa (sysvinit only)."""
    root = tmp_path / "root"
    link(root, f"{WANTS}/ssh.service", "/lib/systemd/system/ssh.service")
    link(root, "etc/systemd/system/timers.target.wants/logrotate.timer", "/lib/x.timer")
    for level in "2345":
        link(root, f"etc/rc{level}.d/S01ssh", "../init.d/ssh")
    for level in "016":
        link(root, f"etc/rc{level}.d/K01tftpd-hpa", "../init.d/tftpd-hpa")
    (root / "etc" / "init.d").mkdir(parents=True)
    (root / "etc" / "init.d" / "tftpd-hpa").write_text("#!/bin/sh\n")
    return root


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(SCRIPT), *args], capture_output=True, text=True, timeout=30, check=False
    )


def links(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_symlink()}


def install(root: Path) -> None:
    """What installing vsftpd and tftpd-hpa leaves, as far as boot is concerned."""
    link(root, f"{WANTS}/vsftpd.service", "/lib/systemd/system/vsftpd.service")
    link(root, "etc/systemd/system/sockets.target.wants/vsftpd.socket", "/lib/x.socket")
    link(root, "etc/systemd/system/timers.target.wants/new.timer", "/lib/new.timer")
    for level in "2345":
        link(root, f"etc/rc{level}.d/S01vsftpd", "../init.d/vsftpd")
        link(root, f"etc/rc{level}.d/S01tftpd-hpa", "../init.d/tftpd-hpa")


def test_ok_list_prints_the_boot_links_sorted(root: Path) -> None:
    result = run(str(root), "--list")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "etc/rc2.d/S01ssh",
        "etc/rc3.d/S01ssh",
        "etc/rc4.d/S01ssh",
        "etc/rc5.d/S01ssh",
        f"{WANTS}/ssh.service",
        "etc/systemd/system/timers.target.wants/logrotate.timer",
    ]


def test_ok_new_since_disables_only_what_the_install_enabled(root: Path, tmp_path: Path) -> None:
    before = tmp_path / "before.txt"
    before.write_text(run(str(root), "--list").stdout)
    untouched = links(root)
    install(root)

    result = run(str(root), "--new-since", str(before))
    assert result.returncode == 0, result.stderr
    assert links(root) == untouched | {"etc/systemd/system/timers.target.wants/new.timer"}
    said = result.stdout.splitlines()
    assert f"not started at boot any more: vsftpd (removed /{WANTS}/vsftpd.service)" in said
    assert "not started at boot any more: tftpd-hpa (removed /etc/rc2.d/S01tftpd-hpa)" in said
    assert len(said) == 2 + 4 + 4  # two systemd links, four rc links each
    assert (root / "etc" / "init.d" / "tftpd-hpa").read_text() == "#!/bin/sh\n"

    again = run(str(root), "--new-since", str(before))
    assert again.returncode == 0 and again.stdout == ""


def test_ok_names_disable_services_enabled_earlier(root: Path) -> None:
    install(root)
    result = run(str(root), "vsftpd", "tftpd-hpa", "kea-dhcp4-server")
    assert result.returncode == 0, result.stderr
    assert not any("vsftpd" in name or "S01tftpd" in name for name in links(root))
    assert f"{WANTS}/ssh.service" in links(root)
    assert {f"etc/rc{n}.d/K01tftpd-hpa" for n in "016"} <= links(root)


@pytest.mark.parametrize(
    "args",
    [(), ("--list",), ("--new-since",), ("--bogus",)],
    ids=["fail/no-args", "fail/no-root", "fail/no-file", "fail/unknown-flag"],
)
def test_fail_usage(args: tuple[str, ...]) -> None:
    result = run(*args)
    assert result.returncode == 2
    assert "usage:" in result.stderr or "no folder" in result.stderr


def test_fail_missing_root(tmp_path: Path) -> None:
    result = run(str(tmp_path / "absent"), "--list")
    assert result.returncode == 2 and "no folder" in result.stderr
