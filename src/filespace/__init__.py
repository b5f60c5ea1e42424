"""filespace: a shared file tree with metadata in a database and data in object storage.

Connect links objects that already sit in S3-compatible buckets into the tree
as read-only files, one file per object, without copying a byte::

    import filespace

    with filespace.open("./demo.filespace") as fsp:
        fsp.connect.link_file("/data/a.csv", "my-store", "path/to/a.csv")
        print(fsp.fs.read_file("/data/a.csv")[:100])

Heavy dependencies (boto3/botocore, urllib3, cryptography) load on first use.
"""

from __future__ import annotations

from filespace.connect.manager import FIRST_CONNECT_FORMAT, ConnectManager
from filespace.connect.models import (
    DataStoreInfo,
    DataStoreKind,
    DataStoreRekeyState,
    ExternalFileInfo,
    LinkedFilesResult,
    LinkFailure,
    LinkItem,
    LinkReport,
    MirrorReport,
    S3Credentials,
    S3DataStoreConfig,
    SkippedKey,
)
from filespace.errors import (
    ConnectUnavailableError,
    DataStoreError,
    DataStoreExistsError,
    DataStoreLimitError,
    DataStoreNotEmptyError,
    DataStoreNotFoundError,
    EngineError,
    ExternalReadError,
    FilespaceError,
    FilespaceKeyError,
    KeyNotFoundError,
    LinkExistsError,
    MissingParentError,
    NotAFilespaceError,
    NotALinkError,
    ObjectNotFoundError,
    ReadOnlyFileError,
    StaleFileError,
    UnsupportedFormatError,
    WrongKeyError,
)
from filespace.fs import Filesystem
from filespace.io.cache import cache_root
from filespace.keys import generate_key
from filespace.models import DirEntry, FilespaceSize, FilespaceStatistics
from filespace.paths import normalize as normalize_path
from filespace.space import (
    CURRENT_FORMAT,
    OLDEST_FORMAT,
    Filespace,
    check_new_location,
    create,
    open,
    upgrade,
)

__version__ = "0.1.0"

__all__ = [
    "CURRENT_FORMAT",
    "FIRST_CONNECT_FORMAT",
    "OLDEST_FORMAT",
    "ConnectManager",
    "ConnectUnavailableError",
    "DataStoreError",
    "DataStoreExistsError",
    "DataStoreInfo",
    "DataStoreKind",
    "DataStoreLimitError",
    "DataStoreNotEmptyError",
    "DataStoreNotFoundError",
    "DataStoreRekeyState",
    "DirEntry",
    "EngineError",
    "ExternalFileInfo",
    "ExternalReadError",
    "Filespace",
    "FilespaceError",
    "FilespaceKeyError",
    "FilespaceSize",
    "FilespaceStatistics",
    "Filesystem",
    "KeyNotFoundError",
    "LinkExistsError",
    "LinkFailure",
    "LinkItem",
    "LinkReport",
    "LinkedFilesResult",
    "MirrorReport",
    "MissingParentError",
    "NotAFilespaceError",
    "NotALinkError",
    "ObjectNotFoundError",
    "ReadOnlyFileError",
    "S3Credentials",
    "S3DataStoreConfig",
    "SkippedKey",
    "StaleFileError",
    "UnsupportedFormatError",
    "WrongKeyError",
    "__version__",
    "cache_root",
    "check_new_location",
    "create",
    "generate_key",
    "normalize_path",
    "open",
    "upgrade",
]
