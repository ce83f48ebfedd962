"""A local emulator of a Weaviate server (REST + gRPC) for the official ``weaviate-client``
v4, in background threads of the current process::

    from vecver.testing.emulators.weaviate import WeaviateEmulator

    with WeaviateEmulator() as emu:          # free ports; or http_port=8080, grpc_port=50051
        client = weaviate.connect_to_custom(
            http_host="127.0.0.1", http_port=emu.http_port, http_secure=False,
            grpc_host="127.0.0.1", grpc_port=emu.grpc_port, grpc_secure=False)

What it serves (shapes from Weaviate's REST schema and the ``.proto`` files shipped in
``weaviate-client``; behaviour in :mod:`.weaviate_store`):

- REST ``/v1``: ``GET /meta`` (the version given as ``version=``, by default
  :data:`VERSION`, so aliases are allowed; 1.36.0 or later also serves ``BatchStream``),
  ``/.well-known/ready`` and ``/live``; ``/schema`` (create, list, get, delete classes,
  named vectors with vectorizer ``none``, ``POST /schema/{class}/properties``,
  ``PUT /schema/{class}``: the description, property descriptions and new named vectors,
  which is how ``collection.config.add_vector`` adds one (Weaviate 1.31+); a named
  vector can never be removed: a PUT leaving one out is a 422 ``missing config for
  vector``); ``/aliases`` (create, list with ``?class=``, get, update (PUT),
  delete); ``/objects`` (create, get, head, replace (PUT), merge (PATCH: given
  properties and named vectors replace theirs, others are kept, a null property is
  removed), delete one object);
  ``/nodes`` (one healthy node). Errors are ``{"error": [{"message": ...}]}`` with
  Weaviate's status codes (404 unknown class or alias, 422 invalid input, 401 with a
  wrong API key).
- gRPC: see :mod:`.weaviate_grpc`.

``api_key``: when given, every request must carry ``Authorization: Bearer KEY`` (REST)
or the same ``authorization`` metadata (gRPC); otherwise 401 / UNAUTHENTICATED.

Fault injection for tests (thread-safe, applies to both halves, never to ``/meta`` and
the readiness probes): :meth:`WeaviateEmulator.fail_next` (the next N data requests answer
503 / UNAVAILABLE), ``fail_every`` (every Nth data request does), ``fault_ops`` (None:
every request counts; or the set of gRPC method names, such as ``"BatchObjects"``, and
REST ``"METHOD /v1/path"`` strings that do), ``latency`` (seconds added to each request),
and the counters ``requests`` and ``faults_fired``; :meth:`WeaviateEmulator.reset_faults`
turns it all off.
"""

from __future__ import annotations

import json
import random
import re
import socket
import threading
import time
import uuid as uuidlib
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import grpc
import numpy as np
from weaviate.proto.v1 import weaviate_pb2_grpc

from ...errors import InvalidArgument
from . import EmulatorBase
from .weaviate_grpc import WeaviateGrpcServicer, health_handler
from .weaviate_store import ApiError, Obj, WeaviateState

__all__ = ["STREAM_VERSION", "VERSION", "WeaviateEmulator", "parse_version"]

#: The Weaviate version the emulator reports unless given one (aliases need 1.32 or later).
VERSION = "1.32.0"

#: The first Weaviate version with server-side batching (the ``BatchStream`` RPC behind
#: ``batch.stream()``): an emulator reporting this or later serves it.
STREAM_VERSION = "1.36.0"

_VERSION_RE = re.compile(r"(\d{1,4})\.(\d{1,4})\.(\d{1,4})(?:-[0-9A-Za-z.]+)?")


def parse_version(version: str) -> tuple[int, int, int]:
    """``MAJOR.MINOR.PATCH`` (an optional pre-release suffix such as ``-rc.1`` allowed, as
    Weaviate reports them) as a tuple of ints; :class:`~vecver.errors.InvalidArgument`
    for anything else (``1.36``, ``v1.36.0``, ``latest``)."""
    m = _VERSION_RE.fullmatch(version) if isinstance(version, str) else None
    if m is None:
        raise InvalidArgument(
            "version",
            version,
            "a Weaviate version MAJOR.MINOR.PATCH such as "
            f"{VERSION!r} or {STREAM_VERSION!r} (BatchStream needs {STREAM_VERSION} or later)",
        )
    return int(m[1]), int(m[2]), int(m[3])


_PROBES = ("/v1/meta", "/v1/.well-known/ready", "/v1/.well-known/live")


class WeaviateEmulator(EmulatorBase):
    """An in-process Weaviate for tests: REST on ``http_port``, gRPC on ``grpc_port``
    (0: a free port each, read back after :meth:`start`). Thread-safe; :meth:`stop`
    releases both ports. ``port`` is an alias of ``http_port`` for ``vecver emulator
    weaviate --port N``, which then serves gRPC on N + 1 unless ``grpc_port`` is given.
    ``unavailable`` / ``rate_limit``: the probability that a data request answers 503 /
    UNAVAILABLE or 429 / RESOURCE_EXHAUSTED; ``lag`` must be 0 (``ValueError``): Weaviate
    has no read lag to emulate. ``version``: the Weaviate version reported (``/meta``,
    ``/nodes``; default :data:`VERSION`, read when asked, so a test may patch it); the
    client decides what it may use from it, and from :data:`STREAM_VERSION` on the gRPC
    ``BatchStream`` (``batch.stream()``) is served, below it answers UNIMPLEMENTED as an
    older server does. Every other behaviour is the same at any version. A malformed
    version is :class:`~vecver.errors.InvalidArgument` (see :func:`parse_version`).
    ``stream_backoff``: seconds between a stream's ``Backoff`` messages (Weaviate sends
    one every 5 s); > 0, else ``InvalidArgument``."""

    def __init__(
        self,
        http_port: int = 0,
        grpc_port: int = 0,
        *,
        host: str = "127.0.0.1",
        api_key: str | None = None,
        port: int | None = None,
        latency: float = 0.0,
        fail_every: int = 0,
        unavailable: float = 0.0,
        rate_limit: float = 0.0,
        lag: float = 0.0,
        version: str | None = None,
        stream_backoff: float = 5.0,
    ) -> None:
        if version is not None:
            parse_version(version)
        if (
            isinstance(stream_backoff, bool)
            or not isinstance(stream_backoff, (int, float))
            or not 0 < stream_backoff < float("inf")
        ):
            raise InvalidArgument("stream_backoff", stream_backoff, "a number of seconds > 0")
        if lag:
            raise ValueError(
                "the Weaviate emulator has no consistency lag: Weaviate reads reflect "
                "acknowledged writes (give lag=0)"
            )
        for name, p in (("unavailable", unavailable), ("rate_limit", rate_limit)):
            if not 0.0 <= float(p) <= 1.0:
                raise ValueError(f"{name} must be a probability between 0 and 1, got {p!r}")
        if port is not None:
            http_port = port
            if port and not grpc_port:
                grpc_port = port + 1
        self.host = host
        self._http_port = int(http_port)
        self._grpc_port = int(grpc_port)
        self._api_key = api_key
        self._version = version
        self._stream_backoff = float(stream_backoff)
        self.state = WeaviateState()
        self.latency = float(latency)
        self.fail_every = int(fail_every)
        self.unavailable = float(unavailable)
        self.rate_limit = float(rate_limit)
        self._rng = random.Random(0)
        self.fault_ops: frozenset[str] | None = None
        self.faults_fired = 0
        self._fail_next = 0
        self._counter = 0
        self._flock = threading.Lock()
        self.requests = 0
        self._http: ThreadingHTTPServer | None = None
        self._http_thread: threading.Thread | None = None
        self._grpc: grpc.Server | None = None

    # -- public -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self._http_port}"

    @property
    def port(self) -> int:
        return self._http_port

    @property
    def http_port(self) -> int:
        return self._http_port

    @property
    def grpc_port(self) -> int:
        return self._grpc_port

    @property
    def running(self) -> bool:
        return self._http is not None

    @property
    def version(self) -> str:
        """The Weaviate version reported: the one given, else :data:`VERSION`."""
        return self._version if self._version is not None else VERSION

    @property
    def serves_stream(self) -> bool:
        """Whether ``BatchStream`` is served (:attr:`version` >= :data:`STREAM_VERSION`)."""
        return parse_version(self.version) >= parse_version(STREAM_VERSION)

    def __repr__(self) -> str:
        key = ", api_key=<hidden>" if self._api_key else ""
        return (
            f"WeaviateEmulator(http={self.url!r}, grpc_port={self._grpc_port}, "
            f"version={self.version!r}{key})"
        )

    def fail_next(self, n: int = 1) -> None:
        """The next ``n`` data requests (REST or gRPC) fail with 503 / UNAVAILABLE."""
        with self._flock:
            self._fail_next += int(n)

    def reset_faults(self) -> None:
        """No more injected failures or latency."""
        with self._flock:
            self._fail_next = 0
            self.fail_every = 0
            self.latency = 0.0
            self.fault_ops = None
            self.faults_fired = 0
            self.unavailable = 0.0
            self.rate_limit = 0.0

    def reset(self) -> None:
        """Forget every collection, object and alias, and every injected fault (between
        tests that share one emulator)."""
        with self.state.lock:
            self.state.collections.clear()
            self.state.aliases.clear()
        self.reset_faults()

    def start(self) -> WeaviateEmulator:
        if self._http is not None:
            return self
        gport = self._grpc_port or _free_port(self.host)
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=16),
            options=[("grpc.max_receive_message_length", 100 * 1024 * 1024),
                     ("grpc.max_send_message_length", 100 * 1024 * 1024),
                     ("grpc.so_reuseport", 0)],
        )  # fmt: skip
        weaviate_pb2_grpc.add_WeaviateServicer_to_server(  # type: ignore[no-untyped-call]
            WeaviateGrpcServicer(self.state, self._grpc_gate,
                                 serves_stream=lambda: self.serves_stream,
                                 stream_backoff=self._stream_backoff),
            server,
        )  # fmt: skip
        server.add_generic_rpc_handlers((health_handler(self._grpc_gate),))
        bound = server.add_insecure_port(f"{self.host}:{gport}")
        if bound == 0:
            raise OSError(f"weaviate emulator: cannot bind gRPC port {gport}")
        server.start()
        self._grpc, self._grpc_port = server, bound
        handler = type("Handler", (_Handler,), {"emulator": self})
        httpd = ThreadingHTTPServer((self.host, self._http_port), handler)
        httpd.daemon_threads = True
        self._http_port = int(httpd.server_address[1])
        self._http = httpd
        self._http_thread = threading.Thread(
            target=httpd.serve_forever, name="weaviate-emulator-http", daemon=True
        )
        self._http_thread.start()
        return self

    def stop(self) -> None:
        httpd, self._http = self._http, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        server, self._grpc = self._grpc, None
        if server is not None:
            server.stop(grace=None).wait(5)

    # -- gates (auth, faults) -------------------------------------------------------------

    def _fault(self, op: str) -> ApiError | None:
        """The injected failure for this request, if any."""
        with self._flock:
            self.requests += 1
            if self.fault_ops is not None and op not in self.fault_ops:
                return None
            self._counter += 1
            fire = self._fail_next > 0 or (
                bool(self.fail_every) and self._counter % self.fail_every == 0
            )
            if self._fail_next > 0:
                self._fail_next -= 1
            err = None
            if fire or (self.unavailable and self._rng.random() < self.unavailable):
                err = ApiError(503, "injected fault: service unavailable", "UNAVAILABLE")
            elif self.rate_limit and self._rng.random() < self.rate_limit:
                err = ApiError(429, "injected fault: too many requests", "RESOURCE_EXHAUSTED")
            self.faults_fired += int(err is not None)
            return err

    def _check_key(self, value: str | None) -> None:
        if self._api_key is None:
            return
        if value != f"Bearer {self._api_key}":
            raise ApiError(401, "anonymous access not enabled, please provide an auth scheme "
                                "such as OIDC or an API key", "UNAUTHENTICATED")  # fmt: skip

    def _grpc_gate(self, what: str, context: Any) -> None:
        md = dict(context.invocation_metadata() or ())
        self._check_key(md.get("authorization"))
        if self.latency:
            time.sleep(self.latency)
        err = self._fault(what) if what != "Health" else None
        if err is not None:
            raise err


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _object_json(cls: str, o: Obj, named: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "class": cls, "id": o.uuid, "properties": dict(o.props),
        "creationTimeUnix": o.created, "lastUpdateTimeUnix": o.updated,
    }  # fmt: skip
    if named:
        out["vectors"] = {k: v.tolist() for k, v in o.vectors.items()}
    elif "default" in o.vectors:
        out["vector"] = o.vectors["default"].tolist()
    return out


class _Handler(BaseHTTPRequestHandler):
    emulator: WeaviateEmulator
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "weaviate-emulator"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        """Quiet: no request log on stderr."""

    def _send(self, status: int, body: Any = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data and self.command != "HEAD":
            self.wfile.write(data)

    def _body(self) -> Any:
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        if not raw:
            return {}
        try:
            return json.loads(raw)
        except ValueError:
            raise ApiError(422, "request body is not valid JSON") from None

    def _dispatch(self) -> None:
        emu = self.emulator
        parts = urlsplit(self.path)
        path = unquote(parts.path).rstrip("/")
        query = parse_qs(parts.query)
        try:
            # the body is read first so that an early answer never leaves it on the socket
            body = self._body() if self.command in ("POST", "PUT", "PATCH") else None
            if path not in _PROBES:
                emu._check_key(self.headers.get("Authorization"))
                if emu.latency:
                    time.sleep(emu.latency)
                err = emu._fault(f"{self.command} {path}")
                if err is not None:
                    raise err
            status, out = self._route(self.command, path, query, body)
        except ApiError as e:
            status, out = e.status, {"error": [{"message": e.message}]}
            if e.status == 404 and self.command in ("GET", "HEAD") and "/schema/" in path:
                out = None
        except Exception as e:  # noqa: BLE001 - a server answers 500, never dies
            status, out = 500, {"error": [{"message": f"internal error: {e}"}]}
        self._send(status, out)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _dispatch  # noqa: N815

    def _route(
        self, method: str, path: str, query: dict[str, list[str]], body: Any
    ) -> tuple[int, Any]:
        st = self.emulator.state
        seg = path.split("/")[2:] if path.startswith("/v1") else []
        if not seg:
            raise ApiError(404, f"no such path {path}")
        head = seg[0]
        if head == "meta" and method == "GET":
            return 200, {"hostname": f"http://[::]:{self.emulator.http_port}",
                         "version": self.emulator.version, "modules": {},
                         "grpcMaxMessageSize": 104858000}  # fmt: skip
        if head == ".well-known" and len(seg) == 2 and seg[1] in ("ready", "live"):
            return 200, None
        if head == "nodes" and method == "GET":
            return 200, {"nodes": [{"name": "emulator", "status": "HEALTHY",
                                    "version": self.emulator.version, "gitHash": "emulator",
                                    "stats": {"objectCount": sum(len(c.objects) for c in
                                              st.collections.values()), "shardCount": 1},
                                    "shards": None}]}  # fmt: skip
        if head == "schema":
            return self._schema(method, seg[1:], body)
        if head == "aliases":
            return self._aliases(method, seg[1:], query, body)
        if head == "objects":
            return self._objects(method, seg[1:], body)
        raise ApiError(404, f"no such path {path}")

    def _schema(self, method: str, seg: list[str], body: Any) -> tuple[int, Any]:
        st = self.emulator.state
        if not seg:
            if method == "GET":
                return 200, {"classes": st.list_classes()}
            if method == "POST":
                return 200, st.create_class(body)
        elif len(seg) == 1:
            if method == "GET":
                return 200, st.get_class(seg[0])
            if method == "HEAD":
                st.get_class(seg[0])
                return 200, None
            if method == "DELETE":
                st.delete_class(seg[0])
                return 200, None
            if method == "PUT":
                return 200, st.update_class(seg[0], body)
        elif len(seg) == 2 and seg[1] == "properties" and method == "POST":
            return 200, st.add_property(seg[0], body)
        raise ApiError(405, f"method {method} not allowed on /schema/{'/'.join(seg)}")

    def _aliases(
        self, method: str, seg: list[str], query: dict[str, list[str]], body: Any
    ) -> tuple[int, Any]:
        st = self.emulator.state
        if not seg:
            if method == "GET":
                cls = (query.get("class") or [""])[0] or None
                return 200, {"aliases": st.list_aliases(cls)}
            if method == "POST":
                if not isinstance(body, dict) or not body.get("alias") or not body.get("class"):
                    raise ApiError(422, "an alias needs 'alias' and 'class'")
                return 200, st.create_alias(str(body["alias"]), str(body["class"]))
        elif len(seg) == 1:
            if method == "GET":
                return 200, st.get_alias(seg[0])
            if method == "PUT":
                if not isinstance(body, dict) or not body.get("class"):
                    raise ApiError(422, "updating an alias needs 'class'")
                return 200, st.update_alias(seg[0], str(body["class"]))
            if method == "DELETE":
                st.delete_alias(seg[0])
                return 204, None
        raise ApiError(405, f"method {method} not allowed on /aliases")

    def _objects(self, method: str, seg: list[str], body: Any) -> tuple[int, Any]:
        st = self.emulator.state
        if not seg and method == "POST":
            return self._put_object(str(body.get("class") or ""), body.get("id"), body, create=True)
        if len(seg) == 2:
            cls, uid = seg
            if method in ("GET", "HEAD"):
                o = st.get_object(cls, uid)
                if o is None:
                    raise ApiError(404, f"object {uid} not found")
                coll = st.resolve(cls)
                if method == "HEAD":
                    return 204, None
                return 200, _object_json(coll.name, o, bool(coll.schema.get("vectorConfig")))
            if method == "DELETE":
                if not st.delete_object(cls, uid):
                    raise ApiError(404, f"object {uid} not found")
                return 204, None
            if method == "PUT":
                return self._put_object(cls, uid, body, create=False)
            if method == "PATCH":
                if not isinstance(body, dict):
                    raise ApiError(422, "the body of a merge must be an object")
                vecs: dict[str, np.ndarray] = {}
                if body.get("vector"):
                    vecs["default"] = np.asarray(body["vector"], dtype=np.float32)
                for k, v in (body.get("vectors") or {}).items():
                    vecs[k] = np.asarray(v, dtype=np.float32)
                st.merge_object(cls, uid, dict(body.get("properties") or {}), vecs)
                return 204, None
        raise ApiError(405, f"method {method} not allowed on /objects")

    def _put_object(self, cls: str, uid: Any, body: Any, *, create: bool) -> tuple[int, Any]:
        st = self.emulator.state
        coll = st.resolve(cls)
        u = str(uid) if uid else str(uuidlib.uuid4())
        if create and st.get_object(coll.name, u) is not None:
            raise ApiError(422, f"id '{u}' already exists")
        vecs: dict[str, np.ndarray] = {}
        if body.get("vector"):
            vecs["default"] = np.asarray(body["vector"], dtype=np.float32)
        for k, v in (body.get("vectors") or {}).items():
            vecs[k] = np.asarray(v, dtype=np.float32)
        errors = st.put_objects([(coll.name, u, dict(body.get("properties") or {}), vecs)])
        if errors:
            raise ApiError(422, errors[0])
        o = st.get_object(coll.name, u)
        assert o is not None
        return 200, _object_json(coll.name, o, bool(coll.schema.get("vectorConfig")))


def main(argv: list[str] | None = None) -> int:
    """``python -m vecver.testing.emulators.weaviate [--http-port N] [--grpc-port M]
    [--host H] [--version X.Y.Z]``: serve until interrupted (SIGINT/SIGTERM). Prints one
    line saying where, ``weaviate emulator: http://HOST:N grpc HOST:M``, once serving. A
    malformed ``--version`` is a usage error (exit 2)."""
    import argparse
    import signal
    import sys

    ap = argparse.ArgumentParser(prog="python -m vecver.testing.emulators.weaviate")
    ap.add_argument("--http-port", type=int, default=8080)
    ap.add_argument("--grpc-port", type=int, default=50051)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--version", default=None, metavar="X.Y.Z",
                    help=f"the Weaviate version reported (default {VERSION}; "
                         f"{STREAM_VERSION} or later serves BatchStream)")  # fmt: skip
    args = ap.parse_args(argv)
    try:
        emu = WeaviateEmulator(args.http_port, args.grpc_port, host=args.host,
                               version=args.version)  # fmt: skip
    except InvalidArgument as e:
        ap.error(e.message)
    emu.start()
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    sys.stdout.write(f"weaviate emulator: {emu.url} grpc {emu.host}:{emu.grpc_port}\n")
    sys.stdout.flush()
    done.wait()
    emu.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
