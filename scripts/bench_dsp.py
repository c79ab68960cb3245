#!/usr/bin/env python3
"""Time the dsp pack against its Python references in one run and write the ratios.

Runs `cargo bench -p baton-dsp --bench dsp` (criterion, one thread), then the same work in
librosa / pyloudnorm / scipy on signals of the same length and kind, and rewrites the section
between the dsp-bench markers of docs/benchmarks.md. Then, end to end, `baton tools call
dsp_analyze` (release) against pyloudnorm reading and measuring the same 10- and 60-minute
files, each a separate process whose peak memory and CPU time GNU time reports;
that table goes between the dsp-e2e markers.

Usage (from the repository root, with the oracle venv; `--e2e` runs only the end-to-end part):
    .cache/venv/bin/python scripts/bench_dsp.py [--e2e]
"""
import tempfile
import datetime
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import librosa
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from docsection import replace_section  # noqa: E402
import pyloudnorm
import scipy.signal
import soundfile

ROOT = Path(__file__).resolve().parent.parent
RATE = 48000
START, END = "<!-- dsp-bench:start -->", "<!-- dsp-bench:end -->"
E2E_START, E2E_END = "<!-- dsp-e2e:start -->", "<!-- dsp-e2e:end -->"


def signal(seconds, seed):
    rng = np.random.default_rng(seed)
    t = np.arange(int(RATE * seconds)) / RATE
    y = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.1 * np.sin(2 * np.pi * 3100 * t)
    return (y + 0.2 * (rng.random(len(t)) - 0.5)).astype(np.float32)


def median_time(work, runs):
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def rust(name):
    estimates = ROOT / "target/criterion/dsp" / name / "new/estimates.json"
    return json.loads(estimates.read_text())["median"]["point_estimate"] / 1e9


def run_measured(argv, cwd):
    """Run `argv` under GNU time; (wall s, CPU s, peak RSS MiB, stdout). GNU time forks it from
    a small process: a child forked from this (large) Python would report Python's resident
    size as its own peak."""
    with tempfile.NamedTemporaryFile("r") as report:
        start = time.perf_counter()
        done = subprocess.run(["/usr/bin/time", "-f", "%M %U %S", "-o", report.name, *argv], cwd=cwd,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=True)
        wall = time.perf_counter() - start
        rss_kb, user, system = report.read().split()[-3:]
    return wall, float(user) + float(system), int(rss_kb) / 1024, done.stdout


def end_to_end():
    baton = ROOT / "target/release/baton"
    subprocess.run(["cargo", "build", "--release", "-p", "baton-cli", "--bin", "baton"], cwd=ROOT, check=True,
                   stdout=sys.stderr)
    rows = []
    with tempfile.TemporaryDirectory(dir="/var/tmp") as tmp:
        tmp = Path(tmp)
        for minutes, subtype, ext in [(10, "PCM_16", "wav"), (10, "PCM_16", "flac"), (60, "PCM_16", "wav"),
                                      (60, "FLOAT", "wav")]:
            path = tmp / f"{minutes}min-{subtype.lower()}.{ext}"
            with soundfile.SoundFile(path, "w", RATE, 2, subtype=subtype) as f:
                for minute in range(minutes):
                    f.write(np.stack([signal(60, 2 * minute), signal(60, 2 * minute + 1)], axis=1))
            ours, theirs = [], []
            for _ in range(3):
                wall, cpu, rss, out = run_measured(
                    [str(baton), "tools", "call", "dsp_analyze", "--args", json.dumps({"path": str(path)})], tmp)
                ours.append((wall, cpu, rss, json.loads(out)["integrated_lufs"]))
                script = ("import soundfile, pyloudnorm; d, r = soundfile.read(%r); "
                          "print(pyloudnorm.Meter(r).integrated_loudness(d))" % str(path))
                wall, cpu, rss, out = run_measured([sys.executable, "-c", script], tmp)
                theirs.append((wall, cpu, rss, float(out)))
            rows.append((minutes, subtype, ext, path.stat().st_size, ours, theirs))
            path.unlink()
    return rows


def e2e_table(rows):
    lines = [
        E2E_START,
        f"Measured {datetime.date.today()} by `scripts/bench_dsp.py`: `baton tools call dsp_analyze` (release, a",
        "fresh process each time, start-up and store included) against a Python process that reads the file",
        "with soundfile and measures it with pyloudnorm, the same file, alternating, median of 3; peak memory",
        "is the process's maximum resident set (GNU time). Stereo 48 kHz music-like signal.",
        "",
        "| file | size | Baton wall / CPU | Baton peak memory | pyloudnorm wall / CPU | pyloudnorm peak memory | speed | LUFS Baton / pyloudnorm | targets |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for minutes, subtype, ext, size, ours, theirs in rows:
        med = lambda runs, i: statistics.median(r[i] for r in runs)  # noqa: E731
        speed = med(theirs, 0) / med(ours, 0)
        peak = max(r[2] for r in ours)
        goals = []
        if minutes == 60:
            goals.append(f"memory ≤ 100 MiB — {'met' if peak <= 100 else 'NOT met'}")
        if minutes == 10:
            goals.append(f"≥ 3× — {'met' if speed >= 3 else 'NOT met'}")
        lines.append(
            f"| {minutes} min {subtype} {ext.upper()} | {size / 2**20:.0f} MiB | {med(ours, 0):.2f} s / {med(ours, 1):.2f} s "
            f"| {peak:.0f} MiB | {med(theirs, 0):.2f} s / {med(theirs, 1):.2f} s | {max(r[2] for r in theirs):.0f} MiB "
            f"| **{speed:.1f}× faster** | {ours[0][3]:.3f} / {theirs[0][3]:.3f} | {'; '.join(goals) or '—'} |")
    lines.append(E2E_END)
    return "\n".join(lines)


def main():
    if "--e2e" in sys.argv:
        block = e2e_table(end_to_end())
        replace_section(ROOT / "docs/benchmarks.md", E2E_START, E2E_END,
                        "## Audio end to end: `dsp_analyze` on long files against pyloudnorm (issue 22)", block)
        print(block)
        return
    subprocess.run(["cargo", "bench", "-p", "baton-dsp", "--bench", "dsp"], cwd=ROOT,
                   check=True, stdout=sys.stderr)

    stereo = np.stack([signal(60, 1), signal(60, 2)])
    stft = median_time(lambda: librosa.stft(stereo, n_fft=2048, hop_length=512), 5)

    long = np.stack([signal(600, 3), signal(600, 4)], axis=1).astype(np.float64)
    meter = pyloudnorm.Meter(RATE)
    loudness = median_time(lambda: meter.integrated_loudness(long), 3)

    mono = signal(30, 5)

    def separate():
        spectrum = librosa.stft(mono, n_fft=2048, hop_length=512)
        harmonic, percussive = librosa.decompose.hpss(spectrum, kernel_size=31, margin=1.0)
        librosa.istft(harmonic, hop_length=512, n_fft=2048, length=len(mono))
        librosa.istft(percussive, hop_length=512, n_fft=2048, length=len(mono))

    hpss = median_time(separate, 3)

    sos = []
    for i in range(10):
        b, a = scipy.signal.iirpeak(60 * 1.8 ** i / (RATE / 2), 1.0)
        sos.append(np.concatenate([b, a]))
    sos = np.array(sos)
    blocks = signal(10, 6).reshape(-1, 128)
    state = np.zeros((2, sos.shape[0], 2))

    def run_blocks():
        for block in blocks:
            for channel in range(2):
                _, state[channel] = scipy.signal.sosfilt(sos, block, zi=state[channel])

    biquad = median_time(run_blocks, 3) / len(blocks)

    budget = 128 / RATE
    rows = [
        ("STFT, 60 s stereo 48 kHz (2048/512, hann)", "librosa.stft", "stft_60s_stereo_48k", stft, None),
        ("Integrated loudness, 10 min stereo 48 kHz", "pyloudnorm", "loudness_10min_stereo_48k", loudness, 10),
        ("HPSS, 30 s mono 48 kHz (STFT, medians 31/31, masks, 2 × iSTFT)", "librosa", "hpss_30s_mono_48k", hpss, 10),
        ("10-biquad chain, one 128-sample stereo block", "scipy sosfilt (zi)", "biquad10_block128_stereo_48k", biquad, None),
    ]
    lines = [
        START,
        f"Measured {datetime.date.today()} by `scripts/bench_dsp.py` on this 2-core VM: Baton",
        "by criterion (median, one thread, release, mimalloc), the reference in the same run",
        "(median of 3–5 runs; Python " + sys.version.split()[0] + f", numpy {np.__version__},",
        f"scipy {scipy.__version__}, librosa {librosa.__version__}, pyloudnorm 0.2.0).",
        "",
        "| work | reference | Baton | reference time | Baton ÷ reference | target |",
        "|---|---|---|---|---|---|",
    ]
    for label, reference, name, theirs, target in rows:
        ours = rust(name)
        speedup = theirs / ours
        goal = f"≥ {target}× — {'met' if speedup >= target else 'NOT met'}" if target else "—"
        lines.append(f"| {label} | {reference} | {fmt(ours)} | {fmt(theirs)} | **{speedup:.1f}× faster** | {goal} |")
    share = rust("biquad10_block128_stereo_48k") / budget * 100
    lines += [
        "",
        f"The 10-biquad chain takes {share:.2f} % of the {budget * 1e3:.2f} ms budget of a 128-sample",
        f"block at 48 kHz (target < 1 % — {'met' if share < 1 else 'NOT met'}), both channels included.",
        END,
    ]
    block = "\n".join(lines)
    replace_section(ROOT / "docs/benchmarks.md", START, END, "## Audio: the dsp pack against librosa, pyloudnorm and scipy (issue 7)", block)
    print(block)
    block = e2e_table(end_to_end())
    replace_section(ROOT / "docs/benchmarks.md", E2E_START, E2E_END,
                    "## Audio end to end: `dsp_analyze` on long files against pyloudnorm (issue 22)", block)
    print(block)


def fmt(seconds):
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.1f} µs"


if __name__ == "__main__":
    main()
