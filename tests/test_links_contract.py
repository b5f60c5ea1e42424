"""Single links (``connect/links.py``): the errors a user sees, and what is stored.

Each error is checked whole (type, errno, message and the path it names),
since that is what a caller or the CLI shows. HTTP links use a real server on
loopback that answers with the ETag a test picks, so private URLs are allowed
first; S3 links given a size and checksum make no request.
"""

from __future__ import annotations

import errno
import re
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

import filespace
from filespace import ExternalFileInfo, Filespace
from tests.fsfixtures import query_sql


class EtagServer:
    """A loopback HTTP/1.1 server whose ``/<n>`` answers with ``ETag: <etags[n]>``.

    Ranged GETs get a 206 of a 20-byte body; every request's path and ``If-Match``
    header are recorded.
    """

    BODY = b"0123456789abcdefghij"

    def __init__(self, etags: list[str]) -> None:
        self.requests: list[tuple[str, str | None]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                server.requests.append((self.path, self.headers.get("If-Match")))
                body = EtagServer.BODY
                headers = {"ETag": etags[int(self.path.lstrip("/"))]}
                wanted = self.headers.get("Range", "")
                status = 200
                if wanted.startswith("bytes="):
                    first, last = (int(n) for n in wanted[6:].split("-"))
                    last = min(last, len(body) - 1)
                    headers["Content-Range"] = f"bytes {first}-{last}/{len(body)}"
                    body, status = body[first : last + 1], 206
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, index: int) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/{index}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


# The ETag a server sends, and the checksum an HTTP link keeps of it.
ETAGS = [
    ('"v1"', "v1"),  # strong: kept without its quotes
    ("plain", "plain"),  # strong, unquoted: kept as it is
    ('W/"v1"', ""),  # weak: If-Match would fail every read, so nothing is kept
    ("W/v1", ""),  # weak, unquoted: still weak
    ('"a"b"', ""),  # strong but unusable (a quote inside): nothing is kept
    ('"' + "x" * 300 + '"', ""),  # strong but too long to keep
]


@pytest.fixture
def etag_server() -> Iterator[EtagServer]:
    server = EtagServer([sent for sent, _ in ETAGS])
    yield server
    server.close()


@pytest.fixture
def web_space(fsp: Filespace) -> Filespace:
    """A filespace with Connect on that may link the loopback test server."""
    fsp.connect.enable()
    fsp.connect.configure(allow_private_urls=True)
    return fsp


def test_http_link_keeps_only_a_strong_usable_etag(
    web_space: Filespace, etag_server: EtagServer
) -> None:
    connect = web_space.connect
    for index, (sent, kept) in enumerate(ETAGS):
        connect.link_http_file(f"/h{index}", etag_server.url(index))
        info = connect.get_external_file(f"/h{index}")
        assert (info.checksum, info.size) == (kept, 20), sent
    # Re-pointing probes the new URL and keeps its ETag the same way.
    connect.update_http_file_url("/h0", etag_server.url(3))
    assert connect.get_external_file("/h0").checksum == ""
    connect.update_http_file_url("/h3", etag_server.url(0))
    assert connect.get_external_file("/h3").checksum == "v1"
    # A weak or unusable ETag is never sent as If-Match (which would fail every read).
    del etag_server.requests[:]
    for index in (1, 2, 4, 5):
        assert web_space.fs.read_file(f"/h{index}") == EtagServer.BODY
    matches = dict(etag_server.requests)
    assert matches == {"/1": '"plain"', "/2": None, "/4": None, "/5": None}


def test_update_http_url_with_size_trusts_it_and_probes_nothing(
    web_space: Filespace, etag_server: EtagServer
) -> None:
    connect = web_space.connect
    connect.link_http_file("/h", etag_server.url(0))
    assert connect.get_external_file("/h").checksum == "v1"
    seen = len(etag_server.requests)
    connect.update_http_file_url("/h", etag_server.url(1), size=7)
    assert len(etag_server.requests) == seen  # no request: the size was given
    info = connect.get_external_file("/h")
    assert (info.url, info.size, info.checksum) == (etag_server.url(1), 7, "")
    assert web_space.fs.get_entry("/h").size == 7


def test_update_http_url_refused_as_private_names_the_link(web_space: Filespace) -> None:
    connect = web_space.connect
    web_space.fs.create_dir("/web")
    connect.link_http_file("/web/h", "http://127.0.0.1:9/x", size=3)
    connect.configure(allow_private_urls=False)
    for size in (None, 5):  # probed or only resolved: the error names the link either way
        with pytest.raises(filespace.PrivateUrlError) as refused:
            connect.update_http_file_url("/web/h", "http://127.0.0.1:9/y", size=size)
        assert (refused.value.errno, refused.value.filename) == (errno.EACCES, "/web/h")
        assert refused.value.reason == "loopback"
    assert connect.get_external_file("/web/h").url == "http://127.0.0.1:9/x"


def test_update_http_url_of_an_s3_link_says_so(connected: Filespace) -> None:
    connect = connected.connect
    connect.link_file("/s3", "store", "k", 3, "e")  # given size and checksum: no request
    with pytest.raises(filespace.NotALinkError) as refused:
        connect.update_http_file_url("/s3", "http://127.0.0.1:9/x", size=1)
    assert str(refused.value) == "/s3 is not an HTTP link"
    assert isinstance(refused.value, RuntimeError)
    assert connect.get_external_file("/s3").object_id == "k"


def test_create_parents_through_a_file_names_the_link(connected: Filespace) -> None:
    connect, fs = connected.connect, connected.fs
    fs.write_file("/file", b"native")
    with pytest.raises(filespace.MissingParentError) as refused:
        connect.link_file("/file/sub/x", "store", "k", 3, "e", create_parents=True)
    assert (refused.value.errno, refused.value.filename) == (errno.ENOENT, "/file/sub/x")
    assert str(refused.value) == "[Errno 2] parent directory does not exist: '/file/sub/x'"
    assert fs.read_file("/file") == b"native"


def test_create_parents_through_a_dangling_symlink_names_the_link(connected: Filespace) -> None:
    """``mkdir -p`` cannot make a directory where a symlink to nothing is: nothing is made."""
    connect, fs = connected.connect, connected.fs
    fs.create_dir("/d")
    fs.create_symlink("/nowhere", "/d/dangling")
    with pytest.raises(filespace.MissingParentError) as refused:
        connect.link_file("/d/dangling/sub/x", "store", "k", 3, "e", create_parents=True)
    assert (refused.value.errno, refused.value.filename) == (errno.ENOENT, "/d/dangling/sub/x")
    assert str(refused.value) == "[Errno 2] parent directory does not exist: '/d/dangling/sub/x'"
    assert fs.list_dir("/d") == ["dangling"] and not fs.exists("/nowhere")
    assert connect.count_external_files("store") == 0


def test_create_parents_onto_a_taken_path_names_it(connected: Filespace) -> None:
    """Taken by a link or by a native file, the path is named and nothing changes."""
    connect, fs = connected.connect, connected.fs
    connect.link_file("/a/b/x", "store", "k", 3, "e", create_parents=True)
    fs.write_file("/a/b/native", b"kept")
    for taken in ("/a/b/x", "/a/b/native"):
        with pytest.raises(filespace.LinkExistsError) as refused:
            connect.link_file(taken, "store", "k2", 4, "e2", create_parents=True)
        assert (refused.value.errno, refused.value.filename) == (errno.EEXIST, taken)
        assert str(refused.value) == f"[Errno 17] path already exists: '{taken}'"
        assert isinstance(refused.value, RuntimeError)
    assert connect.get_external_file("/a/b/x").object_id == "k"
    assert fs.read_file("/a/b/native") == b"kept"
    assert connect.count_external_files("store") == 1


def test_unlink_tree_of_a_file_is_not_a_directory(connected: Filespace) -> None:
    connect, fs = connected.connect, connected.fs
    fs.create_dir("/t")
    connect.link_file("/t/link", "store", "k", 3, "e")
    fs.write_file("/t/native", b"kept")
    for path in ("/t/link", "/t/native"):
        with pytest.raises(NotADirectoryError) as refused:
            connect.unlink_tree(path)
        assert (refused.value.errno, refused.value.strerror) == (errno.ENOTDIR, "not a directory")
        assert refused.value.filename == path
        assert str(refused.value) == f"[Errno 20] not a directory: '{path}'"
    assert connect.count_external_files("store") == 1


def test_unlink_tree_follows_a_symlink_to_a_directory(connected: Filespace) -> None:
    """The directory named may be reached through a symlink, as every path of the API may."""
    connect, fs = connected.connect, connected.fs
    fs.create_dir("/real/deep", parents=True)
    connect.link_file("/real/a", "store", "k1", 3, "e1")
    connect.link_file("/real/deep/b", "store", "k2", 4, "e2")
    fs.create_symlink("/real", "/via")
    assert connect.unlink_tree("/via", dry_run=True) == 2
    assert connect.unlink_tree("/via", data_store_name="store") == 2
    assert not fs.exists("/real/a") and not fs.exists("/real/deep/b")
    assert fs.read_symlink("/via") == "/real" and fs.dir_exists("/real/deep")
    assert connect.count_external_files("store") == 0


def test_unlink_file_refuses_a_native_file_or_a_symlink_by_name(connected: Filespace) -> None:
    """Like ``unlink(2)``, the last name is not followed: a symlink to a link is not a link."""
    connect, fs = connected.connect, connected.fs
    connect.link_file("/target", "store", "k", 3, "e")
    fs.create_symlink("/target", "/alias")
    fs.write_file("/native", b"kept")
    for path in ("/alias", "/native"):
        with pytest.raises(filespace.NotALinkError) as refused:
            connect.unlink_file(path)
        assert str(refused.value) == f"{path} is not an external file"
        assert isinstance(refused.value, RuntimeError)
    assert fs.read_symlink("/alias") == "/target" and fs.read_file("/native") == b"kept"
    assert connect.get_external_file("/target").object_id == "k"
    assert connect.count_external_files("store") == 1


def linked_at(fsp: Filespace, path: str) -> int:
    """The link time of the entry at ``path`` as stored (ns), in whole seconds."""
    entry_id = fsp.fs.get_entry(path).file_id_external
    rows = query_sql(fsp, "SELECT linked_ns FROM external_links WHERE entry_id = ?", entry_id)
    return int(rows[0][0]) // 1_000_000_000


def test_every_way_of_linking_stores_what_was_linked(
    connected: Filespace, s3_admin: Any, bucket: str
) -> None:
    """Given or looked up, with or without new parents, through a symlink or not:
    the link names its store, key, size and checksum, and reads back the object."""
    connect, fs = connected.connect, connected.fs
    s3_admin.put_object(Bucket=bucket, Key="obj", Body=b"abc")
    etag = s3_admin.head_object(Bucket=bucket, Key="obj")["ETag"].strip('"')
    fs.create_dir("/d")
    fs.create_symlink("/d", "/via")
    connect.link_file("/d/given", "store", "obj", 3, etag)  # one engine transaction
    connect.link_file("/d/headed", "store", "obj")  # by HeadObject
    connect.link_file("/via/symlinked", "store", "obj", 3, etag)  # resolved the slow way
    connect.link_file("/new/given", "store", "obj", 3, etag, create_parents=True)
    connect.link_file("/new2/headed", "store", "obj", create_parents=True)
    made = ["/d/given", "/d/headed", "/d/symlinked", "/new/given", "/new2/headed"]
    for path in made:
        info = connect.get_external_file(path)
        assert info == ExternalFileInfo(
            path=path,
            kind="s3",
            data_store_name="store",
            object_id="obj",
            url=None,
            size=3,
            checksum=etag,
            linked_at=linked_at(connected, path),
        )
        assert isinstance(info.linked_at, int)
        assert fs.read_file(path) == b"abc"
    assert connect.get_external_file("//via//symlinked/").path == "/via/symlinked"
    assert connect.count_external_files("store") == len(made)
    stats = fs.get_statistics()
    assert (stats.external_files_count, stats.external_files_size) == (len(made), 3 * len(made))


def test_http_link_is_described_as_http(web_space: Filespace, etag_server: EtagServer) -> None:
    connect = web_space.connect
    web_space.fs.create_dir("/w")
    connect.link_http_file("/w/probed", etag_server.url(0))
    connect.link_http_file("/w/sized", etag_server.url(1), size=5)
    for path, url, size, checksum in (
        ("/w/probed", etag_server.url(0), 20, "v1"),
        ("/w/sized", etag_server.url(1), 5, ""),  # given a size: no probe, no ETag
    ):
        assert connect.get_external_file(path) == ExternalFileInfo(
            path=path,
            kind="http",
            data_store_name=None,
            object_id=None,
            url=url,
            size=size,
            checksum=checksum,
            linked_at=linked_at(web_space, path),
        )


def test_create_parents_with_size_and_checksum_makes_no_request(connected: Filespace) -> None:
    """Given both, the pair is trusted (API.md): no HeadObject, so a missing object is no error."""
    connect = connected.connect
    connect.link_file("/p/q/x", "store", "not-there", 9, '"e9"', create_parents=True)
    info = connect.get_external_file("/p/q/x")
    assert (info.object_id, info.size, info.checksum) == ("not-there", 9, "e9")


def test_link_file_argument_errors_say_what_to_give(connected: Filespace) -> None:
    connect = connected.connect
    both = "^give both size and checksum, or neither$"
    for size, checksum in ((3, ""), (None, "e")):
        for parents in (False, True):
            with pytest.raises(ValueError, match=both):
                connect.link_file("/x", "store", "k", size, checksum, create_parents=parents)
    for flag in ("yes", 1, None):
        with pytest.raises(ValueError, match=f"^{re.escape('create_parents must be a bool')}$"):
            connect.link_file("/x", "store", "k", 3, "e", create_parents=flag)  # type: ignore[arg-type]
    assert not connected.fs.exists("/x")


def test_taken_path_is_named_by_every_way_of_linking(
    connected: Filespace, s3_admin: Any, bucket: str
) -> None:
    connect, fs = connected.connect, connected.fs
    s3_admin.put_object(Bucket=bucket, Key="obj", Body=b"abc")
    connect.configure(allow_private_urls=True)  # a loopback URL, never fetched
    fs.create_dir("/d")
    fs.create_symlink("/d", "/via")
    fs.write_file("/d/native", b"kept")
    connect.link_file("/d/link", "store", "obj", 3, "e")
    ways: list[tuple[str, Callable[[str], None]]] = [
        ("/d/native", lambda path: connect.link_file(path, "store", "obj", 3, "e")),
        ("/d/link", lambda path: connect.link_file(path, "store", "obj", 3, "e")),
        ("/via/native", lambda path: connect.link_file(path, "store", "obj", 3, "e")),
        ("/d/native", lambda path: connect.link_file(path, "store", "obj")),
        ("/d/link", lambda path: connect.link_http_file(path, "http://127.0.0.1:9/x", size=1)),
        ("/via/link", lambda path: connect.link_http_file(path, "http://127.0.0.1:9/x", size=1)),
    ]
    for path, link in ways:
        with pytest.raises(filespace.LinkExistsError) as refused:
            link(path)
        assert (refused.value.errno, refused.value.filename) == (errno.EEXIST, path)
        assert str(refused.value) == f"[Errno 17] path already exists: '{path}'"
        assert isinstance(refused.value, RuntimeError)
    assert fs.read_file("/d/native") == b"kept"
    assert connect.get_external_file("/d/link").size == 3
    assert connect.count_external_files("store") == 1


def test_missing_parent_is_named_by_every_way_of_linking(
    connected: Filespace, s3_admin: Any, bucket: str
) -> None:
    connect, fs = connected.connect, connected.fs
    s3_admin.put_object(Bucket=bucket, Key="obj", Body=b"abc")
    connect.configure(allow_private_urls=True)  # a loopback URL, never fetched
    fs.write_file("/file", b"native")
    ways: list[Callable[[str], None]] = [
        lambda path: connect.link_file(path, "store", "obj", 3, "e"),
        lambda path: connect.link_file(path, "store", "obj"),
        lambda path: connect.link_http_file(path, "http://127.0.0.1:9/x", size=1),
    ]
    for path in ("/none/x", "/file/x"):  # no parent, or a file where it would be
        for link in ways:
            with pytest.raises(filespace.MissingParentError) as refused:
                link(path)
            assert (refused.value.errno, refused.value.filename) == (errno.ENOENT, path)
            assert str(refused.value) == f"[Errno 2] parent directory does not exist: '{path}'"
            assert isinstance(refused.value, RuntimeError)
    assert fs.list_dir("/") == ["file"]
