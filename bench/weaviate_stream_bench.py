"""Objects per second into the Weaviate emulator through the official client's
server-side batching (``collection.batch.stream()``, the gRPC ``BatchStream``) side by
side with ``collection.data.insert_many`` and client-side ``batch.fixed_size``, in one run:

    python bench/weaviate_stream_bench.py [--objects 10000] [--dim 64] [--batch 128]
                                          [--rounds 3]

The emulator runs in its own process (``python -m vecver.testing.emulators.weaviate
--version 1.36.0``), so that its server threads do not share this process's GIL. Each
round writes ``--objects`` objects (a property and a ``--dim`` named vector each, fresh
uuids) into a fresh collection with each variant, in rotating order; the clock runs from
the first call to the moment the objects are all written (the stream: the ``with`` block
has ended, every result received). Printed per variant: the median objects/s of the
rounds, the median CPU seconds of this (client) process and of the emulator's process per
round, and ratios to ``insert_many``. The stream's client waits up to 1 s for a batch to
fill before it sends a short one, so its wall time includes about 1 s at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402 - must run before vecver is imported

VARIANTS = ("insert_many", "fixed_size", "stream")


def _cpu_of(pid: int) -> float:
    """User + system CPU seconds of a process (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def _emulator_process(version: str) -> Iterator[tuple[int, int, int]]:
    """(http port, grpc port, pid) of an emulator in its own process."""
    ports = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    proc = subprocess.Popen(
        [sys.executable, "-m", "vecver.testing.emulators.weaviate", "--http-port",
         str(ports[0]), "--grpc-port", str(ports[1]), "--version", version],
        stdout=subprocess.PIPE, text=True, env=C.child_env(),
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("weaviate emulator:"), line
        yield ports[0], ports[1], proc.pid
    finally:
        proc.terminate()
        proc.wait(30)
        if proc.stdout is not None:
            proc.stdout.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--objects", type=int, default=10_000)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--batch", type=int, default=128,
                    help="objects per insert_many call and per fixed_size batch")  # fmt: skip
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    C.announce()
    import numpy as np
    import weaviate
    from weaviate.classes.config import Configure, DataType, Property
    from weaviate.classes.data import DataObject

    from vecver.testing.emulators.weaviate import STREAM_VERSION

    print(f"load average at start: {C.loadavg()} (on {os.cpu_count()} cores)")
    print(f"weaviate-client {weaviate.__version__}; emulator reports Weaviate {STREAM_VERSION}; "
          f"{args.objects} objects, dim {args.dim}, batch {args.batch}, {args.rounds} rounds",
          flush=True)  # fmt: skip
    rng = np.random.default_rng(0)
    vecs = rng.standard_normal((args.objects, args.dim)).astype(np.float32)
    rows = [vecs[i].tolist() for i in range(args.objects)]

    with _emulator_process(STREAM_VERSION) as (http_port, grpc_port, pid):
        client = weaviate.connect_to_custom(
            http_host="127.0.0.1", http_port=http_port, http_secure=False,
            grpc_host="127.0.0.1", grpc_port=grpc_port, grpc_secure=False,
            skip_init_checks=True,
        )  # fmt: skip
        try:

            def fresh(name: str) -> Any:
                if client.collections.exists(name):
                    client.collections.delete(name)
                return client.collections.create(
                    name, properties=[Property(name="i", data_type=DataType.INT)],
                    vector_config=Configure.Vectors.self_provided(name="vv"))  # fmt: skip

            def insert_many(col: Any) -> list[str]:
                errors: list[str] = []
                for s in range(0, args.objects, args.batch):
                    res = col.data.insert_many([
                        DataObject(properties={"i": i}, vector={"vv": rows[i]}, uuid=uuid.uuid4())
                        for i in range(s, min(args.objects, s + args.batch))])  # fmt: skip
                    errors += [e.message for e in res.errors.values()]
                return errors

            def fixed_size(col: Any) -> list[str]:
                with col.batch.fixed_size(batch_size=args.batch) as b:
                    for i in range(args.objects):
                        b.add_object(properties={"i": i}, vector={"vv": rows[i]}, uuid=uuid.uuid4())
                return [f.message for f in col.batch.failed_objects]

            def stream(col: Any) -> list[str]:
                with col.batch.stream() as b:
                    for i in range(args.objects):
                        b.add_object(properties={"i": i}, vector={"vv": rows[i]}, uuid=uuid.uuid4())
                return [f.message for f in col.batch.failed_objects]

            fns: dict[str, Callable[[Any], list[str]]] = {
                "insert_many": insert_many, "fixed_size": fixed_size, "stream": stream}
            rate: dict[str, list[float]] = {v: [] for v in VARIANTS}
            cpu: dict[str, list[float]] = {v: [] for v in VARIANTS}
            ecpu: dict[str, list[float]] = {v: [] for v in VARIANTS}
            for r in range(args.rounds):
                order = VARIANTS[r % len(VARIANTS):] + VARIANTS[: r % len(VARIANTS)]
                for v in order:
                    col = fresh(f"Bench_{v}")
                    c0, e0, t0 = time.process_time(), _cpu_of(pid), time.perf_counter()
                    errors = fns[v](col)
                    dt = time.perf_counter() - t0
                    cpu[v].append(time.process_time() - c0)
                    ecpu[v].append(_cpu_of(pid) - e0)
                    n = len(col)
                    assert not errors and n == args.objects, (v, errors[:3], n)
                    rate[v].append(args.objects / dt)
                    print(f"round {r + 1} {v:12s} {args.objects / dt:9.0f} objects/s  "
                          f"client cpu {cpu[v][-1]:.2f} s  emulator cpu {ecpu[v][-1]:.2f} s  "
                          f"(load {C.loadavg()})", flush=True)  # fmt: skip
        finally:
            client.close()

    base_rate, base_cpu = C.median(rate["insert_many"]), C.median(cpu["insert_many"])
    base_ecpu = C.median(ecpu["insert_many"])
    print(f"\n== medians of {args.rounds} rounds ({args.objects} objects each) ==")
    print(f"{'variant':12s} {'objects/s':>10s} {'x insert_many':>14s} {'client cpu s':>13s} "
          f"{'x':>6s} {'emulator cpu s':>15s} {'x':>6s}")  # fmt: skip
    for v in VARIANTS:
        r_, c_, e_ = C.median(rate[v]), C.median(cpu[v]), C.median(ecpu[v])
        print(f"{v:12s} {r_:10.0f} {r_ / base_rate:14.2f} {c_:13.2f} {c_ / base_cpu:6.2f} "
              f"{e_:15.2f} {e_ / base_ecpu:6.2f}   rounds: {C.spread(rate[v])}")  # fmt: skip
    print(f"load average at end: {C.loadavg()}")


if __name__ == "__main__":
    main()
