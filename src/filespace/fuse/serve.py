"""Serving ``FilespaceOperations`` under libfuse (mfusepy), with ``READDIRPLUS`` answered
and reads made straight into libfuse's buffer.

mfusepy hands the kernel only each entry's type when it lists a directory, so
the kernel asks again for every name (``LOOKUP``) before ``ls -l`` can show it:
one round trip through the kernel per entry. When the kernel asks for a
listing with attributes (``READDIRPLUS``), ``_Fuse`` answers with the full
attributes the listing already read, and the kernel keeps them as it would
a ``LOOKUP``'s answer.
"""

from __future__ import annotations

import ctypes
import logging
import os
import stat
import threading
import time
from typing import Any

from filespace import Filespace
from filespace.fuse.operations import FilespaceOperations

log = logging.getLogger(__name__)

# The kernel reads ahead 128 KiB on a FUSE mount by default, so a sequential
# reader costs one FUSE call per 128 KiB; at 1 MiB the calls are 1 MiB each
# (a native 20 MiB file: 1015-1212 vs 672-868 MiB/s, docs/benchmarks-history.md).
# Raised once mounted, if allowed.
_KERNEL_READAHEAD_KB = 1024
_MOUNT_WAIT_S = 30.0
_READDIR_PLUS = 1  # libfuse's FUSE_READDIR_PLUS: the kernel wants attributes too
_FILL_DIR_PLUS = 2  # libfuse's FUSE_FILL_DIR_PLUS: these attributes are complete


def _fuse_class(mfusepy: Any) -> Any:
    """mfusepy's ``FUSE`` with ``readdir`` answering ``READDIRPLUS`` requests in full."""

    class _Fuse(mfusepy.FUSE):  # type: ignore[misc]
        def read(self, path: bytes | None, buf: Any, size: int, offset: int, fip: Any) -> int:
            # Into libfuse's buffer directly: mfusepy's read returns bytes that
            # it then copies in, two copies of every byte more than needed.
            target = ctypes.cast(buf, ctypes.POINTER(ctypes.c_char * size)).contents
            operations: FilespaceOperations = self.operations
            return operations.readinto(memoryview(target).cast("B"), offset, fip.contents.fh)

        def readdir_fuse_3(
            self, path: bytes | None, buf: Any, filler: Any, offset: int, fip: Any, flags: int
        ) -> int:
            if not flags & _READDIR_PLUS:
                return int(super().readdir_fuse_3(path, buf, filler, offset, fip, flags))
            decoded = None if path is None else path.decode(self.encoding, self.errors)
            operations: FilespaceOperations = self.operations
            for name, attributes, at in operations.readdir_plus(decoded, offset, fip.contents.fh):
                st = mfusepy.c_stat()
                if attributes is None:  # "." and "..": libfuse looks these up itself
                    st.st_mode, fill = stat.S_IFDIR, 0
                else:
                    mfusepy.set_st_attrs(st, attributes, use_ns=True)
                    fill = _FILL_DIR_PLUS
                encoded = name.encode(self.encoding, self.errors)
                if filler(buf, encoded, st, at, fill) != 0:
                    break  # the kernel's buffer is full: it asks again from ``at``
            return 0

    return _Fuse


def mount(fsp: Filespace, mountpoint: str) -> None:
    """Serve ``fsp`` at ``mountpoint`` until it is unmounted (or SIGINT/SIGTERM).

    Raises ``RuntimeError`` when libfuse is missing or the mount fails.
    """
    try:
        import mfusepy
    except (ImportError, OSError) as exc:
        # mfusepy raises EnvironmentError when libfuse itself is not installed.
        raise RuntimeError(
            f"FUSE is not available here ({exc}); install libfuse3 (fuse3) and mfusepy"
        ) from None
    operations = FilespaceOperations(fsp)
    threading.Thread(
        target=_widen_readahead, args=(mountpoint,), name="filespace-readahead", daemon=True
    ).start()
    try:
        _fuse_class(mfusepy)(
            operations,
            mountpoint,
            foreground=True,
            fsname=f"filespace:{fsp.name}",
            subtype="filespace",
            default_permissions=True,
        )
    except RuntimeError as exc:
        # libfuse reports a loop ended by SIGINT/SIGTERM as a failure too; once
        # mounted, that is how a foreground mount is meant to stop.
        if not operations.served:
            raise RuntimeError(f"the mount failed (libfuse status {exc})") from None


def _widen_readahead(mountpoint: str) -> None:
    """Once the mount is live, raise the kernel's readahead for it (root only; best effort)."""
    deadline = time.monotonic() + _MOUNT_WAIT_S
    while not os.path.ismount(mountpoint):
        if time.monotonic() > deadline:
            return
        time.sleep(0.02)
    device = os.stat(mountpoint).st_dev
    setting = f"/sys/class/bdi/{os.major(device)}:{os.minor(device)}/read_ahead_kb"
    try:
        with open(setting, "r+") as handle:
            if int(handle.read().strip() or 0) < _KERNEL_READAHEAD_KB:
                handle.seek(0)
                handle.write(str(_KERNEL_READAHEAD_KB))
    except (OSError, ValueError) as exc:
        log.debug("kernel readahead of %s left as it is: %s", mountpoint, exc)
