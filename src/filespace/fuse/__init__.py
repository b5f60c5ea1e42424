"""``filespace mount``: the file tree as a FUSE file system.

``operations`` holds the callbacks (what each file system call does to the
filespace); ``serve`` runs them under libfuse through mfusepy.
"""

from filespace.fuse.operations import FilespaceOperations
from filespace.fuse.serve import mount

__all__ = ["FilespaceOperations", "mount"]
