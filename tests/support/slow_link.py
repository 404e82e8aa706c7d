"""A slow uplink for tests: a TCP relay that forwards what the client sends at a fixed rate.

It stands for a campus network pushing a large SIS zip to Canvas: the answer comes back at full
speed, the upload crawls. Run it on the test's loop, in front of a local server.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

CHUNK = 16 * 1024


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, bytes_per_second: float) -> None:
    try:
        while chunk := await reader.read(CHUNK):
            writer.write(chunk)
            await writer.drain()
            if bytes_per_second:
                await asyncio.sleep(len(chunk) / bytes_per_second)
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(ConnectionError, OSError):
            writer.close()


@asynccontextmanager
async def slow_uplink(target_port: int, bytes_per_second: float) -> AsyncIterator[str]:
    """Yields the relay's base URL (`http://127.0.0.1:PORT`) in front of `127.0.0.1:target_port`."""
    relays: set[asyncio.Task[None]] = set()

    async def relay(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", target_port)
        await asyncio.gather(
            _pipe(client_reader, server_writer, bytes_per_second),
            _pipe(server_reader, client_writer, 0),
        )

    def track(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.create_task(relay(reader, writer))
        relays.add(task)
        task.add_done_callback(relays.discard)

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))  # the kernel picks a free port: no race
    server = await asyncio.start_server(track, sock=sock)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.close()
        for task in relays:
            task.cancel()
        await asyncio.gather(*relays, return_exceptions=True)
        await server.wait_closed()
