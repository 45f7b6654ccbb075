"""Serve several emulators over HTTPS in one process and one event loop.

Sockets are bound before the apps are built, so each emulator knows its own public URL
(absolute ``@odata.nextLink``s, ``instance_url``, SOAP ``serverUrl``) even with port 0.
Signal handling is ours, not uvicorn's: uvicorn's per-server signal capture does not
compose when two servers share one loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import uvicorn
from starlette.types import ASGIApp

from include.sandbox.core.tls import TlsFiles

HOST = "127.0.0.1"


def bind_socket(port: int, host: str = HOST) -> socket.socket:
    """Bind a listening TCP socket; port 0 picks a free one."""
    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY on accepted connections only when
    # the socket says it is TCP, and without it every response waits ~40 ms (Nagle + delayed ACK).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def url_of(sock: socket.socket, public_host: str | None = None) -> str:
    """The URL clients use: ``public_host`` when given (another container's view, say), else this
    machine's; a wildcard bind is reached through loopback."""
    host, port = sock.getsockname()[:2]
    if public_host:
        host = public_host
    elif host == "0.0.0.0":
        host = HOST
    return f"https://{host}:{port}"


@dataclass
class Served:
    name: str
    app: ASGIApp
    sock: socket.socket


class _QuietServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:  # signals are handled by serve_forever
        yield


async def serve_forever(
    served: list[Served],
    tls: TlsFiles,
    on_ready: Callable[[], None],
    log_level: str = "warning",
) -> None:
    """Run every app until SIGINT/SIGTERM; call ``on_ready`` once all accept connections."""
    servers = []
    for item in served:
        config = uvicorn.Config(
            item.app,
            ssl_certfile=str(tls.server_cert),
            ssl_keyfile=str(tls.server_key),
            log_level=log_level,
            access_log=False,
            lifespan="on",
            timeout_keep_alive=30,
            # Idle keep-alive TLS connections of clients that are still open would otherwise hold
            # SIGTERM for the SSL shutdown timeout (30 s); a short grace period is plenty.
            timeout_graceful_shutdown=2,
            h11_max_incomplete_event_size=64 * 1024 * 1024,
        )
        servers.append(_QuietServer(config))
    loop = asyncio.get_running_loop()

    def stop() -> None:
        for server in servers:
            server.should_exit = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop)
    tasks = [asyncio.create_task(s.serve(sockets=[i.sock])) for s, i in zip(servers, served, strict=True)]
    while not all(s.started for s in servers):
        if any(t.done() for t in tasks):
            break
        await asyncio.sleep(0.02)
    if all(s.started for s in servers):
        on_ready()
    await asyncio.gather(*tasks)
