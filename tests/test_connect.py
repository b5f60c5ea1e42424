"""``fsp.connect``: data stores, links, listing and every documented error, on real S3."""

from __future__ import annotations

import errno
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

import filespace
from filespace import Filespace, S3Credentials
from filespace.testing import SeaweedS3
from tests.fsfixtures import store_config


def test_add_list_get_remove_store(fsp: Filespace, s3_server: SeaweedS3, bucket: str) -> None:
    connect = fsp.connect
    connect.enable()
    info = connect.add_data_store("store-1", store_config(s3_server, bucket))
    assert info.name == "store-1" and info.bucket_name == bucket
    assert info.secret_key == ""  # never handed back from add
    assert info.kind == filespace.DataStoreKind.S3
    assert info.rekey_state == filespace.DataStoreRekeyState.NO_REKEY
    assert info.key_id
    listed = connect.list_data_stores()
    assert [s.name for s in listed] == ["store-1"] and listed[0].secret_key == ""
    full = connect.get_data_store("store-1")
    assert full is not None and full.secret_key == s3_server.admin.secret_key
    assert full.endpoint == s3_server.endpoint
    assert connect.get_data_store("other") is None
    connect.remove_data_store("store-1")
    assert connect.list_data_stores() == []
    with pytest.raises(filespace.DataStoreNotFoundError):
        connect.remove_data_store("store-1")


def test_duplicate_store_is_runtime_error(
    connected: Filespace, s3_server: SeaweedS3, bucket: str
) -> None:
    with pytest.raises(RuntimeError, match="already exists"):
        connected.connect.add_data_store("store", store_config(s3_server, bucket))


BUCKET_CHARS = "3-63 characters of a-z 0-9"
NOT_HTTP = "must start with http:// or https://"


@pytest.mark.parametrize(
    ("name", "overrides", "message"),
    [
        ("", {}, "a data store name must be a non-empty string"),
        ("bad name", {}, "invalid data store name 'bad name'"),
        ("x" * 65, {}, "invalid data store name 'x{65}'"),
        ("ok", {"bucket_name": "ab"}, BUCKET_CHARS),
        ("ok", {"bucket_name": "Upper-Case"}, BUCKET_CHARS),
        ("ok", {"bucket_name": "192.168.1.1"}, "may not look like an IP address"),
        ("ok", {"bucket_name": "a..b"}, "no '\\.\\.', '\\.-' or '-\\.'"),
        ("ok", {"endpoint": "ftp://host"}, NOT_HTTP),
        ("ok", {"endpoint": "localhost:9000"}, NOT_HTTP),
        ("ok", {"endpoint": "http://user:pw@host"}, "no credentials, query or fragment"),
        ("ok", {"url_expiration_minutes": 0}, "url_expiration_minutes must be 1..10080, got 0"),
        ("ok", {"url_expiration_minutes": 10081}, "must be 1..10080, got 10081"),
        ("ok", {"access_key": ""}, "access_key must be a non-empty string"),
        ("ok", {"secret_key": ""}, "secret_key must be a non-empty string"),
        ("ok", {"region": ""}, "invalid region ''"),
        ("ok", {"use_virtual_addressing": "yes"}, "use_virtual_addressing must be a bool"),
    ],
)
def test_invalid_store_input(
    connected: Filespace,
    s3_server: SeaweedS3,
    bucket: str,
    name: str,
    overrides: dict[str, Any],
    message: str,
) -> None:
    with pytest.raises(ValueError, match=message):
        connected.connect.add_data_store(name, store_config(s3_server, bucket, **overrides))
    assert [s.name for s in connected.connect.list_data_stores()] == ["store"]


def test_store_limit(
    connected: Filespace, s3_server: SeaweedS3, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from filespace.connect import validation

    monkeypatch.setattr(validation, "MAX_DATA_STORES", 2)
    connected.connect.add_data_store("second", store_config(s3_server, bucket))
    with pytest.raises(filespace.DataStoreLimitError, match="maximum"):
        connected.connect.add_data_store("third", store_config(s3_server, bucket))


def test_link_file_with_head(connected: Filespace, s3_admin: Any, bucket: str) -> None:
    s3_admin.put_object(Bucket=bucket, Key="dir/obj.bin", Body=b"0123456789")
    etag = s3_admin.head_object(Bucket=bucket, Key="dir/obj.bin")["ETag"].strip('"')
    connected.fs.create_dir("/data")
    connected.connect.link_file("/data/obj.bin", "store", "dir/obj.bin")
    entry = connected.fs.get_entry("/data/obj.bin")
    assert entry.size == 10 and entry.is_file()
    assert entry.external is not None
    assert entry.external.object_id == "dir/obj.bin" and entry.external.checksum == etag
    assert entry.external.data_store_name == "store" and entry.external.kind == "s3"
    assert connected.fs.read_file("/data/obj.bin") == b"0123456789"
    info = connected.connect.get_external_file("/data/obj.bin")
    assert info == entry.external


def test_link_file_without_head(connected: Filespace, s3_admin: Any, bucket: str) -> None:
    s3_admin.put_object(Bucket=bucket, Key="k", Body=b"abc")
    etag = s3_admin.head_object(Bucket=bucket, Key="k")["ETag"]
    connected.connect.link_file("/quoted", "store", "k", size=3, checksum=etag)
    connected.connect.link_file("/bare", "store", "k", size=3, checksum=etag.strip('"'))
    assert connected.fs.read_file("/quoted") == connected.fs.read_file("/bare") == b"abc"
    # Size and checksum are trusted as given: no HeadObject, so a missing key links fine.
    connected.connect.link_file("/ghost", "store", "no-such-key", size=1, checksum="abc")
    assert connected.fs.get_entry("/ghost").size == 1


def test_link_file_errors(connected: Filespace, s3_admin: Any, bucket: str) -> None:
    s3_admin.put_object(Bucket=bucket, Key="k", Body=b"abc")
    connect = connected.connect
    with pytest.raises(ValueError, match="both"):
        connect.link_file("/a", "store", "k", size=3)
    with pytest.raises(ValueError, match="both"):
        connect.link_file("/a", "store", "k", checksum="abc")
    with pytest.raises(ValueError, match="size must be a non-negative int, got -1"):
        connect.link_file("/a", "store", "k", size=-1, checksum="x")
    with pytest.raises(ValueError, match="object_id must be a non-empty string"):
        connect.link_file("/a", "store", "")
    with pytest.raises(ValueError, match="must be absolute"):
        connect.link_file("rel", "store", "k")
    with pytest.raises(ValueError, match=r"invalid name '\.\.'"):
        connect.link_file("/a/../b", "store", "k")
    with pytest.raises(RuntimeError, match="no data store"):
        connect.link_file("/a", "nostore", "k")
    with pytest.raises(filespace.ObjectNotFoundError):
        connect.link_file("/a", "store", "missing")
    with pytest.raises(filespace.MissingParentError) as missing:
        connect.link_file("/no/dir/a", "store", "k")
    assert isinstance(missing.value, RuntimeError) and isinstance(missing.value, FileNotFoundError)
    connect.link_file("/a", "store", "k")
    with pytest.raises(FileExistsError) as taken:
        connect.link_file("/a", "store", "k")
    assert isinstance(taken.value, RuntimeError)
    assert connected.fs.list_dir("/") == ["a"]
    assert connect.count_external_files("store") == 1


def test_link_needs_permission(
    fsp: Filespace, s3_server: SeaweedS3, s3_admin: Any, bucket: str
) -> None:
    s3_admin.put_object(Bucket=bucket, Key="k", Body=b"abc")
    fsp.connect.enable()
    fsp.connect.add_data_store(
        "denied",
        store_config(
            s3_server,
            bucket,
            access_key=s3_server.noaccess.access_key,
            secret_key=s3_server.noaccess.secret_key,
        ),
    )
    with pytest.raises(RuntimeError, match=r"AccessDenied|Forbidden|403"):
        fsp.connect.link_file("/k", "denied", "k")
    assert fsp.fs.list_dir("/") == []


def test_unlink_and_counts(connected: Filespace, s3_admin: Any, bucket: str) -> None:
    connect = connected.connect
    for index in range(3):
        connect.link_file(f"/f{index}", "store", f"key{index}", size=index, checksum="e")
    stats = connected.fs.get_statistics()
    assert stats.external_files_count == 3 and stats.external_files_size == 3
    assert stats.data_size == 0 and stats.entries_size == 3
    connected.fs.write_file("/native", b"n")
    with pytest.raises(filespace.NotALinkError):
        connect.unlink_file("/native")
    # A missing path is both what Python callers expect and what the seed documents.
    for call in (connect.unlink_file, connect.get_external_file):
        with pytest.raises(filespace.LinkNotFoundError, match="no such file") as missing:
            call("/missing")
        assert isinstance(missing.value, FileNotFoundError) and missing.value.errno == errno.ENOENT
        assert isinstance(missing.value, RuntimeError) and missing.value.filename == "/missing"
    with pytest.raises(RuntimeError, match="/missing"):
        connect.update_http_file_url("/missing", "https://example.com/x", size=1)
    connect.unlink_file("/f1")
    connected.fs.delete("/f2")  # delete of a link is an unlink
    assert connect.count_external_files("store") == 1
    assert connected.fs.get_statistics().external_files_count == 1
    assert connected.fs.read_file("/native") == b"n"
    head = s3_admin.list_objects_v2(Bucket=bucket)
    assert head["KeyCount"] == 0  # nothing was ever written to the bucket


def test_remove_store_with_links_is_refused(connected: Filespace) -> None:
    connected.connect.link_file("/a", "store", "k1", size=1, checksum="e")
    connected.connect.link_file("/b", "store", "k2", size=1, checksum="e")
    with pytest.raises(filespace.DataStoreNotEmptyError, match="2 linked") as refused:
        connected.connect.remove_data_store("store")
    assert refused.value.count == 2
    assert connected.connect.get_data_store("store") is not None
    connected.connect.unlink_file("/a")
    connected.connect.unlink_file("/b")
    connected.connect.remove_data_store("store")


def test_list_external_files_paging(connected: Filespace) -> None:
    connect = connected.connect
    connected.fs.create_dir("/d")
    expected = []
    for index in range(25):
        path = f"/d/f{index:02d}" if index % 2 else f"/top{index:02d}"
        connect.link_file(path, "store", f"k{index}", size=1, checksum="e")
        expected.append(path)
    seen: list[str] = []
    ids: list[int] = []
    cursor = ""
    pages = 0
    while True:
        page = connect.list_external_files("store", limit=10, cursor=cursor)
        assert len(page.file_paths) == len(page.file_ids) <= 10
        seen += page.file_paths
        ids += page.file_ids
        pages += 1
        if not page.has_more:
            assert page.cursor == ""
            break
        cursor = page.cursor
    assert pages == 3 and sorted(seen) == sorted(expected)
    assert ids == sorted(ids)
    assert connected.fs.get_entry(seen[0]).file_id_external == ids[0]
    assert connect.count_external_files("store") == 25
    default = connect.list_external_files("store")
    assert len(default.file_paths) == 25 and not default.has_more


@pytest.mark.parametrize(("count", "limit"), [(20, 10), (3, 1), (5, 5), (0, 4)])
def test_list_external_files_exact_multiples_of_the_limit(
    connected: Filespace, count: int, limit: int
) -> None:
    # The last page says there is no more, even when it is full: no empty
    # page after it, and every link exactly once.
    connect = connected.connect
    for index in range(count):
        connect.link_file(f"/f{index:02d}", "store", f"k{index}", size=1, checksum="e")
    pages: list[list[str]] = []
    cursor = ""
    while True:
        page = connect.list_external_files("store", limit=limit, cursor=cursor)
        pages.append(page.file_paths)
        if not page.has_more:
            assert page.cursor == ""
            break
        assert page.cursor != cursor
        cursor = page.cursor
    assert [len(paths) for paths in pages] == ([limit] * (count // limit) if count else [0])
    assert sorted(path for paths in pages for path in paths) == [
        f"/f{index:02d}" for index in range(count)
    ]


def test_racing_links_to_one_path(connected: Filespace, s3_server: SeaweedS3) -> None:
    # Threads on one filespace and on another open of it link the same path
    # at once: exactly one wins, every other gets LinkExistsError, counters exact.
    threads = 6
    with filespace.open(connected.location) as other:
        spaces = [connected, other]
        start = threading.Barrier(threads)

        def link(index: int) -> str:
            space = spaces[index % 2]
            start.wait()
            try:
                space.connect.link_file("/contested", "store", f"k{index}", 100 + index, "e")
            except filespace.LinkExistsError as exc:
                return f"exists {exc.errno} {exc.filename}"
            return f"won k{index}"

        with ThreadPoolExecutor(threads) as pool:
            results = list(pool.map(link, range(threads)))
    assert sorted(results)[:-1] == [f"exists {errno.EEXIST} /contested"] * (threads - 1)
    winner = results[[r.startswith("won") for r in results].index(True)].split()[1]
    assert connected.connect.get_external_file("/contested").object_id == winner
    assert connected.connect.count_external_files("store") == 1
    stats = connected.fs.get_statistics()
    assert stats.external_files_count == 1
    assert stats.external_files_size == 100 + int(winner[1:])
    assert connected.fs.get_entry("/contested").size == 100 + int(winner[1:])


def test_list_external_files_bad_input(connected: Filespace) -> None:
    connect = connected.connect
    for limit in (0, 1001, -1, True):
        with pytest.raises(ValueError, match="limit"):
            connect.list_external_files("store", limit=limit)
    for cursor in ("garbage", "c1.!!!", "c1.OTk6MQ"):
        with pytest.raises(ValueError, match="cursor"):
            connect.list_external_files("store", cursor=cursor)
    with pytest.raises(RuntimeError):
        connect.list_external_files("missing")
    with pytest.raises(RuntimeError):
        connect.count_external_files("missing")


def test_rekey_validation_and_state(connected: Filespace, s3_server: SeaweedS3) -> None:
    connect = connected.connect
    spare = s3_server.spare
    with pytest.raises(ValueError, match="new credentials are required"):
        connect.rekey_data_store("store")
    with pytest.raises(ValueError, match="new secret key must be a non-empty string"):
        connect.rekey_data_store("store", new_access_key=spare.access_key)
    with pytest.raises(ValueError, match="new access key must be a non-empty string"):
        connect.rekey_data_store("store", new_access_key="", new_secret_key="x")
    with pytest.raises(ValueError, match="not both"):
        connect.rekey_data_store(
            "store",
            S3Credentials(spare.access_key, spare.secret_key),
            new_access_key=spare.access_key,
        )
    with pytest.raises(RuntimeError):
        connect.rekey_data_store("missing", S3Credentials(spare.access_key, spare.secret_key))
    before = connect.get_data_store("store")
    assert before is not None and before.access_key == s3_server.admin.access_key
    connect.rekey_data_store("store", S3Credentials(spare.access_key, spare.secret_key))
    after = connect.get_data_store("store")
    assert after is not None
    assert (after.access_key, after.secret_key) == (spare.access_key, spare.secret_key)
    assert after.rekey_state == filespace.DataStoreRekeyState.NO_REKEY
    connect.rekey_data_store(
        "store",
        new_access_key=s3_server.admin.access_key,
        new_secret_key=s3_server.admin.secret_key,
    )
    assert connect.get_data_store("store").access_key == s3_server.admin.access_key  # type: ignore[union-attr]


@pytest.mark.parametrize("fails", ["sealing", "writing"])
def test_a_failed_rekey_leaves_the_store_as_it_was(
    connected: Filespace,
    s3_server: SeaweedS3,
    s3_admin: Any,
    bucket: str,
    monkeypatch: pytest.MonkeyPatch,
    fails: str,
) -> None:
    # Rotation is one transaction: a failure anywhere in it must not strand the
    # store IN_PROGRESS, nor leave half of the new credentials behind.
    from filespace.sealing import Sealer

    etag = s3_admin.put_object(Bucket=bucket, Key="kept.txt", Body=b"still readable")["ETag"]
    connected.connect.link_file("/kept.txt", "store", "kept.txt", 14, etag)

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise filespace.EngineError(f"injected failure while {fails}")

    if fails == "sealing":
        monkeypatch.setattr(Sealer, "seal", broken)
    else:
        engine = connected._engine
        real_update = engine.update_store

        def update(name: str, **changes: object) -> Any:
            return broken() if "access_key" in changes else real_update(name, **changes)

        monkeypatch.setattr(engine, "update_store", update)
    spare = S3Credentials(s3_server.spare.access_key, s3_server.spare.secret_key)
    with pytest.raises(filespace.EngineError, match="injected"):
        connected.connect.rekey_data_store("store", spare)
    monkeypatch.undo()
    after = connected.connect.get_data_store("store")
    assert after is not None
    assert after.rekey_state == filespace.DataStoreRekeyState.NO_REKEY
    assert (after.access_key, after.secret_key) == (
        s3_server.admin.access_key,
        s3_server.admin.secret_key,
    )
    assert connected.fs.read_file("/kept.txt") == b"still readable"


def test_http_links(connected: Filespace, s3_server: SeaweedS3, s3_admin: Any, bucket: str) -> None:
    s3_admin.put_object(Bucket=bucket, Key="web.txt", Body=b"served over http")
    s3_admin.put_object(Bucket=bucket, Key="web2.txt", Body=b"second version!!")
    url = s3_admin.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "web.txt"}, ExpiresIn=3600
    )
    url2 = s3_admin.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "web2.txt"}, ExpiresIn=3600
    )
    connect = connected.connect
    connect.configure(allow_private_urls=True)  # the test server is on loopback
    connect.link_http_file("/web", url)
    assert connected.fs.get_entry("/web").size == 16
    assert connected.fs.read_file("/web") == b"served over http"
    info = connect.get_external_file("/web")
    assert info.kind == "http" and info.url == url and info.data_store_name is None
    connect.update_http_file_url("/web", url2)
    assert connected.fs.read_file("/web") == b"second version!!"
    connect.link_http_file("/sized", url, size=16)
    assert connected.fs.read_file("/sized") == b"served over http"
    with pytest.raises(ValueError, match="size must be a non-negative int, got -1"):
        connect.link_http_file("/neg", url, size=-1)
    with pytest.raises(ValueError, match="must be http:// or https:// with a host"):
        connect.link_http_file("/bad", "ftp://x/y")
    with pytest.raises(FileExistsError):
        connect.link_http_file("/web", url)
    connect.link_file("/s3", "store", "web.txt")
    with pytest.raises(filespace.NotALinkError):
        connect.update_http_file_url("/s3", url)
    with pytest.raises(RuntimeError, match="cannot reach"):
        connect.link_http_file("/down", "http://127.0.0.1:9/nothing")
    assert not connected.fs.file_exists("/down")


def test_unavailable_messages(fsp: Filespace) -> None:
    with pytest.raises(filespace.ConnectUnavailableError, match="enable"):
        fsp.connect.link_file("/a", "s", "k", size=1, checksum="e")
    for call in (
        fsp.connect.list_data_stores,
        lambda: fsp.connect.count_external_files("s"),
        lambda: fsp.connect.get_data_store("s"),
        lambda: fsp.connect.unlink_file("/a"),
    ):
        with pytest.raises(RuntimeError, match="not enabled"):
            call()


# -- operations the interfaces use -----------------------------------------------


def test_link_file_create_parents(
    connected: Filespace, s3_admin: Any, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3_admin.put_object(Bucket=bucket, Key="k", Body=b"abc")
    connect, fs = connected.connect, connected.fs
    with pytest.raises(filespace.MissingParentError):
        connect.link_file("/a/b/c.bin", "store", "k")  # the default makes nothing
    assert not fs.dir_exists("/a")
    connect.link_file("/a/b/c.bin", "store", "k", create_parents=True)  # by HeadObject
    assert fs.read_file("/a/b/c.bin") == b"abc" and fs.dir_exists("/a/b")
    connect.link_file("/a/x/y/z", "store", "k", 3, "e", create_parents=True)  # no HeadObject
    assert fs.get_entry("/a/x/y/z").external is not None
    connect.link_file("/a/b/d.bin", "store", "k", create_parents=True)  # parents already there
    fs.create_symlink("/a/b", "/via")
    connect.link_file("/via/new/e.bin", "store", "k", 3, "e", create_parents=True)
    assert fs.file_exists("/a/b/new/e.bin")  # the symlink on the way was followed
    with pytest.raises(filespace.LinkExistsError):
        connect.link_file("/a/b/c.bin", "store", "k", 3, "e", create_parents=True)
    with pytest.raises(filespace.MissingParentError):  # a file is in the way
        connect.link_file("/a/b/c.bin/under", "store", "k", 3, "e", create_parents=True)
    with pytest.raises(filespace.ObjectNotFoundError):  # looked up before any directory is made
        connect.link_file("/gone/deep/x", "store", "no-such-key", create_parents=True)
    assert not fs.dir_exists("/gone")
    with pytest.raises(ValueError, match="create_parents"):
        connect.link_file("/a/q", "store", "k", 3, "e", create_parents="yes")  # type: ignore[arg-type]
    # A link that fails after its directories were made takes them away again.
    from filespace.meta.errors import NameTaken

    engine = connected._engine
    real_create = engine.create

    def taken(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("link") is not None:
            raise NameTaken()
        return real_create(*args, **kwargs)

    monkeypatch.setattr(engine, "create", taken)
    with pytest.raises(filespace.LinkExistsError):
        connect.link_file("/undo/me/x", "store", "k", 3, "e", create_parents=True)
    monkeypatch.undo()
    assert not fs.dir_exists("/undo")


def test_data_store_without_secret(
    tmp_path: Any, s3_server: SeaweedS3, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = filespace.generate_key()
    with filespace.create(tmp_path / "s", name="x", key=key) as fsp:
        fsp.connect.enable()
        fsp.connect.add_data_store("store", store_config(s3_server, bucket))
        full = fsp.connect.get_data_store("store")
        assert full is not None and full.secret_key == s3_server.admin.secret_key
        info = fsp.connect.data_store("store")
        assert info.secret_key == ""
        assert info == fsp.connect.list_data_stores()[0]
        assert (info.name, info.bucket_name, info.endpoint) == ("store", bucket, full.endpoint)
        with pytest.raises(filespace.DataStoreNotFoundError, match="no data store named 'nope'"):
            fsp.connect.data_store("nope")
        with pytest.raises(ValueError, match="invalid data store name 'bad name'"):
            fsp.connect.data_store("bad name")
    monkeypatch.delenv("FILESPACE_KEY", raising=False)
    with filespace.open(tmp_path / "s") as fsp:  # no key at hand: the secret cannot be opened
        assert fsp.connect.data_store("store").access_key == s3_server.admin.access_key
        with pytest.raises(filespace.KeyNotFoundError):
            fsp.connect.get_data_store("store")


def test_verify_data_store(connected: Filespace, s3_server: SeaweedS3, bucket: str) -> None:
    import pickle

    from tests.cli_helpers import unused_port_endpoint

    connect = connected.connect
    connect.verify_data_store("store")  # the stored credentials answer
    connect.verify_data_store(store_config(s3_server, bucket))
    reader = s3_server.reader
    connect.verify_data_store(
        store_config(s3_server, bucket, access_key=reader.access_key, secret_key=reader.secret_key)
    )
    admin, noaccess, spare = s3_server.admin, s3_server.noaccess, s3_server.spare
    cases = [  # overrides, status, what the message says
        ({"access_key": noaccess.access_key, "secret_key": noaccess.secret_key}, "auth failed",
         "access denied"),
        ({"access_key": spare.access_key, "secret_key": admin.secret_key}, "auth failed",
         "the secret key does not match access key"),
        ({"access_key": "NOSUCHACCESSKEY12345"}, "auth failed", "is not known at"),
        ({"bucket_name": "no-such-bucket-here"}, "no such bucket", "does not exist at"),
        ({"endpoint": unused_port_endpoint()}, "unreachable", "cannot reach http://"),
    ]  # fmt: skip
    for overrides, status, words in cases:
        with pytest.raises(filespace.DataStoreAccessError, match=words) as refused:
            connect.verify_data_store(store_config(s3_server, bucket, **overrides))
        assert refused.value.status == status
        assert isinstance(refused.value, filespace.DataStoreError)
        assert admin.secret_key not in str(refused.value)
        copy = pickle.loads(pickle.dumps(refused.value))  # noqa: S301 - our own bytes
        assert (str(copy), copy.status) == (str(refused.value), status)
    with pytest.raises(filespace.DataStoreNotFoundError):
        connect.verify_data_store("nope")
    with pytest.raises(ValueError, match="invalid bucket name"):
        connect.verify_data_store(store_config(s3_server, bucket, bucket_name="Bad_Bucket"))
    connect.add_data_store("dead", store_config(s3_server, bucket, endpoint=unused_port_endpoint()))
    with pytest.raises(filespace.DataStoreAccessError) as dead:
        connect.verify_data_store("dead")
    assert dead.value.status == "unreachable"


def test_head_object(connected: Filespace, s3_admin: Any, bucket: str) -> None:
    s3_admin.put_object(Bucket=bucket, Key="h", Body=b"12345")
    etag = s3_admin.head_object(Bucket=bucket, Key="h")["ETag"].strip('"')
    assert connected.connect.head_object("store", "h") == (5, etag)
    with pytest.raises(filespace.ObjectNotFoundError, match="no object 'missing'"):
        connected.connect.head_object("store", "missing")
    with pytest.raises(filespace.DataStoreNotFoundError):
        connected.connect.head_object("nope", "h")
    with pytest.raises(ValueError, match="object_id must be a non-empty string"):
        connected.connect.head_object("store", "")


def test_public_validation_helpers() -> None:
    assert filespace.validate_store_name("ok.name-1") == "ok.name-1"
    assert filespace.validate_checksum('"abc"') == "abc"
    assert filespace.validate_object_key("a/b") == "a/b"
    assert filespace.validate_http_url("https://h/x") == "https://h/x"
    config = filespace.validate_data_store_config(
        filespace.S3DataStoreConfig("AK", "SK", "bucket-name", "us-east-1", "http://h:1/")
    )
    assert config.endpoint == "http://h:1"
    assert config.url_expiration_minutes == filespace.DEFAULT_URL_EXPIRATION_MINUTES
    assert filespace.MAX_DATA_STORES == 1000
    for bad, message in (
        (lambda: filespace.validate_store_name("bad name"), "invalid data store name"),
        (lambda: filespace.validate_http_url("ftp://h"), "must be http:// or https://"),
        (lambda: filespace.validate_object_key(""), "object_id must be a non-empty string"),
        (
            lambda: filespace.validate_data_store_config("not a config"),
            "config must be an S3DataStoreConfig",
        ),
    ):
        with pytest.raises(ValueError, match=message):
            bad()


def test_unlink_tree_removes_links_only_in_the_engine(
    connected: Filespace, s3_server: SeaweedS3, bucket: str
) -> None:
    connect, fs = connected.connect, connected.fs
    connect.add_data_store("other", store_config(s3_server, bucket))
    fs.create_dir("/t/deep", parents=True)
    connect.link_file("/t/a", "store", "k1", 3, "e1")
    connect.link_file("/t/deep/b", "store", "k2", 4, "e2")
    connect.link_file("/t/deep/c", "other", "k3", 5, "e3")
    connect.configure(allow_private_urls=True)  # a loopback URL, never read
    connect.link_http_file("/t/u", "http://127.0.0.1:9/never-read", size=6)
    fs.write_file("/t/deep/native", b"kept")
    fs.create_symlink("/t/a", "/t/link")
    connect.link_file("/outside", "store", "k4", 7, "e4")
    with pytest.raises(filespace.DataStoreNotFoundError):
        connect.unlink_tree("/t", data_store_name="nope")
    with pytest.raises(NotADirectoryError):
        connect.unlink_tree("/t/deep/native")
    assert connect.unlink_tree("/t", data_store_name="store", dry_run=True) == 2
    assert fs.exists("/t/a")
    assert connect.unlink_tree("/t", data_store_name="store") == 2
    assert not fs.exists("/t/a") and not fs.exists("/t/deep/b") and fs.exists("/t/deep/c")
    assert connect.count_external_files("store") == 1  # /outside
    assert connect.unlink_tree("/t") == 2  # the other store's link and the URL
    assert sorted(path for path, _ in fs.walk("/t")) == [
        "/t/deep",
        "/t/deep/native",
        "/t/link",
    ]
    stats = fs.get_statistics()
    assert (stats.external_files_count, stats.external_files_size) == (1, 7)
    assert connect.count_external_files("other") == 0
