"""``make bench``: every phoneprov benchmark, bounded (the storm of 10,000 phones takes
about 25 minutes, the others a few each).

Results go to ``bench/results/<name>.json`` and the terminal; the figures in
docs/performance.md come from these runs.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"

BENCHES: list[tuple[str, list[str]]] = [
    ("mtls_vs_nginx", ["-m", "bench.mtls_vs_nginx"]),
    ("firmware_vs_nginx", ["-m", "bench.firmware_vs_nginx"]),
    # The web console's fleet page with 50,000 phones: first byte under 300 ms (issue 15).
    ("console_bench", ["-m", "bench.console_bench"]),
    # 10,000 phones at concurrency 1,000 (issue 16): the storm client, one Python process
    # on one core, is the slower side at about 200 TLS requests/s, so each server's storm
    # takes about 10 minutes.
    (
        "storm_vs_nginx",
        ["-m", "bench.storm_vs_nginx", "--phones", "10000", "--max-seconds", "1500"],
    ),
]


def main() -> int:
    RESULTS.mkdir(exist_ok=True)
    failed = 0
    for name, args in BENCHES:
        print(f"== {name}", flush=True)
        output = RESULTS / f"{name}.json"
        code = subprocess.call([sys.executable, *args, "--output", str(output)])
        failed += code != 0
    if Path(__file__).with_name("tftp_bench.py").exists():
        print("== tftp_bench", flush=True)
        failed += subprocess.call([sys.executable, "-m", "bench.tftp_bench"]) != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
