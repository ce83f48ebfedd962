"""The gRPC half of the Weaviate emulator, on the servicer base class that ships inside
``weaviate-client`` (``weaviate.proto.v1...weaviate_pb2_grpc.WeaviateServicer``).

Implemented: ``Search`` (fetch with filters, limit, offset and the ``after`` cursor;
``near_vector`` on a named or the default vector with distance/certainty thresholds;
returned properties and metadata: uuid, vector(s), distance, certainty, creation and update
times), ``BatchObjects`` (per-object errors by index), ``BatchStream`` (server-side
batching, when the emulator reports Weaviate 1.36 or later; see
:meth:`WeaviateGrpcServicer.BatchStream`), ``BatchDelete`` (by filter, dry run, verbose),
``Aggregate`` (``objects_count`` with filters) and the health check
``/grpc.health.v1.Health/Check`` the client pings on connect. ``BatchReferences`` and
``TenantsGet`` answer ``UNIMPLEMENTED``, as the base class does (the emulator has no
cross-references and no multi-tenancy); so does ``BatchStream`` below 1.36, as a server
of that version has no such method.
"""

from __future__ import annotations

import queue
import threading
import time
import uuid as uuidlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import grpc
import numpy as np
from google.protobuf import struct_pb2
from weaviate.proto.v1 import (
    aggregate_pb2,
    base_pb2,
    batch_delete_pb2,
    batch_pb2,
    health_weaviate_pb2,
    properties_pb2,
    search_get_pb2,
    weaviate_pb2_grpc,
)

from .weaviate_store import ApiError, Coll, FilterNode, Hit, WeaviateState

__all__ = ["WeaviateGrpcServicer", "health_handler"]

#: Weaviate's QUERY_DEFAULTS_LIMIT: the limit of a request that sets none (0).
_DEFAULT_LIMIT = 10

#: The prefix of a reference's beacon, as Weaviate builds it (``weaviate://localhost/``
#: then ``{from collection}/{from uuid}/{property}``): how a stream names a reference.
_BEACON = "weaviate://localhost/"

#: A reference in a batch: the emulator keeps no cross-references.
_NO_REFERENCES = "cross-references are not supported by this emulator"

_OPS: dict[int, str] = {
    base_pb2.Filters.OPERATOR_EQUAL: "equal",
    base_pb2.Filters.OPERATOR_NOT_EQUAL: "not_equal",
    base_pb2.Filters.OPERATOR_GREATER_THAN: "greater_than",
    base_pb2.Filters.OPERATOR_GREATER_THAN_EQUAL: "greater_than_equal",
    base_pb2.Filters.OPERATOR_LESS_THAN: "less_than",
    base_pb2.Filters.OPERATOR_LESS_THAN_EQUAL: "less_than_equal",
    base_pb2.Filters.OPERATOR_LIKE: "like",
    base_pb2.Filters.OPERATOR_IS_NULL: "is_null",
    base_pb2.Filters.OPERATOR_CONTAINS_ANY: "contains_any",
    base_pb2.Filters.OPERATOR_CONTAINS_ALL: "contains_all",
    base_pb2.Filters.OPERATOR_CONTAINS_NONE: "contains_none",
}
_BOOL_OPS = {
    base_pb2.Filters.OPERATOR_AND: "and",
    base_pb2.Filters.OPERATOR_OR: "or",
    base_pb2.Filters.OPERATOR_NOT: "not",
}


def filter_node(f: Any) -> FilterNode:
    """A ``base_pb2.Filters`` message as the store's filter tree."""
    if f.operator in _BOOL_OPS:
        return (_BOOL_OPS[f.operator], [filter_node(c) for c in f.filters])
    op = _OPS.get(f.operator)
    if op is None:
        raise ApiError(422, f"unsupported filter operator {f.operator}")
    if f.HasField("target"):
        if not f.target.property:
            raise ApiError(422, "reference filters are not supported by this emulator")
        prop = f.target.property
    elif f.on:
        prop = f.on[0]
    else:
        raise ApiError(422, "a filter needs a target property")
    which = f.WhichOneof("test_value")
    value: Any
    if which is None:
        raise ApiError(422, "a filter needs a value")
    if which == "value_text":
        value = f.value_text
    elif which == "value_int":
        value = int(f.value_int)
    elif which == "value_number":
        value = float(f.value_number)
    elif which == "value_boolean":
        value = bool(f.value_boolean)
    elif which in ("value_text_array", "value_int_array", "value_number_array",
                   "value_boolean_array"):  # fmt: skip
        value = list(getattr(f, which).values)
    else:
        raise ApiError(422, f"unsupported filter value {which}")
    return (op, prop, value)


def _vector_of(nv: Any) -> tuple[np.ndarray, str | None]:
    target: str | None = None
    if nv.HasField("targets") and nv.targets.target_vectors:
        if len(nv.targets.target_vectors) > 1:
            raise ApiError(422, "multi-target vector search is not supported by this emulator")
        target = nv.targets.target_vectors[0]
    elif nv.target_vectors:
        target = nv.target_vectors[0]
    if nv.vectors:
        v = nv.vectors[0]
        if v.type == base_pb2.Vectors.VECTOR_TYPE_MULTI_FP32:
            raise ApiError(422, "multi-vector search is not supported by this emulator")
        return np.frombuffer(v.vector_bytes, dtype="<f4").copy(), target
    if nv.vector_bytes:
        return np.frombuffer(nv.vector_bytes, dtype="<f4").copy(), target
    if nv.vector_for_targets:
        vt = nv.vector_for_targets[0]
        data = vt.vectors[0].vector_bytes if vt.vectors else vt.vector_bytes
        return np.frombuffer(data, dtype="<f4").copy(), target or vt.name
    if len(nv.vector):
        return np.asarray(list(nv.vector), dtype=np.float32), target
    raise ApiError(422, "near_vector: no vector given")


def _value(v: Any) -> Any:
    """A stored property value as a ``properties_pb2.Value``."""
    if v is None:
        return properties_pb2.Value(null_value=struct_pb2.NULL_VALUE)
    if isinstance(v, bool):
        return properties_pb2.Value(bool_value=v)
    if isinstance(v, int):
        return properties_pb2.Value(int_value=v)
    if isinstance(v, float):
        return properties_pb2.Value(number_value=v)
    if isinstance(v, str):
        return properties_pb2.Value(text_value=v)
    if isinstance(v, dict):
        return properties_pb2.Value(
            object_value=properties_pb2.Properties(fields={k: _value(x) for k, x in v.items()})
        )
    if isinstance(v, list):
        lv = properties_pb2.ListValue()
        if v and all(isinstance(x, bool) for x in v):
            lv.bool_values.values.extend(v)
        elif v and all(isinstance(x, int) for x in v):
            lv.int_values.values = np.asarray(v, dtype="<i8").tobytes()
        elif v and all(isinstance(x, (int, float)) for x in v):
            lv.number_values.values = np.asarray(v, dtype="<f8").tobytes()
        else:
            lv.text_values.values.extend(str(x) for x in v)
        return properties_pb2.Value(list_value=lv)
    return properties_pb2.Value(text_value=str(v))


def _struct_value(v: Any, dtype: str | None) -> Any:
    """A Struct value as Python, typed by the property's data type where known."""
    if isinstance(v, float) and dtype in ("int",) and v.is_integer():
        return int(v)
    if isinstance(v, float) and dtype is None and v.is_integer():
        return v
    return v


def _props_of(obj: Any, coll: Coll) -> dict[str, Any]:
    types = coll.prop_types()
    out: dict[str, Any] = {}
    p = obj.properties
    if p.HasField("non_ref_properties"):
        for k, v in p.non_ref_properties.items():
            value = _plain(v)
            out[k] = _struct_value(value, types.get(k))
    for arr in p.text_array_properties:
        out[arr.prop_name] = list(arr.values)
    for arr in p.int_array_properties:
        out[arr.prop_name] = [int(x) for x in arr.values]
    for arr in p.number_array_properties:
        out[arr.prop_name] = (
            np.frombuffer(arr.values_bytes, dtype="<f8").tolist() if arr.values_bytes
            else [float(x) for x in arr.values]
        )  # fmt: skip
    for arr in p.boolean_array_properties:
        out[arr.prop_name] = [bool(x) for x in arr.values]
    for name in p.empty_list_props:
        out[name] = []
    return out


def _plain(v: Any) -> Any:
    if isinstance(v, struct_pb2.Struct):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, struct_pb2.ListValue):
        return [_plain(x) for x in v]
    return v


class _BatchSizer:
    """The batch size a Weaviate server advises one stream's client in its ``Backoff``
    messages, as the server's own rule has it: it starts at 200 objects and, after each
    batch, moves toward what keeps one batch's processing near one second (100 more when
    the smoothed processing time is under 0.9 s, 100 fewer when over 1.1 s; exponential
    smoothing with weight 0.25 for the newest batch), never below 100 nor above 1000."""

    _ALPHA = 0.25

    def __init__(self) -> None:
        self._seconds = 1.0
        self._size = 200.0

    def _smooth(self, new: float, old: float) -> float:
        return self._ALPHA * new + (1 - self._ALPHA) * old

    def update(self, seconds: float) -> None:
        """One batch took ``seconds`` to process."""
        self._seconds = self._smooth(seconds, self._seconds)
        if self._seconds > 1.1:
            self._size = self._smooth(self._size - 100, self._size)
        elif self._seconds < 0.9:
            self._size = self._smooth(self._size + 100, self._size)
        self._size = min(1000.0, max(100.0, self._size))

    @property
    def size(self) -> int:
        return int(np.ceil(self._size))


#: What the reader of a stream's requests queues when the client has half-closed.
_EOF = object()


def _beacon(ref: Any) -> str:
    """A ``batch_pb2.BatchReference``'s beacon, which a stream's replies name it by."""
    return f"{_BEACON}{ref.from_collection}/{ref.from_uuid}/{ref.name}"


class WeaviateGrpcServicer(weaviate_pb2_grpc.WeaviateServicer):
    """The ``weaviate.v1.Weaviate`` service over a :class:`WeaviateState`.

    ``gate(method, context)`` runs first for every call (auth, injected faults, latency;
    an :class:`ApiError` it raises is the call's status). ``serves_stream()`` says whether
    ``BatchStream`` exists (the reported version is 1.36 or later), asked at each call.
    ``stream_backoff``: seconds between a stream's ``Backoff`` messages (Weaviate: 5)."""

    def __init__(
        self,
        state: WeaviateState,
        gate: Callable[[str, Any], None],
        *,
        serves_stream: Callable[[], bool] = lambda: False,
        stream_backoff: float = 5.0,
    ) -> None:
        self.state = state
        self._gate = gate
        self._serves_stream = serves_stream
        self._stream_backoff = float(stream_backoff)

    def _run(self, what: str, context: Any, fn: Callable[[], Any]) -> Any:
        try:
            self._gate(what, context)
            return fn()
        except ApiError as e:
            code = getattr(grpc.StatusCode, e.grpc, grpc.StatusCode.UNKNOWN)
            context.abort(code, e.message)

    # -- Search -----------------------------------------------------------------------

    def Search(self, request: Any, context: Any) -> Any:  # noqa: N802 - the RPC's name
        return self._run("Search", context, lambda: self._search(request))

    def _search(self, r: Any) -> Any:
        start = time.perf_counter()
        if r.tenant:
            raise ApiError(422, "multi-tenancy is not enabled for this class", "INVALID_ARGUMENT")
        for unsupported in ("hybrid_search", "bm25_search", "near_object", "near_text",
                            "near_image", "group_by", "generative", "rerank"):  # fmt: skip
            if r.HasField(unsupported):
                raise ApiError(
                    422, f"{unsupported} is not supported by this emulator", "UNIMPLEMENTED"
                )
        if r.sort_by:
            raise ApiError(422, "sort is not supported by this emulator", "UNIMPLEMENTED")
        near, target, max_d, min_c = None, None, None, None
        if r.HasField("near_vector"):
            near, target = _vector_of(r.near_vector)
            max_d = r.near_vector.distance if r.near_vector.HasField("distance") else None
            min_c = r.near_vector.certainty if r.near_vector.HasField("certainty") else None
        coll, hits = self.state.query(
            r.collection,
            limit=r.limit if r.limit > 0 else _DEFAULT_LIMIT,
            offset=int(r.offset),
            after=r.after or None,
            node=filter_node(r.filters) if r.HasField("filters") else None,
            near=near,
            target=target,
            max_distance=max_d,
            min_certainty=min_c,
        )
        results = [self._result(coll, h, r) for h in hits]
        return search_get_pb2.SearchReply(took=time.perf_counter() - start, results=results)

    def _result(self, coll: Coll, h: Hit, r: Any) -> Any:
        md = r.metadata
        obj = h.obj
        meta = search_get_pb2.MetadataResult(id=obj.uuid, id_as_bytes=uuidlib.UUID(obj.uuid).bytes)
        if md.creation_time_unix:
            meta.creation_time_unix = obj.created
            meta.creation_time_unix_present = True
        if md.last_update_time_unix:
            meta.last_update_time_unix = obj.updated
            meta.last_update_time_unix_present = True
        if h.distance is not None:
            if md.distance:
                meta.distance = h.distance
                meta.distance_present = True
            if md.certainty and h.metric == "cosine":
                meta.certainty = 1.0 - h.distance / 2.0
                meta.certainty_present = True
        named = bool(coll.schema.get("vectorConfig"))
        if md.vector and not named and "default" in obj.vectors:
            meta.vector_bytes = obj.vectors["default"].astype("<f4").tobytes()
        for name in md.vectors:
            vec = obj.vectors.get(name)
            if vec is not None:
                meta.vectors.append(base_pb2.Vectors(
                    name=name, vector_bytes=vec.astype("<f4").tobytes(),
                    type=base_pb2.Vectors.VECTOR_TYPE_SINGLE_FP32))  # fmt: skip
        if md.vector and named:
            for name, vec in obj.vectors.items():
                if name not in md.vectors:
                    meta.vectors.append(base_pb2.Vectors(
                        name=name, vector_bytes=vec.astype("<f4").tobytes(),
                        type=base_pb2.Vectors.VECTOR_TYPE_SINGLE_FP32))  # fmt: skip
        pr = r.properties if r.HasField("properties") else None
        if pr is None or pr.return_all_nonref_properties:
            # no properties asked for: Weaviate returns every non-reference property
            names = list(obj.props)
        else:
            names = list(pr.non_ref_properties)
        fields = {n: _value(obj.props[n]) for n in names if n in obj.props}
        props = search_get_pb2.PropertiesResult(
            non_ref_props=properties_pb2.Properties(fields=fields),
            target_collection=coll.name,
        )
        return search_get_pb2.SearchResult(properties=props, metadata=meta)

    # -- batch ------------------------------------------------------------------------

    def BatchObjects(self, request: Any, context: Any) -> Any:  # noqa: N802
        return self._run("BatchObjects", context, lambda: self._batch(request))

    def _batch(self, r: Any) -> Any:
        start = time.perf_counter()
        errors = [batch_pb2.BatchObjectsReply.BatchError(index=i, error=m)
                  for i, m in sorted(self._write(r.objects).items())]  # fmt: skip
        return batch_pb2.BatchObjectsReply(took=time.perf_counter() - start, errors=errors)

    def _write(self, objects: Sequence[Any]) -> dict[int, str]:
        """Write ``batch_pb2.BatchObject`` messages through the store, as Weaviate's batch
        does: each object is validated and written on its own, the errors come back by
        position (an object with an error is not written, the others are). Shared by
        ``BatchObjects`` and ``BatchStream``, so both refuse the same objects with the same
        messages. Every consistency level is met: the emulator is one node."""
        items: list[tuple[str, str, dict[str, Any], dict[str, np.ndarray]]] = []
        pre: dict[int, str] = {}
        for i, obj in enumerate(objects):
            try:
                coll = self.state.resolve(obj.collection)
                if obj.tenant:
                    raise ApiError(422, "multi-tenancy is not enabled for this class")
                if obj.properties.single_target_ref_props or obj.properties.multi_target_ref_props:
                    raise ApiError(422, _NO_REFERENCES)
                vecs: dict[str, np.ndarray] = {}
                if obj.vector_bytes:
                    vecs["default"] = np.frombuffer(obj.vector_bytes, dtype="<f4")
                elif len(obj.vector):
                    vecs["default"] = np.asarray(list(obj.vector), dtype=np.float32)
                for v in obj.vectors:
                    if v.type == base_pb2.Vectors.VECTOR_TYPE_MULTI_FP32:
                        raise ApiError(422, "multi-vectors are not supported by this emulator")
                    vecs[v.name or "default"] = np.frombuffer(v.vector_bytes, dtype="<f4")
                items.append((coll.name, obj.uuid, _props_of(obj, coll), vecs))
            except ApiError as e:
                pre[i] = e.message
                items.append(("", "", {}, {}))
        real = [(i, it) for i, it in enumerate(items) if i not in pre]
        errs = self.state.put_objects(it for _, it in real)
        out = dict(pre)
        out.update((real[j][0], m) for j, m in errs.items())
        return out

    # -- server-side batching -----------------------------------------------------------

    def BatchStream(self, request_iterator: Iterator[Any], context: Any) -> Iterator[Any]:  # noqa: N802
        """Server-side batching (Weaviate 1.36+), the bidirectional stream behind
        ``client.batch.stream()`` / ``collection.batch.stream()``. The protocol, as the
        server and the official client speak it:

        - the client's first message is ``start`` (its consistency level); anything else
          ends the stream (UNKNOWN, ``first message must be a start message``). The server
          answers ``started``.
        - each ``data`` message (objects and/or references) is acknowledged at once with
          ``acks`` naming its objects' uuids and its references' beacons (the client keeps
          at most its batch size unacknowledged, so acks are its flow control), then
          written and answered with ``results``: a ``success`` per written object (its
          uuid), an ``error`` per refused object (its uuid and Weaviate's message: the
          same validation and messages as ``BatchObjects``) and per reference (its beacon:
          the emulator has no cross-references, so every reference is refused, never
          dropped). A ``data`` message with neither is ignored, as Weaviate does.
        - every ``stream_backoff`` seconds the server sends ``backoff`` with the batch size
          it advises (:class:`_BatchSizer`); the client adopts it.
        - ``stop`` says the client sends no more; the client then half-closes, and the
          server ends the call (OK) once every result is sent. A message that is none of
          these ends the stream (UNKNOWN). A cancelled call ends it without answers.

        Auth, injected faults and latency apply once, when the stream opens (a fault is the
        call's status: the client raises it as ``WeaviateBatchStreamError``). Not emulated:
        ``shutting_down`` (a node draining) and ``out_of_memory``; a stream open when the
        emulator stops is cancelled."""
        if not self._serves_stream():
            # what gRPC-Go answers for a method the server's service does not have
            context.abort(
                grpc.StatusCode.UNIMPLEMENTED,
                "unknown method BatchStream for service weaviate.v1.Weaviate",
            )
        try:
            self._gate("BatchStream", context)
        except ApiError as e:
            context.abort(getattr(grpc.StatusCode, e.grpc, grpc.StatusCode.UNKNOWN), e.message)
        return self._stream(request_iterator, context)

    def _stream(self, requests: Iterator[Any], context: Any) -> Iterator[Any]:
        reply = batch_pb2.BatchStreamReply
        try:
            first = next(requests, None)
        except grpc.RpcError:
            return
        if first is None or first.WhichOneof("message") != "start":
            context.abort(grpc.StatusCode.UNKNOWN, "first message must be a start message")
        yield reply(started=reply.Started())
        # the requests are read on their own thread, so that backoff messages go out on
        # time while the client sends nothing; the reader ends with the call
        inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()

        def read() -> None:
            try:
                for req in requests:
                    inbox.put(req)
                inbox.put(_EOF)
            except Exception as e:  # noqa: BLE001 - the call was cancelled or broke
                inbox.put(e)

        threading.Thread(target=read, name="weaviate-emulator-batch-stream", daemon=True).start()
        sizer = _BatchSizer()
        next_backoff = time.monotonic() + self._stream_backoff
        while True:
            try:
                req = inbox.get(timeout=max(0.0, next_backoff - time.monotonic()))
            except queue.Empty:
                next_backoff = time.monotonic() + self._stream_backoff
                yield reply(backoff=reply.Backoff(batch_size=sizer.size))
                continue
            if req is _EOF or isinstance(req, BaseException):
                return
            which = req.WhichOneof("message")
            if which == "stop":
                continue  # the client half-closes next; answers still owed are sent
            if which != "data":
                context.abort(grpc.StatusCode.UNKNOWN,
                              "invalid batch send request: data field is nil")  # fmt: skip
            objs, refs = req.data.objects.values, req.data.references.values
            if not objs and not refs:
                continue
            yield reply(acks=reply.Acks(uuids=[o.uuid for o in objs],
                                        beacons=[_beacon(r) for r in refs]))  # fmt: skip
            start = time.perf_counter()
            errs = self._write(objs) if objs else {}
            results = reply.Results(
                successes=[reply.Results.Success(uuid=o.uuid)
                           for i, o in enumerate(objs) if i not in errs],
                errors=[reply.Results.Error(uuid=objs[i].uuid, error=m)
                        for i, m in sorted(errs.items())]
                + [reply.Results.Error(beacon=_beacon(r), error=_NO_REFERENCES) for r in refs],
            )  # fmt: skip
            sizer.update(time.perf_counter() - start)
            yield reply(results=results)

    def BatchDelete(self, request: Any, context: Any) -> Any:  # noqa: N802
        return self._run("BatchDelete", context, lambda: self._delete(request))

    def _delete(self, r: Any) -> Any:
        start = time.perf_counter()
        if not r.HasField("filters"):
            raise ApiError(422, "batch delete needs a filter")
        hits = self.state.delete_where(r.collection, filter_node(r.filters), dry_run=r.dry_run)
        objects = (
            [batch_delete_pb2.BatchDeleteObject(uuid=uuidlib.UUID(u).bytes, successful=True)
             for u in hits] if r.verbose else []
        )  # fmt: skip
        return batch_delete_pb2.BatchDeleteReply(
            took=time.perf_counter() - start, failed=0, matches=len(hits),
            successful=len(hits), objects=objects,
        )  # fmt: skip

    # -- aggregate --------------------------------------------------------------------

    def Aggregate(self, request: Any, context: Any) -> Any:  # noqa: N802
        return self._run("Aggregate", context, lambda: self._aggregate(request))

    def _aggregate(self, r: Any) -> Any:
        start = time.perf_counter()
        if r.aggregations or r.HasField("group_by") or r.HasField("near_vector"):
            raise ApiError(422, "only objects_count aggregations are supported by this emulator",
                           "UNIMPLEMENTED")  # fmt: skip
        n = self.state.count(
            r.collection, filter_node(r.filters) if r.HasField("filters") else None
        )
        single = aggregate_pb2.AggregateReply.Single()
        if r.objects_count:
            single.objects_count = n
        return aggregate_pb2.AggregateReply(took=time.perf_counter() - start, single_result=single)


def health_handler(gate: Callable[[str, Any], None]) -> Any:
    """The generic handler of ``/grpc.health.v1.Health/Check`` (SERVING)."""

    def check(request: Any, context: Any) -> Any:
        try:
            gate("Health", context)
        except ApiError as e:
            context.abort(getattr(grpc.StatusCode, e.grpc, grpc.StatusCode.UNKNOWN), e.message)
        return health_weaviate_pb2.WeaviateHealthCheckResponse(
            status=health_weaviate_pb2.WeaviateHealthCheckResponse.SERVING
        )

    return grpc.method_handlers_generic_handler(
        "grpc.health.v1.Health",
        {
            "Check": grpc.unary_unary_rpc_method_handler(
                check,
                request_deserializer=health_weaviate_pb2.WeaviateHealthCheckRequest.FromString,
                response_serializer=health_weaviate_pb2.WeaviateHealthCheckResponse.SerializeToString,
            )
        },
    )
