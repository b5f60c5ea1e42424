"""Bad input through every public entry point of ``fsp.fs`` and ``fsp.connect``, on both engines.

Issue 11, item 4. Hypothesis draws calls of every public method with at most
one argument spoiled (``tests/bad_values.py``: names, paths, object keys, URLs,
cursors, sizes, credentials, checksums, store configs). Each call must succeed
or raise a documented error (``ValueError``, ``TypeError``, the ``OSError``
family, ``RuntimeError`` or a ``FilespaceError``; never a raw codec, overflow
or database-driver error), and a failed call, like any dry run, must leave the
engine as it was: a full dump of every table (``tests/dumps.py``) is compared
before and after. Examples are derandomized, so a failure replays as it is.

No S3 is needed but for the last test: store ``s`` points at a port nothing
listens on and links are given size and checksum, so nothing asks a bucket.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import filespace
from filespace import Filespace
from filespace.testing import SeaweedS3
from tests.bad_values import (
    BUFFERING,
    CHECKSUM,
    CONFIG,
    CREDENTIAL,
    CREDENTIALS,
    CURSOR,
    DATA,
    DRY_FLAG,
    ENCODING,
    ERRORS,
    FLAG,
    HTTP_SIZE,
    KEY,
    LIMIT,
    MODE,
    NEW_STORE,
    NEWLINE,
    NOT_TEXT,
    PATH,
    PREFIX,
    SIZE,
    STORE,
    TARGET,
    TEXT,
    URL,
    Arg,
    check_documented,
    fuzz,
    spoil_one,
)
from tests.dumps import Dump, changes, dumped_space
from tests.fsfixtures import store_config


@dataclasses.dataclass
class Call:
    """One call of a public method, with the arguments Hypothesis drew."""

    where: str  # "fs" or "connect"
    method: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]

    def run(self, fsp: Filespace) -> None:
        result = getattr(getattr(fsp, self.where), self.method)(*self.args, **self.kwargs)
        if hasattr(result, "read") and hasattr(result, "close"):
            result.close()  # a stream: closing commits what a write mode changed
        elif isinstance(result, Iterator):
            list(result)


def call(where: str, method: str, *args: Arg, **kwargs: Arg) -> st.SearchStrategy[Call]:
    """Calls of ``method``: every argument good, or one of them bad."""
    named = {f"#{index}": arg for index, arg in enumerate(args)} | kwargs
    return spoil_one(named).map(
        lambda values: Call(
            where,
            method,
            tuple(values[f"#{index}"] for index in range(len(args))),
            {name: values[name] for name in kwargs},
        )
    )


def attempt(fsp: Filespace, dump: Callable[[], Dump], one: Call) -> None:
    """Run one call: it succeeds, or raises a documented error having changed nothing."""
    before = dump()
    failed: Exception | None = None
    try:
        one.run(fsp)
    except Exception as exc:  # noqa: BLE001 - check_documented judges every kind
        check_documented(exc, one)
        failed = exc
    if failed is not None or one.kwargs.get("dry_run") is True:
        after = dump()
        assert after == before, f"{one} ({failed!r}) changed:\n{changes(before, after)}"


@pytest.fixture
def space(engine_name: str, tmp_path: Path) -> Iterator[tuple[Filespace, Callable[[], Dump]]]:
    """A filespace holding a directory, a native file, an S3 and an HTTP link, a symlink."""
    with dumped_space(engine_name, tmp_path) as (fsp, dump):
        fsp.fs.create_dir("/d")
        fsp.fs.write_file("/d/f", b"native")
        fsp.connect.link_file("/e", "s", "key", 5, "etag")
        fsp.connect.link_http_file("/h", "https://93.184.216.34/h", size=3)
        fsp.fs.create_symlink("/d", "/sl")
        yield fsp, dump


FS_CALLS = st.one_of(
    call("fs", "create_dir", PATH, parents=FLAG, dry_run=FLAG),
    call("fs", "read_dir", PATH),
    call("fs", "list_dir", PATH),
    call("fs", "get_entry", PATH, follow_symlinks=FLAG),
    call("fs", "exists", PATH),
    call("fs", "file_exists", PATH),
    call("fs", "dir_exists", PATH),
    call("fs", "walk", PATH),
    call("fs", "open", PATH, MODE),
    call(
        "fs",
        "open",
        PATH,
        MODE,
        buffering=BUFFERING,
        encoding=ENCODING,
        errors=ERRORS,
        newline=NEWLINE,
    ),
    call("fs", "read_file", PATH),
    call("fs", "write_file", PATH, DATA),
    call("fs", "delete", PATH),
    call("fs", "delete_dir", PATH, recursive=FLAG, dry_run=DRY_FLAG),
    call("fs", "move", PATH, PATH, replace=FLAG, dry_run=FLAG),
    call("fs", "truncate", PATH, SIZE),
    call("fs", "create_symlink", TARGET, PATH),
    call("fs", "read_symlink", PATH),
    call("fs", "check_writable", PATH),
    call("fs", "get_statistics"),
    call("fs", "get_size"),
)

CONNECT_CALLS = st.one_of(
    call("connect", "link_file", PATH, STORE, KEY, SIZE, CHECKSUM, create_parents=FLAG),
    call("connect", "link_http_file", PATH, URL, size=HTTP_SIZE),
    call("connect", "update_http_file_url", PATH, URL, size=HTTP_SIZE),
    call("connect", "unlink_file", PATH),
    call("connect", "unlink_tree", PATH, data_store_name=STORE, dry_run=DRY_FLAG),
    call("connect", "get_external_file", PATH),
    call("connect", "list_external_files", STORE, LIMIT, CURSOR),
    call("connect", "count_external_files", STORE),
    call("connect", "get_data_store", STORE),
    call("connect", "data_store", STORE),
    call("connect", "list_data_stores"),
    call("connect", "are_data_stores_available"),
    call("connect", "enable"),
    call("connect", "add_data_store", NEW_STORE, CONFIG),
    call("connect", "remove_data_store", NEW_STORE),
    call(
        "connect", "rekey_data_store", STORE, new_access_key=CREDENTIAL, new_secret_key=CREDENTIAL
    ),
    call("connect", "rekey_data_store", STORE, CREDENTIALS),
)


@fuzz(300)
@given(one=FS_CALLS)
def test_filesystem_entry_points(space: tuple[Filespace, Callable[[], Dump]], one: Call) -> None:
    attempt(*space, one)


@fuzz(300)
@given(one=CONNECT_CALLS)
def test_connect_entry_points(space: tuple[Filespace, Callable[[], Dump]], one: Call) -> None:
    attempt(*space, one)


ITEM = spoil_one({"path": PATH, "key": KEY, "size": SIZE, "checksum": CHECKSUM})
LINK_ITEMS = st.lists(
    st.one_of(
        ITEM.map(lambda item: tuple(item.values())),
        ITEM.map(lambda item: filespace.LinkItem(*item.values())),
        NOT_TEXT,
        st.tuples(PATH.good),
        st.tuples(*[PATH.good] * 5),
    ),
    max_size=6,
)


@fuzz(100)
@given(
    items=st.one_of(LINK_ITEMS, LINK_ITEMS, NOT_TEXT, TEXT),
    options=spoil_one({"store": STORE, "parents": FLAG}),
)
def test_link_files_items(
    space: tuple[Filespace, Callable[[], Dump]], items: Any, options: dict[str, Any]
) -> None:
    """A bad item is a ``LinkFailure`` and the others are linked; a bad argument raises."""
    fsp, dump = space
    before = dump()
    try:
        report = fsp.connect.link_files(
            items, data_store_name=options["store"], create_parents=options["parents"]
        )
    except Exception as exc:  # noqa: BLE001 - check_documented judges every kind
        check_documented(exc, (items, options))
        failed = exc
    else:
        if report.linked or options["parents"]:
            return
        failed = None
    after = dump()
    assert after == before, (
        f"{items} ({failed!r}) linked nothing but changed:\n{changes(before, after)}"
    )


# -- against a real bucket: lookups, mirror, verification ------------------------------------


@pytest.fixture
def s3_space(
    engine_name: str, tmp_path: Path, s3_server: SeaweedS3, s3_admin: Any, bucket: str
) -> Iterator[tuple[Filespace, Callable[[], Dump]]]:
    """A filespace whose store ``s`` is a real bucket holding a few objects."""
    for key in ("a/1", "a/2", "a/2/x", "b/c/3", "k", "d/f", "é"):
        s3_admin.put_object(Bucket=bucket, Key=key, Body=b"data")
    with dumped_space(engine_name, tmp_path, store_config(s3_server, bucket)) as (fsp, dump):
        fsp.fs.create_dir("/d")
        fsp.fs.write_file("/d/f", b"native")
        yield fsp, dump


OPTIONAL_SIZE = Arg(st.none(), SIZE.bad.filter(lambda size: size is not None))
S3_CALLS = st.one_of(
    call("connect", "link_file", PATH, STORE, KEY, OPTIONAL_SIZE, create_parents=FLAG),
    call("connect", "head_object", STORE, KEY),
    call(
        "connect",
        "mirror",
        STORE,
        PREFIX,
        PATH,
        strip_prefix=FLAG,
        delete=FLAG,
        dry_run=FLAG,
    ),
    call("connect", "verify_data_store", Arg(STORE.good, st.one_of(STORE.bad, CONFIG.bad))),
    call("connect", "link_files", Arg(st.just([("/n2", "k")]), TEXT), data_store_name=STORE),
)


@fuzz(100)
@given(one=S3_CALLS)
def test_entry_points_that_ask_the_bucket(
    s3_space: tuple[Filespace, Callable[[], Dump]], one: Call
) -> None:
    attempt(*s3_space, one)
