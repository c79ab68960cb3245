#!/usr/bin/env python3
"""Time `rx_validate` on one core against serde_json reading the same bytes, and write it.

Runs `cargo bench -p baton-rx --bench validate` (criterion, one thread, release, mimalloc)
several times — this VM's speed moves by a third from one minute to the next — and rewrites
the section between the rx-bench markers of docs/benchmarks.md with every run's medians, the
throughput, and the ratio to the reference measured in the same run: `serde_json` merely
reading the prescription into a `Value`.

Usage (from the repository root):
    python3 scripts/bench_rx.py [RUNS]
"""
import datetime
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from docsection import replace_section  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
START, END = "<!-- rx-bench:start -->", "<!-- rx-bench:end -->"
TARGET = 50_000
INPUTS = [
    ("simple_json", "simple JSON, valid (1.5 KB)"),
    ("simple_json_invalid", "simple JSON, invalid — one finding (1.5 KB)"),
    ("fhir_bundle", "FHIR R4 Bundle, valid (6.4 KB pretty-printed, 6 entries)"),
    ("fhir_bundle_compact", "the same Bundle without whitespace (4.3 KB)"),
]


def median(group, name):
    estimates = ROOT / "target/criterion" / group / name / "new/estimates.json"
    return json.loads(estimates.read_text())["median"]["point_estimate"] / 1e9


def span(values, fmt, unit=""):
    """`low–high` (or one figure when they print alike), then the unit."""
    low, high = fmt(min(values)), fmt(max(values))
    return (low if low == high else f"{low}–{high}") + unit


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    results = []
    for _ in range(runs):
        bench = subprocess.run(["cargo", "bench", "-p", "baton-rx", "--bench", "validate"],
                               cwd=ROOT, capture_output=True, text=True)
        if bench.returncode != 0:
            sys.exit(f"cargo bench failed:\n{bench.stderr}")
        run = {name: (median("rx_validate", name), median("serde_json_value", name))
               for name, _ in INPUTS}
        run["rules_only"] = (median("rx_validate", "rules_only"), None)
        results.append(run)

    rows = []
    for name, label in INPUTS:
        ours = [run[name][0] for run in results]
        theirs = [run[name][1] for run in results]
        ratios = [a / b for a, b in zip(ours, theirs)]
        met = sum(1 / s >= TARGET for s in ours)
        rows.append(
            f"| {label} | {span([s * 1e6 for s in ours], '{:.1f}'.format, ' µs')} "
            f"| **{span([1 / s for s in ours], '{:,.0f}'.format)}** "
            f"| {span([s * 1e6 for s in theirs], '{:.1f}'.format, ' µs')} "
            f"| **{span(ratios, '{:.2f}'.format, '×')}** "
            f"| {'met' if met == runs else f'met in {met} of {runs} runs'} |")
    rules = [run["rules_only"][0] for run in results]
    rows.append(f"| rules only (already parsed) | {span([s * 1e6 for s in rules], '{:.1f}'.format, ' µs')} "
                f"| {span([1 / s for s in rules], '{:,.0f}'.format)} | — | — | — |")
    block = "\n".join([
        START,
        f"{runs} runs on {datetime.date.today()} (`python3 scripts/bench_rx.py {runs}`), "
        "criterion medians; the reference is `serde_json::from_slice::<Value>` on the same "
        "bytes in the same run, so the ratio is what survives the VM's changing speed.",
        "",
        "| input | per prescription | prescriptions/s | serde_json → `Value` | ratio | "
        f"target ≥ {TARGET:,}/s |",
        "|---|---|---|---|---|---|",
        *rows,
        END,
    ])
    replace_section(ROOT / "docs/benchmarks.md", START, END,
                    "## Prescription rules: `rx_validate` throughput on one core (issue 6)",
                    block)
    print(block)


if __name__ == "__main__":
    main()
