"""Data stores through ``fsp.connect``: what a user sees of adding, naming, rekeying,
verifying, listing and following them.

Each test checks what API.md, docs/semantics.md and docs/security.md promise
and what a user can observe: whole error messages, every field read back,
the stored rotation state, the sealed layout older filespaces hold, the
requests ``verify_data_store`` sends, the default page size, and how
``follow`` maps keys under a prefix. Real SeaweedFS throughout; the engine is
read or changed past the API only where a test plays an older version or an
engine writer.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

import filespace
from filespace import Filespace, LinkItem, S3Credentials
from filespace.sealing import Sealer
from filespace.testing import SeaweedS3
from tests.bucket_events import Bucket, as_message
from tests.faultproxy import FaultProxy, _Request
from tests.fsfixtures import query_sql, raw_sql, store_config
from tests.test_follow_webhook import TOKEN, _free_port, listening, post
from tests.test_link_files import s3_client


def exactly(message: str) -> str:
    """A ``match=`` pattern for the whole message, as the user reads it."""
    return f"^{re.escape(message)}$"


# -- where Connect says it is -----------------------------------------------------------


def test_connect_names_its_filespace_in_reprs_and_messages(tmp_path: Path) -> None:
    """The location shown is the filespace's public one, in reprs and in the upgrade hint."""
    with filespace.create(tmp_path / "old", name="old", format_version=8) as fsp:
        where = fsp.location
        assert repr(fsp.connect) == f"ConnectManager(location={where!r})"
        assert repr(fsp.connect.url_provider) == f"Access(location={where!r})"
        with pytest.raises(
            filespace.ConnectUnavailableError,
            match=exactly(
                "Connect needs filespace format 9 or newer; this one is format 8: upgrade it"
                f" with filespace.upgrade({where!r}) or `filespace upgrade LOCATION`"
            ),
        ):
            fsp.connect.list_data_stores()


# -- adding and reading back ---------------------------------------------------------


def test_a_store_reads_back_as_it_was_added(connected: Filespace, s3_server: SeaweedS3) -> None:
    """Every field of the config comes back, from ``add`` and every way of reading a store."""
    spare = s3_server.spare
    config = store_config(
        s3_server,
        "far-bucket",
        access_key=spare.access_key,
        secret_key=spare.secret_key,
        region="eu-west-3",
        url_expiration_minutes=7,
        use_virtual_addressing=True,
    )
    key_id = connected.connect.data_store("store").key_id
    assert key_id
    expected = filespace.DataStoreInfo(
        name="far",
        access_key=spare.access_key,
        secret_key="",
        bucket_name="far-bucket",
        region="eu-west-3",
        endpoint=s3_server.endpoint,
        url_expiration_minutes=7,
        use_virtual_addressing=True,
        kind=filespace.DataStoreKind.S3,
        key_id=key_id,
        rekey_state=filespace.DataStoreRekeyState.NO_REKEY,
    )
    assert connected.connect.add_data_store("far", config) == expected
    assert connected.connect.data_store("far") == expected
    assert connected.connect.list_data_stores()[0] == expected  # "far" sorts before "store"
    full = connected.connect.get_data_store("far")
    assert full == dataclasses.replace(expected, secret_key=spare.secret_key)


def test_adding_a_store_under_a_taken_name_names_it(
    connected: Filespace, s3_server: SeaweedS3, bucket: str
) -> None:
    with pytest.raises(
        filespace.DataStoreExistsError, match=exactly("a data store named 'store' already exists")
    ) as caught:
        connected.connect.add_data_store("store", store_config(s3_server, bucket))
    assert isinstance(caught.value, RuntimeError)


def test_a_stores_secret_is_sealed_in_the_documented_layout(
    connected: Filespace, s3_server: SeaweedS3, bucket: str
) -> None:
    """docs/security.md: AES-256-GCM, bound to the filespace, the store and its destination.

    The layout is what filespaces already written hold, so it is fixed both
    ways: a secret this version seals opens with the documented associated
    data, and one sealed from that description opens here.
    """
    config = store_config(s3_server, bucket, region="eu-west-3", use_virtual_addressing=True)
    connected.connect.add_data_store("bound", config)
    ((uid, sealed),) = query_sql(
        connected, "SELECT uid, sealed_secret FROM data_stores WHERE name = 'bound'"
    )
    fields = {
        "kind": "S3DataStore",
        "bucket": bucket,
        "region": "eu-west-3",
        "endpoint": s3_server.endpoint,
        "virtual_addressing": True,
        "access_key": s3_server.admin.access_key,
    }
    context = (
        f"filespace:{connected.id}|data_store:{uid}:secret_key|"
        + json.dumps(fields, sort_keys=True, separators=(",", ":"))
    ).encode()
    cipher = AESGCM(connected._sealer()._key)
    sealed = bytes(sealed)
    assert sealed[:1] == b"\x02"
    assert cipher.decrypt(sealed[1:13], sealed[13:], context).decode() == config.secret_key

    nonce = os.urandom(12)
    written = b"\x02" + nonce + cipher.encrypt(nonce, b"a-secret-sealed-elsewhere", context)
    raw_sql(connected, "UPDATE data_stores SET sealed_secret = ? WHERE name = 'bound'", written)
    info = connected.connect.get_data_store("bound")
    assert info is not None and info.secret_key == "a-secret-sealed-elsewhere"


# -- unknown names ---------------------------------------------------------------------


def test_an_unknown_store_in_a_filespace_without_stores(fsp: Filespace) -> None:
    fsp.connect.enable()
    message = exactly("no data store named 'lake'; this filespace has no data stores")
    with pytest.raises(filespace.DataStoreNotFoundError, match=message):
        fsp.connect.data_store("lake")
    with pytest.raises(filespace.DataStoreNotFoundError, match=message):
        fsp.connect.link_file("/x", "lake", "k", size=1, checksum="e")


def test_an_unknown_store_suggests_at_most_three_close_names(
    connected: Filespace, s3_server: SeaweedS3, bucket: str
) -> None:
    for name in ("alpha1", "alpha2", "alpha3", "alpha4"):
        connected.connect.add_data_store(name, store_config(s3_server, bucket))
    with pytest.raises(
        filespace.DataStoreNotFoundError,
        match=exactly(
            "no data store named 'alpha'; did you mean 'alpha4' or 'alpha3' or 'alpha2'?"
        ),
    ):
        connected.connect.data_store("alpha")


def test_an_unknown_store_lists_the_first_twenty_names(
    fsp: Filespace, s3_server: SeaweedS3, bucket: str
) -> None:
    """No close name: the stores are listed, twenty at most, and how many more there are."""
    fsp.connect.enable()
    names = [f"s{n:02}" for n in range(21)]
    for name in names[:20]:
        fsp.connect.add_data_store(name, store_config(s3_server, bucket))
    listed = ", ".join(names[:20])
    with pytest.raises(
        filespace.DataStoreNotFoundError,
        match=exactly(f"no data store named 'zzz'; the data stores are: {listed}"),
    ):
        fsp.connect.data_store("zzz")
    fsp.connect.add_data_store(names[20], store_config(s3_server, bucket))
    with pytest.raises(
        filespace.DataStoreNotFoundError,
        match=exactly(f"no data store named 'zzz'; the data stores are: {listed} and 1 more"),
    ):
        fsp.connect.data_store("zzz")


# -- removing ------------------------------------------------------------------------


def test_removing_an_unknown_store_names_it(connected: Filespace) -> None:
    """API.md: a missing store is a ``RuntimeError``; the message names what was asked for."""
    with pytest.raises(
        filespace.DataStoreNotFoundError, match=exactly("no data store named 'gone'")
    ) as caught:
        connected.connect.remove_data_store("gone")
    assert isinstance(caught.value, RuntimeError)


def test_removing_a_store_with_links_names_it_and_counts_them(
    connected: Filespace, s3_admin: Any, bucket: str
) -> None:
    """API.md: refused with a ``RuntimeError`` saying how many; nothing is removed."""
    s3_admin.put_object(Bucket=bucket, Key="k", Body=b"x")
    connected.connect.link_file("/k", "store", "k")
    with pytest.raises(
        filespace.DataStoreNotEmptyError,
        match=exactly("data store 'store' still has 1 linked file(s); unlink them first"),
    ) as caught:
        connected.connect.remove_data_store("store")
    assert isinstance(caught.value, RuntimeError)
    assert (caught.value.name, caught.value.count) == ("store", 1)
    assert [s.name for s in connected.connect.list_data_stores()] == ["store"]


# -- rekeying: bad calls -------------------------------------------------------------


@pytest.mark.parametrize(
    ("credentials", "keywords", "message"),
    [
        (
            S3Credentials("AK", "SK"),
            {"new_access_key": "AK"},
            "pass credentials or new_access_key/new_secret_key, not both",
        ),
        (
            S3Credentials("AK", "SK"),
            {"new_secret_key": "SK"},
            "pass credentials or new_access_key/new_secret_key, not both",
        ),
        (("AK", "SK"), {}, "credentials must be S3Credentials"),
        (None, {}, "new credentials are required"),
    ],
)
def test_a_rekey_call_with_credentials_given_wrongly_is_refused(
    connected: Filespace,
    s3_server: SeaweedS3,
    credentials: Any,
    keywords: dict[str, str],
    message: str,
) -> None:
    """API.md: exactly one way of passing credentials, else ``ValueError``; nothing changes."""
    before = query_sql(connected, "SELECT access_key, sealed_secret FROM data_stores")
    with pytest.raises(ValueError, match=exactly(message)):
        connected.connect.rekey_data_store("store", credentials, **keywords)
    assert query_sql(connected, "SELECT access_key, sealed_secret FROM data_stores") == before


# -- rekeying: what it writes --------------------------------------------------------


def _seal_layout_1(sealer: Sealer, secret: str, record: str) -> bytes:
    """A secret as versions before destination binding sealed it (bound to the record only)."""
    nonce = os.urandom(12)
    context = f"filespace:{sealer._filespace_id}|{record}".encode()
    return b"\x01" + nonce + AESGCM(sealer._key).encrypt(nonce, secret.encode(), context)


def test_a_store_sealed_by_an_older_version_can_be_rekeyed(
    connected: Filespace, s3_server: SeaweedS3
) -> None:
    """A layout-1 secret is opened (and resealed) on the way; the new credentials stick."""
    store = connected._engine.store("store")
    assert store is not None
    old = _seal_layout_1(
        connected._sealer(), s3_server.admin.secret_key, f"data_store:{store.uid}:secret_key"
    )
    raw_sql(connected, "UPDATE data_stores SET sealed_secret = ? WHERE name = 'store'", old)
    spare = s3_server.spare
    connected.connect.rekey_data_store("store", S3Credentials(spare.access_key, spare.secret_key))
    info = connected.connect.get_data_store("store")
    assert info is not None
    assert (info.access_key, info.secret_key) == (spare.access_key, spare.secret_key)
    connected.connect.verify_data_store("store")


def test_a_rekey_mends_a_store_left_in_progress(connected: Filespace, s3_server: SeaweedS3) -> None:
    """docs/semantics.md: ``IN_PROGRESS`` an older version left is mended by the next rotation."""
    raw_sql(connected, "UPDATE data_stores SET rekey_state = 'in_progress' WHERE name = 'store'")
    progress = filespace.DataStoreRekeyState.IN_PROGRESS
    assert connected.connect.data_store("store").rekey_state == progress
    spare = s3_server.spare
    connected.connect.rekey_data_store(
        "store", new_access_key=spare.access_key, new_secret_key=spare.secret_key
    )
    assert connected.connect.data_store("store").rekey_state == (
        filespace.DataStoreRekeyState.NO_REKEY
    )


def test_a_rekey_records_the_key_that_sealed_the_new_secret(
    connected: Filespace, s3_server: SeaweedS3
) -> None:
    """``key_id`` names the filespace key the secret is sealed under, whatever it said before."""
    current = connected.connect.data_store("store").key_id
    raw_sql(connected, "UPDATE data_stores SET key_id = 'some-older-key' WHERE name = 'store'")
    spare = s3_server.spare
    connected.connect.rekey_data_store("store", S3Credentials(spare.access_key, spare.secret_key))
    assert connected.connect.data_store("store").key_id == current


# -- verify --------------------------------------------------------------------------


def test_verify_names_the_access_key_whose_secret_does_not_match(
    connected: Filespace, s3_server: SeaweedS3, bucket: str
) -> None:
    """By name (stored credentials) and by config alike, the message says which key failed."""
    wrong = store_config(s3_server, bucket, secret_key="not-the-secret-key-at-all")
    connected.connect.add_data_store("wrong", wrong)
    expected = (
        f"the secret key does not match access key {s3_server.admin.access_key}"
        f" at {s3_server.endpoint}"
    )
    for store in ("wrong", wrong):
        with pytest.raises(filespace.DataStoreAccessError, match=exactly(expected)) as caught:
            connected.connect.verify_data_store(store)
        assert caught.value.status == "auth failed"


class HeaderProxy(FaultProxy):
    """A proxy to the test server that passes everything and keeps each request's headers."""

    def __init__(self, target: str) -> None:
        super().__init__(target)
        self.headers: list[dict[str, str]] = []

    def _record(self, request: _Request, fault: str) -> int:
        # FaultProxy keeps method, path and query; the signature's scope is in a header.
        with self._lock:
            self.headers.append({name.lower(): value for name, value in request.headers})
        return super()._record(request, fault)


def test_verifying_a_config_signs_for_its_region(
    connected: Filespace, s3_server: SeaweedS3, bucket: str
) -> None:
    """The request is signed for the config's region (AWS refuses another one's signature)."""
    proxy = HeaderProxy(s3_server.endpoint)
    with proxy:
        config = store_config(s3_server, bucket, region="eu-west-3", endpoint=proxy.endpoint)
        connected.connect.verify_data_store(config)
    scopes = [
        re.search(r"Credential=[^/]+/\d+/([^/]+)/s3/", h["authorization"]) for h in proxy.headers
    ]
    assert scopes and all(found and found[1] == "eu-west-3" for found in scopes)


def test_verifying_a_virtually_addressed_config_never_puts_the_bucket_in_the_path(
    connected: Filespace, s3_server: SeaweedS3, bucket: str
) -> None:
    """``use_virtual_addressing``: the bucket goes in the host name (here ``BUCKET.localhost``).

    Whether that name resolves depends on the machine (where it does not, the
    bucket is unreachable and nothing arrives), so only what arrived is checked.
    """
    proxy = HeaderProxy(s3_server.endpoint)
    with proxy:
        endpoint = proxy.endpoint.replace("127.0.0.1", "localhost")
        config = store_config(s3_server, bucket, endpoint=endpoint, use_virtual_addressing=True)
        with contextlib.suppress(filespace.DataStoreAccessError):
            connected.connect.verify_data_store(config)
    assert all(h["host"].startswith(f"{bucket}.localhost:") for h in proxy.headers)
    assert not [seen.path for seen in proxy.seen if seen.path.startswith(f"/{bucket}")]


# -- listing -------------------------------------------------------------------------


def test_a_listing_page_holds_100_links_by_default(connected: Filespace) -> None:
    """API.md: ``list_external_files(data_store_name, limit=100, cursor="")``."""
    connected.fs.create_dir("/d")
    items = [LinkItem(f"/d/f{n:03}", f"k{n:03}", 1, "etag") for n in range(101)]
    report = connected.connect.link_files(items, data_store_name="store")
    assert report.linked == 101
    page = connected.connect.list_external_files("store")
    assert page.file_paths == [f"/d/f{n:03}" for n in range(100)]
    assert page.has_more
    rest = connected.connect.list_external_files("store", cursor=page.cursor)
    assert (rest.file_paths, rest.has_more) == (["/d/f100"], False)


# -- webhook token ---------------------------------------------------------------------


def test_the_webhook_token_set_is_the_one_a_listener_requires(connected: Filespace) -> None:
    """The token given to ``set_webhook_token`` is kept: a listener accepts it and only it."""
    connected.connect.set_webhook_token(TOKEN)
    with listening(connected) as (port, _):
        assert post(port, as_message([]), f"Bearer {TOKEN}")[0] == 200
        assert post(port, as_message([]), "Bearer " + "y" * 24)[0] == 401


# -- following ---------------------------------------------------------------------------


def _webhook_source() -> str:
    """A webhook address on a free loopback port (nothing listens until ``run``)."""
    return f"http://127.0.0.1:{_free_port()}/hook"


@pytest.mark.parametrize("every", [0, -1, 0.0, True, "5"])
def test_follow_refuses_a_reconcile_period_that_is_not_seconds_above_zero(
    connected: Filespace, every: Any
) -> None:
    with pytest.raises(
        ValueError, match=exactly(f"reconcile_every must be seconds > 0, got {every!r}")
    ):
        connected.connect.follow(
            _webhook_source(), data_store_name="store", dest_dir="/f", reconcile_every=every
        )


def test_follow_takes_any_period_above_zero_and_refuses_a_progress_it_cannot_call(
    connected: Filespace,
) -> None:
    for every in (0.25, 1, 3600):
        follower = connected.connect.follow(
            _webhook_source(), data_store_name="store", dest_dir="/f", reconcile_every=every
        )
        assert isinstance(follower, filespace.Follower)
    not_callable: Any = "print"
    with pytest.raises(ValueError, match=exactly("progress must be callable or None")):
        connected.connect.follow(
            _webhook_source(), data_store_name="store", dest_dir="/f", progress=not_callable
        )


def test_a_follow_reconcile_strips_the_prefix_by_default(
    connected: Filespace, s3_admin: Any, bucket: str
) -> None:
    """Like ``mirror``: ``in/a`` under prefix ``in/`` becomes ``/f/a``; ``out/b`` is not linked."""
    connected.connect.set_webhook_token(TOKEN)
    s3_admin.put_object(Bucket=bucket, Key="in/a", Body=b"a")
    s3_admin.put_object(Bucket=bucket, Key="out/b", Body=b"b")
    follower = connected.connect.follow(
        _webhook_source(),
        data_store_name="store",
        prefix="in/",
        dest_dir="/f",
        reconcile_every=3600,
    )
    stats = follower.run(until="drained")  # a webhook drains at its first empty wait
    assert (stats.reconciles, stats.reconciled) == (1, 1)
    assert connected.fs.list_dir("/f") == ["a"]


def test_a_follow_reconcile_keeps_the_prefix_when_told(
    connected: Filespace, s3_admin: Any, bucket: str
) -> None:
    """``strip_prefix=False``: ``in/a`` becomes ``/f/in/a``; the follower names its source."""
    connected.connect.set_webhook_token(TOKEN)
    s3_admin.put_object(Bucket=bucket, Key="in/a", Body=b"a")
    source = _webhook_source()
    follower = connected.connect.follow(
        source,
        data_store_name="store",
        prefix="in/",
        dest_dir="/f",
        strip_prefix=False,
        reconcile_every=3600,
    )
    assert repr(follower) == f"Follower({source!r})"
    assert follower.run(until="drained").reconciled == 1
    assert connected.fs.list_dir("/f/in") == ["a"]


def test_followed_events_strip_the_prefix_by_default(
    connected: Filespace, s3_server: SeaweedS3, bucket: str
) -> None:
    """An event for ``in/c`` under prefix ``in/`` links ``/f/c``; one outside it links nothing."""
    connected.connect.set_webhook_token(TOKEN)
    with listening(connected, prefix="in/", dest_dir="/f") as (port, _):
        changes = Bucket(s3_client(s3_server), bucket)
        body = as_message([changes.put("in/c", b"c"), changes.put("out/d", b"d")])
        assert post(port, body, f"Bearer {TOKEN}")[0] == 200  # answered once committed
    assert connected.fs.list_dir("/f") == ["c"]


def test_without_a_prefix_every_key_is_mapped(
    connected: Filespace, s3_server: SeaweedS3, bucket: str
) -> None:
    """``prefix`` defaults to ``""`` for ``apply_events`` and ``follow`` alike: the whole bucket."""
    changes = Bucket(s3_client(s3_server), bucket)
    report = connected.connect.apply_events(
        as_message([changes.put("a/b", b"x")]), data_store_name="store", dest_dir="/e"
    )
    assert report.added == 1 and connected.fs.list_dir("/e/a") == ["b"]
    connected.connect.set_webhook_token(TOKEN)
    follower = connected.connect.follow(
        _webhook_source(), data_store_name="store", dest_dir="/g", reconcile_every=3600
    )
    assert follower.run(until="drained").reconciled == 1
    assert connected.fs.list_dir("/g/a") == ["b"]
