"""The OpenAI Agents SDK (PyPI `openai-agents`) and Baton's runner, driven by the same local
Responses API server, make the same tool calls and send back the same results.

One scripted Responses server on the loopback (this file: JSON for `stream: false`, the way the
SDK asks, and server-sent events for `stream: true`, the way Baton asks) answers every request
by the number of tool results it already holds: read NOTE.md, then TODO.md, then a final answer.
- The SDK's agent gets Baton's `repo_read` over MCP (`baton serve` on stdio, tool-filtered).
- Baton's `reader` agent gets it through its gate (`baton run`, `[model] api = "responses"`).
Both must offer `repo_read` with the same JSON Schema, make the two calls with the same
arguments, send back results holding the same file contents, and end with the same answer.

Run by scripts/test.sh; exits non-zero with the failing check on any mismatch.
"""

import argparse
import asyncio
import json
import os
import subprocess
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from agents import Agent, OpenAIResponsesModel, Runner, set_tracing_disabled
from agents.mcp import MCPServerStdio, create_static_tool_filter
from openai import AsyncOpenAI

ANSWER = "NOTE.md says hi; TODO.md lists one thing."


def check(condition, what):
    if not condition:
        raise AssertionError(what)


def script(body, repo):
    """The output items answering one request."""
    results = [i for i in body["input"] if isinstance(i, dict) and i.get("type") == "function_call_output"]
    if len(results) < 2:
        path = ["NOTE.md", "TODO.md"][len(results)]
        call = f"call_{len(results) + 1}"
        return [{"type": "function_call", "id": f"fc_{call}", "call_id": call, "name": "repo_read",
                 "arguments": json.dumps({"repo": repo, "path": path}), "status": "completed"}]
    return [{"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
             "content": [{"type": "output_text", "text": ANSWER, "annotations": []}]}]


def response(n, body, output):
    usage = {"input_tokens": 10, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 5,
             "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 15}
    return {"id": f"resp_{n}", "object": "response", "created_at": 0, "model": body["model"],
            "status": "completed", "output": output, "usage": usage, "parallel_tool_calls": True,
            "tool_choice": "auto", "tools": [], "error": None, "incomplete_details": None,
            "instructions": body.get("instructions"), "metadata": {}, "temperature": None,
            "top_p": None}


def serve(repo):
    """Start the scripted server; its base URL and the list of requests it keeps. Like OpenAI's,
    it keeps each response: a request naming one (`previous_response_id`) goes on from its
    conversation, and is kept with its whole input."""
    requests = []
    stored = {}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            check(self.path == "/v1/responses", f"unexpected {self.path}")
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            previous = body.get("previous_response_id")
            if previous is not None:
                if previous not in stored:
                    data = json.dumps({"error": {"message": f"Previous response with id '{previous}' not found.",
                                                 "type": "invalid_request_error", "param": "previous_response_id",
                                                 "code": None}}).encode()
                    self.send_response(404)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                body = dict(body, input=stored[previous] + body["input"])
            requests.append(body)
            n = len(requests)
            output = script(body, repo)
            done = response(n, body, output)
            stored[done["id"]] = body["input"] + output
            if not body.get("stream"):
                data = json.dumps(done).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            events = [{"type": "response.created", "response": dict(done, status="in_progress", output=[])}]
            for at, item in enumerate(output):
                events.append({"type": "response.output_item.added", "output_index": at, "item": item})
                events.append({"type": "response.output_item.done", "output_index": at, "item": item})
            events.append({"type": "response.completed", "response": done})
            stream = "".join(f"event: {e['type']}\ndata: {json.dumps(dict(e, sequence_number=i))}\n\n"
                             for i, e in enumerate(events)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Content-Length", str(len(stream)))
            self.end_headers()
            self.wfile.write(stream)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/v1", requests


def calls_and_results(requests):
    """What the client offered, called and sent back, from the requests it made."""
    last = requests[-1]
    calls = [(i["name"], json.loads(i["arguments"])) for i in last["input"]
             if isinstance(i, dict) and i.get("type") == "function_call"]
    results = [json.loads(i["output"]) for i in last["input"]
               if isinstance(i, dict) and i.get("type") == "function_call_output"]
    tools = {t["name"]: t["parameters"] for r in requests for t in r.get("tools", [])}
    return tools, calls, results


async def sdk(baton, root, base_url):
    set_tracing_disabled(True)
    env = dict(os.environ, BATON_LOG="warn", BATON_CONFIG=os.path.join(root, "baton.toml"),
               BATON_HOME=os.path.join(root, "sdk-data"))
    async with MCPServerStdio(params={"command": baton, "args": ["serve"], "cwd": root, "env": env},
                              tool_filter=create_static_tool_filter(allowed_tool_names=["repo_read"]),
                              use_structured_content=True, client_session_timeout_seconds=30) as baton_mcp:
        agent = Agent(name="reader", instructions="Read NOTE.md and TODO.md with repo_read.",
                      mcp_servers=[baton_mcp],
                      model=OpenAIResponsesModel(model="scripted",
                                                 openai_client=AsyncOpenAI(base_url=base_url, api_key="k")))
        result = await Runner.run(agent, "read the notes")
        return result.final_output


def baton_run(baton, root, base_url, repo):
    env = dict(os.environ, BATON_LOG="warn", OPENAI_BASE_URL=base_url, OPENAI_API_KEY="k",
               OPENAI_MODEL="scripted", BATON_CONFIG=os.path.join(root, "baton.toml"),
               BATON_HOME=os.path.join(root, "baton-data"))
    done = subprocess.run([baton, "run", "read the notes", "--agent", "reader", "--agents",
                           os.path.join(root, "agents"), "--provider", "openai", "--repo", repo],
                          cwd=root, env=env, capture_output=True, text=True, timeout=120)
    check(done.returncode == 0, f"baton run failed: {done.stderr}")
    return json.loads(done.stdout)["output"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--baton", required=True)
    args = parser.parse_args()
    baton = os.path.abspath(args.baton)
    with tempfile.TemporaryDirectory() as root:
        repo = os.path.join(root, "repo")
        os.makedirs(repo)
        os.makedirs(os.path.join(root, "agents"))
        for name, text in [("NOTE.md", "hi\n"), ("TODO.md", "- one thing\n")]:
            with open(os.path.join(repo, name), "w") as f:
                f.write(text)
        with open(os.path.join(root, "agents", "reader.toml"), "w") as f:
            f.write('name = "reader"\ninstructions = "Read NOTE.md and TODO.md with repo_read."\n'
                    'tools = ["repo_read"]\n')
        with open(os.path.join(root, "baton.toml"), "w") as f:
            f.write('[model]\napi = "responses"\n')

        sdk_url, sdk_requests = serve(repo)
        sdk_output = asyncio.run(sdk(baton, root, sdk_url))
        baton_url, baton_requests = serve(repo)
        baton_output = baton_run(baton, root, baton_url, repo)

        sdk_tools, sdk_calls, sdk_results = calls_and_results(sdk_requests)
        baton_tools, baton_calls, baton_results = calls_and_results(baton_requests)
        check(len(sdk_requests) == len(baton_requests) == 3,
              f"requests: SDK {len(sdk_requests)}, Baton {len(baton_requests)}")
        check(sdk_tools == baton_tools, f"tools offered differ:\nSDK   {sdk_tools}\nBaton {baton_tools}")
        expected = [("repo_read", {"repo": repo, "path": "NOTE.md"}),
                    ("repo_read", {"repo": repo, "path": "TODO.md"})]
        check(sdk_calls == baton_calls == expected, f"calls: SDK {sdk_calls}, Baton {baton_calls}")
        check(sdk_results == baton_results, f"results differ:\nSDK   {sdk_results}\nBaton {baton_results}")
        check([r["content"] for r in baton_results] == ["hi", "- one thing"], f"results: {baton_results}")
        kinds = [[i.get("type", i.get("role")) for i in r["input"]] for r in (sdk_requests[-1], baton_requests[-1])]
        check(kinds[0] == kinds[1], f"the conversations sent differ in shape: SDK {kinds[0]}, Baton {kinds[1]}")
        check(sdk_output == baton_output == ANSWER, f"answers: SDK {sdk_output!r}, Baton {baton_output!r}")
        # Baton goes on from each response it got (the SDK, by default, resends everything).
        chained = [r.get("previous_response_id") for r in baton_requests]
        check(chained == [None, "resp_1", "resp_2"], f"Baton's requests chained: {chained}")
        print(f"Agents SDK {__import__('agents').__version__} and Baton's runner: the same 2 tool calls, "
              f"results and answer over one Responses server ({len(sdk_requests)} requests each; "
              f"Baton's 2nd and 3rd chained by previous_response_id)")


if __name__ == "__main__":
    main()
