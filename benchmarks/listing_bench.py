"""``ls -l`` of a big linked directory through the FUSE mount vs a local directory.

Links ENTRIES objects (size and ETag given: no S3 request) into one directory
of a fresh SQLite filespace, mounts it with ``filespace mount --foreground``
and times ``ls -l`` of that directory (output to /dev/null) against ``ls -l``
of a local directory holding as many empty files, in turns. As root, the
kernel's dentry and inode caches are dropped before each run, so neither side
lists from memory (``--warm`` keeps them: the local side then lists from
memory, and the mount's entries and attributes are kept for its one-second
timeouts only). Prints the median times, their ratio (goal: at most 3x) and
how much the mount's resident memory grew over the runs (goal: at most 100 MB).

    .venv/bin/python benchmarks/listing_bench.py                   # 100,000 entries
    .venv/bin/python benchmarks/listing_bench.py --warm            # neither side's caches dropped
    .venv/bin/python benchmarks/listing_bench.py --entries 20000 --repeat 1
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import filespace
from filespace import LinkItem

ETAG = "0cc175b9c0f1b6a831c399e269772661"


def rss_mb(pid: int) -> float:
    """Resident memory of a process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def timed_ls(directory: Path, *, drop: bool) -> float:
    """Seconds ``ls -l`` takes to list ``directory``, the kernel's caches dropped first."""
    if drop and os.geteuid() == 0:
        Path("/proc/sys/vm/drop_caches").write_text("2\n")
    started = time.perf_counter()
    subprocess.run(["ls", "-l", str(directory)], stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--warm", action="store_true", help="keep the kernel's caches: each side lists from memory"
    )
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="listing-bench-"))
    env = {**os.environ, "FILESPACE_CONFIG_DIR": str(scratch / "config")}
    os.environ["FILESPACE_CONFIG_DIR"] = env["FILESPACE_CONFIG_DIR"]
    try:
        location = str(scratch / "space")
        key = filespace.generate_key()
        fsp = filespace.create(location, name="bench", key=key)
        fsp.connect.enable()
        fsp.connect.add_data_store(
            "store",
            filespace.S3DataStoreConfig("AKBENCH", "secret", "bench", "us-east-1"),
        )
        names = [f"object-{number:08d}.bin" for number in range(args.entries)]
        report = fsp.connect.link_files(
            (LinkItem(f"/big/{name}", f"data/{name}", 1000, ETAG) for name in names),
            data_store_name="store",
            create_parents=True,
        )
        assert report.linked == args.entries, report
        fsp.close()
        local = scratch / "local"
        local.mkdir()
        for name in names:
            (local / name).touch()
        env["FILESPACE_KEY"] = key
        mountpoint = scratch / "mnt"
        mountpoint.mkdir()
        process = subprocess.Popen(
            [sys.executable, "-m", "filespace", "mount", location, str(mountpoint), "--foreground"],
            env=env,
        )
        try:
            deadline = time.monotonic() + 60
            while not os.path.ismount(mountpoint):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the mount did not come up")
                time.sleep(0.05)
            before = rss_mb(process.pid)
            times: dict[str, list[float]] = {"mount": [], "local": []}
            for run in range(args.repeat):
                order = ["mount", "local"] if run % 2 == 0 else ["local", "mount"]
                for name in order:
                    where = mountpoint / "big" if name == "mount" else local
                    times[name].append(timed_ls(where, drop=not args.warm))
            grown = rss_mb(process.pid) - before
        finally:
            subprocess.run(["fusermount3", "-u", str(mountpoint)], check=False)
            process.wait(timeout=60)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    mount, local_s = statistics.median(times["mount"]), statistics.median(times["local"])
    caches = "kept (warm)" if args.warm else "dropped before each run (cold)"
    print(f"ls -l of {args.entries:,} entries, median of {args.repeat}, kernel caches {caches}")
    print(
        f"  mount {mount:.2f} s   local {local_s:.2f} s   ratio {mount / local_s:.1f}x (goal <= 3x)"
    )
    print(f"  mount RSS growth {grown:.0f} MB (goal <= 100 MB)")
    print(
        "  runs: "
        + "; ".join(f"{name} {', '.join(f'{t:.2f}' for t in ts)}" for name, ts in times.items())
    )


if __name__ == "__main__":
    main()
