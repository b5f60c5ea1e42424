"""The demo behind ``scripts/demo``: everything a user does, against a real local S3.

1. start SeaweedFS on loopback and fill a bucket with a few hundred objects of
   different kinds and sizes (CSV, JSON, text, binary, nested folders);
2. create a filespace in ./demo.filespace (embedded SQLite) and enable Connect;
3. add the bucket as a data store with ``filespace store add`` (secret on stdin);
4. link the whole prefix into /datasets/sample with ``filespace mirror``;
5. list it with ``filespace ls -l`` and read it back with ``filespace cat``;
6. read every linked file through the Python API and check each byte against S3;
7. print a summary and stop the server.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import filespace
from filespace.testing import SeaweedS3

ROOT = Path(__file__).resolve().parent.parent
LOCATION = ROOT / "demo.filespace"
BUCKET = "demo-dataset"
PREFIX = "dataset/"
DEST = "/datasets/sample"


def make_objects(rng: random.Random) -> dict[str, bytes]:
    """A few hundred objects: tables, records, logs, blobs, in nested folders."""
    objects: dict[str, bytes] = {}
    for day in range(30):
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["ts", "sensor", "value"])
        for row in range(rng.randint(50, 2000)):
            writer.writerow(
                [f"2026-11-{day + 1:02d}T{row % 24:02d}:00", rng.randint(1, 40), rng.random()]
            )
        objects[f"{PREFIX}tables/day-{day:02d}.csv"] = buffer.getvalue().encode()
    for index in range(120):
        record = {"id": index, "label": rng.choice(["cat", "dog", "bird"]), "score": rng.random()}
        objects[f"{PREFIX}records/{index // 40}/rec-{index:04d}.json"] = json.dumps(record).encode()
    for index in range(60):
        lines = [f"line {n}: {rng.getrandbits(64):x}" for n in range(rng.randint(1, 300))]
        objects[f"{PREFIX}logs/app-{index:03d}.log"] = "\n".join(lines).encode()
    for index in range(40):
        size = rng.choice([0, 1, 4096, 65_536, 1_000_000, 3_000_000])
        objects[f"{PREFIX}blobs/blob-{index:02d}.bin"] = rng.randbytes(size)
    objects[f"{PREFIX}media/clip.bin"] = rng.randbytes(12 * 1024 * 1024)
    objects[f"{PREFIX}README.txt"] = b"A sample dataset linked into a filespace without a copy.\n"
    return objects


def cli(*args: str, stdin: str | None = None, env: dict[str, str]) -> str:
    """Run the ``filespace`` console script, echo the command, return its stdout."""
    shown = " ".join(args)
    print(f"\n$ filespace {shown}")
    result = subprocess.run(
        [str(Path(sys.executable).parent / "filespace"), *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if result.returncode != 0:
        sys.stderr.write(result.stderr)
        raise SystemExit(f"demo: `filespace {shown}` failed with exit code {result.returncode}")
    return result.stdout


def main() -> int:
    rng = random.Random(20261125)
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="filespace-demo-"))
    server = SeaweedS3(work / "s3")
    print("demo: starting a local S3 server (SeaweedFS) ...")
    server.start()
    try:
        s3 = server.client()
        server.create_bucket(BUCKET)
        objects = make_objects(rng)
        with ThreadPoolExecutor(16) as pool:
            list(
                pool.map(
                    lambda item: s3.put_object(Bucket=BUCKET, Key=item[0], Body=item[1]),
                    objects.items(),
                )
            )
        total = sum(len(body) for body in objects.values())
        print(
            f"demo: uploaded {len(objects)} objects ({total / 1e6:.1f} MB) to s3://{BUCKET}/{PREFIX}"
        )

        if LOCATION.exists():
            shutil.rmtree(LOCATION)
        env = dict(os.environ, FILESPACE=str(LOCATION))
        env.pop("FILESPACE_S3_SECRET_KEY", None)
        cli("init", str(LOCATION), "--name", "demo", env=env)
        cli("connect", "enable", env=env)
        print(
            cli(
                "store",
                "add",
                "demo",
                "--bucket",
                BUCKET,
                "--region",
                server.region,
                "--endpoint",
                server.endpoint,
                "--access-key",
                server.admin.access_key,
                "--secret-key-stdin",
                stdin=server.admin.secret_key + "\n",
                env=env,
            ),
            end="",
        )
        print(cli("mirror", "--store", "demo", "--prefix", PREFIX, DEST, env=env), end="")
        listing = cli("ls", "-l", f"{DEST}/tables", env=env)
        print("\n".join(listing.splitlines()[:6]) + "\n  ...")
        print(cli("cat", f"{DEST}/README.txt", env=env), end="")
        print(cli("store", "list", env=env), end="")
        checked, checked_bytes = verify(objects, s3)
        again = cli("mirror", "--store", "demo", "--prefix", PREFIX, DEST, "--json", env=env)
        report = json.loads(again)
        assert report["unchanged"] == len(objects), report
    finally:
        server.stop(grace=1)
    elapsed = time.monotonic() - started
    print(
        f"\ndemo: OK: {checked} linked files, {checked_bytes / 1e6:.1f} MB read back through "
        f"the filespace and identical to S3; 0 bytes copied; a second mirror changed nothing. "
        f"({elapsed:.0f} s; the filespace is in {LOCATION})"
    )
    return 0


def verify(objects: dict[str, bytes], s3: Any) -> tuple[int, int]:
    """Read every linked file through the API and compare it with a plain S3 GET."""
    checked = checked_bytes = 0
    with filespace.open(LOCATION) as fsp:
        assert fsp.connect.count_external_files("demo") == len(objects)
        stats = fsp.fs.get_statistics()
        assert stats.external_files_count == len(objects)
        assert stats.data_size == 0  # nothing was copied
        for key, body in objects.items():
            path = f"{DEST}/{key[len(PREFIX) :]}"
            data = fsp.fs.read_file(path)
            direct = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
            if hashlib.sha256(data).digest() != hashlib.sha256(direct).digest() or data != body:
                raise SystemExit(f"demo: {path} differs from s3://{BUCKET}/{key}")
            checked += 1
            checked_bytes += len(data)
        with fsp.fs.open(f"{DEST}/media/clip.bin", "rb") as handle:
            handle.seek(5_000_000)
            assert handle.read(1000) == objects[f"{PREFIX}media/clip.bin"][5_000_000:5_001_000]
    print(f"\ndemo: read back {checked} files ({checked_bytes / 1e6:.1f} MB); all match S3")
    return checked, checked_bytes


if __name__ == "__main__":
    raise SystemExit(main())
