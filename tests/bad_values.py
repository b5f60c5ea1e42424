"""Hypothesis strategies for bad input: each argument as a good value and the ways it goes bad.

A call is drawn with at most one argument spoiled (``spoil_one``): a call with
every argument bad fails at the first check it meets and never reaches the
others, so each check is exercised only if the rest of the call is sound.
The suites are ``tests/test_bad_input.py`` (Python) and
``tests/test_bad_input_cli.py`` (the command line).
"""

from __future__ import annotations

import base64
import dataclasses
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

import filespace
from filespace import S3Credentials, S3DataStoreConfig

MAX = filespace.MAX_FILE_SIZE


def fuzz(examples: int) -> settings:
    """Settings for one suite: a fixed draw (a failure replays as is), no deadline, and one
    filespace shared by the examples of a test (set up once per engine, not per example)."""
    return settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
        ],
    )


DOCUMENTED = (ValueError, TypeError, OSError, RuntimeError, filespace.FilespaceError)


def check_documented(exc: BaseException, what: object) -> None:
    """``exc`` is a documented error: not a codec's, an overflow, nor a library's own."""
    assert isinstance(exc, DOCUMENTED), f"{what} raised {exc!r}"
    assert not isinstance(exc, UnicodeError | OverflowError), f"{what} raised {exc!r}"
    origin = type(exc).__module__.split(".")[0]
    assert origin in ("builtins", "filespace", "io"), f"{what} raised {exc!r} ({origin})"


@dataclasses.dataclass(frozen=True)
class Arg:
    """One argument: what a sound call passes, and what a bad one may pass instead."""

    good: st.SearchStrategy[Any]
    bad: st.SearchStrategy[Any]


def spoil_one(args: dict[str, Arg], *, always: bool = False) -> st.SearchStrategy[dict[str, Any]]:
    """Values for ``args``: all good or (``always``) exactly one of them bad."""

    @st.composite
    def draw_values(draw: st.DrawFn) -> dict[str, Any]:
        spoiled = draw(st.sampled_from([*([] if always else [None]), *args]))
        return {name: draw(arg.bad if name == spoiled else arg.good) for name, arg in args.items()}

    return draw_values()


ANY_CHAR = st.characters(codec=None, categories=None, exclude_categories=())
"""Every code point, lone surrogates (what undecodable bytes in argv become) included."""

NASTY = st.sampled_from(
    [
        "",
        ".",
        "..",
        "/",
        "\x00",
        "a\x00b",
        "\udc80",
        "a\udcff",
        "\ud800",
        "\n",
        "\t",
        " ",
        "\x1b[31m",
        "\x07",
        "\r",
        "\x7f",
        "a" * 256,
        "é" * 128,
        "x" * 5000,
    ]
)
WILD = st.text(ANY_CHAR, max_size=10)
TEXT = st.one_of(NASTY, WILD, st.text(alphabet="ab./", max_size=6))
NOT_TEXT = st.one_of(st.none(), st.integers(), st.binary(max_size=4), st.booleans(), st.floats())

EXISTING = ["/", "/d", "/d/f", "/e", "/h", "/sl"]
"""What the suites' filespace holds: a directory, a native file, an S3 and an HTTP link, a
symbolic link to ``/d``."""
GOOD_PATHS = st.sampled_from(
    [*EXISTING, "/n", "/d/n", "/sl/n", "/d/é", "/d/a b", "/n/", "//d//n", "/nope/x", "/d/f/x"]
)
BAD_NAMES = st.one_of(st.sampled_from(["d", "n"]), TEXT)
BAD_PATHS = st.one_of(
    st.lists(BAD_NAMES, min_size=1, max_size=3).map(lambda names: "/" + "/".join(names)),
    st.just("/" + "a/" * 2100),
    TEXT,
    NOT_TEXT,
)
PATH = Arg(GOOD_PATHS, BAD_PATHS)

STORE = Arg(st.just("s"), st.one_of(st.sampled_from(["missing", "a" * 65]), TEXT, NOT_TEXT))
NEW_STORE = Arg(st.sampled_from(["t", "u.v", "w_x-y"]), STORE.bad)
KEY = Arg(
    st.sampled_from(["k", "a/b", "é", "a b", "x" * 1024]),
    st.one_of(st.sampled_from(["k\x00", "k\udc80", "é" * 600, "x" * 1025, ""]), TEXT, NOT_TEXT),
)
SIZE = Arg(
    st.sampled_from([0, 1, 5, MAX]),
    st.one_of(
        st.sampled_from([MAX + 1, 2**63 - 1, 2**63, 2**64, -1, -(2**63) - 1, None]),
        st.integers(min_value=MAX + 1),
        st.integers(max_value=-1),
        st.booleans(),
        st.floats(allow_nan=True),
        st.sampled_from(["1", b"1"]),
    ),
)
HTTP_SIZE = Arg(SIZE.good, SIZE.bad.filter(lambda size: size is not None))
"""Never ``None``: without a size an HTTP link asks the URL."""
CHECKSUM = Arg(
    st.sampled_from(["etag", '"etag"', "0123abcd-2"]),
    st.one_of(
        st.sampled_from(['W/"abc"', '"', 'a"b', "e\udc80", "e\x00", "x" * 300, ""]),
        WILD.filter(bool),
        NOT_TEXT,
    ),
)
URL = Arg(
    st.builds(
        lambda scheme, path: f"{scheme}://93.184.216.34/{path}",
        st.sampled_from(["http", "https"]),
        st.sampled_from(["", "a", "a/b.csv", "x?y=1"]),
    ),
    st.one_of(
        st.builds(
            lambda scheme, host, port, path: f"{scheme}://{host}{port}/{path}",
            st.sampled_from(["http", "ftp", "HTTP", "file", ""]),
            st.sampled_from(
                ["93.184.216.34", "", "h x", "[::1", "999.1.1.1", "a\nb", "u:p@h", "h\udc80"]
            ),
            st.sampled_from(["", ":0", ":65536", ":99999999999999999999", ":x"]),
            st.sampled_from(["", "a b", "\n", "\x00", "\udc80"]),
        ),
        TEXT,
        NOT_TEXT,
    ),
)
"""Hosts are IP literals: nothing asks a DNS server."""


def _cursor(body: str) -> str:
    return "c1." + base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")


CURSOR = Arg(
    st.just(""),
    st.one_of(
        st.builds(_cursor, st.builds(lambda a, b: f"{a}:{b}", st.integers(), st.integers())),
        st.builds(_cursor, st.sampled_from(["1:" + "9" * 30, "1:1_0", "1: 2", "1:2:3", "٣:1"])),
        st.builds(lambda text: "c1." + text, TEXT),
        TEXT,
        NOT_TEXT,
    ),
)
LIMIT = Arg(
    st.sampled_from([1, 10, 1000]),
    st.one_of(
        st.integers(max_value=0),
        st.integers(min_value=1001),
        st.sampled_from([True, None, "10", 1.5]),
    ),
)
CREDENTIAL = Arg(
    st.sampled_from(["AKID", "another-key"]),
    st.one_of(st.sampled_from(["AK\udc80", "a b", "a\nb", "", "é", "x" * 5000]), TEXT, NOT_TEXT),
)
ENDPOINT = Arg(
    st.sampled_from(["", "http://127.0.0.1:9", "https://s3.example.com", "http://[::1]:9/"]),
    st.one_of(
        st.sampled_from(
            [
                "http://h\n:9",
                "http://h:9/\n",
                "http://h\t",
                "http://h x",
                "http://h\udc80",
                "http://h\x7f",
                "ftp://h",
                "http://h:70000",
                "http://u:p@h",
                "http://h/?q",
                "http://",
            ]
        ),
        TEXT,
        NOT_TEXT,
    ),
)
FLAG = Arg(st.booleans(), st.sampled_from([0, 1, None, "yes"]))
DRY_FLAG = Arg(st.just(True), FLAG.bad)

CONFIG_FIELDS = {
    "access_key": CREDENTIAL,
    "secret_key": CREDENTIAL,
    "bucket_name": Arg(
        st.sampled_from(["bucket", "b-1.x"]),
        st.one_of(st.sampled_from(["b", "Bucket", "1.2.3.4", "xn--b", "a..b", "b" * 64]), TEXT),
    ),
    "region": Arg(st.just("us-east-1"), st.one_of(st.sampled_from(["US", ""]), TEXT, NOT_TEXT)),
    "endpoint": ENDPOINT,
    "url_expiration_minutes": Arg(
        st.sampled_from([1, 60, 10080]),
        st.one_of(st.integers(max_value=0), st.integers(min_value=10081), st.just(True)),
    ),
    "use_virtual_addressing": FLAG,
}
CONFIG = Arg(
    spoil_one({name: Arg(arg.good, arg.good) for name, arg in CONFIG_FIELDS.items()}).map(
        lambda fields: S3DataStoreConfig(**fields)
    ),
    st.one_of(
        spoil_one(CONFIG_FIELDS, always=True).map(lambda fields: S3DataStoreConfig(**fields)),
        NOT_TEXT,
        st.just({"bucket_name": "bucket"}),
    ),
)
CREDENTIALS = Arg(
    st.builds(S3Credentials, CREDENTIAL.good, CREDENTIAL.good),
    st.one_of(
        st.builds(S3Credentials, CREDENTIAL.bad, CREDENTIAL.good),
        st.builds(S3Credentials, CREDENTIAL.good, CREDENTIAL.bad),
        CONFIG.good,
        NOT_TEXT,
    ),
)
MODE = Arg(
    st.sampled_from(["rb", "r", "wb", "w", "ab", "a", "r+b", "w+b", "a+b", "rt", "wt", "x", "xb"]),
    st.one_of(st.sampled_from(["rw", "bb", "r+", "U", "wx"]), TEXT, NOT_TEXT),
)
BUFFERING = Arg(st.sampled_from([-1, 0, 1, 8192]), st.one_of(st.integers(max_value=-2), NOT_TEXT))
ENCODING = Arg(
    st.sampled_from([None, "utf-8", "latin-1"]),
    st.one_of(st.sampled_from(["bogus", "utf-8\x00", "\udc80", "", "rot13"]), NOT_TEXT),
)
ERRORS = Arg(st.sampled_from([None, "strict", "replace"]), st.one_of(st.just("bogus"), NOT_TEXT))
NEWLINE = Arg(st.sampled_from([None, "", "\n", "\r\n"]), st.one_of(TEXT, st.integers()))
DATA = Arg(st.binary(max_size=16), st.one_of(TEXT, NOT_TEXT.filter(lambda v: v is not None)))
TARGET = Arg(
    st.sampled_from(["/d", "d/f", "../x", "é", "/nope"]),
    st.one_of(st.sampled_from(["", "\x00", "t\udc80", "x" * 4097]), NOT_TEXT),
)
PREFIX = Arg(
    st.sampled_from(["", "a/", "a", "b/c"]),
    st.one_of(st.sampled_from(["a\x00", "p\udc80", "x" * 1025]), NOT_TEXT),
)
