"""Connect's sealed settings, the webhook token kept with them, masked reprs, bucket checks.

The settings and the webhook's bearer token are one value sealed under the
filespace key (record ``connect:settings``): a value that does not open, or
opens to something that is not settings, is a ``WrongKeyError`` saying it is
malformed, never a default. Objects holding a secret never show it in their
``repr`` (API.md §4), ``verify_data_store`` says which access key a bucket
refused (``ConnectManager.verify_data_store``), the read path's URL provider
(``fsp.connect.url_provider``) signs store links with the store's current
credentials, and a presigned URL is reused only while enough of its life is left.
"""

from __future__ import annotations

import base64
import errno
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

import filespace
from filespace import ConnectSettings, Filespace
from filespace.connect.signing import UrlSigner
from filespace.meta.records import LinkRecord
from filespace.objects import http
from filespace.objects.s3 import S3Client, S3Target
from filespace.testing import SeaweedS3
from tests import waiting
from tests.fsfixtures import location_of, query_sql, raw_sql, store_config

TOKEN = "a-webhook-token-" + "Q9z." * 4
OTHER = "another-token/0123456789+=_~"
TOKEN_RULE = "^the webhook token must be 16 to 256 characters of A-Z a-z 0-9 \\. _ ~ \\+ / = -$"
MALFORMED = "^the sealed value of connect:settings is malformed$"


@pytest.fixture
def space(fsp: Filespace) -> Filespace:
    """A filespace (each engine) with Connect enabled and nothing in its settings yet."""
    fsp.connect.enable()
    return fsp


def webhook_token(fsp: Filespace) -> str | None:
    """The token a webhook ``follow`` of ``fsp`` reads when its listener starts."""
    return fsp.connect._settings.webhook_token()


def stored_settings(fsp: Filespace) -> list[str]:
    """The sealed settings value as the engine holds it (none stored: empty)."""
    rows = query_sql(fsp, "SELECT value FROM settings WHERE name = 'connect_settings'")
    return [row[0] for row in rows]


def seal_settings(fsp: Filespace, plain: str) -> None:
    """Store ``plain`` sealed as the settings by a keyholder (a value this version never writes)."""
    sealed = base64.b64encode(fsp._sealer().seal(plain, "connect:settings")).decode()
    fsp._engine.set_setting("connect_settings", sealed)


# -- the webhook token ---------------------------------------------------------


def test_a_webhook_token_is_set_replaced_and_cleared(space: Filespace) -> None:
    connect = space.connect
    assert webhook_token(space) is None
    assert stored_settings(space) == []
    connect.set_webhook_token(None)  # clearing what was never set is fine
    assert webhook_token(space) is None

    connect.set_webhook_token(TOKEN)  # the first value stored: the settings keep their default
    assert webhook_token(space) == TOKEN
    assert connect.get_settings() == ConnectSettings(allow_private_urls=False)
    [sealed] = stored_settings(space)
    assert TOKEN not in sealed and TOKEN not in base64.b64decode(sealed).decode("latin-1")

    connect.set_webhook_token(OTHER)  # rotation: only the new one is kept
    assert webhook_token(space) == OTHER
    connect.set_webhook_token(None)
    assert webhook_token(space) is None
    assert connect.get_settings() == ConnectSettings(allow_private_urls=False)
    connect.set_webhook_token(None)
    assert webhook_token(space) is None


def test_the_token_and_the_settings_keep_each_other(space: Filespace) -> None:
    connect = space.connect
    connect.configure(allow_private_urls=True)
    connect.set_webhook_token(TOKEN)
    assert connect.get_settings().allow_private_urls is True  # not reset to the default
    connect.configure(allow_private_urls=False)
    assert webhook_token(space) == TOKEN
    connect.configure(allow_private_urls=True)
    connect.set_webhook_token(None)
    assert connect.get_settings().allow_private_urls is True
    assert webhook_token(space) is None


@pytest.mark.parametrize(
    "token",
    [
        "A" * 16,
        "z" * 256,
        "AZaz09._~+/=-" + "0" * 3,  # every kind of character allowed
        base64.b64encode(bytes(range(32))).decode(),  # what `openssl rand -base64 32` gives
    ],
)
def test_every_allowed_token_is_kept_as_given(space: Filespace, token: str) -> None:
    space.connect.set_webhook_token(token)
    assert webhook_token(space) == token


@pytest.mark.parametrize(
    "token",
    [
        "",
        "A" * 15,  # too short
        "z" * 257,  # too long
        "a token with spaces in it",
        "token-with-a-colon:1234",
        "tøken-not-ascii-1234",
        "a-token-over-two\nlines-1234",
        b"a-webhook-token-as-bytes",
        1234567890123456,
    ],
)
def test_a_bad_token_is_refused_and_changes_nothing(space: Filespace, token: object) -> None:
    connect = space.connect
    with pytest.raises(ValueError, match=TOKEN_RULE) as refused:
        connect.set_webhook_token(token)  # type: ignore[arg-type]
    assert type(refused.value) is ValueError
    assert stored_settings(space) == []  # nothing stored
    connect.set_webhook_token(TOKEN)
    before = stored_settings(space)
    with pytest.raises(ValueError, match=TOKEN_RULE):
        connect.set_webhook_token(token)  # type: ignore[arg-type]
    assert stored_settings(space) == before  # the old token is kept
    assert webhook_token(space) == TOKEN


def test_a_sealed_token_that_is_not_a_string_counts_as_none(space: Filespace) -> None:
    seal_settings(space, '{"allow_private_urls": false, "webhook_token": 1234567890123456}')
    assert webhook_token(space) is None
    assert space.connect.get_settings() == ConnectSettings()


# -- values that do not open -------------------------------------------------


def test_a_stored_value_that_is_not_strict_base64_is_malformed(space: Filespace) -> None:
    space.connect.configure(allow_private_urls=True)
    [sealed] = stored_settings(space)
    middle = len(sealed) // 2
    # What an engine writer without the key can write: the right value with a
    # stray character, with a line break, not ASCII; plain garbage.
    for value in (
        sealed[:middle] + "!" + sealed[middle:],
        sealed[:middle] + "\n" + sealed[middle:],
        sealed + "é",
        "not base64!",
    ):
        raw_sql(space, "UPDATE settings SET value = ? WHERE name = 'connect_settings'", value)
        with pytest.raises(filespace.WrongKeyError, match=MALFORMED):
            space.connect.get_settings()
        with pytest.raises(filespace.WrongKeyError, match=MALFORMED):
            space.connect.set_webhook_token(TOKEN)
    raw_sql(space, "UPDATE settings SET value = ? WHERE name = 'connect_settings'", sealed)
    assert space.connect.get_settings().allow_private_urls is True  # the value itself is fine


@pytest.mark.parametrize(
    "plain",
    [
        "not json",
        '{"allow_private_urls": true',  # cut short
        "[true]",
        "null",
        '"allow_private_urls"',
        "true",
        '{"webhook_token": "a-webhook-token-Q9z.Q9z."}',  # no allow_private_urls
        '{"allow_private_url": true}',
    ],
)
def test_a_sealed_value_that_is_not_settings_is_malformed(space: Filespace, plain: str) -> None:
    seal_settings(space, plain)
    with pytest.raises(filespace.WrongKeyError, match=MALFORMED):
        space.connect.get_settings()  # never read as the default, nor as "allowed"


# -- reprs that hide secrets ---------------------------------------------------


def test_reprs_show_every_field_but_the_secret() -> None:
    config = filespace.S3DataStoreConfig("AKID", "s3cr3t", "bkt", "us-east-1")
    assert repr(config) == (
        "S3DataStoreConfig(access_key='AKID', secret_key='***', bucket_name='bkt', "
        "region='us-east-1', endpoint='', url_expiration_minutes=10080, "
        "use_virtual_addressing=False)"
    )
    assert repr(filespace.S3Credentials("AKID", "s3cr3t")) == (
        "S3Credentials(access_key='AKID', secret_key='***')"
    )
    # No secret: shown as empty, so a reader can tell it was not handed back.
    assert (
        repr(filespace.S3Credentials("AKID", ""))
        == "S3Credentials(access_key='AKID', secret_key='')"
    )
    info = filespace.DataStoreInfo(
        "store", "AKID", "", "bkt", "eu-west-1", "http://127.0.0.1:8333", 60, True
    )
    assert repr(info) == (
        "DataStoreInfo(name='store', access_key='AKID', secret_key='', bucket_name='bkt', "
        "region='eu-west-1', endpoint='http://127.0.0.1:8333', url_expiration_minutes=60, "
        "use_virtual_addressing=True, kind=<DataStoreKind.S3: 'S3DataStore'>, key_id='', "
        "rekey_state=<DataStoreRekeyState.NO_REKEY: 'no_rekey'>)"
    )


def test_a_sync_report_adds_every_count_and_list() -> None:
    skipped, other_skipped = (
        filespace.SkippedKey("a/", "why"),
        filespace.SkippedKey("b/", "why not"),
    )
    report = filespace.SyncReport(1, 2, 3, 4, 5, [skipped], ["bad record"], 6)
    report.add(filespace.SyncReport(10, 20, 30, 40, 50, [other_skipped], ["bad document"], 60))
    assert report == filespace.SyncReport(
        added=11,
        updated=22,
        removed=33,
        ignored=44,
        stale=55,
        skipped=[skipped, other_skipped],
        errors=["bad record", "bad document"],
        unchanged=66,
    )
    assert report.records == 11 + 22 + 33 + 44 + 55 + 66 + 2 + 2


# -- which credentials a bucket refused ------------------------------------------


def test_verify_names_the_access_key_that_was_refused(
    space: Filespace, s3_server: SeaweedS3, bucket: str
) -> None:
    connect = space.connect
    endpoint = s3_server.endpoint
    noaccess, spare, admin = s3_server.noaccess, s3_server.spare, s3_server.admin
    cases = [  # overrides, what the message says in full
        ({"access_key": "NOSUCHACCESSKEY12345"},
         f"access key NOSUCHACCESSKEY12345 is not known at {endpoint}"),
        ({"access_key": spare.access_key, "secret_key": admin.secret_key},
         f"the secret key does not match access key {spare.access_key} at {endpoint}"),
        ({"access_key": noaccess.access_key, "secret_key": noaccess.secret_key},
         f"access denied: access key {noaccess.access_key} may not list bucket {bucket!r}"),
    ]  # fmt: skip
    for overrides, message in cases:
        with pytest.raises(filespace.DataStoreAccessError, match=f"^{re.escape(message)}$"):
            connect.verify_data_store(store_config(s3_server, bucket, **overrides))
    connect.add_data_store(
        "gone", store_config(s3_server, bucket, access_key="NOSUCHACCESSKEY12345")
    )
    with pytest.raises(filespace.DataStoreAccessError) as refused:  # the stored credentials
        connect.verify_data_store("gone")
    assert str(refused.value) == f"access key NOSUCHACCESSKEY12345 is not known at {endpoint}"
    assert refused.value.status == "auth failed"


# -- when a presigned URL is reused -------------------------------------------------


class Clock:
    """The seconds a signer counts a URL's life by, set by the test."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def new_client(s3_server: SeaweedS3, bucket: str) -> S3Client:
    target = S3Target(bucket=bucket, region=s3_server.region, endpoint=s3_server.endpoint)
    return S3Client(target, s3_server.admin.access_key, s3_server.admin.secret_key)


def next_signing_second(client: S3Client) -> None:
    """Return once URLs signed now differ from those signed before the call.

    A presigned URL names the second it was signed in, so from then on a URL
    signed again is told from a reused one by comparing the two.
    """
    before = client.presign_get("probe", 60)
    waiting.until(lambda: client.presign_get("probe", 60) != before, "the next signing second")


def test_a_url_is_reused_while_more_than_its_margin_is_left(
    s3_server: SeaweedS3, s3_admin: Any, bucket: str
) -> None:
    client = new_client(s3_server, bucket)
    s3_admin.put_object(Bucket=bucket, Key="in/an object", Body=b"abcdef")
    url = UrlSigner(client, 60).url("in/an object")
    assert http.get_range(url, 0, 3, http.Identity()) == b"abc"  # the key's bytes
    # lifetime -> (clock when asked again, reused?); the margin is a tenth of the
    # lifetime, at least 30 s, at most half of it.
    cases = {
        2: [(0.0, True), (0.5, True), (1.0, False), (5.0, False)],  # margin 1 s (half)
        100: [(69.0, True), (70.0, False), (71.0, False)],  # margin 30 s
        600: [(539.0, True), (540.0, False), (543.0, False)],  # margin 60 s (a tenth)
    }
    clocks = {lifetime: Clock() for lifetime in cases}
    signers = {lifetime: UrlSigner(client, lifetime, clock=clocks[lifetime]) for lifetime in cases}
    first = {
        (lifetime, index): signers[lifetime].url(f"k{lifetime}-{index}")
        for lifetime, asks in cases.items()
        for index in range(len(asks))
    }
    for (lifetime, _), url in first.items():
        assert f"X-Amz-Expires={lifetime}&" in url
    next_signing_second(client)
    for lifetime, asks in cases.items():
        signer = signers[lifetime]
        for index, (now, reused) in enumerate(asks):
            clocks[lifetime].now = now
            again = signer.url(f"k{lifetime}-{index}")
            assert (again == first[lifetime, index]) is reused, (lifetime, now)
            assert signer.url(f"k{lifetime}-{index}") == again  # the new one is kept
    fresh = signers[600]
    clocks[600].now = 0.0
    kept = fresh.url("k600-0")
    assert fresh.url("k600-0", fresh=True) not in (kept, first[600, 0])  # forced: signed again


def test_the_least_recently_used_urls_are_dropped_past_4096(
    s3_server: SeaweedS3, bucket: str
) -> None:
    client = new_client(s3_server, bucket)
    signer = UrlSigner(client, 600, clock=Clock())
    first = [signer.url(f"k{i}") for i in range(4096)]  # as many as are kept
    next_signing_second(client)
    assert signer.url("k0") == first[0]  # all still kept; k0 is now the most recently used
    signer.url("k4096")  # one more: the least recently used, k1, is dropped
    assert signer.url("k0") == first[0]
    assert signer.url("k2") == first[2]
    assert signer.url("k4095") == first[4095]
    assert signer.url("k1") != first[1]


# -- the read path's URL provider ------------------------------------------------


def s3_link(fsp: Filespace, store: str, key: str, size: int = 6, checksum: str = "") -> LinkRecord:
    """The link record the read path gets for ``key`` in data store ``store``."""
    record = fsp._engine.store(store)
    store_id = record.id if record is not None else 999_999  # a store that is not there
    return LinkRecord("s3", size, checksum, 0, store_id, store, key)


def http_link(url: str) -> LinkRecord:
    return LinkRecord("http", 6, "", 0, url=url)


def test_store_links_get_urls_signed_for_the_store(
    connected: Filespace, s3_server: SeaweedS3, s3_admin: Any, bucket: str
) -> None:
    connect = connected.connect
    provider = connect.url_provider
    assert repr(provider) == "Access" + repr(connect).removeprefix("ConnectManager")
    s3_admin.put_object(Bucket=bucket, Key="in/an object", Body=b"abcdef")
    connect.add_data_store("short", store_config(s3_server, bucket, url_expiration_minutes=5))
    link = s3_link(connected, "short", "in/an object")
    url = provider.url(link, False)
    assert "X-Amz-Expires=300&" in url  # the store's url_expiration_minutes
    assert f"X-Amz-Credential={s3_server.admin.access_key}%2F" in url
    assert http.get_range(url, 0, 3, http.Identity()) == b"abc"
    next_signing_second(connect.client_for("short"))
    assert provider.url(link, False) == url  # reused
    fresh = provider.url(link, True)
    assert fresh != url  # asked for: signed again
    assert http.get_range(fresh, 3, 6, http.Identity()) == b"def"

    plain = "https://example.com/data/x.bin?version=2"
    assert provider.url(http_link(plain), False) == plain  # used as stored, never signed
    assert provider.url(http_link(plain), True) == plain
    with pytest.raises(filespace.DataStoreError, match=r"^the data store 'gone' no longer exists$"):
        provider.url(s3_link(connected, "gone", "in/an object"), False)

    assert provider.allows_private_urls() is False  # the sealed setting, read at each ask
    connect.configure(allow_private_urls=True)
    assert provider.allows_private_urls() is True


def test_links_on_one_server_share_a_place(
    connected: Filespace, s3_server: SeaweedS3, bucket: str
) -> None:
    connect = connected.connect
    place = connect.url_provider.place
    connect.add_data_store("other", store_config(s3_server, bucket))
    one = place(http_link("http://one.example:8080/a"))
    assert place(http_link("http://one.example:8080/b/c")) == one
    assert place(http_link("http://one.example:8080")) == one
    others = {
        place(http_link("http://two.example:8080/a")),
        place(http_link("http://two.example:8080")),
        place(http_link("http://one.example:8081/a")),
    }
    assert len(others) == 2 and one not in others
    store = place(s3_link(connected, "store", "k1"))
    assert place(s3_link(connected, "store", "k2")) == store
    assert place(s3_link(connected, "other", "k1")) not in (store, one, *others)


def test_an_http_link_whose_url_was_broken_fails_to_read_with_eio(space: Filespace) -> None:
    """An engine writer can garble a link's URL: reading it is an error, never a crash."""
    space.connect.link_http_file("/h", "https://1.1.1.1/x", size=1)  # never fetched
    for broken in ("http:/x", "", "http:x"):
        raw_sql(space, "UPDATE external_links SET url = ?", broken)
        with pytest.raises(filespace.ExternalReadError, match="malformed URL") as failed:
            space.fs.read_file("/h")
        assert failed.value.errno == errno.EIO
        assert str(failed.value).endswith(f"URL {broken}): '/h'")


def test_a_client_per_store_until_its_credentials_change(
    connected: Filespace, s3_server: SeaweedS3, bucket: str
) -> None:
    connect = connected.connect
    client = connect.client_for("store")
    assert connect.client_for("store") is client  # kept
    assert client.target == S3Target(bucket, s3_server.region, s3_server.endpoint, False)
    connect.add_data_store(
        "virtual",
        store_config(s3_server, bucket, region="eu-west-3", use_virtual_addressing=True),
    )
    assert connect.client_for("virtual").target == S3Target(
        bucket, "eu-west-3", s3_server.endpoint, True
    )
    spare = s3_server.spare
    with filespace.open(location_of(connected)) as other:  # another client rotates them
        other.connect.rekey_data_store(
            "store", filespace.S3Credentials(spare.access_key, spare.secret_key)
        )
    rotated = connect.client_for("store")
    assert rotated is not client
    url = connect.url_provider.url(s3_link(connected, "store", "k"), False)
    assert f"X-Amz-Credential={spare.access_key}%2F" in url
    assert connect.client_for("store") is rotated


def test_head_object_says_what_went_wrong(
    connected: Filespace, s3_server: SeaweedS3, s3_admin: Any, bucket: str
) -> None:
    connect = connected.connect
    s3_admin.put_object(Bucket=bucket, Key="h", Body=b"12345")
    assert connect.head_object("store", "h")[0] == 5
    with pytest.raises(
        filespace.ObjectNotFoundError, match=f"^no object 'missing' in bucket {bucket!r}$"
    ):
        connect.head_object("store", "missing")
    noaccess = s3_server.noaccess
    connect.add_data_store(
        "denied",
        store_config(
            s3_server, bucket, access_key=noaccess.access_key, secret_key=noaccess.secret_key
        ),
    )
    with pytest.raises(filespace.DataStoreAccessError) as denied:
        connect.head_object("denied", "h")
    assert str(denied.value).startswith(f"cannot look up 'h' in bucket {bucket!r}: auth failed (")
    assert denied.value.status == "auth failed"


class _Claims(BaseHTTPRequestHandler):
    """Answers every HEAD as S3 would for an object of the size its key names."""

    def do_HEAD(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", self.path.rsplit("/", 1)[-1])
        self.send_header("ETag", '"e"')
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def claiming() -> Iterator[str]:
    """The endpoint of an S3 look-alike whose objects claim any size (no bucket holds 5 TiB)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Claims)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_head_object_refuses_an_object_over_5_tib(space: Filespace, claiming: str) -> None:
    space.connect.add_data_store(
        "big", filespace.S3DataStoreConfig("AK", "SK", "bucket", "us-east-1", claiming)
    )
    limit = filespace.MAX_FILE_SIZE
    assert space.connect.head_object("big", str(limit)) == (limit, "e")  # 5 TiB itself is fine
    message = f"object '{limit + 1}' claims {limit + 1} bytes, over the limit of {limit} (5 TiB)"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        space.connect.head_object("big", str(limit + 1))
