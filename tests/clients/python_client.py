"""The Python MCP SDK (PyPI `mcp`) against a real `baton` — listing and calling tools, reading
resources and prompts, in both protocol eras, over stdio and (when --http is given) HTTP.

Run by scripts/test.sh; exits non-zero with the failing check on any mismatch.
"""

import argparse
import asyncio
import os
import sys

from mcp import Client, MCPError, StdioServerParameters


def check(condition, what):
    if not condition:
        raise AssertionError(what)


async def exercise(target, mode, label):
    async with Client(target, mode=mode) as client:
        version = client.protocol_version
        check(client.server_info.name == "baton", f"{label}: server name {client.server_info.name}")

        tools = (await client.list_tools()).tools
        names = [tool.name for tool in tools]
        check(names[:2] == ["baton_info", "knowledge_search"], f"{label}: tools {names}")
        check("approvals_decide" in names, f"{label}: tools {names}")
        search = next(tool for tool in tools if tool.name == "knowledge_search")
        check(search.annotations.read_only_hint is True, f"{label}: readOnlyHint")
        check(search.output_schema["type"] == "object", f"{label}: outputSchema")

        info = await client.call_tool("baton_info", {})
        check(not info.is_error, f"{label}: baton_info isError")
        check(info.structured_content["name"] == "baton", f"{label}: baton_info {info.structured_content}")

        found = await client.call_tool("knowledge_search", {"query": "gate", "limit": 3})
        hits = found.structured_content["hits"]
        check(len(hits) >= 1 and hits[0]["uri"].startswith("knowledge://"), f"{label}: hits {hits}")

        try:
            await client.call_tool("knowledge_search", {"query": 5})
            raise AssertionError(f"{label}: args that fail the schema were accepted")
        except MCPError as error:
            check(error.error.code == -32602, f"{label}: code {error.error.code}")
            check("`query`" in error.error.message, f"{label}: message {error.error.message}")

        resources = (await client.list_resources()).resources
        check(len(resources) >= 1, f"{label}: resources")
        text = (await client.read_resource(resources[0].uri)).contents[0].text
        check(len(text) > 0, f"{label}: resource text")

        prompts = (await client.list_prompts()).prompts
        check([p.name for p in prompts] == ["knowledge_brief"], f"{label}: prompts")
        brief = await client.get_prompt("knowledge_brief", {"topic": "gate"})
        check(len(brief.messages) >= 2, f"{label}: brief messages {len(brief.messages)}")
        print(f"python mcp client ({label}, protocol {version}): ok")


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--baton", required=True, help="path to the baton binary")
    parser.add_argument("--http", help="URL of a running `baton serve --http` (optional)")
    args = parser.parse_args()
    stdio = StdioServerParameters(command=args.baton, args=["serve"], env=dict(os.environ))
    for mode in ("legacy", "auto"):
        await exercise(stdio, mode, f"stdio, {mode}")
        if args.http:
            await exercise(args.http, mode, f"http, {mode}")


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except AssertionError as failure:
        print(f"python mcp client: FAILED: {failure}", file=sys.stderr)
        sys.exit(1)
