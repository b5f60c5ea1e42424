"""Finding, parsing and storing the filespace key, and sealing secrets under it.

The lookup order is ``key=``, then ``FILESPACE_KEY``, then the key file
(API.md); a key that cannot be parsed is a ``WrongKeyError`` that never shows
what was given; a sealed value opens only with its own layout, record and
bound fields (``IntegrityError`` otherwise).
"""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

import filespace
from filespace import keys
from filespace.sealing import Sealer, is_legacy
from tests.fsfixtures import raw_sql


def _space(tmp_path: Path, key: str | None = None) -> tuple[Path, str]:
    """A filespace with Connect on: its location and id (key file written unless ``key``)."""
    location = tmp_path / "s"
    with filespace.create(location, name="k", key=key) as fsp:
        fsp.connect.enable()
        return location, fsp.id


def _has_key(location: Path, **options: str) -> bool:
    """Whether the filespace opens with a key (operations that need it work)."""
    with filespace.open(location, **options) as fsp:
        try:
            fsp.connect.enable()  # needs the key; idempotent
        except filespace.KeyNotFoundError:
            return False
        return True


# -- the lookup order -------------------------------------------------------------------


def test_key_argument_wins_over_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    given = filespace.generate_key()
    location, _ = _space(tmp_path, key=given)
    monkeypatch.setenv("FILESPACE_KEY", filespace.generate_key())  # a key, but not this one
    assert _has_key(location, key=given)
    monkeypatch.setenv("FILESPACE_KEY", "not a key at all")
    assert _has_key(location, key=given)
    monkeypatch.setenv("FILESPACE_KEY", given)
    with pytest.raises(filespace.WrongKeyError, match="wrong key"):
        filespace.open(location, key=filespace.generate_key())


def test_the_environment_wins_over_the_key_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    location, space_id = _space(tmp_path)
    stored = keys.key_file(space_id).read_text().strip()
    monkeypatch.setenv("FILESPACE_KEY", filespace.generate_key())
    with pytest.raises(filespace.WrongKeyError, match="wrong key"):
        filespace.open(location)
    monkeypatch.setenv("FILESPACE_KEY", "")  # empty: as if unset
    assert _has_key(location)
    keys.key_file(space_id).unlink()
    monkeypatch.setenv("FILESPACE_KEY", stored)
    assert _has_key(location)
    monkeypatch.delenv("FILESPACE_KEY")
    assert not _has_key(location)  # opens; what needs the key says so


@pytest.mark.parametrize("value", ["zz" * 32, "short", "a" * 63, "=" * 44])
def test_a_malformed_environment_key_is_refused_without_echoing_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    location, _ = _space(tmp_path)
    monkeypatch.setenv("FILESPACE_KEY", value)
    with pytest.raises(filespace.WrongKeyError, match="FILESPACE_KEY does not hold") as info:
        filespace.open(location)
    assert value not in str(info.value)


@pytest.mark.parametrize("content", ["", "garbage\n", "00" * 31 + "\n", "é" * 64])
def test_a_corrupt_key_file_is_refused(tmp_path: Path, content: str) -> None:
    location, space_id = _space(tmp_path)
    path = keys.key_file(space_id)
    path.write_text(content)
    with pytest.raises(filespace.WrongKeyError, match="does not hold a filespace key") as info:
        filespace.open(location)
    assert str(path) in str(info.value)


def test_a_key_file_of_another_filespace_is_the_wrong_key(tmp_path: Path) -> None:
    location, space_id = _space(tmp_path)
    keys.key_file(space_id).write_text(filespace.generate_key() + "\n")
    with pytest.raises(filespace.WrongKeyError, match=f"wrong key for filespace {space_id}"):
        filespace.open(location)


def test_a_malformed_key_argument(tmp_path: Path) -> None:
    location, _ = _space(tmp_path)
    with pytest.raises(filespace.WrongKeyError, match="not a filespace key"):
        filespace.open(location, key="nope")
    with pytest.raises(TypeError, match="bytes or str"):
        filespace.open(location, key=12)  # type: ignore[arg-type]


# -- parsing ----------------------------------------------------------------------------


def test_parse_key_forms() -> None:
    raw = os.urandom(32)
    assert keys.parse_key(raw) == raw
    assert keys.parse_key(bytearray(raw)) == raw
    assert keys.parse_key(memoryview(raw)) == raw
    assert keys.parse_key(raw.hex().encode()) == raw  # 64 ASCII hex digits as bytes
    assert keys.parse_key(f"  {raw.hex().upper()}\n") == raw
    b64 = base64.urlsafe_b64encode(raw).decode()
    assert keys.parse_key(b64) == raw
    assert keys.parse_key(b64.rstrip("=")) == raw


def test_parse_key_refusals() -> None:
    with pytest.raises(ValueError, match="32 bytes, got 3"):
        keys.parse_key(b"\xff\xfe\xfd")
    with pytest.raises(TypeError, match="bytes or str"):
        keys.parse_key(32)  # type: ignore[arg-type]
    # 64 characters that are not hex digits but are base64 decode to 48 bytes.
    for bad in ("", "abc", "g" * 64, "-" * 64, base64.urlsafe_b64encode(b"x" * 31).decode()):
        with pytest.raises(ValueError, match="64 hex digits or URL-safe base64"):
            keys.parse_key(bad)


def test_generated_keys_and_derived_values() -> None:
    made = filespace.generate_key()
    assert len(made) == 64 and keys.parse_key(made) == bytes.fromhex(made)
    assert made != filespace.generate_key()
    key = os.urandom(32)
    assert keys.check_value(key, "a") == keys.check_value(key, "a")
    assert len(keys.check_value(key, "a")) == 64
    assert keys.check_value(key, "a") != keys.check_value(key, "b")
    assert keys.check_value(key, "a") != keys.check_value(os.urandom(32), "a")
    assert len(keys.key_id(key, "a")) == 16
    assert keys.key_id(key, "a") != keys.check_value(key, "a")[:16]  # another label
    keys.verify_key(key, "a", keys.check_value(key, "a"))
    with pytest.raises(filespace.WrongKeyError, match="wrong key for filespace a"):
        keys.verify_key(key, "a", keys.check_value(key, "b"))


# -- the key files ------------------------------------------------------------------------


def test_config_dir_lookup(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FILESPACE_CONFIG_DIR", str(tmp_path / "cfg"))
    assert keys.config_dir() == tmp_path / "cfg"
    assert keys.key_file("id1") == tmp_path / "cfg" / "keys" / "id1.key"
    monkeypatch.setenv("FILESPACE_CONFIG_DIR", "")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert keys.config_dir() == tmp_path / "xdg" / "filespace"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert keys.config_dir() == tmp_path / "home" / ".config" / "filespace"


def test_store_key_is_private_and_never_overwrites(tmp_path: Path) -> None:
    key = os.urandom(32)
    folder = keys.key_file("one").parent
    folder.mkdir(parents=True, mode=0o755)
    folder.chmod(0o755)
    path = keys.store_key("one", key)
    assert path == keys.key_file("one")
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700  # tightened
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == key.hex() + "\n"
    assert keys.find_key("one", None) == key
    with pytest.raises(FileExistsError):
        keys.store_key("one", os.urandom(32))
    assert keys.find_key("one", None) == key
    keys.remove_key("one")
    assert not path.exists()
    keys.remove_key("one")  # already gone: fine
    with pytest.raises(filespace.KeyNotFoundError, match="no key for filespace one"):
        keys.find_key("one", None)


def test_pending_key_lifecycle() -> None:
    old, new = os.urandom(32), os.urandom(32)
    keys.store_key("p", old)
    assert keys.pending_key("p") is None
    pending = keys.store_pending_key("p", new)
    assert stat.S_IMODE(pending.stat().st_mode) == 0o600
    assert keys.pending_key("p") == new
    newer = os.urandom(32)
    keys.store_pending_key("p", newer)  # one left by a rotation that never committed
    assert keys.pending_key("p") == newer
    keys.remove_pending_key("p")
    assert keys.pending_key("p") is None
    keys.remove_pending_key("p")
    keys.store_pending_key("p", new)
    keys.promote_pending_key("p")
    assert keys.find_key("p", None) == new and keys.pending_key("p") is None
    pending.write_text("garbage")
    assert keys.pending_key("p") is None  # unreadable: as if none


# -- sealing -------------------------------------------------------------------------------


def _legacy(key: bytes, space_id: str, record: str, secret: str) -> bytes:
    """A value sealed in layout 1 (bound to its record only), as older versions wrote."""
    nonce = os.urandom(12)
    context = f"filespace:{space_id}|{record}".encode()
    return b"\x01" + nonce + AESGCM(key).encrypt(nonce, secret.encode(), context)


def test_sealed_layouts() -> None:
    key = os.urandom(32)
    sealer = Sealer(key, "sp", "kid")
    sealed = sealer.seal("s3cret", "r")
    assert sealed[:1] == b"\x02" and len(sealed) == 1 + 12 + len("s3cret") + 16
    assert not is_legacy(sealed)
    for layout in (b"\x00", b"\x03", b"\xff"):
        with pytest.raises(filespace.IntegrityError, match="r: the sealed secret has an unknown"):
            sealer.open(layout + sealed[1:], "r")
    with pytest.raises(filespace.IntegrityError, match="unknown layout"):
        sealer.open(b"", "r")
    old = _legacy(key, "sp", "r", "s3cret")
    assert is_legacy(old)
    with pytest.raises(filespace.IntegrityError, match="old layout, which must be resealed"):
        sealer.open(old, "r")
    assert sealer.open(old, "r", legacy=True) == "s3cret"
    assert sealer.open(sealed, "r", legacy=True) == "s3cret"  # legacy= only allows layout 1
    with pytest.raises(filespace.IntegrityError, match="does not match"):
        sealer.open(_legacy(key, "sp", "other", "s3cret"), "r", legacy=True)


def test_sealed_values_are_bound_to_their_fields() -> None:
    sealer = Sealer(os.urandom(32), "sp", "kid")
    bound = {"endpoint": "http://e", "bucket": "b", "virtual": False, "port": 1}
    sealed = sealer.seal("pw", "store:a", bound)
    assert sealer.open(sealed, "store:a", dict(reversed(bound.items()))) == "pw"
    for field, value in (("endpoint", "http://x"), ("virtual", True), ("port", 2)):
        with pytest.raises(filespace.IntegrityError, match="store:a: the sealed secret does not"):
            sealer.open(sealed, "store:a", {**bound, field: value})
    with pytest.raises(filespace.IntegrityError):
        sealer.open(sealed, "store:a")  # no fields is not these fields
    plain = sealer.seal("pw", "store:a")
    assert sealer.open(plain, "store:a") == sealer.open(plain, "store:a", {}) == "pw"
    tampered = bytearray(sealed)
    tampered[-1] ^= 1
    with pytest.raises(filespace.IntegrityError):
        sealer.open(bytes(tampered), "store:a", bound)
    assert sealer.open(sealer.seal("pässwörd ✓", "u"), "u") == "pässwörd ✓"
    assert sealer.key_id == "kid"


def test_a_stored_secret_of_unknown_layout_is_refused(
    fsp: filespace.Filespace, tmp_path: Path
) -> None:
    fsp.connect.enable()
    config = filespace.S3DataStoreConfig(
        "AKIDEXAMPLE", "a-long-secret-key-0123456789", "bkt", "us-east-1"
    )
    fsp.connect.add_data_store("s", config)
    assert raw_sql(fsp, "UPDATE data_stores SET sealed_secret = ?", b"\x07" + b"\x00" * 40) == 1
    with pytest.raises(filespace.IntegrityError, match="unknown layout"):
        fsp.connect.get_data_store("s")


# Sealed by this version with a fixed key: stored secrets must go on opening
# after any change to how the associated data is built.
KNOWN_KEY = bytes(range(32))
KNOWN_BOUND = {"endpoint": "http://e:1", "bucket": "b", "virtual": False}
KNOWN_SEALED = bytes.fromhex(
    "0235a4b7fc6873346cbb28e2e841210179da8529266f9a557ae2be0e8f6979d0b99b7c83c4a432"
)
KNOWN_UNBOUND = bytes.fromhex(
    "0227e1cd590fb1ebc026f1d4f275950c98972f2be3c54048bbad0d282c8684d11315fa17a2a56e"
)


def test_values_sealed_before_still_open() -> None:
    sealer = Sealer(KNOWN_KEY, "space-kat", "kid")
    record = "data_store:7:secret_key"
    assert sealer.open(KNOWN_SEALED, record, KNOWN_BOUND) == "kat secret"
    assert sealer.open(KNOWN_UNBOUND, record) == "kat secret"
    refusal = f"^{record}: the sealed secret does not match the stored settings it is bound to"
    refusal += r" \(changed without the filespace key\?\); refusing to use them$"
    with pytest.raises(filespace.IntegrityError, match=refusal):
        sealer.open(KNOWN_SEALED, record)
    with pytest.raises(filespace.IntegrityError, match="data_store:8:secret_key: the sealed"):
        sealer.open(KNOWN_SEALED, "data_store:8:secret_key", KNOWN_BOUND)
    with pytest.raises(filespace.IntegrityError):
        Sealer(KNOWN_KEY, "space-other", "kid").open(KNOWN_SEALED, record, KNOWN_BOUND)


def test_key_file_names_and_modes(isolated_env: Path) -> None:
    # The names are a format: a pending key left by one version is found by the next.
    keys_dir = isolated_env / "config" / "filespace" / "keys"
    keys.store_pending_key("fresh", os.urandom(32))  # no keys folder yet: made private
    assert (keys_dir / "fresh.key.next").is_file()
    assert stat.S_IMODE(keys_dir.stat().st_mode) == 0o700
    assert keys.pending_key("other") is None  # one pending key per filespace
    keys_dir.chmod(0o670)  # open to the group, closed to its owner's execute bit
    keys.store_key("fresh", os.urandom(32))
    assert stat.S_IMODE(keys_dir.stat().st_mode) == 0o700
    key = os.urandom(32)
    assert keys.key_id(key, "a") != keys.key_id(key, "b")
    with pytest.raises(TypeError, match=r"^a filespace key is bytes or str$"):
        keys.parse_key(None)  # type: ignore[arg-type]
