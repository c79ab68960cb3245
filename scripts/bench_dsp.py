#!/usr/bin/env python3
"""Time the dsp pack against its Python references in one run and write the ratios.

Runs `cargo bench -p baton-dsp --bench dsp` (criterion, one thread), then the same work in
librosa / pyloudnorm / scipy on signals of the same length and kind, and rewrites the section
between the dsp-bench markers of docs/benchmarks.md.

Usage (from the repository root, with the oracle venv):
    .cache/venv/bin/python scripts/bench_dsp.py
"""
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

ROOT = Path(__file__).resolve().parent.parent
RATE = 48000
START, END = "<!-- dsp-bench:start -->", "<!-- dsp-bench:end -->"


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


def main():
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


def fmt(seconds):
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.1f} µs"


if __name__ == "__main__":
    main()
