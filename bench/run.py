"""``make bench``: every phoneprov benchmark, each bounded to a few minutes.

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
    ("storm_vs_nginx", ["-m", "bench.storm_vs_nginx", "--phones", "2000"]),
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
