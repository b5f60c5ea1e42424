"""Input the library once let through raw: sizes past 5 TiB, lone surrogates, NUL, crafted cursors.

Each case is one that used to overflow an engine counter or escape as a raw
``UnicodeEncodeError``, ``OverflowError`` or ``psycopg.DataError``; now it is
one documented error and the engine is left exactly as it was (a full dump,
read behind the library's back, is compared before and after).
"""

from __future__ import annotations

import base64
import dataclasses
import errno
import http.server
import io
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import filespace
from filespace import Filespace
from tests.dumps import dumped_space, no_s3_config

MAX = filespace.MAX_FILE_SIZE
HUGE = [MAX + 1, 2**63 - 1, 2**63, 2**64]
SURROGATE = "\udc80"
SIX_TIB = 6 * 1024**4


_config = no_s3_config


@pytest.fixture
def space(engine_name: str, tmp_path: Path) -> Iterator[tuple[Filespace, Callable[[], object]]]:
    """A filespace with Connect on and a store ``s`` (no S3 behind it), and its dump."""
    with dumped_space(engine_name, tmp_path) as made:
        yield made


def _not_raw(exc: BaseException) -> None:
    """A documented error, not a codec's or the database driver's."""
    assert not isinstance(exc, UnicodeError | OverflowError), repr(exc)
    assert type(exc).__module__.split(".")[0] in ("builtins", "filespace"), repr(exc)


# -- sizes ---------------------------------------------------------------------------------


def test_max_file_size_is_five_tib() -> None:
    assert filespace.MAX_FILE_SIZE == 5 * 1024**4


@pytest.mark.parametrize("size", HUGE)
def test_link_sizes_over_5_tib_are_refused(
    space: tuple[Filespace, Callable[[], object]], size: int
) -> None:
    fsp, dump = space
    connect = fsp.connect
    fsp.fs.write_file("/native", b"x")
    connect.link_http_file("/h", "https://example.com/a", size=1)
    before = dump()
    with pytest.raises(ValueError, match="5 TiB") as caught:
        connect.link_file("/big", "s", "key", size, "etag")
    _not_raw(caught.value)
    with pytest.raises(ValueError, match="5 TiB"):
        connect.link_file("/big", "s", "key", size, "etag", create_parents=True)
    with pytest.raises(ValueError, match="5 TiB"):
        connect.link_http_file("/big", "https://example.com/big", size=size)
    with pytest.raises(ValueError, match="5 TiB"):
        connect.update_http_file_url("/h", "https://example.com/big", size=size)
    report = connect.link_files([("/big", "key", size, "etag")], data_store_name="s")
    assert report.linked == 0 and "5 TiB" in report.failed[0].reason
    assert dump() == before
    # Nothing overflowed: the counters are still exact ints and writes go on.
    stats = fsp.fs.get_statistics()
    assert (stats.entries_size, stats.external_files_size) == (2, 1)
    assert all(type(value) is int for value in dataclasses.astuple(stats))
    fsp.fs.write_file("/after", b"still writable")


def test_many_links_of_5_tib_keep_exact_counters(
    space: tuple[Filespace, Callable[[], object]],
) -> None:
    fsp, _ = space
    items = [(f"/f{i}", f"k{i}", MAX, "etag") for i in range(100)]
    assert fsp.connect.link_files(items, data_store_name="s").linked == 100
    fsp.connect.link_file("/one", "s", "k", MAX, "etag")
    stats = fsp.fs.get_statistics()
    assert stats.external_files_size == 101 * MAX
    assert type(stats.external_files_size) is int
    assert fsp.connect.list_external_files("s", limit=1).has_more
    fsp.fs.write_file("/after", b"still writable")
    assert fsp.fs.get_statistics().entries_size == 101 * MAX + 14


def test_native_writes_past_5_tib_are_efbig(
    space: tuple[Filespace, Callable[[], object]],
) -> None:
    fsp, dump = space
    fsp.fs.write_file("/f", b"abc")
    before = dump()
    with fsp.fs.open("/f", "r+b", buffering=0) as raw:
        raw.seek(MAX)
        with pytest.raises(OSError, match="5 TiB") as caught:
            raw.write(b"x")
        assert caught.value.errno == errno.EFBIG
        raw.seek(2**63)
        with pytest.raises(OSError, match="5 TiB") as caught:
            raw.write(b"x")
        assert caught.value.errno == errno.EFBIG
        for size in HUGE:
            with pytest.raises(OSError, match="5 TiB") as caught:
                raw.truncate(size)
            assert caught.value.errno == errno.EFBIG
    for size in HUGE:
        with pytest.raises(OSError, match="5 TiB") as caught:
            fsp.fs.truncate("/f", size)
        assert caught.value.errno == errno.EFBIG
    buffered = fsp.fs.open("/f", "r+b")
    buffered.seek(MAX - 1)
    buffered.write(b"two")  # buffered: refused when it reaches the file, at close
    with pytest.raises(OSError, match="5 TiB") as caught:
        buffered.close()
    assert caught.value.errno == errno.EFBIG
    assert dump() == before
    assert fsp.fs.read_file("/f") == b"abc"


def test_a_native_file_may_be_exactly_5_tib(
    space: tuple[Filespace, Callable[[], object]],
) -> None:
    fsp, _ = space
    with fsp.fs.open("/sparse", "wb", buffering=0) as raw:
        raw.seek(MAX - 1)
        assert raw.write(b"z") == 1
    assert fsp.fs.get_entry("/sparse").size == MAX
    with fsp.fs.open("/sparse", "rb") as handle:
        handle.seek(MAX - 2)
        assert handle.read() == b"\0z"
    fsp.fs.truncate("/sparse", 1)
    fsp.fs.truncate("/sparse", MAX)
    assert fsp.fs.get_statistics().data_size == MAX


# -- text that is not UTF-8, NUL, whitespace -------------------------------------------------


def test_lone_surrogates_are_value_errors(space: tuple[Filespace, Callable[[], object]]) -> None:
    fsp, dump = space
    connect = fsp.connect
    fsp.fs.create_dir("/d")
    connect.link_http_file("/h", "https://93.184.216.34/h", size=1)
    secret = "secret" + SURROGATE
    before = dump()
    utf8 = "is not valid UTF-8 text"
    attempts: list[tuple[Callable[[], object], str]] = [
        (lambda: connect.link_file("/a", "s", "key", 1, "etag" + SURROGATE), "checksum " + utf8),
        (lambda: connect.link_file("/a", "s", "key" + SURROGATE, 1, "etag"), "object_id " + utf8),
        (lambda: connect.add_data_store("t", _config(access_key="AK" + SURROGATE)), utf8),
        (lambda: connect.add_data_store("t", _config(secret_key=secret)), "secret_key " + utf8),
        (lambda: connect.add_data_store("t", _config(endpoint="http://h" + SURROGATE)), utf8),
        (
            lambda: connect.rekey_data_store(
                "s", new_access_key="AK" + SURROGATE, new_secret_key="s"
            ),
            "new access key " + utf8,
        ),
        (
            lambda: connect.rekey_data_store("s", new_access_key="AK", new_secret_key=secret),
            "new secret key " + utf8,
        ),
        (lambda: connect.verify_data_store(_config(secret_key=secret)), "secret_key " + utf8),
        (lambda: connect.mirror("s", "logs/" + SURROGATE, "/m"), utf8),
        (lambda: connect.add_data_store("t" + SURROGATE, _config()), "invalid data store name"),
        (lambda: fsp.fs.create_symlink("target" + SURROGATE, "/d/link"), "symlink target " + utf8),
        (lambda: fsp.fs.create_dir("/d/" + SURROGATE), "path " + utf8),
        (
            lambda: connect.link_http_file("/u", "https://93.184.216.34/" + SURROGATE, size=1),
            "a URL must be valid text",
        ),
        (
            lambda: connect.update_http_file_url("/h", "https://h" + SURROGATE + "/", size=1),
            "a URL must be valid text",
        ),
    ]
    for attempt, message in attempts:
        with pytest.raises(ValueError, match=message) as caught:
            attempt()
        _not_raw(caught.value)
        assert secret not in str(caught.value)
    report = connect.link_files([("/a", "key", 1, "e" + SURROGATE)], data_store_name="s")
    assert report.linked == 0 and "UTF-8" in report.failed[0].reason
    assert dump() == before


def test_nul_in_object_id_is_a_value_error(space: tuple[Filespace, Callable[[], object]]) -> None:
    fsp, dump = space
    before = dump()
    with pytest.raises(ValueError, match="NUL") as caught:
        fsp.connect.link_file("/a", "s", "key\x00", 1, "etag")
    _not_raw(caught.value)
    with pytest.raises(ValueError, match="NUL"):
        fsp.connect.head_object("s", "key\x00")
    report = fsp.connect.link_files([("/a", "key\x00", 1, "etag")], data_store_name="s")
    assert report.linked == 0 and "NUL" in report.failed[0].reason
    assert dump() == before


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://host\n:9000",
        "http://host:9000/\n",
        "http://ho\tst",
        "http://host :9000",
        "http://h\x7f",
    ],
)
def test_endpoints_with_whitespace_are_refused(
    space: tuple[Filespace, Callable[[], object]], endpoint: str
) -> None:
    fsp, dump = space
    before = dump()
    with pytest.raises(ValueError, match="endpoint"):
        fsp.connect.add_data_store("t", _config(endpoint=endpoint))
    with pytest.raises(ValueError, match="endpoint"):
        filespace.validate_data_store_config(_config(endpoint=endpoint))
    assert dump() == before


def _cursor(text: str) -> str:
    return "c1." + base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "body",
    [
        "1:" + "9" * 30,
        "1:9223372036854775808",
        "9" * 30 + ":1",
        "1:-1",
        "1: 5",
        "1:1_0",
        "1:+5",
        "1",
    ],
)
def test_crafted_cursors_are_value_errors(
    space: tuple[Filespace, Callable[[], object]], body: str
) -> None:
    fsp, _ = space
    fsp.connect.link_file("/a", "s", "key", 1, "etag")
    with pytest.raises(ValueError, match="cursor") as caught:
        fsp.connect.list_external_files("s", 10, _cursor(body))
    _not_raw(caught.value)


# -- sizes a server claims -------------------------------------------------------------------


class _HugeHandler(http.server.BaseHTTPRequestHandler):
    """A bucket with one 6 TiB object ``big`` and one small ``small`` (listing and HEAD),
    and an HTTP resource that says it is 6 TiB long."""

    LISTING = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        "<Name>bucket</Name><Prefix></Prefix><KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys>"
        "<IsTruncated>false</IsTruncated>"
        f'<Contents><Key>big</Key><ETag>"abc"</ETag><Size>{SIX_TIB}</Size></Contents>'
        '<Contents><Key>small</Key><ETag>"def"</ETag><Size>5</Size></Contents>'
        "</ListBucketResult>"
    ).encode()

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_HEAD(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(SIX_TIB))
        self.send_header("ETag", '"abc"')
        self.end_headers()

    def do_GET(self) -> None:
        if "list-type=2" in self.path:
            self.send_response(200)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(self.LISTING)))
            self.end_headers()
            self.wfile.write(self.LISTING)
            return
        self.send_response(206)
        self.send_header("Content-Range", f"bytes 0-0/{SIX_TIB}")
        self.send_header("Content-Length", "1")
        self.send_header("ETag", '"abc"')
        self.end_headers()
        self.wfile.write(b"x")


@pytest.fixture
def huge_server() -> Iterator[str]:
    """The endpoint of a loopback server whose objects claim more than 5 TiB."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _HugeHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_objects_a_server_says_are_over_5_tib_are_not_linked(
    space: tuple[Filespace, Callable[[], object]], huge_server: str
) -> None:
    fsp, dump = space
    connect = fsp.connect
    connect.add_data_store("huge", _config(endpoint=huge_server))
    if hasattr(connect, "configure"):  # the URL policy: the server is on loopback
        connect.configure(allow_private_urls=True)
    before = dump()
    with pytest.raises(ValueError, match="5 TiB"):
        connect.head_object("huge", "big")
    with pytest.raises(ValueError, match="5 TiB"):
        connect.link_file("/big", "huge", "big")
    with pytest.raises(ValueError, match="5 TiB"):
        connect.link_file("/big", "huge", "big", create_parents=True)
    with pytest.raises(ValueError, match="5 TiB"):
        connect.link_http_file("/big", f"{huge_server}/big")
    report = connect.link_files([("/big", "big")], data_store_name="huge")
    assert report.linked == 0 and "5 TiB" in report.failed[0].reason
    assert dump() == before
    mirrored = connect.mirror("huge", "", "/m")
    assert mirrored.added == 1
    assert [(s.object_id, s.reason) for s in mirrored.skipped] == [("big", "larger than 5 TiB")]
    assert fsp.fs.list_dir("/m") == ["small"]


def test_stream_io_still_reports_positions_past_the_limit(
    space: tuple[Filespace, Callable[[], object]],
) -> None:
    """Seeking past 5 TiB is allowed (as POSIX allows it); only writing there fails."""
    fsp, _ = space
    fsp.fs.write_file("/f", b"abc")
    with fsp.fs.open("/f", "rb", buffering=0) as raw:
        assert raw.seek(2**64) == 2**64
        assert raw.read(10) == b""
        assert raw.seek(0, io.SEEK_END) == 3


# -- open's other arguments ------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        {"mode": "w+b", "encoding": "utf-8"},
        {"mode": "wb", "newline": ""},
        {"mode": "w", "buffering": 0},
        {"mode": "w", "buffering": "1"},
        {"mode": "w", "encoding": "bogus"},
        {"mode": "w", "encoding": "rot13"},
        {"mode": "w", "encoding": "utf-8\x00"},
        {"mode": "w", "errors": SURROGATE},
        {"mode": "w", "errors": 5},
        {"mode": "w", "newline": "x"},
    ],
)
def test_open_checks_its_arguments_before_creating_or_truncating(
    space: tuple[Filespace, Callable[[], object]], options: dict[str, object]
) -> None:
    fsp, dump = space
    fsp.fs.write_file("/f", b"kept")
    before = dump()
    for path in ("/new", "/f"):
        with pytest.raises((ValueError, TypeError)) as caught:
            fsp.fs.open(path, **options)  # type: ignore[arg-type]
        _not_raw(caught.value)
    assert dump() == before
    assert fsp.fs.read_file("/f") == b"kept"


def test_open_takes_any_negative_buffering_as_the_default(
    space: tuple[Filespace, Callable[[], object]],
) -> None:
    fsp, _ = space
    with fsp.fs.open("/f", "wb", buffering=-5) as handle:
        handle.write(b"data")
    with fsp.fs.open("/f", "r", buffering=-2) as text:
        assert text.read() == "data"


def test_a_filespace_name_that_is_not_utf8_is_a_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="filespace name") as caught:
        filespace.create(tmp_path / "space", name="x" + SURROGATE)
    _not_raw(caught.value)
    assert not (tmp_path / "space").exists()


def test_a_data_url_that_is_not_text_is_a_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="data is not valid UTF-8"):
        filespace.create(tmp_path / "space", name="x", data="file:///tmp/\udc80")
    assert not (tmp_path / "space").exists()
