"""Inventory import: 10,000 CSV rows through `phoneprov device import` (target: under 10 s).

Measures, on a fresh site (SQLite, the default):
- the whole command as an administrator runs it (process start included), new phones;
- the same file again (every phone updated in place);
- the two stages inside one process: checking the rows, and writing them.

Usage: .venv/bin/python -m bench.import_bench [--rows 10000] [--repeat 3] [--output FILE]
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from phoneprov.config import load_settings
from phoneprov.provisioning.devicecsv import plan_import
from phoneprov.provisioning.inventory import Inventory
from phoneprov.provisioning.site import init_site
from phoneprov.store import open_database

PHONEPROV = str(Path(sys.executable).with_name("phoneprov"))
MODELS = ("VVX410", "VVX500", "SPIP550", "Trio8800")


def make_csv(rows: int) -> str:
    """Phones with two lines each (one for the single-line Trio), in 20 groups."""
    out = [
        "mac,model,site,group,label,line1_ext,line1_user,line1_password,line1_server,"
        "line2_ext,line2_user,line2_password,line2_server"
    ]
    for i in range(rows):
        model = MODELS[i % len(MODELS)]
        second = (
            ("", "", "", "")
            if model == "Trio8800"
            else (f"{20000 + i}", f"{20000 + i}", f"pw-{i}-b", "pbx.example.com")
        )
        out.append(
            ",".join(
                (
                    f"0004f3{i:06x}",
                    model,
                    "hq",
                    f"group{i % 20}",
                    f"Desk {i}",
                    f"{10000 + i}",
                    f"{10000 + i}",
                    f"pw-{i}-a",
                    "pbx.example.com",
                    *second,
                )
            )
        )
    return "\n".join(out) + "\n"


def timed_cli(*args: str) -> float:
    started = time.perf_counter()
    subprocess.run([PHONEPROV, *args], check=True, capture_output=True)
    return time.perf_counter() - started


def run(rows: int, repeat: int) -> dict[str, object]:
    text = make_csv(rows)
    results: dict[str, list[float]] = {"cli_new": [], "cli_update": [], "check": [], "write": []}
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as work:
            site = Path(work) / "site"
            init_site(site, ["localhost"])
            csv_path = Path(work) / "phones.csv"
            csv_path.write_text(text)
            results["cli_new"].append(
                timed_cli("device", "import", str(csv_path), "--site", str(site))
            )
            results["cli_update"].append(
                timed_cli("device", "import", str(csv_path), "--site", str(site))
            )
            store = open_database(load_settings(site).database_url)
            inventory = Inventory(store)
            started = time.perf_counter()
            plan = plan_import(io.StringIO(text), inventory.rows.entries_by_mac)
            results["check"].append(time.perf_counter() - started)
            assert not plan.problems and len(plan.entries) == rows
            started = time.perf_counter()
            inventory.save(plan.entries)
            results["write"].append(time.perf_counter() - started)
            store.close()
    return {
        "rows": rows,
        "repeat": repeat,
        **{f"{k}_median_s": round(statistics.median(v), 2) for k, v in results.items()},
        **{f"{k}_max_s": round(max(v), 2) for k, v in results.items()},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    figures = run(args.rows, args.repeat)
    text = json.dumps(figures, indent=2)
    print(text)
    if args.output:
        args.output.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
