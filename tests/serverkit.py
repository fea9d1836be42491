"""Real servers for tests: a site made by `init`, `phoneprov serve` in a subprocess.

Ports are 0 (the kernel picks free ones); the server prints the URLs it bound,
which the kit reads back. Logs go to files in the site (``--quiet``), which
tests read to check the access and security lines.
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from phoneprov.provisioning.site import init_site

PHONEPROV = str(Path(sys.executable).with_name("phoneprov"))
URL_LINE = re.compile(r"^\s+(http|https|ftp|tftp|admin)\s+\w+://\S+?:(\d+)/")
DEMO_MAC = "0004f2000001"


def run_cli(
    *args: str,
    check: bool = False,
    input: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run the phoneprov command as an administrator would; returns the completed process."""
    result = subprocess.run(
        [PHONEPROV, *args],
        capture_output=True,
        text=True,
        input=input,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        timeout=timeout,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"phoneprov {' '.join(args)} failed ({result.returncode}):\n"
            f"{result.stdout}\n{result.stderr}"
        )
    return result


def make_site(
    root: Path,
    /,
    *,
    demo: bool = True,
    fqdns: tuple[str, ...] = ("localhost", "127.0.0.1"),
    **edits: dict[str, Any],
) -> Path:
    """Initialise a site in ``root`` and apply ``edits`` ({section: {key: value}}) to its TOML."""
    init_site(root, list(fqdns), demo=demo)
    if edits:
        edit_settings(root, **edits)
    return root


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def edit_settings(site_dir: Path, /, **sections: dict[str, Any]) -> None:
    """Set keys in phoneprov.toml by rewriting the `key = value` lines of each section."""
    path = site_dir / "phoneprov.toml"
    lines = path.read_text().splitlines()
    for section, values in sections.items():
        for key, value in values.items():
            current = None
            done = False
            for i, line in enumerate(lines):
                stripped = line.strip()
                if stripped.startswith("["):
                    current = stripped.strip("[]")
                elif current == section and re.match(rf"^{re.escape(key)}\s*=", stripped):
                    lines[i] = f"{key} = {_toml_value(value)}"
                    done = True
                    break
            if not done:
                raise KeyError(f"[{section}] {key} not in {path}")
    path.write_text("\n".join(lines) + "\n")
    tomllib.loads(path.read_text())


@dataclass
class Server:
    site: Path
    process: subprocess.Popen[str]
    ports: dict[str, int] = field(default_factory=dict)
    output: list[str] = field(default_factory=list)
    pump: threading.Thread | None = None  # reads the server's output until it closes

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.ports['http']}"

    @property
    def https(self) -> str:
        return f"https://localhost:{self.ports['https']}"

    def security_log(self) -> str:
        path = self.site / "log" / "security.log"
        return path.read_text() if path.exists() else ""

    def access_log(self) -> str:
        path = self.site / "log" / "access.log"
        return path.read_text() if path.exists() else ""

    def wait_for_log(self, kind: str, needle: str, timeout: float = 5.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.security_log() if kind == "security" else self.access_log()
            if needle in text:
                return text
            time.sleep(0.05)
        raise AssertionError(f"{needle!r} not in the {kind} log:\n{text}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 40) -> int:
        """Stop the server, then close our end of its output pipe; return its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.pump is not None:
            self.pump.join(10)  # EOF once the server (and any worker) has exited
        if self.process.stdout is not None and not (self.pump and self.pump.is_alive()):
            self.process.stdout.close()
        return self.process.returncode


def start_server(
    site: Path, *extra: str, protocols: tuple[str, ...] = ("http", "https"), timeout: float = 30
) -> Server:
    """Start `phoneprov serve` on free ports and wait until it prints its URLs."""
    args = [
        PHONEPROV,
        "serve",
        "--site",
        str(site),
        "--quiet",
        "--http-port",
        "0",
        "--https-port",
        "0",
        "--ftp-port",
        "0",
        "--tftp-port",
        "0",
        "--admin-port",
        "0",
        *extra,
    ]
    process = subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    server = Server(site, process)
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            server.output.append(line)  # every line, after start-up too (reload messages)
            lines.put(line)
        lines.put(None)

    server.pump = threading.Thread(target=pump, name="serve-output", daemon=True)
    server.pump.start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.2)
        except queue.Empty:
            continue
        if line is None:
            break
        match = URL_LINE.match(line)
        if match:
            server.ports[match.group(1)] = int(match.group(2))
        if line.startswith("logs:") and all(p in server.ports for p in protocols):
            return server
    server.stop()
    raise AssertionError("server did not start:\n" + "".join(server.output))


def curl(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """curl as the phone: no session reuse, silent, status code on the last line."""
    assert shutil.which("curl"), "curl is required (make test installs it)"
    return subprocess.run(
        ["curl", "-sS", "--no-sessionid", "--max-time", "20", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def status_of(result: subprocess.CompletedProcess[str]) -> int:
    """The HTTP status when curl was run with -w '%{http_code}' as the last output."""
    return int(result.stdout.strip().splitlines()[-1][-3:])
