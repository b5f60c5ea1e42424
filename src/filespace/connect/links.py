"""Single external links: S3 objects and HTTP URLs as read-only files.

Every operation checks its input first, so bad input changes nothing. An S3
link given without size and checksum is looked up with one HeadObject first;
an HTTP link without a size is probed with one ranged GET. An HTTP link's
host must resolve to a public address unless private URLs are allowed
(``objects.guard``): checked on the probe's connection, or by resolving the
host when the size is given.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import time
from typing import TYPE_CHECKING

from filespace import paths
from filespace.connect import validation as check
from filespace.connect.access import Access, head_object
from filespace.connect.models import ExternalFileInfo
from filespace.connect.stores import Stores
from filespace.errors import LinkNotFoundError, MissingParentError, NotALinkError, PrivateUrlError
from filespace.meta.errors import MetaError, NoSuchEntry, engine_errors
from filespace.meta.records import EntryRecord, NewLink
from filespace.objects import http
from filespace.objects.guard import Guard
from filespace.objects.probe import check_reach, probe
from filespace.redaction import without_query
from filespace.resolver import Resolver

if TYPE_CHECKING:
    from filespace.meta.engine import Engine


def external_info(entry: EntryRecord, path: str) -> ExternalFileInfo | None:
    """The public description of an entry's link, or ``None`` for native entries."""
    link = entry.link
    if link is None:
        return None
    return ExternalFileInfo(
        path=path,
        kind="http" if link.kind == "http" else "s3",
        data_store_name=link.data_store_name,
        object_id=link.object_key,
        url=link.url,
        size=link.size,
        checksum=link.checksum,
        linked_at=link.linked_ns // 1_000_000_000,
    )


class Links:
    """Creates, re-points, describes and removes single links."""

    def __init__(self, engine: Engine, stores: Stores, access: Access) -> None:
        self._engine = engine
        self._guard: Guard = access.allows_private_urls
        self._resolver = Resolver(engine)
        self._stores = stores
        self._access = access

    def head(self, store_name: str, object_id: str) -> tuple[int, str]:
        """Size and ETag of an object of a store, by one HeadObject."""
        check.object_key(object_id)
        store = self._stores.record(store_name)
        found = head_object(self._access.client(store), object_id)
        return found.size, found.etag

    def link_file(
        self,
        file_path: str,
        store_name: str,
        object_id: str,
        size: int | None,
        checksum: str,
        *,
        create_parents: bool,
    ) -> None:
        """Link an S3 object; see ``ConnectManager.link_file``."""
        parent_names, name = paths.parent_and_name(file_path)
        check.store_name(store_name)
        check.object_key(object_id)
        if size is not None:
            check.size(size)
        etag = check.checksum(checksum)
        if (size is None) != (etag == ""):
            raise ValueError("give both size and checksum, or neither")
        if not isinstance(create_parents, bool):
            raise ValueError("create_parents must be a bool")
        if size is not None and not create_parents:
            link = NewLink(size=size, checksum=etag, object_key=object_id)
            self._link_at(file_path, parent_names, name, link, store_name)
            return
        if create_parents:
            store = self._stores.record(store_name)
            if size is None:
                size, etag = self.head(store_name, object_id)
            link = NewLink(size=size, checksum=etag, data_store_id=store.id, object_key=object_id)
            self._link_with_parents(file_path, "/" + "/".join(parent_names), name, link, store.name)
            return
        parent, name = self._link_parent(file_path)
        store = self._stores.record(store_name)
        found = head_object(self._access.client(store), object_id)
        link = NewLink(
            size=found.size, checksum=found.etag, data_store_id=store.id, object_key=object_id
        )
        self._create_link(parent.id, name, file_path, link, store.name)

    def _link_at(
        self,
        file_path: str,
        parent_names: tuple[str, ...],
        name: str,
        link: NewLink,
        store_name: str,
    ) -> None:
        """Create a link in one engine transaction; resolve the slow way if that can't."""
        with engine_errors(path=file_path, store=store_name, link=True):
            try:
                self._engine.create_at(
                    parent_names, name, "file", time.time_ns(), link=link, store_name=store_name
                )
                return
            except NoSuchEntry:
                pass  # a missing parent, or a symlink on the way: find out which
        parent, _ = self._link_parent(file_path)
        link = dataclasses.replace(link, data_store_id=self._stores.record(store_name).id)
        self._create_link(parent.id, name, file_path, link, store_name)

    def _link_with_parents(
        self, file_path: str, parent_path: str, name: str, link: NewLink, store_name: str
    ) -> None:
        """Make the missing parents (one transaction), then the link (another).

        The engine has no operation that does both at once; if the link fails,
        the directories made for it are removed again.
        """
        names = paths.split(parent_path)
        try:
            base, found = self._resolver.deepest_dir(names)
        except FileExistsError:
            raise MissingParentError(file_path) from None
        made: list[int] = []
        parent_id = base.id
        if found < len(names):
            chain = self._engine.make_dirs([(base.id, names[found:])], time.time_ns())[0]
            if chain is None:  # a file appeared on the way meanwhile
                raise MissingParentError(file_path)
            made, parent_id = chain, chain[-1]
        try:
            self._create_link(parent_id, name, file_path, link, store_name)
        except BaseException:
            for directory in reversed(made):
                with contextlib.suppress(MetaError):
                    self._engine.remove(directory)
            raise

    def _link_parent(self, file_path: str) -> tuple[EntryRecord, str]:
        try:
            return self._resolver.parent(file_path)
        except (FileNotFoundError, NotADirectoryError):
            raise MissingParentError(file_path) from None

    def _create_link(
        self, parent_id: int, name: str, file_path: str, link: NewLink, store_name: str = ""
    ) -> None:
        with engine_errors(path=file_path, store=store_name, link=True):
            self._engine.create(parent_id, name, "file", time.time_ns(), link=link)

    def link_http_file(self, file_path: str, url: str, size: int | None) -> None:
        """Link an HTTP(S) URL; see ``ConnectManager.link_http_file``."""
        paths.split(file_path)
        check.http_url(url)
        if size is not None:
            check.size(size)
        parent, name = self._link_parent(file_path)
        size, etag = _probe(file_path, url, size, self._guard)
        self._create_link(parent.id, name, file_path, NewLink(size=size, checksum=etag, url=url))

    def update_http_file_url(self, file_path: str, new_url: str, size: int | None) -> None:
        """Point an HTTP link at a new URL, probing its size unless given."""
        check.http_url(new_url)
        if size is not None:
            check.size(size)
        entry = self._external_entry(file_path)
        if entry.link is None or entry.link.kind != "http":
            raise NotALinkError(f"{file_path} is not an HTTP link")
        size, etag = _probe(file_path, new_url, size, self._guard)
        with engine_errors(path=file_path):
            self._engine.update_link(
                entry.id, size=size, checksum=etag, url=new_url, now_ns=time.time_ns()
            )

    def _external_entry(self, file_path: str) -> EntryRecord:
        try:
            entry = self._resolver.walk(file_path, follow_last=False)
        except FileNotFoundError:  # Connect's failures are RuntimeErrors too (the seed)
            raise LinkNotFoundError(file_path) from None
        if entry.link is None:
            raise NotALinkError(f"{file_path} is not an external file")
        return entry

    def unlink_file(self, file_path: str) -> None:
        """Remove a link (never a native file, never the object)."""
        entry = self._external_entry(file_path)
        with engine_errors(path=file_path):
            self._engine.remove(entry.id)

    def unlink_tree(self, dir_path: str, store_name: str | None, *, dry_run: bool) -> int:
        """Remove every link under a directory (of one store if named); how many."""
        store_id = None if store_name is None else self._stores.record(store_name).id
        directory = self._resolver.walk(dir_path, follow_last=True)
        if not directory.is_dir:
            raise NotADirectoryError(errno.ENOTDIR, "not a directory", dir_path)
        with engine_errors(path=dir_path, store=store_name or ""):
            return self._engine.remove_links(directory.id, store_id, dry_run=dry_run)

    def get_external_file(self, path: str) -> ExternalFileInfo:
        """Where the external file at ``path`` comes from."""
        info = external_info(self._external_entry(path), paths.normalize(path))
        assert info is not None
        return info


def _probe(path: str, url: str, size: int | None, guard: Guard) -> tuple[int, str]:
    """The size and ETag of a URL: ``size`` as given, or learnt with one ranged GET.

    Either way the URL's host must pass the address policy (``PrivateUrlError``).
    """
    try:
        if size is not None:
            check_reach(url, guard)
            return size, ""
        found, etag = probe(url, guard)
    except http.Blocked as blocked:
        raise PrivateUrlError(blocked.host, blocked.address, blocked.reason, path) from None
    except http.RangeError as exc:
        raise RuntimeError(f"cannot reach {without_query(url)}: {exc}") from None
    return check.size(found), strong_etag(etag)


def strong_etag(etag: str) -> str:
    """The checksum an HTTP link keeps of a server's ETag: ``""`` for a weak or unusable one.

    ``If-Match`` compares strongly, so a weak ETag (``W/"..."``) would fail
    every read with 412; such a link keeps no checksum (no ``If-Match``, no
    caching) and relies on the size check, like a server that sends no ETag.
    """
    try:
        return check.checksum(etag) if etag and not etag.startswith("W/") else ""
    except ValueError:
        return ""
