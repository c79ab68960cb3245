"""The Python MCP SDK (PyPI `mcp`) hands Baton goals over stdio: `agents_run` on a replay
cassette starts a run in the server; `runs_get` follows it to `done`; a run that needs an
approval shows it pending, and completes after `baton approvals approve`; `runs_cancel`
stops one that waits.

Run by scripts/test.sh; exits non-zero with the failing check on any mismatch.
"""

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile

from mcp import Client, StdioServerParameters


def check(condition, what):
    if not condition:
        raise AssertionError(what)


def call(call_id, name, args):
    return {"message": {"role": "assistant", "tool_calls": [{"id": call_id, "type": "function",
            "function": {"name": name, "arguments": json.dumps(args)}}]}, "finish_reason": "tool_calls"}


def answer(text):
    return {"message": {"role": "assistant", "content": text}, "finish_reason": "stop"}


def home():
    """A folder with baton.toml, a policy asking a reviewer before writes, a repository and
    two cassettes: one writes NOTE.md, one reads (and needs nothing)."""
    root = tempfile.mkdtemp(prefix="baton-goals-")
    repo = os.path.join(root, "repo")
    os.makedirs(repo)
    with open(os.path.join(root, "baton.toml"), "w") as f:
        f.write('data_dir = "data"\n')
    with open(os.path.join(root, "policy.toml"), "w") as f:
        f.write('sandbox = "workspace-write"\napproval = "untrusted"\nwritable_roots = ["repo"]\n')
    write = {"interactions": [
        {"request": {"messages": [{"role": "user", "content": "Goal: write the note*"}]},
         "response": call("w1", "repo_write", {"path": "NOTE.md", "content": "hi"})},
        {"request": {"messages": [{"role": "tool", "tool_call_id": "w1"}]},
         "response": answer("NOTE.md written.")},
    ]}
    read = {"interactions": [
        {"request": {"messages": [{"role": "user", "content": "Goal: look around*"}]},
         "response": call("r1", "repo_read", {"path": "."})},
        {"request": {"messages": [{"role": "tool", "tool_call_id": "r1"}]},
         "response": answer("Nothing here yet.")},
    ]}
    for name, body in (("write.json", write), ("read.json", read)):
        with open(os.path.join(root, name), "w") as f:
            json.dump(body, f)
    return root, repo


async def follow(client, run_id, until, label, seconds=30):
    for _ in range(seconds * 10):
        got = await client.call_tool("runs_get", {"run_id": run_id})
        check(not got.is_error, f"{label}: runs_get {got}")
        report = got.structured_content
        if until(report):
            return report
        await asyncio.sleep(0.1)
    raise AssertionError(f"{label}: run {run_id} never got there: {report}")


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--baton", required=True, help="path to the baton binary")
    args = parser.parse_args()
    root, repo = home()
    config = os.path.join(root, "baton.toml")
    env = dict(os.environ, BATON_CONFIG=config)
    env.pop("BATON_HOME", None)
    server = StdioServerParameters(command=args.baton, args=["serve"], env=env, cwd=root)
    async with Client(server, mode="legacy") as client:
        names = [tool.name for tool in (await client.list_tools()).tools]
        for name in ("agents_run", "runs_list", "runs_get", "runs_resume", "runs_cancel"):
            check(name in names, f"tools: {name} missing from {names}")

        # A run that only reads goes to done by itself.
        started = await client.call_tool("agents_run", {
            "goal": "look around", "agent": "builder", "repo": repo,
            "cassette": os.path.join(root, "read.json")})
        check(not started.is_error, f"agents_run: {started}")
        run_id = started.structured_content["run_id"]
        done = await follow(client, run_id, lambda r: r["state"] == "done", "read run")
        check(done["output"] == "Nothing here yet.", f"read run: {done}")

        # A run that writes waits for a reviewer; approved from a shell, it completes.
        started = await client.call_tool("agents_run", {
            "goal": "write the note", "agent": "builder", "repo": repo,
            "cassette": os.path.join(root, "write.json")})
        run_id = started.structured_content["run_id"]
        # The approval is recorded a moment before the run's state says it waits for it.
        waiting = await follow(
            client, run_id,
            lambda r: r["pending_approvals"] and r["state"] != "running", "write run")
        check(waiting["state"] == "waiting_approval", f"write run: {waiting}")
        approval = waiting["pending_approvals"][0]
        check(approval["tool"] == "repo_write", f"write run: {approval}")
        check(not os.path.exists(os.path.join(repo, "NOTE.md")), "written before approval")
        approved = subprocess.run([args.baton, "approvals", "approve", approval["approval_id"]],
                                  env=env, cwd=root, capture_output=True, text=True)
        check(approved.returncode == 0, f"approve: {approved.stderr}")
        done = await follow(client, run_id, lambda r: r["state"] == "done", "write run")
        check(done["output"] == "NOTE.md written.", f"write run: {done}")
        with open(os.path.join(repo, "NOTE.md")) as f:
            check(f.read() == "hi", "NOTE.md content")

        # Cancelled while it waits.
        os.remove(os.path.join(repo, "NOTE.md"))
        started = await client.call_tool("agents_run", {
            "goal": "write the note", "agent": "builder", "repo": repo,
            "cassette": os.path.join(root, "write.json")})
        run_id = started.structured_content["run_id"]
        await follow(client, run_id, lambda r: r["pending_approvals"], "cancelled run")
        cancelled = await client.call_tool("runs_cancel", {"run_id": run_id})
        check(not cancelled.is_error, f"runs_cancel: {cancelled}")
        stopped = await follow(client, run_id, lambda r: r["state"] == "cancelled", "cancelled run")
        check(not os.path.exists(os.path.join(repo, "NOTE.md")), "a cancelled run wrote")
        listed = await client.call_tool("runs_list", {})
        check(len(listed.structured_content["runs"]) == 3, f"runs_list: {listed.structured_content}")
        print(f"python mcp client (goals over stdio): ok — {stopped['state']} after {len(stopped['steps'])} steps")


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except AssertionError as failure:
        print(f"python mcp client: FAILED: {failure}", file=sys.stderr)
        sys.exit(1)
