"""Real DHCP servers serve phoneprov's snippets; busybox udhcpc gets exactly the encoder's bytes.

For dnsmasq, ISC dhcpd and Kea: render the snippet, check it with the server's
own offline validator, run the server in a private network namespace, let
udhcpc ask for every phone option under four vendor classes (MS-UC-Client,
CPE-OCPHONE in both of Microsoft's spellings, and a Polycom phone), capture
the exchange with tcpdump and compare the option bytes of each ACK with
``build_options``. Needs root for the namespaces; skipped with the reason otherwise.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from dhcp import netns, pcap, servers

from phoneprov.protocols.dhcp import encode as enc
from phoneprov.protocols.dhcp.options import OptionRequest, build_options
from phoneprov.protocols.dhcp.snippet import SnippetFormat, render

REQUEST = OptionRequest(
    provisioning_url="http://PlcmSpIp:PlcmSpIp@prov.example.com:8080/boot/",
    sip_servers=("sip1.example.com", "sip2.example.com"),
    web_server="lyncweb.example.com",
    ntp_servers=("10.99.0.1", "10.99.0.2"),
    tz_offset=-18000,
    tftp_server=netns.SERVER_IP,
    vlan=100,
)
PHONE_OPTIONS = (2, 42, 43, 66, 120, 150, 160, 161)
VENDOR_CLASSES = (enc.MS_UC_CLIENT, enc.CPE_OCPHONE, enc.CPE_OCPHONE_ALT, "Polycom-VVX410")
CLASS_OF = {enc.CPE_OCPHONE_ALT: enc.CPE_OCPHONE}
BINARIES = {"dnsmasq": "dnsmasq", "isc-dhcpd": "dhcpd", "kea": "kea-dhcp4"}


@pytest.fixture(scope="module")
def namespaces() -> None:
    reason = netns.unavailable_reason()
    if reason:
        pytest.skip(reason)
    if shutil.which("busybox") is None or shutil.which("tcpdump") is None:
        pytest.skip("busybox and tcpdump are needed; `make tools` installs them")


def expected(server: str, vendor_class: str) -> dict[int, bytes]:
    options = build_options(REQUEST)
    wanted = {o.code: o.data for o in options if o.vendor_class is None}
    lync_class = CLASS_OF.get(vendor_class, vendor_class)
    for option in options:
        if option.vendor_class == lync_class:
            wanted[43] = option.data
    if server == "dnsmasq":
        # The documented dnsmasq trap: it always NUL-terminates option 66.
        wanted[66] += b"\x00"
    return wanted


def ask(pair: netns.Pair, vendor_class: str, work: Path) -> None:
    script = work / "udhcpc-event.sh"
    script.write_text("#!/bin/sh\nexit 0\n")  # leave the interface alone
    script.chmod(0o755)
    argv = ["busybox", "udhcpc", "-f", "-q", "-n", "-t", "3", "-T", "1", "-A", "1"]
    argv += ["-i", pair.client_if, "-V", vendor_class, "-s", str(script)]
    for code in PHONE_OPTIONS:
        argv += ["-O", str(code)]
    result = subprocess.run(
        ["ip", "netns", "exec", pair.client_ns, *argv], capture_output=True, text=True, timeout=20
    )
    assert result.returncode == 0, f"udhcpc ({vendor_class}) got no lease:\n{result.stderr}"


@pytest.mark.parametrize(
    "server", list(BINARIES), ids=[f"ok/{name}-sends-encoder-bytes" for name in BINARIES]
)
def test_real_server_sends_encoder_bytes(server: str, namespaces: None, tmp_path: Path) -> None:
    work = tmp_path
    if shutil.which(BINARIES[server]) is None:
        pytest.skip(f"{BINARIES[server]} is not installed; `make tools` installs it")
    snippet = render(SnippetFormat(server), build_options(REQUEST))
    capture_file = work / "dhcp.pcap"
    with netns.namespace_pair() as pair:
        launch = servers.LAUNCHERS[server](snippet, work, pair)
        check = subprocess.run(
            launch.validate,
            capture_output=True,
            text=True,
            timeout=30,
            env={**os.environ, **launch.env},
        )
        assert check.returncode == 0, f"offline check failed:\n{check.stdout}{check.stderr}"
        daemon = netns.Process(pair.server_ns, launch.argv, work / "server.log", launch.env)
        capture: netns.Process | None = None
        try:
            netns.wait_until(
                lambda: daemon.proc.poll() is not None or netns.udp_listening(pair.server_ns, 67),
                f"{server} to bind UDP 67",
            )
            assert daemon.proc.poll() is None, f"{server} exited:\n{daemon.output()}"
            capture = netns.Process(
                pair.client_ns,
                [
                    *("tcpdump", "-i", pair.client_if, "-n", "-U", "--immediate-mode"),
                    *("-w", str(capture_file), "udp port 67 or udp port 68"),
                ],
                work / "tcpdump.log",
                {},
            )
            netns.wait_until(
                lambda: capture_file.exists() and capture_file.stat().st_size >= 24,
                "tcpdump to open its capture",
            )
            for vendor_class in VENDOR_CLASSES:
                ask(pair, vendor_class, work)
        finally:
            if capture is not None:
                capture.stop()
            daemon.stop()
    messages = pcap.dhcp_messages(capture_file)
    classes = {m.xid: m.options[60].decode() for m in messages if m.kind == "REQUEST"}
    acks = {classes[m.xid]: m.options for m in messages if m.kind == "ACK" and m.xid in classes}
    assert set(acks) == set(VENDOR_CLASSES), f"ACKs seen: {sorted(acks)}\n{daemon.output()}"
    for vendor_class, options in acks.items():
        got = {code: options[code] for code in PHONE_OPTIONS if code in options}
        want = expected(server, vendor_class)
        if CLASS_OF.get(vendor_class, vendor_class) not in (enc.MS_UC_CLIENT, enc.CPE_OCPHONE):
            assert 43 not in got, "option 43 leaked to a phone outside the Lync classes"
        assert {c: v.hex() for c, v in got.items()} == {c: v.hex() for c, v in want.items()}, (
            f"{server} / {vendor_class}"
        )
