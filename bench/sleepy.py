"""A loopback HTTP server that answers every request after a delay: the slow API of the I/O scenarios.

``python -m bench.sleepy --port 9000 --delay 1.0``; asyncio, so 500 waiting requests cost little.
A request for ``/?delay=8`` is answered after 8 s instead (back ends of several speeds at once).
"""

from __future__ import annotations

import argparse
import asyncio
from urllib.parse import parse_qs, urlsplit


async def answer_after(delay: float, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Serve keep-alive requests on one connection, each answered ``delay`` seconds after it came."""
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                (
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                ),
                0,
            )
            if length:
                await reader.readexactly(length)
            await asyncio.sleep(_asked_delay(head, delay))
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


def _asked_delay(head: bytes, default: float) -> float:
    """The request's ``delay`` query parameter in seconds, else ``default``."""
    target = head.split(b"\r\n", 1)[0].split(b" ")[1].decode("latin-1")
    asked = parse_qs(urlsplit(target).query).get("delay")
    return float(asked[0]) if asked else default


async def serve(port: int, delay: float) -> None:
    server = await asyncio.start_server(lambda r, w: answer_after(delay, r, w), "127.0.0.1", port, backlog=4096)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.sleepy")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay", type=float, default=1.0)
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.delay))


if __name__ == "__main__":
    main()
