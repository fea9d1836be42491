"""`phoneprov bench storm` against a running phoneprov: many phones, zero failures."""

from __future__ import annotations

import json
from collections.abc import Iterator
from importlib import resources

import pytest
from tests.integration.simkit import serve_site
from tests.serverkit import Server, run_cli


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from serve_site(tmp_path_factory.mktemp("storm") / "site")


@pytest.mark.slow
def test_ok_storm_200_phones_mtls_zero_failures(served: Server) -> None:
    """200 phones, each a full application-stage boot with one TLS handshake per file."""
    result = run_cli(
        "bench",
        "storm",
        "--url",
        f"https://127.0.0.1:{served.ports['https']}/",
        "--site",
        str(served.site),
        "--stage",
        "application",
        "--phones",
        "200",
        "--concurrency",
        "40",
        "--max-seconds",
        "240",
        "--format",
        "json",
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads(result.stdout)
    assert summary["boots_ok"] == 200
    assert summary["boots_failed"] == 0
    assert summary["failures"] == {}
    assert summary["requests"] >= 200 * 15  # master x2, configs, 7 optional, (HEAD + PUT) x2
    assert 0 < summary["latency_ms"]["p50"] <= summary["latency_ms"]["p99"]
    logs = list((served.site / "boot" / "logs").glob("*-app.log"))
    assert len(logs) >= 200
    # Each phone's second upload was an append (HEAD, then a ranged PUT of the new lines):
    # its log holds the first upload's lines and, after them, the report of that upload.
    for log in logs:
        text = log.read_text()
        assert text.index("Application stage") < text.index("Upload of 'logs/"), log.name


def test_ok_storm_full_boot_text_table(served: Server) -> None:
    result = run_cli(
        "bench",
        "storm",
        "--url",
        f"http://127.0.0.1:{served.ports['http']}/",
        "--site",
        str(served.site),
        "--phones",
        "5",
        "--concurrency",
        "5",
        "--first-mac",
        "0004f2e00000",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "boots ok / failed" in result.stdout
    assert "5 / 0" in result.stdout


def test_fail_storm_untrusted_server_counts_by_reason(served: Server) -> None:
    """The Polycom root does not sign our server certificate: every boot fails on TLS."""
    wrong_ca = resources.files("phoneprov") / "data" / "polycom-pki" / "root.pem"
    result = run_cli(
        "bench",
        "storm",
        "--url",
        f"https://127.0.0.1:{served.ports['https']}/",
        "--ca",
        str(wrong_ca),
        "--stage",
        "application",
        "--phones",
        "4",
        "--concurrency",
        "2",
        "--format",
        "json",
    )
    assert result.returncode == 1
    summary = json.loads(result.stdout)
    assert summary["boots_failed"] == 4
    assert summary["failures"] == {"tls": 4}
