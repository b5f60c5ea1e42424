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

from filespace.caches import CacheInfo, PrunedCache, cache_info, prune_caches
from filespace.connect.follower import Follower, FollowStats
from filespace.connect.manager import FIRST_CONNECT_FORMAT, ConnectManager
from filespace.connect.models import (
    DEFAULT_URL_EXPIRATION_MINUTES,
    ConnectSettings,
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
    SyncReport,
)
from filespace.connect.validation import MAX_DATA_STORES
from filespace.connect.validation import checksum as validate_checksum
from filespace.connect.validation import data_store_config as validate_data_store_config
from filespace.connect.validation import http_url as validate_http_url
from filespace.connect.validation import object_key as validate_object_key
from filespace.connect.validation import store_name as validate_store_name
from filespace.errors import (
    ConnectInUseError,
    ConnectUnavailableError,
    DataStoreAccessError,
    DataStoreError,
    DataStoreExistsError,
    DataStoreLimitError,
    DataStoreNotEmptyError,
    DataStoreNotFoundError,
    EngineError,
    ExternalReadError,
    FeedError,
    FilespaceError,
    FilespaceKeyError,
    IntegrityError,
    KeyNotFoundError,
    LinkExistsError,
    LinkNotFoundError,
    MissingParentError,
    NotAFilespaceError,
    NotALinkError,
    ObjectNotFoundError,
    PrivateUrlError,
    ReadOnlyFileError,
    StaleFileError,
    UnsupportedFormatError,
    WrongKeyError,
)
from filespace.fs import Filesystem
from filespace.io.ahead import Prefetch
from filespace.io.cache import cache_root
from filespace.keys import generate_key
from filespace.locations import check_new_location
from filespace.models import DirEntry, FilespaceSize, FilespaceStatistics
from filespace.paths import MAX_FILE_SIZE
from filespace.paths import normalize as normalize_path
from filespace.redaction import public_location
from filespace.shared import close_shared, open_shared
from filespace.space import (
    CURRENT_FORMAT,
    OLDEST_FORMAT,
    Filespace,
    create,
    open,
    upgrade,
)

__version__ = "0.1.0"

__all__ = [
    "CURRENT_FORMAT",
    "DEFAULT_URL_EXPIRATION_MINUTES",
    "FIRST_CONNECT_FORMAT",
    "MAX_DATA_STORES",
    "MAX_FILE_SIZE",
    "OLDEST_FORMAT",
    "CacheInfo",
    "ConnectInUseError",
    "ConnectManager",
    "ConnectSettings",
    "ConnectUnavailableError",
    "DataStoreAccessError",
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
    "FeedError",
    "Filespace",
    "FilespaceError",
    "FilespaceKeyError",
    "FilespaceSize",
    "FilespaceStatistics",
    "Filesystem",
    "FollowStats",
    "Follower",
    "IntegrityError",
    "KeyNotFoundError",
    "LinkExistsError",
    "LinkFailure",
    "LinkItem",
    "LinkNotFoundError",
    "LinkReport",
    "LinkedFilesResult",
    "MirrorReport",
    "MissingParentError",
    "NotAFilespaceError",
    "NotALinkError",
    "ObjectNotFoundError",
    "Prefetch",
    "PrivateUrlError",
    "PrunedCache",
    "ReadOnlyFileError",
    "S3Credentials",
    "S3DataStoreConfig",
    "SkippedKey",
    "StaleFileError",
    "SyncReport",
    "UnsupportedFormatError",
    "WrongKeyError",
    "__version__",
    "cache_info",
    "cache_root",
    "check_new_location",
    "close_shared",
    "create",
    "generate_key",
    "normalize_path",
    "open",
    "open_shared",
    "prune_caches",
    "public_location",
    "upgrade",
    "validate_checksum",
    "validate_data_store_config",
    "validate_http_url",
    "validate_object_key",
    "validate_store_name",
]
