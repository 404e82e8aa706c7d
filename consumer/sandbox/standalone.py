"""`sis-consumer sandbox`: the local SQS and the simulated Canvas on their own, for your own scripts.

Imports submitted to it run by themselves with the demo's timings and mix of outcomes (or the
fates given with `--fates`) and publish their Live Events to the queue, so `sis-consumer run`
pointed at it watches what your script does. It runs until SIGINT or SIGTERM.

With `--json`, the first line on stdout is one JSON object (`describe`) and nothing else is
printed there; without it, the same for people. The tokens it prints are the sandbox's own fixed
fake tokens: they open nothing but this process.
"""

from __future__ import annotations

import asyncio
import json
import shlex
import signal
import sys
from dataclasses import replace
from typing import Any

from consumer.sandbox.knobs import Knobs
from consumer.sandbox.stack import Sandbox

STANDALONE_KNOBS = Knobs.demo()
SAMPLE_CSV = "users.csv"


def knobs_for(fates: tuple[str, ...], time_scale: float) -> Knobs:
    """Raises ValueError (from `Knobs`) on an unknown fate or a negative scale."""
    return replace(STANDALONE_KNOBS, fates=fates, time_scale=time_scale)


def describe(sandbox: Sandbox) -> dict[str, Any]:
    """What a script needs: where Canvas and the queue are, and each root account's token and terms."""
    canvas, queues = sandbox.canvas, sandbox.queues
    return {
        "canvas_url": canvas.url,
        "sqs_endpoint": queues.endpoint_url,
        "queue_url": queues.queue_url,
        "dlq_url": queues.dlq_url,
        "region": queues.region,
        "accounts": [
            {
                "id": str(account.id),
                "name": account.name,
                "uuid": account.uuid,
                "token": account.token,
                "terms": [
                    {"id": str(t.id), "sis_term_id": t.sis_term_id, "name": t.name} for t in account.terms
                ],
            }
            for account in canvas.directory.roots
        ],
    }


def for_people(described: dict[str, Any], env: dict[str, str]) -> str:
    first = described["accounts"][0]
    imports = f"{described['canvas_url']}/api/v1/accounts/{first['id']}/sis_imports.json"
    url = f"{imports}?import_type=instructure_csv"
    lines = [
        "sis-consumer sandbox: a simulated Canvas and a local SQS queue (Ctrl-C stops both).",
        "",
        f"  Canvas  {described['canvas_url']}",
        f"  SQS     {described['sqs_endpoint']}   queue {described['queue_url']}",
        "",
    ]
    for account in described["accounts"]:
        lines.append(f"  account {account['id']} ({account['name']}), uuid {account['uuid']}")
        lines.append(f"    token  {account['token']}")
        terms = ", ".join(
            f"{t['id']} {t['name']}" + (f" (sis_term_id:{t['sis_term_id']})" if t["sis_term_id"] else "")
            for t in account["terms"]
        )
        lines.append(f"    terms  {terms}")
    lines += [
        "",
        "Send an import (any CSV of the SIS format, or a zip of them):",
        f"  curl -F attachment=@{SAMPLE_CSV} -H 'Authorization: Bearer {first['token']}' '{url}'",
        "",
        "Watch it with the daemon, in another terminal:",
        *(f"  export {name}={shlex.quote(value)}" for name, value in env.items()),
        "  sis-consumer run",
        "",
    ]
    return "\n".join(lines)


async def serve_sandbox(knobs: Knobs, *, port: int, as_json: bool) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        async with Sandbox(knobs=knobs, canvas_port=port) as sandbox:
            described = describe(sandbox)
            if as_json:
                print(json.dumps(described), flush=True)
            else:
                print(for_people(described, sandbox.env()), flush=True)
            await stop.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    if not as_json:
        print("sis-consumer sandbox: stopped.", file=sys.stderr)
    return 0
