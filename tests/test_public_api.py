"""The public surface: exported names, signatures of the contract, lazy imports."""

from __future__ import annotations
import __future__

import inspect
import pickle
import subprocess
import sys
import types

import filespace
from filespace import ConnectManager, Filesystem


def _public_names() -> set[str]:
    """Every public name the package binds, submodules aside."""
    return {
        name
        for name, value in vars(filespace).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType | __future__._Feature)
    }


def test_all_lists_every_public_name_once() -> None:
    assert len(filespace.__all__) == len(set(filespace.__all__))
    assert set(filespace.__all__) == _public_names() | {"__version__"}
    for name in filespace.__all__:
        assert hasattr(filespace, name), name


def test_every_export_is_documented() -> None:
    for name in filespace.__all__:
        value = getattr(filespace, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert (value.__doc__ or "").strip(), f"filespace.{name} has no docstring"


def test_every_public_error_is_exported_and_pickles() -> None:
    errors = [
        value
        for value in vars(filespace).values()
        if inspect.isclass(value) and issubclass(value, BaseException)
    ]
    assert set(errors) == {getattr(filespace.errors, name) for name in filespace.errors.__all__}
    for error in errors:
        made = _example(error)
        made.add_note("raised in a worker")  # notes, as a caller or Dask adds them, come along
        for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
            again = pickle.loads(pickle.dumps(made, protocol))  # noqa: S301 - our own bytes
            assert type(again) is error, error
            assert str(again) == str(made)
            assert again.args == made.args
            assert vars(again) == vars(made), error  # detail, count, status, host, ... and notes
            if isinstance(made, OSError):
                assert isinstance(again, OSError)
                assert (again.errno, again.strerror, again.filename) == (
                    made.errno,
                    made.strerror,
                    made.filename,
                )


def _example(error: type[BaseException]) -> BaseException:
    """One instance of a public error, built the way filespace raises it."""
    init = error.__dict__.get("__init__")
    names = [] if init is None else list(inspect.signature(init).parameters)[1:]
    arguments: dict[str, object] = {
        "path": "/a/b",
        "detail": "why",
        "name": "store",
        "count": 3,
        "message": "what went wrong",
        "status": "auth failed",
        "host": "localhost",
        "address": "127.0.0.1",
        "reason": "loopback",
    }
    if names:
        return error(*(arguments[name] for name in names))
    return error("what went wrong")


def _params(function: object) -> list[tuple[str, object, object]]:
    signature = inspect.signature(function)  # type: ignore[arg-type]
    return [
        (p.name, p.kind.name, p.default) for p in signature.parameters.values() if p.name != "self"
    ]


def test_seed_signatures() -> None:
    empty = inspect.Parameter.empty
    assert _params(ConnectManager.add_data_store) == [
        ("name", "POSITIONAL_OR_KEYWORD", empty),
        ("config", "POSITIONAL_OR_KEYWORD", empty),
    ]
    assert _params(ConnectManager.link_file) == [
        ("file_path", "POSITIONAL_OR_KEYWORD", empty),
        ("data_store_name", "POSITIONAL_OR_KEYWORD", empty),
        ("object_id", "POSITIONAL_OR_KEYWORD", empty),
        ("size", "POSITIONAL_OR_KEYWORD", None),
        ("checksum", "POSITIONAL_OR_KEYWORD", ""),
        ("create_parents", "KEYWORD_ONLY", False),  # ours, after the seed's five
    ]
    assert _params(ConnectManager.list_external_files) == [
        ("data_store_name", "POSITIONAL_OR_KEYWORD", empty),
        ("limit", "POSITIONAL_OR_KEYWORD", 100),
        ("cursor", "POSITIONAL_OR_KEYWORD", ""),
    ]
    assert _params(ConnectManager.rekey_data_store) == [
        ("name", "POSITIONAL_OR_KEYWORD", empty),
        ("credentials", "POSITIONAL_OR_KEYWORD", None),
        ("new_access_key", "KEYWORD_ONLY", None),
        ("new_secret_key", "KEYWORD_ONLY", None),
    ]
    for method in ("count_external_files", "get_data_store", "remove_data_store"):
        assert len(_params(getattr(ConnectManager, method))) == 1
    for method in ("are_data_stores_available", "list_data_stores", "enable"):
        assert _params(getattr(ConnectManager, method)) == []
    assert [p[0] for p in _params(ConnectManager.link_http_file)] == ["file_path", "url", "size"]
    assert [p[0] for p in _params(ConnectManager.update_http_file_url)] == [
        "file_path",
        "new_url",
        "size",
    ]
    for method in ("unlink_file", "get_external_file"):
        assert len(_params(getattr(ConnectManager, method))) == 1
    assert _params(ConnectManager.configure) == [("allow_private_urls", "KEYWORD_ONLY", None)]
    assert _params(ConnectManager.get_settings) == []


def test_filesystem_methods_exist() -> None:
    for method in (
        "create_dir",
        "read_dir",
        "list_dir",
        "get_entry",
        "file_exists",
        "dir_exists",
        "open",
        "read_file",
        "write_file",
        "delete",
        "delete_dir",
        "move",
        "truncate",
        "create_symlink",
        "read_symlink",
        "get_statistics",
        "get_size",
    ):
        assert callable(getattr(Filesystem, method)), method
    assert [p[0] for p in _params(Filesystem.open)] == [
        "path",
        "mode",
        "buffering",
        "encoding",
        "errors",
        "newline",
    ]
    assert _params(Filesystem.delete_dir)[1] == ("recursive", "POSITIONAL_OR_KEYWORD", False)


def test_model_fields_and_enums() -> None:
    config = filespace.S3DataStoreConfig("AK", "SK", "bucket-name", "us-east-1")
    assert (config.endpoint, config.use_virtual_addressing) == ("", False)
    assert 1 <= config.url_expiration_minutes <= 10080
    assert filespace.DataStoreKind.S3.value == "S3DataStore"
    assert filespace.DataStoreRekeyState.NO_REKEY.value == "no_rekey"
    assert filespace.DataStoreRekeyState.IN_PROGRESS.value == "in_progress"
    info_fields = list(filespace.DataStoreInfo.__dataclass_fields__)
    assert info_fields == [
        "name",
        "access_key",
        "secret_key",
        "bucket_name",
        "region",
        "endpoint",
        "url_expiration_minutes",
        "use_virtual_addressing",
        "kind",
        "key_id",
        "rekey_state",
    ]
    assert filespace.ConnectSettings() == filespace.ConnectSettings(allow_private_urls=False)
    assert list(filespace.LinkedFilesResult.__dataclass_fields__) == [
        "file_paths",
        "file_ids",
        "has_more",
        "cursor",
    ]


def test_reprs_hide_secrets() -> None:
    secret = "s3cr3t-value-that-must-not-show"
    config = filespace.S3DataStoreConfig("AKID", secret, "bucket-name", "us-east-1")
    credentials = filespace.S3Credentials("AKID", secret)
    info = filespace.DataStoreInfo("n", "AKID", secret, "bucket-name", "us-east-1", "", 60, False)
    for thing in (config, credentials, info):
        assert secret not in repr(thing)
        assert secret not in str(thing)
        assert "AKID" in repr(thing)


def test_import_is_lazy() -> None:
    code = (
        "import sys, filespace\n"
        "names = ('boto3', 'botocore', 'urllib3', 'cryptography')\n"
        "heavy = [m for m in names if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


def test_link_exists_error_is_both() -> None:
    error = filespace.LinkExistsError("/a")
    assert isinstance(error, FileExistsError)
    assert isinstance(error, RuntimeError)
    assert error.filename == "/a"
