"""How fast a mirror and a bulk link ask a server that throttles above N requests/s.

    .venv/bin/python benchmarks/throttle_bench.py                    # 50,000 objects
    .venv/bin/python benchmarks/throttle_bench.py --objects 10000 --heads 1000

Starts SeaweedFS, uploads ``--objects`` objects and puts ``tests/faultproxy.py``
in front of it. What a mirror sends is listing requests (ListObjectsV2, 1,000
keys a page, one page at a time), so 50,000 objects are only 50 requests;
``link_files`` without sizes sends one HeadObject per object, 16 at a time.
Both are measured:

1. free: through the proxy without a throttle, the rate each sends on its own;
2. throttled: the proxy answers ``503 SlowDown`` above N requests/s (a token
   bucket holding one second's worth), N being ``--rps`` / ``--head-rps`` or,
   by default, half the free rate (a throttle the client really meets).

Prints, for each, the requests sent (SlowDown answers included) divided by the
run's time, that figure over N (target: <= 1.2), how many were throttled, and
checks that every object was linked.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.faultproxy

from tests.faultproxy import THROTTLED, FaultProxy

import filespace
from filespace.testing import SeaweedS3

BUCKET = "throttle-bench"


def upload(server: SeaweedS3, count: int) -> None:
    client = server.client()

    def put(index: int) -> None:
        client.put_object(Bucket=BUCKET, Key=f"o/d{index % 50:02d}/{index:07d}", Body=b"x")

    with ThreadPoolExecutor(32) as pool:
        list(pool.map(put, range(count)))


def space(work: Path, server: SeaweedS3, proxy: FaultProxy, tag: str) -> filespace.Filespace:
    fsp = filespace.create(str(work / f"space-{tag}"), name=tag)
    fsp.connect.enable()
    fsp.connect.add_data_store(
        "store",
        filespace.S3DataStoreConfig(
            access_key=server.admin.access_key,
            secret_key=server.admin.secret_key,
            bucket_name=BUCKET,
            region=server.region,
            endpoint=proxy.endpoint,
        ),
    )
    return fsp


def run(
    work: Path, server: SeaweedS3, kind: str, count: int, heads: int, rps: float
) -> dict[str, Any]:
    """One mirror (or bulk link) through a fresh proxy; what it sent and how fast."""
    with FaultProxy(server.endpoint, throttle_rps=rps) as proxy:
        fsp = space(work, server, proxy, f"{kind}-{rps:g}-{time.monotonic_ns()}")
        began = time.perf_counter()
        if kind == "mirror":
            done = fsp.connect.mirror("store", "o/", "/m").added
            expected = count
        else:
            items = [(f"/h/{i:07d}", f"o/d{i % 50:02d}/{i:07d}") for i in range(heads)]
            report = fsp.connect.link_files(items, data_store_name="store", create_parents=True)
            done, expected = report.linked, heads
        seconds = time.perf_counter() - began
        fsp.close()
        sent = len(proxy.seen)
        throttled = len(proxy.faults(THROTTLED))
    if done != expected:
        raise SystemExit(f"{kind}: linked {done} of {expected}")
    return {"seconds": seconds, "sent": sent, "throttled": throttled, "rate": sent / seconds}


def report(kind: str, free: dict[str, Any], limited: dict[str, Any], rps: float) -> None:
    print(
        f"{kind}: free {free['sent']} requests in {free['seconds']:.1f} s "
        f"({free['rate']:.1f}/s); throttled at N = {rps:.1f}/s: {limited['sent']} requests "
        f"({limited['throttled']} SlowDown) in {limited['seconds']:.1f} s = "
        f"{limited['rate']:.2f}/s = {limited['rate'] / rps:.2f} x N (target <= 1.2)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=50_000)
    parser.add_argument("--heads", type=int, default=2_000, help="objects linked by HeadObject")
    parser.add_argument("--rps", type=float, default=0.0, help="mirror's N (0: half its free rate)")
    parser.add_argument("--head-rps", type=float, default=0.0, help="HEADs' N (0: half free)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="throttle-bench-") as tmp:
        work = Path(tmp)
        with SeaweedS3(work / "s3") as server:
            server.create_bucket(BUCKET)
            began = time.perf_counter()
            upload(server, args.objects)
            print(f"uploaded {args.objects:,} objects in {time.perf_counter() - began:.0f} s")
            for kind, chosen in (("mirror", args.rps), ("heads", args.head_rps)):
                free = run(work, server, kind, args.objects, args.heads, 0.0)
                rps = chosen or free["rate"] / 2
                limited = run(work, server, kind, args.objects, args.heads, rps)
                report(kind, free, limited, rps)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
