"""The filespace key: 32 random bytes that seal every secret a filespace stores.

The key never enters the metadata engine. ``create`` writes it to a key file in
the user's config directory (mode 0600); ``open`` finds it from ``key=``, the
``FILESPACE_KEY`` environment variable, or that file, in that order. The engine
keeps only a check value (an HMAC of the filespace id under the key), so a
wrong key is reported as such and a copy of the database reveals nothing.
"""

from __future__ import annotations

import base64
import binascii
import errno
import hashlib
import hmac
import os
import secrets
import stat
from pathlib import Path

from filespace.errors import KeyNotFoundError, WrongKeyError

KEY_BYTES = 32
KEY_ENV = "FILESPACE_KEY"
_CHECK_LABEL = b"filespace key check v1:"
_ID_LABEL = b"filespace key id v1:"


def generate_key() -> str:
    """Make a new random filespace key, as 64 hex digits."""
    return secrets.token_hex(KEY_BYTES)


def parse_key(key: str | bytes) -> bytes:
    """Turn a key given as 32 bytes, 64 hex digits or URL-safe base64 into bytes."""
    if isinstance(key, bytes | bytearray | memoryview):
        raw = bytes(key)
        if len(raw) == KEY_BYTES:
            return raw
        try:
            key = raw.decode("ascii")
        except UnicodeDecodeError:
            raise ValueError(f"a filespace key is {KEY_BYTES} bytes, got {len(raw)}") from None
    if not isinstance(key, str):
        raise TypeError("a filespace key is bytes or str")
    text = key.strip()
    if len(text) == 2 * KEY_BYTES:
        try:
            return bytes.fromhex(text)
        except ValueError:
            pass
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) == KEY_BYTES:
        return raw
    raise ValueError(
        f"a filespace key is {KEY_BYTES} bytes given as 64 hex digits or URL-safe base64"
    )


def check_value(key: bytes, filespace_id: str) -> str:
    """The value the engine stores to recognise the right key."""
    return hmac.new(key, _CHECK_LABEL + filespace_id.encode(), hashlib.sha256).hexdigest()


def key_id(key: bytes, filespace_id: str) -> str:
    """A short public name for a key, recorded beside each secret it seals."""
    return hmac.new(key, _ID_LABEL + filespace_id.encode(), hashlib.sha256).hexdigest()[:16]


def config_dir() -> Path:
    """The user's filespace config directory (``$XDG_CONFIG_HOME/filespace``)."""
    override = os.environ.get("FILESPACE_CONFIG_DIR")
    if override:
        return Path(override)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "filespace"


def key_file(filespace_id: str) -> Path:
    """Where ``create`` stores the key of filespace ``filespace_id``."""
    return config_dir() / "keys" / f"{filespace_id}.key"


def _pending_file(filespace_id: str) -> Path:
    return key_file(filespace_id).with_suffix(".key.next")


def store_pending_key(filespace_id: str, key: bytes) -> Path:
    """Write a key that is about to replace the key file (see ``promote_pending_key``).

    Written before the engine switches to the key, so a crash in between
    leaves the new key on disk, where ``pending_key`` finds it.
    """
    path = _pending_file(filespace_id)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.unlink(missing_ok=True)  # left by a rotation that never committed
    return _write_key(path, key)


def pending_key(filespace_id: str) -> bytes | None:
    """The key a rotation wrote before switching the engine to it, if any."""
    try:
        return parse_key(_pending_file(filespace_id).read_text())
    except (FileNotFoundError, ValueError):
        return None


def promote_pending_key(filespace_id: str) -> None:
    """Make the pending key the key file (one rename)."""
    os.replace(_pending_file(filespace_id), key_file(filespace_id))


def remove_pending_key(filespace_id: str) -> None:
    """Drop a pending key (the rotation did not happen)."""
    _pending_file(filespace_id).unlink(missing_ok=True)


def store_key(filespace_id: str, key: bytes) -> Path:
    """Write the key file with mode 0600 (its directory 0700); never overwrite one.

    A key directory that already exists with wider permissions is tightened to
    0700 rather than refused: it holds nothing but keys, and refusing would
    only make the user run the ``chmod`` this does (it cannot be another
    user's: ``chmod`` would fail, and the error says so).
    """
    path = key_file(filespace_id)
    folder = path.parent
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    if stat.S_IMODE(folder.stat().st_mode) & 0o077:
        try:
            folder.chmod(0o700)
        except PermissionError:
            raise PermissionError(
                errno.EPERM,
                "the key directory is open to other users and cannot be made private (0700)",
                str(folder),
            ) from None
    return _write_key(path, key)


def _write_key(path: Path, key: bytes) -> Path:
    """Create ``path`` (never over an existing one) holding ``key``, mode 0600, synced."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)  # the mode of a new file is the umask's to narrow, never to widen
        with os.fdopen(fd, "w", closefd=False) as handle:
            handle.write(key.hex() + "\n")
            handle.flush()
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    os.close(fd)
    return path


def remove_key(filespace_id: str) -> None:
    """Remove the key file ``store_key`` wrote (the undo of a failed ``create``)."""
    key_file(filespace_id).unlink(missing_ok=True)


def find_key(filespace_id: str, given: str | bytes | None) -> bytes:
    """Find the key from ``given``, the environment, or the key file."""
    if given is not None:
        return parse_key(given)
    from_env = os.environ.get(KEY_ENV)
    if from_env:
        try:
            return parse_key(from_env)
        except ValueError as exc:
            raise WrongKeyError(f"{KEY_ENV} does not hold a filespace key: {exc}") from None
    path = key_file(filespace_id)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise KeyNotFoundError(
            f"no key for filespace {filespace_id}: pass key=, set {KEY_ENV}, "
            f"or restore the key file {path}"
        ) from None
    try:
        return parse_key(text)
    except ValueError:
        raise WrongKeyError(f"the key file {path} does not hold a filespace key") from None


def verify_key(key: bytes, filespace_id: str, expected_check: str) -> None:
    """Raise ``WrongKeyError`` unless ``key`` is the filespace's key."""
    if not hmac.compare_digest(check_value(key, filespace_id), expected_check):
        raise WrongKeyError(f"wrong key for filespace {filespace_id}: it does not match")
