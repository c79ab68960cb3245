#!/usr/bin/env python3
"""Check `dsp_normalize` against references it does not share code with.

For every readable dsp fixture, and for hot masters written here in the formats a user sends
(PCM 16/24/32, float; 44.1 to 192 kHz; inter-sample overs), `baton tools call dsp_normalize`
writes a normalised file, which is then measured here:
  - loudness by pyloudnorm (BS.1770-4), within 0.1 LU of the target;
  - true peak by scipy's polyphase resampling, 4x and 8x, never above the ceiling;
  - where Baton applied gain alone, the output equals pyloudnorm.normalize.loudness of the
    input to Baton's measured loudness within 1e-6 (the same operation).
Silence is refused. Exit 1 on the first failure, naming it.

Usage: check_normalize.py --baton target/debug/baton
"""
import argparse
import json
import pathlib
import subprocess
import sys
import tempfile

import numpy as np
import pyloudnorm
import pyloudnorm.normalize
import scipy.signal
import soundfile

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures/dsp/audio"


def hot_master(rate, seconds=8.0, seed=1):
    """Dense, limited-sounding music: chords plus noise, peaks pushed between samples."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(rate * seconds)) / rate
    tones = sum(np.sin(2 * np.pi * f * t + p) for f, p in [(110, 0), (220, 1), (5512.5, 0.7), (rate / 4.01, 0.3)])
    noise = scipy.signal.lfilter([1], [1, -0.95], rng.standard_normal(len(t))) * 0.05
    left = tones / 4 + noise
    right = np.roll(left, 17) * 0.9
    stereo = np.stack([left, right], axis=1)
    return stereo / np.max(np.abs(stereo)) * 0.999


def true_peak_db(data, rate):
    peaks = []
    for factor in (4, 8):
        up = scipy.signal.resample_poly(data, factor, 1, axis=0)
        peaks.append(20 * np.log10(np.max(np.abs(up))))
    return max(peaks)


def normalize(baton, path, out, target, ceiling, home):
    args = json.dumps({"path": str(path), "target_lufs": target, "true_peak_dbtp": ceiling, "out": str(out)})
    done = subprocess.run([baton, "tools", "call", "dsp_normalize", "--args", args], capture_output=True, text=True,
                          cwd=home, env={"BATON_HOME": str(home / "home"), "PATH": "/usr/bin:/bin"})
    return done


def fail(message):
    print(f"check_normalize: FAIL {message}", file=sys.stderr)
    sys.exit(1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--baton", required=True)
    options = parser.parse_args()
    options.baton = str(pathlib.Path(options.baton).resolve())
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        # Writes need a policy that allows them, here into `out/` only.
        (tmp / "out").mkdir()
        (tmp / "baton.toml").write_text("")
        (tmp / "policy.toml").write_text('sandbox = "workspace-write"\napproval = "never"\nwritable_roots = ["out"]\n')
        inputs = sorted(p for p in FIXTURES.iterdir() if p.suffix in (".wav", ".flac") and "." not in p.stem)
        for rate, subtype in [(192000, "PCM_24"), (44100, "FLOAT"), (48000, "PCM_16"), (96000, "PCM_32"),
                              (88200, "PCM_24")]:
            path = tmp / f"hot-{rate}-{subtype.lower()}.wav"
            soundfile.write(path, hot_master(rate), rate, subtype=subtype)
            inputs.append(path)
        checked = limited = 0
        for path in inputs:
            for target, ceiling in [(-14.0, -1.0), (-23.0, -2.0), (-9.0, -1.0)]:
                out = tmp / "out" / f"{path.stem}-{-target:.0f}.wav"
                done = normalize(options.baton, path, out, target, ceiling, tmp)
                if "silence" in path.name:
                    if done.returncode == 0 or "gate" not in done.stderr + done.stdout:
                        fail(f"{path.name}: silence was not refused: {done.stdout}{done.stderr}")
                    continue
                if done.returncode != 0:
                    fail(f"{path.name} → {target} LUFS: {done.stderr}")
                report = json.loads(done.stdout)
                data, rate = soundfile.read(out, always_2d=True)
                lufs = pyloudnorm.Meter(rate).integrated_loudness(data)
                peak = true_peak_db(data, rate)
                line = (f"{path.name:40} → {target:6.1f} LUFS / {ceiling:4.1f} dBTP: pyloudnorm {lufs:8.3f} "
                        f"(Δ {lufs - target:+.3f}), scipy true peak {peak:7.3f}, "
                        f"{'limited ' + format(report['max_gain_reduction_db'], '.2f') + ' dB' if report['limited'] else 'gain only'}")
                print(line)
                if abs(lufs - target) > 0.1:
                    fail(f"{line}: loudness off target")
                if peak > ceiling:
                    fail(f"{line}: true peak above the ceiling")
                if not report["limited"]:
                    source, _ = soundfile.read(path, always_2d=True, dtype="float32")
                    expected = pyloudnorm.normalize.loudness(source.astype(np.float64), report["input_lufs"], target)
                    worst = float(np.max(np.abs(expected - data)))
                    if worst > 1e-6:
                        fail(f"{line}: gain-only output differs from pyloudnorm.normalize.loudness by {worst}")
                else:
                    limited += 1
                checked += 1
        print(f"check_normalize: {checked} normalisations ({limited} limited) within 0.1 LU of target by "
              f"pyloudnorm and under the ceiling by scipy 4x/8x; silence refused")


if __name__ == "__main__":
    main()
