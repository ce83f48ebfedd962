"""An emulator of Pinecone's HTTP/JSON API (data plane and the control-plane calls the
official ``pinecone`` SDK makes), for tests.

Start it and use the official SDK against it::

    from pinecone import Pinecone
    from vecver.testing.emulators.pinecone import PineconeEmulator

    with PineconeEmulator() as emu:
        pc = Pinecone(api_key="any-key", host=emu.url)          # control plane
        pc.indexes.create(name="docs", dimension=4, metric="cosine")
        index = pc.index(host=pc.indexes.describe("docs").host)  # data plane
        index.upsert(vectors=[("a", [1.0, 0.0, 0.0, 0.0])], namespace="ns")

What it serves (API version 2026-07; the request and response shapes of the SDK, camelCase
on the vectors API, snake_case on the namespaces API):

- control plane: ``POST /indexes`` (a dense index: ``schema.fields._values`` with
  ``dimension`` and ``metric``, or the older top-level ``dimension``/``metric``),
  ``GET /indexes``, ``GET /indexes/{name}``, ``DELETE /indexes/{name}``; errors as
  ``{"error": {"code", "message"}, "status"}``;
- data plane, under each index's host (``{url}/_data/{name}``): ``POST /vectors/upsert``,
  ``POST /query`` (by vector or id; filter; ``includeValues``/``includeMetadata``),
  ``GET /vectors/fetch``, ``POST /vectors/update``, ``POST /vectors/delete`` (ids, filter,
  ``deleteAll``), ``GET /vectors/list`` (prefix, limit, ``paginationToken``),
  ``POST /describe_index_stats``, ``GET/POST /namespaces``,
  ``GET/DELETE /namespaces/{name}``; errors as ``{"code", "message", "details"}`` (a gRPC
  status code: 3 invalid argument, 5 not found);
- headers: requests need ``Api-Key`` (401 otherwise; with ``api_key=`` set, that key);
  responses carry ``x-pinecone-request-id``, writes ``x-pinecone-lsn-committed`` and
  queries/lists ``x-pinecone-lsn-reconciled`` (how far reads have caught up).

Validation and limits are those of :mod:`.pinecone_state`. Search is exact (numpy): cosine
similarity, dot product, squared euclidean distance (lowest first).

Faults (:class:`Faults`, at construction or at run time through :attr:`faults`, thread
safe): a fixed ``latency``; a probability of 429 (with ``Retry-After``) and of 503;
``fail_next(n, status)`` for deterministic failures; ``lag`` seconds before writes become
visible to queries, lists and stats (``fetch_lag`` for fetch). Faults apply to the data
plane unless ``control=True``.
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from . import EmulatorBase
from .pinecone_state import (
    INVALID_ARGUMENT,
    MAX_REQUEST_BYTES,
    METRICS,
    UNAUTHENTICATED,
    ApiError,
    IndexState,
    PineconeState,
)

__all__ = ["Faults", "PineconeEmulator"]

API_VERSION = "2026-07"
DATA_PREFIX = "/_data/"


@dataclass
class Faults:
    """Injected failures. Every field may be changed while the emulator runs.

    ``rate_limit``/``unavailable``: probabilities (0..1) that a request is answered 429
    (with ``Retry-After: retry_after``) or 503; ``latency``: seconds added to every
    request; ``lag``/``fetch_lag``: seconds before a write is visible to queries, lists,
    stats / to fetch; ``control``: whether faults hit the control plane too; ``seed``:
    the random generator's seed."""

    rate_limit: float = 0.0
    unavailable: float = 0.0
    retry_after: float = 1.0
    latency: float = 0.0
    lag: float = 0.0
    fetch_lag: float = 0.0
    control: bool = False
    seed: int = 0
    _queue: list[tuple[int, float]] = field(default_factory=list, repr=False)
    _rng: random.Random = field(default_factory=random.Random, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    injected: int = 0

    def __post_init__(self) -> None:
        self._rng.seed(self.seed)

    def fail_next(self, n: int = 1, status: int = 503, retry_after: float | None = None) -> None:
        """Answer the next ``n`` requests (that faults apply to) with ``status``."""
        with self._lock:
            self._queue.extend([(status, self.retry_after if retry_after is None
                                 else retry_after)] * n)  # fmt: skip

    def clear(self) -> None:
        """No more faults (and no lag)."""
        with self._lock:
            self._queue.clear()
            self.rate_limit = self.unavailable = self.latency = 0.0
            self.lag = self.fetch_lag = 0.0

    def draw(self) -> tuple[int, float] | None:
        """The failure to answer this request with, or None."""
        with self._lock:
            if self._queue:
                self.injected += 1
                return self._queue.pop(0)
            r = self._rng.random()
            if r < self.rate_limit:
                self.injected += 1
                return 429, self.retry_after
            if r < self.rate_limit + self.unavailable:
                self.injected += 1
                return 503, self.retry_after
        return None


class PineconeEmulator(EmulatorBase):
    """A Pinecone API emulator on ``http://host:port`` (``port=0``: a free one).

    ``api_key``: the only key accepted (None: any non-empty key). ``faults``: a
    :class:`Faults`, or keyword fault options (``rate_limit=0.1``, ``lag=0.05``, ...).
    Thread safe; serves each request in its own thread. Test helpers:
    :meth:`create_index` (returns the data-plane host), :meth:`reset`."""

    def __init__(
        self,
        port: int = 0,
        *,
        host: str = "127.0.0.1",
        api_key: str | None = None,
        faults: Faults | None = None,
        **fault_options: Any,
    ) -> None:
        self._bind = (host, int(port))
        self._api_key = api_key
        self.faults = faults if faults is not None else Faults(**fault_options)
        self.state = PineconeState()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.requests = 0

    def __repr__(self) -> str:
        where = self.url if self._server else "not started"
        return f"PineconeEmulator({where})"

    # -- lifecycle --------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        """The port served (before ``start``: the one asked for, 0 meaning any)."""
        if self._server is None:
            return self._bind[1]
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self._bind[0]}:{self.port}"

    def start(self) -> PineconeEmulator:
        if self._server is not None:
            return self
        server = _Server(self._bind, _handler(self))
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1},
            name=f"pinecone-emulator:{self.port}", daemon=True,
        )  # fmt: skip
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted (the CLI)."""
        self.start()
        try:
            while self._thread is not None and self._thread.is_alive():
                self._thread.join(timeout=0.5)
        finally:
            self.stop()

    # -- helpers for tests --------------------------------------------------------------

    def index_host(self, name: str) -> str:
        """The data-plane host (with scheme) of index ``name``."""
        return f"{self.url}{DATA_PREFIX}{name}"

    def create_index(self, name: str, dimension: int, metric: str = "cosine") -> str:
        """Create a dense index directly (no HTTP); returns its data-plane host."""
        self.state.create_index(name, dimension, metric, self.index_host(name))
        return self.index_host(name)

    def reset(self) -> None:
        """Drop every index and clear the faults."""
        with self.state.lock:
            self.state.indexes.clear()
        self.faults.clear()

    # -- dispatch -----------------------------------------------------------------------

    def handle(self, method: str, path: str, query: dict[str, list[str]],
               body: Any) -> tuple[int, Any, dict[str, str]]:  # fmt: skip
        """Answer one request (already authenticated)."""
        st = self.state
        st.lag, st.fetch_lag = self.faults.lag, self.faults.fetch_lag
        if path.startswith(DATA_PREFIX):
            name, _, rest = path[len(DATA_PREFIX):].partition("/")
            return self._data(st.index(unquote(name), "data"), method, "/" + rest, query, body)
        return self._control(method, path, body)

    def _control(self, method: str, path: str, body: Any) -> tuple[int, Any, dict[str, str]]:
        st = self.state
        parts = [unquote(p) for p in path.strip("/").split("/")]
        if parts == ["indexes"] and method == "GET":
            with st.lock:
                return 200, {"indexes": [i.model() for i in st.indexes.values()]}, {}
        if parts == ["indexes"] and method == "POST":
            name, dim, metric = _index_request(body)
            idx = st.create_index(name, dim, metric, self.index_host(name))
            return 201, idx.model(), {}
        if len(parts) == 2 and parts[0] == "indexes":
            if method == "GET":
                return 200, st.index(parts[1]).model(), {}
            if method == "DELETE":
                st.delete_index(parts[1])
                return 202, None, {}
        raise ApiError(404, "NOT_FOUND", f"no route {method} {path}", "control")

    def _data(self, idx: IndexState, method: str, path: str, query: dict[str, list[str]],
              body: Any) -> tuple[int, Any, dict[str, str]]:  # fmt: skip
        st = self.state
        one = {k: v[-1] for k, v in query.items()}
        route = (method, path.rstrip("/") or "/")
        if route == ("POST", "/vectors/upsert"):
            return st.upsert(idx, _obj(body))
        if route == ("POST", "/query"):
            return st.query(idx, _obj(body))
        if route == ("GET", "/vectors/fetch"):
            return st.fetch(idx, query.get("ids", []), one.get("namespace", ""))
        if route == ("POST", "/vectors/update"):
            return st.update(idx, _obj(body))
        if route == ("POST", "/vectors/delete"):
            return st.delete(idx, _obj(body))
        if route == ("GET", "/vectors/list"):
            return st.list_ids(idx, one.get("namespace", ""), one.get("prefix"),
                               _int(one.get("limit")), one.get("paginationToken"))  # fmt: skip
        if route in (("POST", "/describe_index_stats"), ("GET", "/describe_index_stats")):
            return st.stats(idx, _obj(body) if body is not None else {})
        if route == ("GET", "/namespaces"):
            return st.namespaces(idx, _int(one.get("limit")), one.get("paginationToken"),
                                 one.get("prefix"))  # fmt: skip
        if route == ("POST", "/namespaces"):
            return st.create_namespace(idx, _obj(body))
        if path.startswith("/namespaces/"):
            ns = unquote(path[len("/namespaces/"):])
            if method == "GET":
                return st.describe_namespace(idx, ns)
            if method == "DELETE":
                return st.delete_namespace(idx, ns)
        raise ApiError(404, 5, f"no route {method} {path}")


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away (killed, timed out) is not an emulator error."""
        import sys

        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


def _obj(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError(400, INVALID_ARGUMENT, "the request body must be a JSON object")
    return body


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise ApiError(400, INVALID_ARGUMENT, f"{value!r} is not an integer") from None


def _index_request(body: Any) -> tuple[str, int, str]:
    def refuse(msg: str) -> ApiError:
        return ApiError(400, "INVALID_ARGUMENT", msg, "control")

    if not isinstance(body, dict):
        raise refuse("the request body must be a JSON object")
    name = body.get("name")
    if not isinstance(name, str) or not name or len(name) > 45 or not all(
        c.islower() or c.isdigit() or c == "-" for c in name
    ) or name.startswith("-") or name.endswith("-"):
        raise refuse(
            "Name must consist of lower case alphanumeric characters or '-', and must start "
            "and end with an alphanumeric character, at most 45 characters"
        )
    fields = ((body.get("schema") or {}).get("fields") or {})
    dense = [f for f in fields.values() if isinstance(f, dict) and f.get("type") == "dense_vector"]
    if dense:
        dim, metric = dense[0].get("dimension"), dense[0].get("metric", "cosine")
    else:
        dim, metric = body.get("dimension"), body.get("metric", "cosine")
    if not isinstance(dim, int) or isinstance(dim, bool) or not 1 <= dim <= 20_000:
        raise refuse("dimension must be an integer between 1 and 20000")
    if metric not in METRICS:
        raise refuse(f"metric must be one of {', '.join(METRICS)}")
    return name, dim, str(metric)


def _handler(emu: PineconeEmulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # one answer is two writes: no delayed-ACK stall
        server_version = "vecver-pinecone-emulator"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            return  # quiet: tests and the CLI print what they need

        def _answer(self, status: int, body: Any, headers: dict[str, str]) -> None:
            raw = b"" if body is None else json.dumps(body).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.send_header("x-pinecone-request-id", uuid.uuid4().hex)
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(raw)

        def _serve(self, method: str) -> None:
            emu.requests += 1
            parts = urlsplit(self.path)
            path = parts.path
            plane = "data" if path.startswith(DATA_PREFIX) else "control"
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                key = self.headers.get("Api-Key")
                if not key or (emu._api_key is not None and key != emu._api_key):
                    code: int | str = UNAUTHENTICATED if plane == "data" else "UNAUTHENTICATED"
                    raise ApiError(401, code, "Invalid API Key", plane)
                f = emu.faults
                if plane == "data" or f.control:
                    if f.latency > 0:
                        time.sleep(f.latency)
                    fault = f.draw()
                    if fault is not None:
                        status, after = fault
                        msg = ("Too many requests, retry later" if status == 429
                               else "Service temporarily unavailable")  # fmt: skip
                        err = ApiError(status, 8 if status == 429 else 14, msg, plane)
                        self._answer(status, err.body(), {"Retry-After": _seconds(after)})
                        return
                if len(raw) > MAX_REQUEST_BYTES:
                    raise ApiError(400, INVALID_ARGUMENT, f"Request size {len(raw)} bytes "
                                   f"exceeds the maximum supported size of {MAX_REQUEST_BYTES} "
                                   "bytes", plane)  # fmt: skip
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    raise ApiError(400, INVALID_ARGUMENT, "the request body is not JSON",
                                   plane) from None  # fmt: skip
                query = parse_qs(parts.query, keep_blank_values=True)
                status, answer, headers = emu.handle(method, path, query, body)
                self._answer(status, answer, headers)
            except ApiError as e:
                self._answer(e.status, e.body(), {})
            except Exception as e:  # noqa: BLE001 - an emulator bug answers 500, loudly
                err = ApiError(500, 13, f"emulator error: {type(e).__name__}: {e}", plane)
                self._answer(500, err.body(), {})

        def do_GET(self) -> None:  # noqa: N802
            self._serve("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._serve("POST")

        def do_DELETE(self) -> None:  # noqa: N802
            self._serve("DELETE")

        def do_PATCH(self) -> None:  # noqa: N802
            self._serve("PATCH")

    return Handler


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"
