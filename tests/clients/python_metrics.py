"""Baton's `/metrics` read by the official Prometheus client's OpenMetrics parser (PyPI
`prometheus-client`): a scrape before and after three `POST /v1/tools/dsp_response` calls and
one call the policy forbids parses strictly, and the call counters moved by exactly those calls.

Run by scripts/test.sh; exits non-zero with the failing check on any mismatch.
"""

import argparse
import json
import os
import re
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

from prometheus_client.openmetrics.parser import text_string_to_metric_families


def check(condition, what):
    if not condition:
        raise AssertionError(what)


def start(baton, root):
    log = open(os.path.join(root, "serve.log"), "w+")
    env = dict(os.environ, BATON_LOG="info", BATON_HOME=os.path.join(root, "data"))
    server = subprocess.Popen([baton, "serve", "--http", "127.0.0.1:0"], cwd=root, env=env,
                              stdout=subprocess.DEVNULL, stderr=log)
    for _ in range(100):
        log.seek(0)
        found = re.search(r"listening on (http://\S+)/mcp", log.read())
        if found:
            return server, found.group(1)
        check(server.poll() is None, "baton serve exited")
        time.sleep(0.1)
    raise AssertionError("baton serve did not start")


def scrape(base):
    with urllib.request.urlopen(f"{base}/metrics") as response:
        check(response.headers["Content-Type"].startswith("application/openmetrics-text"),
              response.headers["Content-Type"])
        text = response.read().decode()
    # The parser raises on anything OpenMetrics does not allow.
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = (sample.name, tuple(sorted(sample.labels.items())))
            samples[key] = sample.value
    return samples


def calls(samples):
    return {dict(labels)["tool"] + " " + dict(labels)["outcome"]: value
            for (name, labels), value in samples.items() if name == "baton_tool_calls_total"}


def post(base, tool, args):
    request = urllib.request.Request(f"{base}/v1/tools/{tool}", data=json.dumps(args).encode(),
                                     headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--baton", required=True)
    args = parser.parse_args()
    root = tempfile.mkdtemp(prefix="baton-metrics-")
    with open(os.path.join(root, "baton.toml"), "w") as f:
        f.write('[telemetry]\nmetrics = true\n')
    with open(os.path.join(root, "policy.toml"), "w") as f:
        f.write('[[rules]]\nid = "no-latency"\ntool = "dsp_latency"\naction = "forbid"\n'
                'reason = "not here"\n')
    server, base = start(args.baton, root)
    try:
        before = scrape(base)
        chain = {"sample_rate": 48000, "chain": [{"type": "lowpass", "freq_hz": 1000}]}
        for _ in range(3):
            check(post(base, "dsp_response", chain) == 200, "dsp_response answered")
        check(post(base, "dsp_latency", chain) == 403, "dsp_latency forbidden")
        after = scrape(base)
    finally:
        server.terminate()
        server.wait()
    moved = {k: v - calls(before).get(k, 0) for k, v in calls(after).items()}
    moved = {k: v for k, v in moved.items() if v}
    check(moved == {"dsp_response ok": 3, "dsp_latency denied": 1}, f"counters moved: {moved}")
    families = {name for name, _ in after}
    for name in ("baton_tool_call_duration_seconds_bucket", "baton_audit_sync_seconds_count",
                 "baton_approvals_pending", "baton_store_size_bytes"):
        check(name in families, f"{name} scraped")
    print(f"/metrics parses as OpenMetrics ({len(after)} samples); counters moved by {moved}")


if __name__ == "__main__":
    main()
