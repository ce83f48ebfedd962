"""``vecver emulator KIND``: serve a local emulator of a database's wire protocol
(:mod:`vecver.testing.emulators`) for tests, until interrupted.

The same rules as :mod:`vecver.command`: the signature is the command line, the docstring
its help; the result has ``to_dict()``; nothing is printed here (the address is announced
as a phase line on stderr, through the phase logger, as soon as the emulator serves).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

from ..cli.render import Renderer
from ..errors import InvalidArgument
from ..runtime.progress import PHASE_LOGGER
from ..testing.emulators import create, kinds

__all__ = ["EmulatorRun", "RENDERERS", "emulator"]


@dataclass(frozen=True)
class EmulatorRun:
    """What one run of an emulator served: where, how many requests, for how long."""

    kind: str
    url: str
    requests: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def emulator(
    kind: str,
    *,
    port: int = 5080,
    host: str = "127.0.0.1",
    duration: float | None = None,
    lag: float = 0.0,
    rate_limit: float = 0.0,
    unavailable: float = 0.0,
    latency: float = 0.0,
    version: str | None = None,
) -> EmulatorRun:
    """Serve a local emulator of a vector database's API (for tests) until interrupted
    (Ctrl-C) or for --duration seconds. The URL is announced on stderr when it serves;
    point the official client at it (Pinecone: ``Pinecone(api_key=..., host=URL)``).

    :param kind: which database to emulate (pinecone, ...).
    :param port: the TCP port to listen on (0: any free port).
    :param host: the address to listen on.
    :param duration: stop after this many seconds (default: serve until interrupted).
    :metavar duration: SECONDS
    :param lag: seconds before a write is visible to queries (eventual consistency; pinecone only).
    :metavar lag: SECONDS
    :param rate_limit: probability that a request is answered 429 with Retry-After.
    :metavar rate_limit: P
    :param unavailable: probability that a request is answered 503.
    :metavar unavailable: P
    :param latency: seconds added to every request.
    :metavar latency: SECONDS
    :param version: the Weaviate version reported (weaviate only; default 1.32.0; 1.36.0
        or later also serves BatchStream, the client's batch.stream()).
    :metavar version: X.Y.Z
    """
    if kind not in kinds():
        raise InvalidArgument("kind", kind, "one of " + ", ".join(kinds()))
    if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
        raise InvalidArgument("port", port, "a TCP port (0-65535)")
    if duration is not None and not duration > 0:
        raise InvalidArgument("duration", duration, "a positive number of seconds")
    for name, p in (("rate_limit", rate_limit), ("unavailable", unavailable)):
        if not 0.0 <= p <= 1.0:
            raise InvalidArgument(name, p, "a probability between 0 and 1")
    for name, s in (("lag", lag), ("latency", latency)):
        if not s >= 0:
            raise InvalidArgument(name, s, "a number of seconds >= 0")
    if lag and kind == "weaviate":
        raise InvalidArgument(
            "lag", lag, "0 for weaviate (Weaviate's reads reflect acknowledged writes; "
            "--lag emulates Pinecone's eventual consistency)")
    extra: dict[str, Any] = {}
    if version is not None:
        if kind != "weaviate":
            raise InvalidArgument(
                "version", version, "left out for pinecone (--version is the Weaviate "
                "version the weaviate emulator reports)")  # fmt: skip
        extra["version"] = version  # checked by the emulator: InvalidArgument if malformed
    emu = create(kind, port=port, host=host, lag=lag, rate_limit=rate_limit,
                 unavailable=unavailable, latency=latency, **extra)  # fmt: skip
    started = time.monotonic()
    try:
        emu.start()
    except OSError as e:
        raise InvalidArgument("port", port, f"a free port ({e.strerror or e})") from None
    url = emu.url
    grpc_port = getattr(emu, "grpc_port", None)  # Weaviate: gRPC beside REST
    logging.getLogger(PHASE_LOGGER).warning(
        "%s emulator serving at %s%s", kind, url,
        f" (gRPC on port {grpc_port})" if grpc_port else "")
    try:
        deadline = None if duration is None else started + float(duration)
        while deadline is None or time.monotonic() < deadline:
            time.sleep(0.1 if deadline is None else min(0.1, max(0.0, deadline - time.monotonic())))
    except KeyboardInterrupt:
        pass
    finally:
        emu.stop()
    return EmulatorRun(kind, url, int(getattr(emu, "requests", 0)), time.monotonic() - started)


def _text(r: EmulatorRun) -> str:
    return f"{r.kind} emulator at {r.url} stopped after {r.requests} requests in {r.seconds:.1f} s"


RENDERERS: dict[str, Renderer] = {"emulator": Renderer(_text)}
