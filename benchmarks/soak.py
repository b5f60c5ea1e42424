"""A seeded soak: random reads, writes and mirrors with 1 % of every HTTP fault, then a full check.

    .venv/bin/python benchmarks/soak.py                  # 30 minutes, seed 1
    .venv/bin/python benchmarks/soak.py --minutes 2 --seed 7

Starts SeaweedFS and puts ``tests/faultproxy.py`` in front of it; every
request of the filespace (external reads, HEADs, listings, block GETs and
PUTs) goes through the proxy, which gives each request each fault with a
chance of ``--rate`` (1 %): 500, 503 SlowDown (half of them with
``Retry-After``), 429, resets before the status line and mid-body, bodies cut
short, stalled past the read timeout (shortened to 1 s here) or trickling,
and uploads cut off. One embedded filespace keeps its native files in an S3
block store; a second bucket holds the external objects, some linked one by
one and a prefix mirrored. For ``--minutes`` a seeded random mix runs:
random reads of linked files, whole-file writes and reads of native files,
new objects uploaded (past the proxy) and mirrored. Any byte that differs
from what was written or uploaded stops the run at once; a call that fails
for good (``EIO``, a store error) is counted and allowed: a failed write
leaves the file as it was.

Then, with the faults off: every linked file, mirrored link and native file
is read whole and compared; the mirror is compared key by key with the
bucket; every block the engine references is in the bucket, whole; and the
counters (files, directories, sizes, the store's links) equal a recount of
the tree. Prints the operations, the faults injected and the calls that
failed, and exits 1 if the verification finds anything.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.faultproxy

from tests.faultproxy import Fault, FaultProxy, Rule

import filespace
from filespace.objects import pools, s3
from filespace.testing import SeaweedS3

EXT, BLOCKS = "soak-ext", "soak-blocks"
LINKED = 24  # objects linked one by one
NATIVE = 16  # native file names written over and over


def faults(rate: float) -> list[Rule]:
    """Each fault with the given chance per request (uploads cut off: PUTs only)."""
    rules = [Rule(kind, chance=rate) for kind in Fault if kind is not Fault.RESET_UPLOAD]
    rules.append(Rule(Fault.S503, chance=rate, retry_after=0.2))
    rules.append(Rule(Fault.RESET_UPLOAD, method="PUT", chance=rate))
    return rules


def body(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


class Soak:
    def __init__(self, fsp: filespace.Filespace, admin: Any, rng: random.Random) -> None:
        self.fsp = fsp
        self.admin = admin
        self.rng = rng
        self.objects: dict[str, bytes] = {}  # key -> bytes in the external bucket
        self.native: dict[str, bytes] = {}  # path -> what it holds
        self.ops: Counter[str] = Counter()
        self.failed: Counter[str] = Counter()
        self.mirrored = 0
        self.last = ""  # the operation under way, for the failure counts

    def upload(self, key: str, size: int) -> str:
        data = body(self.rng.randrange(1 << 30), size)
        etag: str = self.admin.put_object(Bucket=EXT, Key=key, Body=data)["ETag"].strip('"')
        self.objects[key] = data
        return etag

    def setup(self) -> None:
        self.fsp.fs.create_dir("/linked")
        for index in range(LINKED):
            key = f"l/{index:03}"
            size = self.rng.choice((1, 1000, 300_000, 2_000_000))
            etag = self.upload(key, size)
            self.fsp.connect.link_file(f"/linked/{index:03}", "ext", key, size, etag)
        self.fsp.fs.create_dir("/native")

    def step(self) -> None:
        pick = self.rng.random()
        try:
            if pick < 0.4:
                self.random_read()
            elif pick < 0.65:
                self.write_native()
            elif pick < 0.9:
                self.read_native()
            else:
                self.mirror()
        except (OSError, filespace.DataStoreError) as exc:
            self.failed[f"{self.last}: {type(exc).__name__}"] += 1

    def random_read(self) -> None:
        self.last = "random read"
        index = self.rng.randrange(LINKED)
        data = self.objects[f"l/{index:03}"]
        at = self.rng.randrange(len(data))
        count = self.rng.randrange(1, 600_000)
        with self.fsp.fs.open(f"/linked/{index:03}", "rb") as handle:
            handle.seek(at)
            got = handle.read(count)
        check(got == data[at : at + count], f"/linked/{index:03} at {at}")
        self.ops[self.last] += 1

    def write_native(self) -> None:
        self.last = "native write"
        path = f"/native/{self.rng.randrange(NATIVE):02}"
        data = body(self.rng.randrange(1 << 30), self.rng.choice((0, 10, 200_000, 1_100_000)))
        try:
            self.fsp.fs.write_file(path, data)
        except OSError:
            # Failed whole: the file holds what it held (or is not there).
            self.verify_native(path)
            raise
        self.native[path] = data
        self.ops[self.last] += 1

    def read_native(self) -> None:
        self.last = "native read"
        if self.native:
            self.verify_native(self.rng.choice(sorted(self.native)))
            self.ops[self.last] += 1

    def verify_native(self, path: str) -> None:
        if path in self.native:
            check(self.fsp.fs.read_file(path) == self.native[path], path)
        else:
            check(not self.fsp.fs.exists(path), f"{path} appeared after a failed write")

    def mirror(self) -> None:
        self.last = "mirror"
        for _ in range(self.rng.randrange(1, 20)):
            self.upload(f"m/{self.rng.randrange(200):03}/{self.rng.randrange(10)}", 100)
        self.fsp.connect.mirror("ext", "m/", "/mirror")
        self.mirrored += 1
        self.ops[self.last] += 1


def check(ok: bool, what: str) -> None:
    if not ok:
        print(f"WRONG BYTES: {what}", flush=True)
        raise SystemExit(1)


def verify(soak: Soak, store: Any, admin: Any) -> list[str]:
    """Everything compared with the faults off; the problems found."""
    fsp, problems = soak.fsp, []
    fsp.connect.mirror("ext", "m/", "/mirror")
    for index in range(LINKED):
        if fsp.fs.read_file(f"/linked/{index:03}") != soak.objects[f"l/{index:03}"]:
            problems.append(f"/linked/{index:03} differs")
    mirrored = {key for key in soak.objects if key.startswith("m/")}
    for key in sorted(mirrored):
        if fsp.fs.read_file(f"/mirror/{key[2:]}") != soak.objects[key]:
            problems.append(f"/mirror/{key[2:]} differs")
    for path, data in soak.native.items():
        if fsp.fs.read_file(path) != data:
            problems.append(f"{path} differs")
    files = dirs = links = size = native = external = external_size = 0
    for path, entry in fsp.fs.walk("/"):
        if entry.is_dir():
            dirs += 1
            continue
        if entry.is_link():
            links += 1
            continue
        files += 1
        size += entry.size
        if entry.external is None:
            native += entry.size
            for block in store.engine_blocks(entry.file_id_external):
                head = admin.head_object(Bucket=BLOCKS, Key=store.object_name(block.key))
                if head["ContentLength"] < block.length:
                    problems.append(f"{path}: block {block.key} is short in the bucket")
        else:
            external += 1
            external_size += entry.size
    stats = fsp.fs.get_statistics()
    recount = {
        "file_count": files,
        "symlink_count": links,
        "entries_size": size,
        "data_size": native,
        "external_files_count": external,
        "external_files_size": external_size,
    }
    for name, value in recount.items():
        if getattr(stats, name) != value:
            problems.append(f"counter {name} = {getattr(stats, name)}, recount {value}")
    if stats.directory_count not in (dirs, dirs + 1):  # with or without the root
        problems.append(f"counter directory_count = {stats.directory_count}, recount {dirs}")
    if fsp.connect.count_external_files("ext") != external:
        problems.append("the store's link count differs from the recount")
    if len(mirrored) + LINKED != external:
        problems.append(f"{external} links, expected {len(mirrored) + LINKED}")
    return problems


class BlockView:
    """The engine's block lists and the bucket's names for blocks (``space/`` prefix)."""

    def __init__(self, fsp: filespace.Filespace) -> None:
        self._engine = fsp._engine  # type: ignore[attr-defined]

    def engine_blocks(self, entry_id: int) -> Any:
        return self._engine.blocks(entry_id)

    @staticmethod
    def object_name(key: str) -> str:
        return f"space/blocks/{key[:2]}/{key}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rate", type=float, default=0.01, help="chance of each fault")
    args = parser.parse_args()
    # A stall is a read timeout: shortened so that 1 % of stalls do not eat the run.
    pools._READ_TIMEOUT_S = 1.0
    s3._READ_TIMEOUT_S = 1.0
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp, SeaweedS3(Path(tmp) / "s3") as server:
        work = Path(tmp)
        admin = server.client()
        for name in (EXT, BLOCKS):
            server.create_bucket(name)
        with FaultProxy(server.endpoint, seed=args.seed, stall_s=2.0) as proxy:
            who = server.admin
            fsp = filespace.create(
                str(work / "space"),
                name="soak",
                data=f"s3://{BLOCKS}/space",
                data_endpoint=proxy.endpoint,
                data_region=server.region,
                data_access_key=who.access_key,
                data_secret_key=who.secret_key,
            )
            fsp.connect.enable()
            fsp.connect.add_data_store(
                "ext",
                filespace.S3DataStoreConfig(
                    access_key=who.access_key,
                    secret_key=who.secret_key,
                    bucket_name=EXT,
                    region=server.region,
                    endpoint=proxy.endpoint,
                ),
            )
            soak = Soak(fsp, admin, random.Random(args.seed))
            soak.setup()
            proxy.rules.extend(faults(args.rate))
            began = time.monotonic()
            deadline = began + args.minutes * 60
            while time.monotonic() < deadline:
                soak.step()
            elapsed = time.monotonic() - began
            proxy.rules.clear()
            injected = Counter(seen.fault for seen in proxy.faults())
            requests = len(proxy.seen)
            problems = verify(soak, BlockView(fsp), admin)
            fsp.close()
    print(f"seed {args.seed}, {elapsed / 60:.1f} min, {requests} requests through the proxy")
    print("operations: " + ", ".join(f"{k} {v}" for k, v in sorted(soak.ops.items())))
    print("faults injected: " + ", ".join(f"{k} {v}" for k, v in sorted(injected.items())))
    failed = ", ".join(f"{k} {v}" for k, v in sorted(soak.failed.items())) or "none"
    print(f"calls that failed for good: {failed}")
    print(f"verification: {'; '.join(problems) if problems else 'every byte and counter right'}")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
