"""The Pinecone emulator against Pinecone's documented API (version 2026-07): the JSON
shapes, status codes, headers and error bodies with raw HTTP, and every call vecver makes
through the official ``pinecone`` SDK (including the errors the SDK raises), fault
injection, and ``vecver emulator`` on the command line."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from vecver.errors import InvalidArgument
from vecver.testing.emulators import EMULATORS, Emulator, create, kinds
from vecver.testing.emulators.pinecone import PineconeEmulator
from vecver.testing.emulators.pinecone_state import matches_filter

KEY = "emu-key"
_count = itertools.count()


@pytest.fixture(scope="module")
def emu() -> Iterator[PineconeEmulator]:
    e = PineconeEmulator(api_key=KEY).start()
    yield e
    e.stop()


@pytest.fixture
def host(emu: PineconeEmulator, request: pytest.FixtureRequest) -> Iterator[str]:
    emu.faults.clear()
    yield emu.create_index(f"i-{next(_count)}", 3, "cosine")
    emu.faults.clear()


def call(url: str, method: str = "GET", body: Any = None, key: str | None = KEY
         ) -> tuple[int, Any, dict[str, str]]:  # fmt: skip
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if key:
        req.add_header("Api-Key", key)
    req.add_header("X-Pinecone-Api-Version", "2026-07")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            raw = r.read()
            return r.status, json.loads(raw) if raw else None, dict(r.headers)
    except urllib.error.HTTPError as e:
        raw = e.read()
        return e.code, json.loads(raw) if raw else None, dict(e.headers)


def up(host: str, vectors: list[dict[str, Any]], ns: str = "ns") -> tuple[int, Any, dict[str, str]]:
    return call(host + "/vectors/upsert", "POST", {"vectors": vectors, "namespace": ns})


# -- the registry -----------------------------------------------------------------------------


def test_registry_builds_emulators_by_kind() -> None:
    assert "pinecone" in kinds() and "pinecone" in EMULATORS
    e = create("pinecone", lag=0.5)
    assert isinstance(e, Emulator) and isinstance(e, PineconeEmulator) and e.faults.lag == 0.5
    with pytest.raises(InvalidArgument):
        create("no-such-db")
    with e:
        assert e.url.startswith("http://127.0.0.1:") and e.port > 0
    assert not e.running


# -- raw HTTP: shapes, status codes, error bodies ------------------------------------------------


def test_auth_is_required(emu: PineconeEmulator, host: str) -> None:
    for key in (None, "wrong"):
        status, body, _ = call(emu.url + "/indexes", key=key)
        assert status == 401 and body["error"]["code"] == "UNAUTHENTICATED"
        status, body, _ = call(host + "/describe_index_stats", "POST", {}, key=key)
        assert status == 401 and body["code"] == 16 and "message" in body


def test_control_plane_shapes(emu: PineconeEmulator) -> None:
    body = {"name": "ctl-a", "schema": {"fields": {"_values": {
        "type": "dense_vector", "dimension": 5, "metric": "dotproduct"}}},
        "deployment": {"deployment_type": "managed", "cloud": "aws", "region": "us-east-1"}}
    status, model, _ = call(emu.url + "/indexes", "POST", body)
    assert status == 201 and model["name"] == "ctl-a" and model["status"]["ready"] is True
    assert model["schema"]["fields"]["_values"] == {"type": "dense_vector", "dimension": 5,
                                                    "metric": "dotproduct"}  # fmt: skip
    assert model["host"] == emu.index_host("ctl-a")
    assert call(emu.url + "/indexes", "POST", body)[0] == 409
    status, listed, _ = call(emu.url + "/indexes")
    assert status == 200 and "ctl-a" in [i["name"] for i in listed["indexes"]]
    status, err, _ = call(emu.url + "/indexes/nope")
    assert status == 404 and err == {"error": {"code": "NOT_FOUND",
                                               "message": "Resource nope not found"},
                                     "status": 404}  # fmt: skip
    for bad in ({"name": "Bad_Name", "dimension": 3}, {"name": "ok", "dimension": 0},
                {"name": "ok2", "dimension": 3, "metric": "manhattan"}):
        assert call(emu.url + "/indexes", "POST", bad)[0] == 400
    assert call(emu.url + "/indexes/ctl-a", "DELETE")[0] == 202
    assert call(emu.url + "/indexes/ctl-a")[0] == 404


def test_upsert_query_fetch_list_shapes(host: str) -> None:
    status, body, headers = up(host, [
        {"id": "a", "values": [1, 0, 0], "metadata": {"g": "x", "n": 3, "t": ["p", "q"]}},
        {"id": "b", "values": [0, 1, 0], "metadata": {"g": "y", "n": 5}},
        {"id": "c", "values": [0.9, 0.1, 0]},
    ])  # fmt: skip
    assert status == 200 and body == {"upsertedCount": 3}
    assert int(headers["x-pinecone-lsn-committed"]) >= 1 and headers["x-pinecone-request-id"]
    status, q, headers = call(host + "/query", "POST", {
        "namespace": "ns", "vector": [1, 0, 0], "topK": 2, "includeMetadata": True})
    assert status == 200 and [m["id"] for m in q["matches"]] == ["a", "c"]
    assert q["matches"][0]["score"] == pytest.approx(1.0) and q["namespace"] == "ns"
    assert q["matches"][0]["metadata"] == {"g": "x", "n": 3.0, "t": ["p", "q"]}
    assert "values" not in q["matches"][0] and "x-pinecone-lsn-reconciled" in headers
    _, q, _ = call(host + "/query", "POST", {"namespace": "ns", "id": "b", "topK": 1,
                                              "includeValues": True})  # fmt: skip
    assert q["matches"][0]["id"] == "b" and q["matches"][0]["values"] == [0.0, 1.0, 0.0]
    _, q, _ = call(host + "/query", "POST", {"namespace": "ns", "vector": [1, 0, 0], "topK": 5,
                                              "filter": {"n": {"$gte": 4}}})  # fmt: skip
    assert [m["id"] for m in q["matches"]] == ["b"]
    _, q, _ = call(host + "/query", "POST", {"namespace": "elsewhere", "vector": [1, 0, 0],
                                              "topK": 5})  # fmt: skip
    assert q["matches"] == []  # an unknown namespace queries as empty
    status, f, _ = call(host + "/vectors/fetch?ids=a&ids=zz&namespace=ns")
    assert status == 200 and list(f["vectors"]) == ["a"]
    assert f["vectors"]["a"]["values"] == [1, 0, 0]
    status, page, _ = call(host + "/vectors/list?namespace=ns&limit=2")
    assert [v["id"] for v in page["vectors"]] == ["a", "b"] and page["pagination"]["next"]
    _, page2, _ = call(host + f"/vectors/list?namespace=ns&limit=2&paginationToken="
                       f"{page['pagination']['next']}")  # fmt: skip
    assert [v["id"] for v in page2["vectors"]] == ["c"] and "pagination" not in page2
    _, page3, _ = call(host + "/vectors/list?namespace=ns&prefix=b")
    assert [v["id"] for v in page3["vectors"]] == ["b"]
    status, stats, _ = call(host + "/describe_index_stats", "POST", {})
    assert status == 200 and stats["namespaces"] == {"ns": {"vectorCount": 3}}
    assert stats["dimension"] == 3 and stats["totalVectorCount"] == 3
    assert stats["metric"] == "cosine"


def test_update_delete_namespaces(host: str) -> None:
    up(host, [{"id": "a", "values": [1, 0, 0], "metadata": {"k": "v"}},
              {"id": "b", "values": [0, 1, 0], "metadata": {"k": "w"}},
              {"id": "c", "values": [0, 0, 1], "metadata": {"k": "w"}}])  # fmt: skip
    assert call(host + "/vectors/update", "POST", {"id": "a", "setMetadata": {"x": True},
                                                   "namespace": "ns"})[0] == 200  # fmt: skip
    _, f, _ = call(host + "/vectors/fetch?ids=a&namespace=ns")
    assert f["vectors"]["a"]["metadata"] == {"k": "v", "x": True}
    delete = host + "/vectors/delete"
    assert call(delete, "POST", {"ids": ["a"], "namespace": "ns"})[:2] == (200, {})
    assert call(delete, "POST", {"filter": {"k": "w"}, "namespace": "ns"})[0] == 200
    _, stats, _ = call(host + "/describe_index_stats", "POST", {})
    assert stats["namespaces"]["ns"]["vectorCount"] == 0
    up(host, [{"id": "z", "values": [1, 1, 0]}], ns="other")
    status, lst, _ = call(host + "/namespaces")
    assert status == 200 and {n["name"] for n in lst["namespaces"]} == {"ns", "other"}
    assert lst["total_count"] == 2 and isinstance(lst["namespaces"][0]["record_count"], str)
    status, d, _ = call(host + "/namespaces/other")
    assert status == 200 and d == {"name": "other", "record_count": "1"}
    assert call(delete, "POST", {"deleteAll": True, "namespace": "other"})[0] == 200
    assert call(host + "/namespaces/other", "DELETE")[0] == 202
    status, err, _ = call(host + "/namespaces/other")
    assert status == 404 and err == {"code": 5, "message": "Namespace not found", "details": []}
    assert call(host + "/namespaces/other", "DELETE")[0] == 404
    assert call(host + "/vectors/delete", "POST", {"ids": ["x"], "namespace": "never"})[0] == 404
    assert call(host + "/namespaces", "POST", {"name": "made"})[0] == 201
    assert call(host + "/namespaces", "POST", {"name": "made"})[0] == 409


@pytest.mark.parametrize("vectors, words", [
    ([{"id": "a", "values": [1, 0]}], "dimension 2 does not match the dimension of the index 3"),
    ([{"id": "a", "values": [0, 0, 0]}], "at least one non-zero"),
    ([{"id": "", "values": [1, 0, 0]}], "non-empty"),
    ([{"id": "x" * 513, "values": [1, 0, 0]}], "512"),
    ([{"id": "a", "values": [1, 0, 0], "metadata": {"n": None}}], "null"),
    ([{"id": "a", "values": [1, 0, 0], "metadata": {"l": [1, 2]}}], "list"),
    ([{"id": "a", "values": [1, 0, 0], "metadata": {"o": {"x": 1}}}], "object"),
    ([{"id": "a", "values": [1, 0, 0], "metadata": {"t": "x" * 41_000}}],
     "exceeds the limit of 40960"),
    ([{"id": str(i), "values": [1, 0, 0]} for i in range(1001)], "at most 1000"),
])  # fmt: skip
def test_upsert_errors(host: str, vectors: list[dict[str, Any]], words: str) -> None:
    status, body, _ = up(host, vectors)
    assert status == 400 and body["code"] == 3 and words in body["message"], body
    assert body["details"] == []


def test_request_limits(host: str) -> None:
    ids = "&".join(f"ids={i}" for i in range(1001))
    status, body, _ = call(host + f"/vectors/fetch?{ids}&namespace=ns")
    assert status == 400 and "at most 1000" in body["message"]
    up(host, [{"id": "a", "values": [1, 0, 0]}])
    status, body, _ = call(host + "/vectors/delete", "POST",
                           {"ids": [str(i) for i in range(1001)], "namespace": "ns"})
    assert status == 400 and "at most 1000" in body["message"]
    for q in ({"vector": [1, 0, 0], "topK": 0}, {"vector": [1, 0, 0], "topK": 10_001},
              {"vector": [1, 0, 0], "topK": 1001, "includeMetadata": True},
              {"topK": 1}, {"vector": [1, 0, 0], "id": "a", "topK": 1},
              {"vector": [1, 0, 0], "topK": 1, "filter": {"n": {"$regex": "x"}}}):
        assert call(host + "/query", "POST", {"namespace": "ns", **q})[0] == 400, q
    assert call(host + "/vectors/list?namespace=ns&limit=101")[0] == 400
    big = {"vectors": [{"id": str(i), "values": [0.123456789] * 3, "metadata": {"p": "x" * 3000}}
                       for i in range(800)], "namespace": "ns"}  # fmt: skip
    status, body, _ = call(host + "/vectors/upsert", "POST", big)
    assert status == 400 and "maximum supported size" in body["message"]


def test_scores_follow_pinecones_metrics(emu: PineconeEmulator) -> None:
    for metric, want in (("dotproduct", [6.0, 2.0]), ("euclidean", [0.0, 5.0])):
        h = emu.create_index(f"m-{metric}", 2, metric)
        up(h, [{"id": "near", "values": [2, 1]}, {"id": "far", "values": [0, 2]}])
        _, q, _ = call(h + "/query", "POST", {"namespace": "ns", "vector": [2, 1], "topK": 2})
        assert [m["id"] for m in q["matches"]] == ["near", "far"]
        assert [m["score"] for m in q["matches"]] == pytest.approx(
            want if metric == "euclidean" else [5.0, 2.0])


def test_filter_language() -> None:
    md = {"g": "x", "n": 3.0, "t": ["p", "q"], "b": True}
    cases = [({"g": "x"}, True), ({"g": {"$ne": "x"}}, False), ({"t": "p"}, True),
             ({"t": {"$in": ["z", "q"]}}, True), ({"t": {"$nin": ["p"]}}, False),
             ({"n": {"$gt": 2, "$lte": 3}}, True), ({"n": {"$lt": 3}}, False),
             ({"b": 1}, False), ({"b": True}, True), ({"missing": {"$ne": 1}}, True),
             ({"missing": {"$exists": False}}, True), ({"g": {"$exists": True}}, True),
             ({"$or": [{"g": "y"}, {"n": 3}]}, True), ({"$and": [{"g": "x"}, {"n": 4}]}, False),
             ({"n": "3"}, False)]  # fmt: skip
    for flt, want in cases:
        assert matches_filter(flt, md) is want, flt


# -- through the official SDK --------------------------------------------------------------------


def test_every_call_vecver_makes_through_the_sdk(emu: PineconeEmulator) -> None:
    from pinecone import Pinecone
    from pinecone.errors import ApiError, NotFoundError

    pc = Pinecone(api_key=KEY, host=emu.url)
    pc.indexes.create(name="sdk-idx", dimension=3, metric="euclidean")
    model = pc.indexes.describe("sdk-idx")
    assert model.status.ready and "sdk-idx" in [m.name for m in pc.indexes.list()]
    idx = pc.index(host=model.host)
    r = idx.upsert(vectors=[{"id": "a", "values": [1, 0, 0], "metadata": {"k": "v"}},
                            ("b", [0, 1, 0])], namespace="n1")  # fmt: skip
    assert r.upserted_count == 2 and r.response_info.lsn_committed is not None
    q = idx.query(vector=[1, 0, 0], top_k=2, namespace="n1", include_metadata=True,
                  filter={"k": {"$eq": "v"}})  # fmt: skip
    assert [m.id for m in q.matches] == ["a"] and q.matches[0].metadata == {"k": "v"}
    assert q.response_info.lsn_reconciled >= r.response_info.lsn_committed
    assert set(idx.fetch(ids=["a", "b", "c"], namespace="n1").vectors) == {"a", "b"}
    page = idx.list_paginated(namespace="n1", limit=1)
    assert [v.id for v in page.vectors] == ["a"] and page.pagination is not None
    assert idx.update(id="b", set_metadata={"k": "w"}, namespace="n1").response_info is not None
    idx.delete(ids=["a"], namespace="n1")
    assert idx.describe_index_stats().namespaces["n1"].vector_count == 1
    assert [n.name for n in idx.list_namespaces_paginated().namespaces] == ["n1"]
    assert idx.describe_namespace(namespace="n1").record_count == 1
    with pytest.raises(ApiError, match="dimension 2 does not match"):
        idx.upsert(vectors=[("c", [1, 0])], namespace="n1")
    with pytest.raises(NotFoundError, match="Namespace not found"):
        idx.describe_namespace(namespace="nope")
    with pytest.raises(ApiError, match="null"):
        idx.upsert(vectors=[{"id": "d", "values": [1, 1, 0], "metadata": {"x": None}}],
                   namespace="n1")  # fmt: skip
    idx.delete_namespace(namespace="n1")
    pc.indexes.delete("sdk-idx")
    with pytest.raises(NotFoundError):
        pc.indexes.describe("sdk-idx")


# -- faults ---------------------------------------------------------------------------------------


def test_fault_injection_429_503_latency_and_lag(host: str, emu: PineconeEmulator) -> None:
    emu.faults.fail_next(1, 429, retry_after=2)
    status, body, headers = call(host + "/describe_index_stats", "POST", {})
    assert status == 429 and headers["Retry-After"] == "2" and body["code"] == 8
    emu.faults.fail_next(1, 503, retry_after=0.5)
    status, _, headers = call(host + "/describe_index_stats", "POST", {})
    assert status == 503 and headers["Retry-After"] == "0.5"
    assert call(emu.url + "/indexes")[0] == 200  # the control plane is spared by default
    emu.faults.rate_limit, emu.faults.seed = 1.0, 1
    assert call(host + "/describe_index_stats", "POST", {})[0] == 429
    emu.faults.clear()
    emu.faults.lag = 0.3
    up(host, [{"id": "late", "values": [1, 0, 0]}])
    _, q, _ = call(host + "/query", "POST", {"namespace": "ns", "vector": [1, 0, 0], "topK": 1})
    assert q["matches"] == []  # not visible to queries yet ...
    _, f, _ = call(host + "/vectors/fetch?ids=late&namespace=ns")
    assert "late" in f["vectors"]  # ... while fetch sees it (fetch_lag=0)
    time.sleep(0.35)
    _, q, _ = call(host + "/query", "POST", {"namespace": "ns", "vector": [1, 0, 0], "topK": 1})
    assert [m["id"] for m in q["matches"]] == ["late"]


def test_concurrent_writers_lose_nothing(host: str) -> None:
    def writer(w: int) -> None:
        for b in range(5):
            up(host, [{"id": f"{w}-{b}-{i}", "values": [1, w, i]} for i in range(20)])

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    _, stats, _ = call(host + "/describe_index_stats", "POST", {})
    assert stats["namespaces"]["ns"]["vectorCount"] == 4 * 5 * 20


# -- the CLI ------------------------------------------------------------------------------------


def test_cli_serves_and_announces_the_url() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "vecver", "emulator", "pinecone", "--port",
                             "0", "--duration", "20", "--json"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert "pinecone emulator serving at http://127.0.0.1:" in line, line
        url = line.rsplit(" ", 1)[-1].strip()
        assert call(url + "/indexes", key="any")[0] == 200
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    bad = subprocess.run([sys.executable, "-m", "vecver", "emulator", "nosuch"],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert bad.returncode == 2 and "kind must be one of" in bad.stderr
