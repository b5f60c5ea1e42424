"""The demo behind ``scripts/demo``: everything a user does, against a real local S3.

1. start SeaweedFS on loopback and fill a bucket with a few hundred objects of
   different kinds and sizes (CSV, JSON, text, binary, nested folders);
2. create a filespace in ./demo.filespace (embedded SQLite) and enable Connect;
3. add the bucket as a data store with ``filespace store add`` (secret on stdin);
4. link the whole prefix into /datasets/sample with ``filespace mirror``;
5. list it with ``filespace ls -l`` and read it back with ``filespace cat``;
6. read every linked file through the Python API and check each byte against S3;
7. mirror again (``--json``): nothing changes.

Every command's output is shown as it is. On a terminal the S3 server then
keeps running, with the commands to try next, until Ctrl-C; off a terminal (or
with ``--no-wait``) the demo ends at once. Either way it then removes all it
made: the S3 server's data, the filespace, its key in
``~/.config/filespace/keys/`` and its block cache, so a linked file can never
outlive the server it points at.

    scripts/demo [--no-wait] [--location DIR]
"""

from __future__ import annotations

import argparse
import contextlib
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
BUCKET = "demo-dataset"
PREFIX = "dataset/"
DEST = "/datasets/sample"
STARTED_ENV = "FILESPACE_DEMO_STARTED"  # scripts/demo sets it: time to first read counts setup


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


def cli(*args: str, stdin: str | None = None, env: dict[str, str], show: bool = True) -> str:
    """Run the ``filespace`` console script, show the command and all it printed."""
    print(f"\n$ filespace {' '.join(args)}", flush=True)
    result = subprocess.run(
        [str(Path(sys.executable).parent / "filespace"), *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if show:
        sys.stdout.write(result.stdout)
    sys.stdout.write(result.stderr)
    sys.stdout.flush()
    if result.returncode != 0:
        raise SystemExit(f"demo: `filespace {args[0]}` failed with exit code {result.returncode}")
    return result.stdout


def _missing(directory: Path) -> list[Path]:
    """``directory`` and those of its parents that do not exist yet, deepest first."""
    missing = []
    while not directory.exists() and directory != directory.parent:
        missing.append(directory)
        directory = directory.parent
    return missing


class Leftovers:
    """What the demo made outside the repository, removed when it ends."""

    def __init__(self, location: Path) -> None:
        self.location = location
        self.work = Path(tempfile.mkdtemp(prefix="filespace-demo-"))
        self.keys = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
        self.keys = self.keys / "filespace" / "keys"
        self.cache = filespace.cache_root()
        # Directories that did not exist yet go again if the demo leaves them empty.
        self.new_dirs = _missing(self.cache) + _missing(self.keys)
        self.filespace_id: str | None = None

    def remove(self) -> list[str]:
        """Remove everything; what was removed, for the closing lines."""
        removed = [f"the S3 server's data ({self.work})"]
        shutil.rmtree(self.work, ignore_errors=True)
        if self.filespace_id is not None:
            key = self.keys / f"{self.filespace_id}.key"
            cache = self.cache / self.filespace_id
            key.unlink(missing_ok=True)
            shutil.rmtree(cache, ignore_errors=True)
            removed += [f"its key ({key})", f"its block cache ({cache})"]
        shutil.rmtree(self.location, ignore_errors=True)
        removed.insert(1, f"the filespace ({self.location})")
        if self.cache in self.new_dirs:
            # A cache root the demo made holds nothing else (its daily prune stamp, say).
            shutil.rmtree(self.cache, ignore_errors=True)
        for directory in self.new_dirs:
            with contextlib.suppress(OSError):
                directory.rmdir()  # only if empty
        return removed


def main() -> int:
    parser = argparse.ArgumentParser(prog="scripts/demo", description=__doc__.split("\n")[0])
    parser.add_argument("--location", type=Path, default=ROOT / "demo.filespace")
    parser.add_argument("--no-wait", action="store_true", help="end at once, even on a terminal")
    args = parser.parse_args()
    started = float(os.environ.get(STARTED_ENV) or time.time())
    location: Path = args.location.absolute()
    if location.exists():
        shutil.rmtree(location)
    made = Leftovers(location)
    server = SeaweedS3(made.work / "s3")
    try:
        print("demo: starting a local S3 server (SeaweedFS) ...", flush=True)
        server.start()
        run(server, made, started, wait=sys.stdin.isatty() and not args.no_wait)
    finally:
        server.stop(grace=1)
        removed = made.remove()
        print("\ndemo: the S3 server has stopped, so links to it could no longer be read;")
        print("demo: removed " + ", ".join(removed))
    return 0


def run(server: SeaweedS3, made: Leftovers, started: float, *, wait: bool) -> None:
    """The demo itself, against a running server."""
    rng = random.Random(20261125)
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
    print(f"demo: uploaded {len(objects)} objects ({total / 1e6:.1f} MB) to s3://{BUCKET}/{PREFIX}")

    location = str(made.location)
    env = dict(os.environ, FILESPACE=location)
    env.pop("FILESPACE_S3_SECRET_KEY", None)
    cli("init", location, "--name", "demo", env=env)
    with filespace.open(location) as fsp:
        made.filespace_id = fsp.id
    cli("connect", "enable", env=env)
    cli(
        "store", "add", "demo", "--bucket", BUCKET, "--region", server.region,
        "--endpoint", server.endpoint, "--access-key", server.admin.access_key,
        "--secret-key-stdin", stdin=server.admin.secret_key + "\n", env=env,
    )  # fmt: skip
    cli("mirror", "--store", "demo", "--prefix", PREFIX, DEST, env=env)
    cli("ls", "-l", f"{DEST}/tables", env=env)
    cli("cat", f"{DEST}/README.txt", env=env)
    first_read = time.time() - started
    print(f"\ndemo: first read of a linked file {first_read:.1f} s after the demo started")
    cli("store", "list", env=env)
    checked, checked_bytes = verify(made.location, objects, s3)
    again = cli("mirror", "--store", "demo", "--prefix", PREFIX, DEST, "--json", env=env)
    report = json.loads(again)
    assert report["unchanged"] == len(objects), report
    print(
        f"\ndemo: OK: {checked} linked files, {checked_bytes / 1e6:.1f} MB read back through "
        f"the filespace and identical to S3; 0 bytes copied; a second mirror changed nothing. "
        f"({time.time() - started:.0f} s; first read after {first_read:.1f} s)"
    )
    if wait:
        try_next(location)


def try_next(location: str) -> None:
    """Keep the server up until Ctrl-C, with commands to paste into another terminal."""
    venv = Path(sys.executable).parent
    print(
        f"""
demo: the S3 server keeps running until you press Ctrl-C here. In another terminal:

    source {venv}/activate
    export FILESPACE={location}
    filespace ls -l {DEST}
    filespace tree {DEST}/records
    filespace cat {DEST}/tables/day-00.csv | head
    filespace info
    python -c 'import pandas as pd; print(pd.read_csv("filespace://{DEST}/tables/day-01.csv").describe())'

demo: Ctrl-C stops the server and removes the filespace, its key, its cache and the S3 data.""",
        flush=True,
    )
    with contextlib.suppress(KeyboardInterrupt):
        while True:
            time.sleep(3600)


def verify(location: Path, objects: dict[str, bytes], s3: Any) -> tuple[int, int]:
    """Read every linked file through the API and compare it with a plain S3 GET."""
    checked = checked_bytes = 0
    with filespace.open(location) as fsp:
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
