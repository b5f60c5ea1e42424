"""Streams over external files (``io.external``) against a loopback HTTP server.

The S3-backed reads are in ``tests/test_external_reads.py``; these call the
module's classes with URLs of ``tests/loopback.py``, so they run in a blink
(and under mutation testing, see ``scripts/mutate``).
"""

from __future__ import annotations

import errno
import io
from collections.abc import Iterator
from uuid import uuid4

import pytest

import filespace
from filespace.io import cache, external
from filespace.io.cache import BlockCache
from filespace.io.external import ExternalObject, ExternalRawFile, open_stream
from filespace.io.prefetch import BLOCK_SIZE
from filespace.io.streams import parse_mode
from filespace.meta.records import LinkRecord
from filespace.objects import http
from filespace.objects.http import Identity
from tests.loopback import BODY, LARGE, SIZE, Server


@pytest.fixture
def server() -> Iterator[Server]:
    web = Server()
    yield web
    web.close()


class Urls:
    """A URL source that records whether each call asked for a fresh URL."""

    def __init__(self, stale: str, fresh: str) -> None:
        self.calls: list[bool] = []
        self._stale, self._fresh = stale, fresh

    def __call__(self, fresh: bool) -> str:
        self.calls.append(fresh)
        return self._fresh if fresh else self._stale


def _object(server: Server, path: str = "/ranged", **options: object) -> ExternalObject:
    url = server.url(path)
    return ExternalObject("/f", SIZE, Identity(size=SIZE), lambda _fresh: url, **options)  # type: ignore[arg-type]


def test_a_url_is_reused_for_a_moment_then_asked_again(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    urls = Urls(server.url("/ranged"), server.url("/ranged"))
    source = ExternalObject("/f", SIZE, Identity(), urls)
    monkeypatch.setattr(external, "_URL_REUSE_S", 60.0)
    assert source.fetch(0, 4) == BODY[:4] and source.fetch(4, 8) == BODY[4:8]
    assert urls.calls == [False]  # one URL for both
    monkeypatch.setattr(external, "_URL_REUSE_S", 0.0)
    assert source.fetch(8, 9) == BODY[8:9]
    assert urls.calls == [False, False]


def test_retired_urls_are_never_sent_again(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(external, "_URL_REUSE_S", 60.0)
    urls = Urls(server.url("/ranged"), server.url("/ranged"))
    sources = [ExternalObject(f"/f{n}", SIZE, Identity(), urls) for n in range(2)]
    for source in sources:
        source.fetch(0, 1)
    for _ in range(2):  # each retirement, not only the first
        external.retire_urls()  # in this process, for every handle
        for source in sources:
            source.fetch(1, 2)
            source.fetch(2, 3)
    assert urls.calls == [False] * 6


def test_a_url_refused_as_expired_is_signed_afresh_and_kept(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(external, "_URL_REUSE_S", 60.0)
    urls = Urls(server.url("/expired"), server.url("/ranged"))
    source = ExternalObject("/f", SIZE, Identity(), urls)
    assert source.fetch(0, 4) == BODY[:4]
    assert source.fetch(4, 8) == BODY[4:8]  # the fresh URL is the one reused
    assert urls.calls == [False, True]
    assert server.asked("/expired") == ["bytes=0-3"]


def test_the_quickest_answer_is_shared_by_the_objects_of_one_place(server: Server) -> None:
    place = f"store-{uuid4().hex}"
    first = _object(server, place=place)
    assert first.latency is None
    first.fetch(0, 4)
    assert first.latency is not None and first.latency >= 0
    second = _object(server, place=place)
    assert second.latency == first.latency  # known before its first request
    second.fetch(0, 4)
    assert second.latency <= first.latency
    assert _object(server, place=f"other-{uuid4().hex}").latency is None
    placeless = _object(server)
    placeless.fetch(0, 1)
    assert placeless.latency is not None and _object(server).latency is None


def test_the_quickest_answer_is_kept(server: Server) -> None:
    place = f"store-{uuid4().hex}"
    source = _object(server, place=place)
    for seconds in (0.5, 0.2, 0.9):  # as the requests report them
        source._observe(seconds)
    assert source.latency == 0.2 and external._nearest()[place] == 0.2


def test_fetch_is_clipped_to_the_object(server: Server) -> None:
    source = _object(server)
    assert source.fetch(30, 100) == BODY[30:]
    assert source.fetch(SIZE, SIZE + 10) == b"" and source.fetch(5, 5) == b""
    assert server.asked("/ranged") == [f"bytes=30-{SIZE - 1}"]  # nothing asked for nothing
    pieces: list[bytes] = []
    source.stream(36, 100, 2, lambda _at, data: pieces.append(bytes(data)))
    assert pieces == [BODY[36:38], BODY[38:40]]
    fresh = _object(server)
    stream = fresh.open_stream(38, 100)
    target = bytearray(10)
    assert stream.readinto(memoryview(target)) == 2 and target[:2] == BODY[38:]
    assert fresh.latency is not None  # a pulled stream's answers are timed too
    guarded = _object(server, guard=lambda: False).open_stream(0, 4)
    with pytest.raises(http.Blocked):
        guarded.readinto(memoryview(target))


def test_a_stream_cut_short_resumes_at_the_first_piece_not_handed_over(server: Server) -> None:
    offsets: list[int] = []
    _object(server, "/cut").stream(1, 13, 4, lambda at, _data: offsets.append(at))
    assert offsets == [1, 4, 8, 12] and server.asked("/cut") == ["bytes=1-12", "bytes=4-12"]


def test_failures_become_oserrors_naming_the_path_and_the_object(server: Server) -> None:
    gone = _object(server, "/404")
    gone.label = "URL http://example/gone"
    with pytest.raises(filespace.StaleFileError) as stale:
        gone.fetch(0, 4)
    assert stale.value.errno == errno.ESTALE and stale.value.filename == "/f"
    detail = "the object no longer exists; URL http://example/gone"
    assert stale.value.strerror == f"stale external file ({detail})"
    with pytest.raises(filespace.ExternalReadError) as eio:
        _object(server, "/418").fetch(0, 4)
    assert eio.value.errno == errno.EIO and "(unexpected HTTP 418 Teapot)" in str(eio.value)
    with pytest.raises(filespace.PrivateUrlError) as private:
        _object(server, guard=lambda: False).fetch(0, 4)
    assert private.value.filename == "/f" and private.value.errno == errno.EACCES
    assert (private.value.host, private.value.address) == ("127.0.0.1", "127.0.0.1")
    assert private.value.reason == "loopback"
    with pytest.raises(http.Stale, match="shorter than linked"):
        _object(server, "/416").check(3)
    _object(server).check(3)  # the linked object: no complaint
    assert server.asked("/ranged") == ["bytes=3-3"]


class Provider:
    """Connect's side of a read, for links made here: URLs as given, private ones allowed or not."""

    def __init__(self, allow_private: bool) -> None:
        self.allow_private = allow_private

    def place(self, link: LinkRecord) -> str:
        return f"here-{uuid4().hex}"

    def url(self, link: LinkRecord, fresh: bool) -> str:
        assert link.url is not None
        return link.url

    def allows_private_urls(self) -> bool:
        return self.allow_private


def _link(kind: str, url: str, checksum: str = "etag") -> LinkRecord:
    return LinkRecord(
        kind=kind,  # type: ignore[arg-type]
        size=SIZE,
        checksum=checksum,
        linked_ns=1,
        data_store_id=7 if kind == "s3" else None,
        data_store_name="store" if kind == "s3" else None,
        object_key="dir/key" if kind == "s3" else None,
        url=url,
    )


def test_only_http_links_carry_a_guard(server: Server) -> None:
    url = server.url("/ranged")
    source = external.link_source("/f", _link("http", url + "?token=secret"), Provider(False))
    assert source.label == f"URL {url}"  # never the query string
    with pytest.raises(filespace.PrivateUrlError):
        source.fetch(0, 4)
    allowed = external.link_source("/f", _link("http", url), Provider(True))
    assert allowed.fetch(0, 4) == BODY[:4]
    # A data store's URL (its endpoint set by a keyholder) reaches wherever it points.
    stored = external.link_source("/f", _link("s3", url), Provider(False))
    assert stored.label == "object 'dir/key' in data store 'store'"
    assert stored.fetch(4, 8) == BODY[4:8] and stored.size == SIZE


class Resigning(Provider):
    """Signs afresh to ``fresh_url``; one place for every link."""

    def __init__(self, fresh_url: str, place: str) -> None:
        super().__init__(True)
        self.fresh_url, self.where = fresh_url, place

    def place(self, link: LinkRecord) -> str:
        return self.where

    def url(self, link: LinkRecord, fresh: bool) -> str:
        return self.fresh_url if fresh else super().url(link, fresh)


def test_a_link_source_asks_its_provider_and_names_the_version(server: Server) -> None:
    provider = Resigning(server.url("/ranged"), f"store-{uuid4().hex}")
    first = external.link_source("/f", _link("s3", server.url("/expired")), provider)
    assert first.fetch(0, 4) == BODY[:4]  # refused as expired: signed afresh
    assert [seen.if_match for seen in server.requests] == ['"etag"', '"etag"']
    second = external.link_source("/g", _link("s3", server.url("/ranged")), provider)
    assert second.latency is not None and second.latency == first.latency  # one place


def test_cache_namespaces_name_the_object_version_and_block_size() -> None:
    http_link = _link("http", "http://example/o")
    s3_link = _link("s3", "")
    assert external.cache_namespace(http_link) == cache.namespace(
        "url:http://example/o", "etag", SIZE, BLOCK_SIZE
    )
    assert external.cache_namespace(s3_link, 1024) == cache.namespace(
        "store:7:dir/key", "etag", SIZE, 1024
    )
    assert external.cache_namespace(_link("http", "http://example/o", checksum="")) is None


def test_a_raw_file_reads_and_refuses_writes(server: Server) -> None:
    raw = ExternalRawFile(_object(server))
    assert raw.name == "/f" and raw.mode == "rb"
    assert raw.readable() and not raw.writable() and raw.seekable()
    target = bytearray(8)
    assert raw.readinto(target) == 8 and target == BODY[:8]
    for _ in range(2):
        assert raw.readinto(target) == 8 and target == BODY[raw.tell() - 8 : raw.tell()]
    assert raw.tell() == 24 and raw.seek(8) == 8
    assert raw.readall() == BODY[8:] and raw.tell() == SIZE
    assert raw.seek(-3, io.SEEK_END) == SIZE - 3 and raw.readall() == BODY[-3:]
    with pytest.raises(filespace.ReadOnlyFileError) as erofs:
        raw.write(b"x")
    assert erofs.value.errno == errno.EROFS and erofs.value.filename == "/f"
    with pytest.raises(filespace.ReadOnlyFileError) as erofs:
        raw.truncate(0)
    assert erofs.value.errno == errno.EROFS and erofs.value.filename == "/f"
    raw.close()
    raw.close()
    with pytest.raises(ValueError, match="closed"):
        raw.readinto(target)


def test_a_read_without_a_size_fetches_the_block_under_the_position(server: Server) -> None:
    url = server.url("/large")
    source = ExternalObject("/f", len(LARGE), Identity(), lambda _fresh: url)
    with open_stream(ExternalRawFile(source), parse_mode("rb")) as handle:
        assert handle.readline() == LARGE[:11]  # not the megabyte its buffer could hold
        handle.seek(2 * BLOCK_SIZE - 1)  # the last byte of a block: that block only
        assert handle.read1(1) == LARGE[2 * BLOCK_SIZE - 1 : 2 * BLOCK_SIZE]
    assert server.asked("/large") == [
        f"bytes=0-{BLOCK_SIZE - 1}",
        f"bytes={BLOCK_SIZE}-{2 * BLOCK_SIZE - 1}",
    ]


def test_a_buffered_handle_confirms_its_first_read_only(server: Server) -> None:
    memory = BlockCache(None, 0)
    ns = cache.namespace("url:x", "etag", SIZE, BLOCK_SIZE)
    for buffered, requests in ((True, 1), (False, 2)):  # for two reads of one block
        raw = ExternalRawFile(_object(server), cache=memory, namespace=ns)
        if buffered:
            raw.buffered()
        for _ in range(2):
            raw.seek(0)
            target = bytearray(4)
            assert raw.readinto(target) == 4 and target == BODY[:4]
        assert len(server.asked("/ranged")) == requests
        server.requests.clear()
        memory.clear_memory()


@pytest.mark.parametrize(("window", "checks"), [(0.0, ["bytes=0-0"]), (600.0, [])])
def test_a_revalidation_window_spares_a_new_handle_the_check(
    server: Server, window: float, checks: list[str]
) -> None:
    memory = BlockCache(None, 0)
    ns = cache.namespace("url:x", "etag", SIZE, BLOCK_SIZE)
    for _ in range(2):  # the second handle finds the block cached
        options = {"revalidate_after_s": window} if window else {}  # (none: the default)
        raw = ExternalRawFile(_object(server), cache=memory, namespace=ns, **options)
        raw.buffered()
        assert raw.readinto(bytearray(4)) == 4
    assert server.asked("/ranged") == [f"bytes=0-{SIZE - 1}", *checks]


def test_open_stream_buffers_and_decodes_as_open_does(server: Server) -> None:
    text = open_stream(ExternalRawFile(_object(server)), parse_mode("r"), encoding="ascii")
    assert isinstance(text, io.TextIOWrapper) and text.read(5) == BODY[:5].decode()
    text.close()
    url = server.url("/large")
    large = ExternalObject("/f", len(LARGE), Identity(), lambda _fresh: url)
    for encoding, errors, newline in (("latin-1", None, ""), ("ascii", "replace", None)):
        mode = parse_mode("r")
        with open_stream(ExternalRawFile(large), mode, -1, encoding, errors, newline) as text:
            expected = LARGE[:600].decode(encoding, errors or "strict")
            if newline is None:  # universal newlines
                expected = expected.replace("\r\n", "\n").replace("\r", "\n")
            assert text.read(len(expected)) == expected
    binary = open_stream(ExternalRawFile(_object(server)), parse_mode("rb"))
    assert isinstance(binary, external.ExternalBufferedReader)
    binary.seek(10)
    assert binary.read(3) == BODY[10:13]
    binary.seek(0)  # (the buffer is dropped: the next read goes down without a size)
    assert binary.readline() == BODY
    binary.seek(10)
    assert binary.read() == BODY[10:]
    binary.seek(2)
    target = bytearray(4)
    assert binary.readinto(target) == 4 and target == BODY[2:6]
    binary.seek(0)  # (the buffer is dropped: the next read goes down without a size)
    assert binary.readline() == BODY
    binary.close()
    unbuffered = open_stream(ExternalRawFile(_object(server)), parse_mode("rb"), buffering=0)
    assert isinstance(unbuffered, ExternalRawFile)
    unbuffered.close()
