"""A remote MCP client hands Baton audio it does not share a disk with: the Python MCP SDK
(PyPI `mcp`) over Streamable HTTP on the loopback uploads a WAV (`POST /v1/artifacts`), runs
`dsp_analyze` on its artifact URI, and reads the stems `dsp_separate` kept in the store with
`resources/read`. The bytes read are the bytes `GET /v1/artifacts/<sha256>` serves, their
SHA-256 is the URI's, and the stems add back up to the upload (numpy).

Run by scripts/test.sh against a running `baton serve --http`; exits non-zero with the
failing check on any mismatch.
"""

import argparse
import asyncio
import base64
import hashlib
import json
import struct
import sys
import urllib.request
import wave

import numpy as np
from mcp import Client


def check(condition, what):
    if not condition:
        raise AssertionError(what)


def http(method, url, body=None, content_type=None):
    request = urllib.request.Request(url, data=body, method=method)
    if content_type:
        request.add_header("Content-Type", content_type)
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.status, response.read()


def float_wav(data):
    """The samples of a 32-bit float WAV, and its sample rate."""
    check(data[:4] == b"RIFF" and data[8:12] == b"WAVE", "a stem is not a WAV")
    at, rate, samples = 12, None, None
    while at + 8 <= len(data):
        chunk, size = data[at:at + 4], struct.unpack("<I", data[at + 4:at + 8])[0]
        body = data[at + 8:at + 8 + size]
        if chunk == b"fmt ":
            fmt, _channels, rate = struct.unpack("<HHI", body[:8])
            bits = struct.unpack("<H", body[14:16])[0]
            check(bits == 32 and fmt in (3, 0xFFFE), f"a stem is not 32-bit float ({fmt}, {bits})")
        elif chunk == b"data":
            samples = np.frombuffer(body, dtype="<f4")
        at += 8 + size + (size & 1)
    check(rate is not None and samples is not None, "a stem has no fmt or data chunk")
    return samples, rate


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--http", required=True, help="URL of a running `baton serve --http`")
    parser.add_argument("--wav", required=True, help="a mono 16-bit WAV to send")
    args = parser.parse_args()
    base = args.http.removesuffix("/mcp")
    upload = open(args.wav, "rb").read()

    status, body = http("POST", f"{base}/v1/artifacts", upload, "audio/wav")
    kept = json.loads(body)
    check(status == 201, f"upload: {status}")
    check(kept["sha256"] == hashlib.sha256(upload).hexdigest(), f"upload digest {kept}")
    uri = kept["uri"]

    async with Client(args.http) as client:
        analysis = await client.call_tool("dsp_analyze", {"path": uri})
        check(not analysis.is_error, f"dsp_analyze: {analysis.content}")
        with wave.open(args.wav) as source:
            rate, frames = source.getframerate(), source.getnframes()
            pcm = np.frombuffer(source.readframes(frames), dtype="<i2") / 32768.0
        found = analysis.structured_content
        check((found["sample_rate"], found["frames"]) == (rate, frames), f"dsp_analyze: {found}")

        separated = await client.call_tool("dsp_separate", {"path": uri})
        check(not separated.is_error, f"dsp_separate: {separated.content}")
        result = separated.structured_content
        stems = result["stems"]
        check([s["name"] for s in stems] == ["harmonic", "percussive"], f"stems {stems}")
        check(all("path" not in a for a in result["artifacts"]),
              f"a private output names a path on Baton's disk: {result['artifacts']}")
        total = np.zeros(frames)
        for stem in stems:
            check(stem["path"].startswith("baton://artifacts/"), f"stem by path: {stem}")
            read = await client.read_resource(stem["path"])
            data = base64.b64decode(read.contents[0].blob)
            sha = stem["path"].removeprefix("baton://artifacts/")
            check(hashlib.sha256(data).hexdigest() == sha, f"{stem['name']}: digest")
            _, served = http("GET", f"{base}/v1/artifacts/{sha}")
            check(served == data, f"{stem['name']}: resources/read and GET differ")
            samples, stem_rate = float_wav(data)
            check(stem_rate == rate and len(samples) == frames, f"{stem['name']}: {stem_rate} Hz, {len(samples)}")
            total += samples
        error = np.sqrt(np.mean((total - pcm) ** 2)) / np.sqrt(np.mean(pcm ** 2))
        check(20 * np.log10(max(error, 1e-12)) < -60, f"stems do not add up to the upload: {error}")
        print(f"python mcp client over http: upload, dsp_analyze by URI, {len(stems)} stems by "
              f"resources/read ({sum(a['size'] for a in result['artifacts'])} bytes): ok")


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except AssertionError as failure:
        print(f"python artifacts client: FAILED: {failure}", file=sys.stderr)
        sys.exit(1)
