"""Block stores: one contract suite for the local and the S3 store, and filespaces on S3 data."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import filespace
from filespace.blocks import BlockStore, LocalBlockStore, new_block_key, open_block_store
from filespace.blocks.s3 import S3BlockStore, S3BlockStoreOptions
from filespace.testing import SeaweedS3


def s3_options(server: SeaweedS3, **overrides: Any) -> S3BlockStoreOptions:
    options: dict[str, Any] = {
        "region": server.region,
        "endpoint": server.endpoint,
        "access_key": server.admin.access_key,
        "secret_key": server.admin.secret_key,
    }
    options.update(overrides)
    return S3BlockStoreOptions(**options)


def s3_data(server: SeaweedS3, **overrides: Any) -> dict[str, Any]:
    """``create`` keywords for an S3 block store on ``server`` with the admin identity."""
    options: dict[str, Any] = {
        "data_region": server.region,
        "data_endpoint": server.endpoint,
        "data_access_key": server.admin.access_key,
        "data_secret_key": server.admin.secret_key,
    }
    options.update(overrides)
    return options


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlockStore]:
    """Each block store, empty."""
    if request.param == "local":
        yield LocalBlockStore(tmp_path / "blocks")
        return
    server: SeaweedS3 = request.getfixturevalue("s3_server")
    bucket: str = request.getfixturevalue("bucket")
    yield open_block_store(f"s3://{bucket}/some/prefix", s3=s3_options(server))


# -- the contract ---------------------------------------------------------------------


def test_put_get_ranges(store: BlockStore) -> None:
    key = new_block_key()
    data = os.urandom(100_000)
    store.put(key, memoryview(data))
    assert store.get(key) == data
    assert store.get(key, 10) == data[10:]
    assert store.get(key, 10, 20) == data[10:30]
    assert store.get(key, 99_990, 100) == data[99_990:]  # short at the end
    assert store.get(key, 0, 0) == b""
    target = bytearray(50)
    assert store.readinto(key, 99_980, memoryview(target)) == 20
    assert bytes(target[:20]) == data[99_980:]


def test_missing_block_is_file_not_found(store: BlockStore) -> None:
    with pytest.raises(FileNotFoundError):
        store.get(new_block_key())
    with pytest.raises(FileNotFoundError):
        store.readinto(new_block_key(), 0, memoryview(bytearray(4)))


def test_bad_keys_are_refused(store: BlockStore) -> None:
    for key in ("../etc", "a/b", "", "ab", "ключ"):
        with pytest.raises(ValueError, match="block key"):
            store.put(key, b"x")


def test_put_many_delete_and_list(store: BlockStore) -> None:
    assert store.is_empty()
    blocks = [(new_block_key(), os.urandom(1000 + n)) for n in range(20)]
    before = time.time()
    store.put_many(blocks)
    after = time.time()
    assert sorted(store.keys()) == sorted(key for key, _ in blocks)
    for key, data in blocks:
        assert store.get(key) == data
    stamps = list(store.stamps())
    # The time of the write (S3 gives whole seconds, hence the second either side).
    assert all(before - 1 <= stamp.modified <= after + 1 for stamp in stamps)
    store.delete([key for key, _ in blocks[:5]] + [new_block_key()])  # a missing key is fine
    assert sorted(store.keys()) == sorted(key for key, _ in blocks[5:])
    store.delete([])
    later = [(new_block_key(), os.urandom(5000)) for _ in range(3)]
    store.put_many(later, durable=False)  # readable at once, durable after sync
    store.sync(key for key, _ in later)
    assert [store.get(key) for key, _ in later] == [data for _, data in later]


def test_sweep_spares_referenced_and_young_blocks(store: BlockStore) -> None:
    keys = [new_block_key() for _ in range(6)]
    store.put_many([(key, b"data") for key in keys])
    referenced = set(keys[:2])
    assert store.sweep(referenced, older_than=time.time() - 3600) == 0  # all young
    assert sorted(store.keys()) == sorted(keys)
    assert store.sweep(referenced, older_than=time.time() + 5) == 4
    assert sorted(store.keys()) == sorted(referenced)


def test_claim(store: BlockStore) -> None:
    assert store.owner() is None
    store.claim("space-1")
    store.claim("space-1")  # idempotent
    assert store.owner() == "space-1"
    with pytest.raises(FileExistsError):
        store.claim("space-2")
    assert list(store.keys()) == []  # the marker is not a block


def test_unclaimed_store_with_blocks_is_refused(store: BlockStore) -> None:
    store.put(new_block_key(), b"x")
    with pytest.raises(FileExistsError, match="holds blocks"):
        store.check_claimable("space-1")


def test_s3_layout(s3_server: SeaweedS3, bucket: str, s3_admin: Any) -> None:
    store = S3BlockStore(f"s3://{bucket}/p/q/", s3_options(s3_server))
    assert store.url == f"s3://{bucket}/p/q"
    store.claim("me")
    key = new_block_key()
    store.put(key, b"abc")
    names = sorted(o["Key"] for o in s3_admin.list_objects_v2(Bucket=bucket)["Contents"])
    assert names == sorted([f"p/q/blocks/{key[:2]}/{key}", "p/q/filespace-id"])
    assert "secret" not in repr(store).lower()


def test_s3_store_errors_are_oserrors(s3_server: SeaweedS3, bucket: str) -> None:
    denied = S3BlockStore(
        f"s3://{bucket}",
        s3_options(
            s3_server,
            access_key=s3_server.noaccess.access_key,
            secret_key=s3_server.noaccess.secret_key,
        ),
    )
    with pytest.raises(OSError, match="AccessDenied"):
        denied.put(new_block_key(), b"x")
    with pytest.raises(OSError, match="AccessDenied"):
        list(denied.stamps())


def test_unknown_block_store_url() -> None:
    with pytest.raises(ValueError, match="unsupported"):
        open_block_store("ftp://x/y")
    with pytest.raises(ValueError, match="S3 options"):
        open_block_store("s3://bucket/x")


# -- filespaces with S3 data --------------------------------------------------------------


def _all_bytes(root: Path) -> Iterator[tuple[Path, bytes]]:
    for folder, _, files in os.walk(root):
        for name in files:
            path = Path(folder) / name
            yield path, path.read_bytes()


def test_filespace_on_s3_data(
    tmp_path: Path, s3_server: SeaweedS3, bucket: str, isolated_env: Path
) -> None:
    location = tmp_path / "space"
    secret = s3_server.admin.secret_key
    data = os.urandom(3 * 64 * 1024 + 17)
    with filespace.create(
        location,
        name="s3",
        data=f"s3://{bucket}/team/a",
        block_size=64 * 1024,
        **s3_data(s3_server),
    ) as fsp:
        assert fsp.data_url == f"s3://{bucket}/team/a"
        fsp.fs.write_file("/f.bin", data)
        with fsp.fs.open("/f.bin", "r+b") as handle:
            handle.seek(64 * 1024 - 2)
            handle.write(b"XYZW")
        expected = bytearray(data)
        expected[64 * 1024 - 2 : 64 * 1024 + 2] = b"XYZW"
        assert fsp.fs.read_file("/f.bin") == expected
        assert not (location / "blocks").exists()
    with filespace.open(location) as fsp:
        assert fsp.fs.read_file("/f.bin") == expected
        with fsp.fs.open("/f.bin", "rb") as handle:
            handle.seek(64 * 1024 + 1)
            assert handle.read(10) == expected[64 * 1024 + 1 : 64 * 1024 + 11]
        fsp.fs.delete("/f.bin")
        assert fsp.sweep_blocks(0) == 0  # deleting a file deletes its blocks at once
    # The secret is sealed: no file of the filespace (database, WAL, config) holds it, nor
    # any file of the user's config and cache directories (the key file is there).
    assert (isolated_env / "config").is_dir()
    for root in (location, isolated_env):
        found = [path for path, content in _all_bytes(root) if secret.encode() in content]
        assert found == []
    assert os.environ.get("FILESPACE_KEY") is None


def test_s3_data_needs_the_key(tmp_path: Path, s3_server: SeaweedS3, bucket: str) -> None:
    key = filespace.generate_key()
    with filespace.create(
        tmp_path / "s", name="s3", data=f"s3://{bucket}", key=key, **s3_data(s3_server)
    ) as fsp:
        fsp.fs.write_file("/f", b"hello")
    with filespace.open(tmp_path / "s") as fsp:  # no key anywhere: metadata only
        assert fsp.fs.list_dir("/") == ["f"]
        with pytest.raises(filespace.KeyNotFoundError):
            fsp.fs.read_file("/f")
    with pytest.raises(filespace.WrongKeyError):
        filespace.open(tmp_path / "s", key=filespace.generate_key())
    with filespace.open(tmp_path / "s", key=key) as fsp:
        assert fsp.fs.read_file("/f") == b"hello"


def test_engine_url_with_s3_data(tmp_path: Path, s3_server: SeaweedS3, bucket: str) -> None:
    url = f"sqlite://{tmp_path}/meta.db"
    with filespace.create(url, name="u", data=f"s3://{bucket}/x", **s3_data(s3_server)) as fsp:
        fsp.fs.write_file("/f", b"abc" * 1000)
    with filespace.open(url) as fsp:
        assert fsp.fs.read_file("/f") == b"abc" * 1000
        assert fsp.data_url == f"s3://{bucket}/x"


def test_bad_data_options_create_nothing(
    tmp_path: Path, s3_server: SeaweedS3, bucket: str, s3_admin: Any
) -> None:
    location = tmp_path / "space"
    opts = s3_data(s3_server)
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("gs://bucket/x", opts, "data must be"),
        ("s3://", opts, "data must be"),
        ("s3://Bad_Bucket/x", opts, "bucket"),
        ("s3://ab/x", opts, "bucket"),
        (f"s3://{bucket}/a//b", opts, "prefix"),
        (f"s3://{bucket}/a/../b", opts, "prefix"),
        (f"s3://{bucket}/x?y=1", opts, "data must be"),
        (f"s3://user:pw@{bucket}/x", opts, "credentials"),
        (f"s3://{bucket}/x", {**opts, "data_secret_key": None}, "data_secret_key"),
        (f"s3://{bucket}/x", {**opts, "data_endpoint": "ftp://x"}, "endpoint"),
        (f"s3://{bucket}/x", {**opts, "data_region": "Not A Region"}, "region"),
        ("s3://no-such-bucket-here/x", opts, "refused"),
        (
            f"s3://{bucket}/x",
            {**opts, "data_secret_key": s3_server.spare.secret_key},  # wrong secret
            "refused",
        ),
        ((tmp_path / "d").as_uri(), {"data_access_key": "AK"}, "s3:// data URL only"),
    ]
    for data, options, message in cases:
        with pytest.raises(ValueError, match=message):
            filespace.create(location, name="n", data=data, **options)
        with pytest.raises(ValueError, match=message):
            filespace.create(f"sqlite://{tmp_path}/m.db", name="n", data=data, **options)
    assert not location.exists()
    assert not (tmp_path / "m.db").exists()
    assert not (tmp_path / "d").exists()
    assert "Contents" not in s3_admin.list_objects_v2(Bucket=bucket)


def test_unreachable_data_endpoint(tmp_path: Path, s3_server: SeaweedS3, bucket: str) -> None:
    with pytest.raises(ConnectionError):
        filespace.create(
            tmp_path / "s",
            name="n",
            data=f"s3://{bucket}",
            **s3_data(s3_server, data_endpoint="http://127.0.0.1:9"),
        )
    assert not (tmp_path / "s").exists()


def test_data_prefix_is_not_shared(tmp_path: Path, s3_server: SeaweedS3, bucket: str) -> None:
    filespace.create(
        tmp_path / "a", name="a", data=f"s3://{bucket}/shared", **s3_data(s3_server)
    ).close()
    with pytest.raises(FileExistsError, match="belongs to filespace"):
        filespace.create(
            tmp_path / "b", name="b", data=f"s3://{bucket}/shared", **s3_data(s3_server)
        )
    assert not (tmp_path / "b").exists()
    # A different prefix of the same bucket is fine, and so is a nested local directory.
    filespace.create(
        tmp_path / "c", name="c", data=f"s3://{bucket}/other", **s3_data(s3_server)
    ).close()
    shared = (tmp_path / "blocks").as_uri()
    filespace.create(f"sqlite://{tmp_path}/x.db", name="x", data=shared).close()
    with pytest.raises(FileExistsError):
        filespace.create(f"sqlite://{tmp_path}/y.db", name="y", data=shared)
    assert not (tmp_path / "y.db").exists()


# -- sweeping ------------------------------------------------------------------------------


def _filespace(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> filespace.Filespace:
    if kind == "local":
        return filespace.create(tmp_path / "space", name="sweep", block_size=64 * 1024)
    server: SeaweedS3 = request.getfixturevalue("s3_server")
    bucket: str = request.getfixturevalue("bucket")
    return filespace.create(
        tmp_path / "space",
        name="sweep",
        block_size=64 * 1024,
        data=f"s3://{bucket}/p",
        **s3_data(server),
    )


@pytest.mark.parametrize("kind", ["local", "s3"])
def test_sweep_blocks(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    with _filespace(kind, tmp_path, request) as fsp:
        store = fsp._blocks()  # type: ignore[attr-defined]
        fsp.fs.write_file("/kept", os.urandom(200_000))
        orphans = [new_block_key() for _ in range(3)]
        store.put_many([(key, b"orphan") for key in orphans])
        referenced = set(store.keys()) - set(orphans)
        assert len(referenced) == 4
        assert fsp.sweep_blocks() == 0  # the orphans are younger than an hour
        assert fsp.sweep_blocks(grace=0) == 3
        assert set(store.keys()) == referenced
        assert len(fsp.fs.read_file("/kept")) == 200_000
        with pytest.raises(ValueError, match="grace"):
            fsp.sweep_blocks(grace=-1)


def test_sweep_syncs_open_writers_first(fsp: filespace.Filespace) -> None:
    handle = fsp.fs.open("/w", "wb")
    handle.write(b"x" * 100)
    assert fsp.sweep_blocks(grace=0) == 0
    handle.write(b"y")
    handle.close()
    assert fsp.fs.read_file("/w") == b"x" * 100 + b"y"


def test_sweep_refuses_a_foreign_store(tmp_path: Path) -> None:
    data = (tmp_path / "blocks").as_uri()
    with filespace.create(f"sqlite://{tmp_path}/a.db", name="a", data=data) as fsp:
        (tmp_path / "blocks" / ".filespace-id").write_text("someone-else\n")
        with pytest.raises(RuntimeError, match="not sweeping"):
            fsp.sweep_blocks(grace=0)
