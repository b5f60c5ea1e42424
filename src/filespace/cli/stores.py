"""``filespace store ...``: the S3 buckets external files come from."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from filespace import (
    DEFAULT_URL_EXPIRATION_MINUTES,
    DataStoreExistsError,
    DataStoreInfo,
    DataStoreNotEmptyError,
    S3DataStoreConfig,
    validate_data_store_config,
    validate_store_name,
)
from filespace.cli import context, output, s3check
from filespace.cli.errors import CliError
from filespace.cli.params import DryRunOpt, JsonOpt, NoVerifyOpt, YesOpt
from filespace.cli.secrets import SecretArgOpt, SecretStdinOpt, read_secret

app = typer.Typer(
    help="Data stores: the S3 buckets external files come from.", no_args_is_help=True
)

NameArg = Annotated[str, typer.Argument(help="Name of the data store.")]
AccessKeyOpt = Annotated[str, typer.Option("--access-key", help="S3 access key id.")]


def _doc(info: DataStoreInfo, linked: int | None = None) -> dict[str, Any]:
    """A store as JSON, without its secret."""
    return {
        "name": info.name,
        "kind": info.kind.value,
        "bucket": info.bucket_name,
        "region": info.region,
        "endpoint": info.endpoint,
        "virtual_addressing": info.use_virtual_addressing,
        "url_expiration_minutes": info.url_expiration_minutes,
        "access_key": info.access_key,
        "key_id": info.key_id,
        "rekey_state": info.rekey_state.value,
        "linked_files": linked,
    }


@app.command("add")
def add(
    ctx: typer.Context,
    name: NameArg,
    bucket: Annotated[str, typer.Option("--bucket", help="Bucket name.")],
    region: Annotated[str, typer.Option("--region", help="Bucket region, e.g. us-east-1.")],
    access_key: AccessKeyOpt,
    secret_key_stdin: SecretStdinOpt = False,
    secret_key: SecretArgOpt = None,
    endpoint: Annotated[
        str, typer.Option("--endpoint", metavar="URL", help="S3 endpoint URL (default: AWS).")
    ] = "",
    virtual_addressing: Annotated[
        bool, typer.Option("--virtual-addressing", help="Use bucket.host URLs.")
    ] = False,
    url_expiration: Annotated[
        int,
        typer.Option(
            "--url-expiration",
            min=1,
            max=10080,
            metavar="MINUTES",
            help="How long a presigned URL lives.",
        ),
    ] = DEFAULT_URL_EXPIRATION_MINUTES,
    no_verify: NoVerifyOpt = False,
    dry_run: DryRunOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Add a data store, after checking the bucket answers these credentials."""
    secret = read_secret(from_stdin=secret_key_stdin, given=secret_key)
    with context.opened(ctx) as fsp:
        taken = {info.name for info in fsp.connect.list_data_stores()}
        if validate_store_name(name) in taken:
            raise DataStoreExistsError(f"a data store named {name!r} already exists")
        config = validate_data_store_config(
            S3DataStoreConfig(
                access_key=access_key,
                secret_key=secret,
                bucket_name=bucket,
                region=region,
                endpoint=endpoint,
                url_expiration_minutes=url_expiration,
                use_virtual_addressing=virtual_addressing,
            )
        )
        if not no_verify:
            s3check.verify(fsp, config)
        if dry_run:
            info = DataStoreInfo(
                name,
                access_key,
                "",
                bucket,
                region,
                config.endpoint,
                url_expiration,
                virtual_addressing,
            )
        else:
            info = fsp.connect.add_data_store(name, config)
    if context.wants_json(ctx, json_):
        output.emit_json({"dry_run": dry_run, "verified": not no_verify, "store": _doc(info, 0)})
        return
    checked = "not checked (--no-verify)" if no_verify else "reachable with these credentials"
    action = "would add" if dry_run else "added"
    output.say(
        f"{action} data store {name!r}: bucket {bucket!r} at "
        f"{s3check.where(config.endpoint, region)}, {checked}"
    )


@app.command("list")
def list_stores(ctx: typer.Context, no_verify: NoVerifyOpt = False, json_: JsonOpt = False) -> None:
    """List data stores, checking each bucket live (unless --no-verify)."""
    with context.opened(ctx) as fsp:
        stores = fsp.connect.list_data_stores()
        linked = {info.name: fsp.connect.count_external_files(info.name) for info in stores}
        failures = {} if no_verify else s3check.check_all(fsp, [s.name for s in stores])
    docs = []
    for info in stores:
        doc = _doc(info, linked[info.name])
        failure = failures.get(info.name)
        doc["status"] = "-" if no_verify else s3check.status(failure)
        doc["status_detail"] = None if failure is None else str(failure)
        docs.append(doc)
    if context.wants_json(ctx, json_):
        output.emit_json({"stores": docs})
        return
    if not docs:
        output.note("no data stores; add one with: filespace store add NAME --bucket ...")
        return
    rows = [
        [
            d["name"],
            d["bucket"],
            d["region"],
            d["endpoint"] or "(AWS)",
            str(d["linked_files"]),
            d["status"],
        ]
        for d in docs
    ]
    output.table(["name", "bucket", "region", "endpoint", "linked files", "status"], rows)


@app.command("show")
def show(
    ctx: typer.Context,
    name: NameArg,
    show_secret: Annotated[
        bool, typer.Option("--show-secret", help="Also print the secret key.")
    ] = False,
    json_: JsonOpt = False,
) -> None:
    """Show one data store (its secret only with --show-secret)."""
    with context.opened(ctx) as fsp:
        info = fsp.connect.data_store(name)  # raises for an unknown store
        secret = fsp.connect.get_data_store(name) if show_secret else None
        doc = _doc(info, fsp.connect.count_external_files(name))
    if show_secret:
        doc["secret_key"] = secret.secret_key if secret is not None else ""
    if context.wants_json(ctx, json_):
        output.emit_json(doc)
        return
    pairs = [
        (key.replace("_", " "), "" if value is None else str(value)) for key, value in doc.items()
    ]
    if not show_secret:
        pairs.append(("secret key", "(hidden; --show-secret prints it)"))
    output.fields(pairs)


@app.command("rekey")
def rekey(
    ctx: typer.Context,
    name: NameArg,
    access_key: AccessKeyOpt,
    secret_key_stdin: SecretStdinOpt = False,
    secret_key: SecretArgOpt = None,
    no_verify: NoVerifyOpt = False,
    dry_run: DryRunOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Rotate a data store's credentials, after checking the new ones work."""
    secret = read_secret(from_stdin=secret_key_stdin, given=secret_key)
    with context.opened(ctx) as fsp:
        info = fsp.connect.data_store(name)
        config = validate_data_store_config(
            S3DataStoreConfig(
                access_key,
                secret,
                info.bucket_name,
                info.region,
                info.endpoint,
                info.url_expiration_minutes,
                info.use_virtual_addressing,
            )
        )
        if not no_verify:
            s3check.verify(fsp, config)
        if not dry_run:
            fsp.connect.rekey_data_store(name, new_access_key=access_key, new_secret_key=secret)
    if context.wants_json(ctx, json_):
        output.emit_json(
            {"dry_run": dry_run, "verified": not no_verify, "store": name, "access_key": access_key}
        )
        return
    action = "would rotate" if dry_run else "rotated"
    output.say(f"{action} the credentials of data store {name!r} (access key {access_key})")


def _refuse_busy(name: str, count: int) -> CliError:
    unlink = context.hint(f"filespace unlink --all / --store {name}")
    return CliError(
        f"data store {name!r} still has {output.counted(count, 'linked file')}; nothing was "
        f"removed (unlink them first: {unlink})"
    )


@app.command("remove")
def remove(
    ctx: typer.Context,
    name: NameArg,
    yes: YesOpt = False,
    dry_run: DryRunOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Remove a data store that has no linked files."""
    with context.opened(ctx) as fsp:
        info = fsp.connect.data_store(name)
        count = fsp.connect.count_external_files(name)
        if count:
            raise _refuse_busy(name, count)
        if not dry_run:
            context.confirm(f"remove data store {name!r} (bucket {info.bucket_name!r})", yes=yes)
            try:
                fsp.connect.remove_data_store(name)
            except DataStoreNotEmptyError as busy:
                raise _refuse_busy(name, busy.count) from None
    if context.wants_json(ctx, json_):
        output.emit_json({"dry_run": dry_run, "removed": [name]})
    else:
        output.say(f"{'would remove' if dry_run else 'removed'} data store {name!r}")


@app.command("cleanup")
def cleanup(
    ctx: typer.Context,
    empty: Annotated[
        bool, typer.Option("--empty", help="Remove every empty store, reachable or not.")
    ] = False,
    yes: YesOpt = False,
    dry_run: DryRunOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Remove empty data stores whose bucket cannot be reached (--empty: all empty ones)."""
    with context.opened(ctx) as fsp:
        stores = fsp.connect.list_data_stores()
        idle = [s for s in stores if fsp.connect.count_external_files(s.name) == 0]
        if empty:
            doomed = [(info, "empty") for info in idle]
        else:
            failures = s3check.check_all(fsp, [s.name for s in idle])
            doomed = [
                (info, s3check.status(failures[info.name]))
                for info in idle
                if failures[info.name] is not None
            ]
        if doomed and not dry_run:
            names = ", ".join(info.name for info, _ in doomed)
            stores_text = output.counted(len(doomed), "data store")
            context.confirm(f"remove {stores_text}: {names}", yes=yes)
        removed = []
        for info, reason in doomed:
            if not dry_run:
                try:
                    fsp.connect.remove_data_store(info.name)
                except DataStoreNotEmptyError:
                    output.warn(f"kept data store {info.name!r}: files were linked to it meanwhile")
                    continue
            removed.append({"name": info.name, "bucket": info.bucket_name, "reason": reason})
    if context.wants_json(ctx, json_):
        output.emit_json({"dry_run": dry_run, "removed": removed})
        return
    if not removed:
        output.say("nothing to clean up")
    for doc in removed:
        action = "would remove" if dry_run else "removed"
        output.say(
            f"{action} data store {doc['name']!r} (bucket {doc['bucket']!r}: {doc['reason']})"
        )
