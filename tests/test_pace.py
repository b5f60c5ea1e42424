"""The throttling policy (``objects.pace``): seeded jitter and a fake clock, then for real.

The policy tests drive a ``Pace`` with a clock they move by hand and a
``sleep`` that records instead of sleeping. The last tests throttle through
``tests/faultproxy.py`` (503 SlowDown above N requests/s): HEADs, a listing
and reads still complete, and the endpoint's pace has slowed down.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest

from filespace import Filespace, LinkItem
from filespace.connect import bulk
from filespace.io import prefetch
from filespace.io.prefetch import BLOCK_SIZE
from filespace.objects import pace as paces
from filespace.objects.pace import MAX_DELAY_S, Pace
from filespace.testing import SeaweedS3
from tests.faultproxy import THROTTLED, FaultProxy
from tests.fsfixtures import store_config


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


def new_pace(clock: Clock, seed: int = 7) -> Pace:
    return Pace(rng=random.Random(seed), clock=clock, sleep=clock.sleep)


def test_delays_are_full_jitter_exponential_and_capped(clock: Clock) -> None:
    pace = new_pace(clock)
    delays = [[pace.delay(attempt) for _ in range(200)] for attempt in range(1, 9)]
    for attempt, seen in enumerate(delays, start=1):
        ceiling = min(MAX_DELAY_S, paces.BASE_DELAY_S * 2**attempt)
        assert all(0 <= d <= ceiling for d in seen)
        assert max(seen) > 0.8 * ceiling and min(seen) < 0.2 * ceiling  # spread over all of it
    again = new_pace(Clock())
    assert [again.delay(1) for _ in range(5)] == delays[0][:5]  # the same seed, the same waits


def test_retry_after_is_a_floor_and_is_capped(clock: Clock) -> None:
    pace = new_pace(clock)
    assert all(pace.delay(1, 2.0) >= 2.0 for _ in range(50))
    assert pace.delay(1, 3600.0) == MAX_DELAY_S
    assert paces.retry_after("1.5") == 1.5
    assert paces.retry_after("Wed, 21 Oct 2015 07:28:00 GMT") is None
    assert paces.retry_after("-3") is None


def test_retry_after_holds_every_request_back(clock: Clock) -> None:
    pace = new_pace(clock)
    pace.throttled(retry_after=2.0)
    pace.wait()
    assert clock.slept == [pytest.approx(2.0)]


def test_no_throttle_no_wait(clock: Clock) -> None:
    pace = new_pace(clock)
    for _ in range(100):
        pace.wait()
        pace.succeeded()
    assert clock.slept == [] and pace.rate is None and pace.limit(16) == 16


def _ask(pace: Pace, clock: Clock, count: int, spacing: float) -> None:
    for _ in range(count):
        pace.wait()
        clock.now += spacing


def test_a_throttle_halves_the_measured_rate_and_spaces_requests(clock: Clock) -> None:
    pace = new_pace(clock)
    _ask(pace, clock, 10, 0.1)  # 10 requests in the last second
    pace.throttled()
    assert pace.rate == pytest.approx(5.0, rel=0.25)
    rate = pace.rate
    assert rate is not None
    before = clock.now
    _ask(pace, clock, 6, 0.0)  # asked at once: spaced out by the pace
    # The first one too: it keeps the new spacing from the last start (0.1 s ago).
    assert clock.now - before == pytest.approx(6 / rate - 0.1, rel=0.01)


def test_one_cut_per_second_then_halving_again(clock: Clock) -> None:
    pace = new_pace(clock)
    _ask(pace, clock, 20, 0.05)
    pace.throttled()
    first = pace.rate
    pace.throttled()  # answers to requests already in flight: no second cut
    assert pace.rate == first and pace.throttles == 2
    assert first is not None
    _ask(pace, clock, int(first) + 1, 0.0)  # a second at the allowed rate
    pace.throttled()
    assert pace.rate == pytest.approx(first / 2, rel=0.15)


def test_successes_grow_the_rate_back_slowly(clock: Clock) -> None:
    pace = new_pace(clock)
    _ask(pace, clock, 8, 0.125)
    pace.throttled()
    start = pace.rate
    assert start is not None
    for _ in range(round(start)):  # about a second's worth of answers
        pace.succeeded()
    grown = start + paces._STEP  # additive: the step per second's worth of answers
    assert pace.rate == pytest.approx(grown, rel=0.1)


def test_the_limit_is_lifted_after_a_quiet_spell(clock: Clock) -> None:
    pace = new_pace(clock)
    _ask(pace, clock, 10, 0.1)
    pace.throttled()
    clock.now += 31.0
    pace.wait()
    assert pace.rate is None


def test_concurrency_share_halves_and_grows_back_by_one_slot_at_a_time(clock: Clock) -> None:
    pace = new_pace(clock)
    pace.throttled()
    assert pace.limit(16) == 8
    clock.now += 1.0
    pace.throttled()
    assert pace.limit(16) == 4
    assert pace.limit(1) == 1  # never none
    grown = []
    for _ in range(64):
        pace.succeeded()
        grown.append(pace.limit(16))
    assert grown == sorted(grown) and grown[-1] < 16  # back slowly, never all at once


def test_paces_are_per_endpoint() -> None:
    one = paces.for_url("http://127.0.0.1:9/b/k?X-Amz-Signature=s")
    assert one is paces.of("http://127.0.0.1:9")
    assert one is paces.for_url("HTTP://user@127.0.0.1:9/other")
    assert one is not paces.for_url("http://127.0.0.1:10/b/k")


# -- through a proxy that throttles above N requests/s --


@pytest.mark.parametrize("engine_name", ["sqlite"], indirect=True)
def test_throttled_heads_listing_and_reads_complete_and_slow_down(
    connected: Filespace, s3_server: SeaweedS3, s3_admin: Any, bucket: str
) -> None:
    data = random.Random(1).randbytes(300_000)
    for index in range(40):
        s3_admin.put_object(Bucket=bucket, Key=f"o/{index:02}", Body=data[: 100 + index])
    s3_admin.put_object(Bucket=bucket, Key="big", Body=data)
    with FaultProxy(s3_server.endpoint, throttle_rps=10.0) as proxy:
        config = store_config(s3_server, bucket, endpoint=proxy.endpoint)
        connected.connect.add_data_store("p", config)
        items = [LinkItem(f"/h/{index:02}", f"o/{index:02}") for index in range(40)]
        report = connected.connect.link_files(items, data_store_name="p", create_parents=True)
        mirrored = connected.connect.mirror("p", "o/", "/m")
        connected.connect.link_file("/big", "p", "big")
        got = connected.fs.read_file("/big")
    assert report.failed == [] and report.linked == 40
    assert mirrored.added == 40
    assert got == data
    assert [connected.fs.get_entry(f"/m/{i:02}").size for i in range(40)] == [
        100 + i for i in range(40)
    ]
    assert proxy.faults(THROTTLED), "the proxy never throttled: the test tests nothing"
    pace = paces.of(proxy.endpoint)
    assert pace.throttles >= len(proxy.faults(THROTTLED)) > 0
    assert pace.rate is not None and pace.share < 1.0


@pytest.fixture
def slowed(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], Pace]:
    """Installs a pace for an endpoint, cut six times (a sixty-fourth of its share).

    Its clock is fake, so the rate limit it learned costs the test no time.
    """

    def make(endpoint: str) -> Pace:
        clock = Clock()
        pace = new_pace(clock)
        for _ in range(6):
            pace.throttled()
            clock.now += 1.0
        monkeypatch.setitem(paces._paces(), endpoint, pace)
        return pace

    return make


@pytest.mark.parametrize("engine_name", ["sqlite"], indirect=True)
def test_a_throttled_endpoint_gets_fewer_heads_at_once(
    connected: Filespace,
    s3_server: SeaweedS3,
    s3_admin: Any,
    bucket: str,
    slowed: Callable[[str], Pace],
) -> None:
    for index in range(24):
        s3_admin.put_object(Bucket=bucket, Key=f"o/{index:02}", Body=b"h" * index)
    with FaultProxy(s3_server.endpoint) as proxy:
        assert slowed(proxy.endpoint).limit(bulk.HEAD_WORKERS) == 1
        connected.connect.add_data_store(
            "p", store_config(s3_server, bucket, endpoint=proxy.endpoint)
        )
        items = [LinkItem(f"/h/{index:02}", f"o/{index:02}") for index in range(24)]
        report = connected.connect.link_files(items, data_store_name="p", create_parents=True)
    assert report.linked == 24
    heads = proxy.requests("HEAD")
    assert len(heads) == 24 and max(seen.busy for seen in heads) == 1


@pytest.mark.parametrize("engine_name", ["sqlite"], indirect=True)
def test_a_throttled_endpoint_gets_a_smaller_readahead(
    connected: Filespace,
    s3_server: SeaweedS3,
    s3_admin: Any,
    bucket: str,
    slowed: Callable[[str], Pace],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(prefetch, "NEAR_S", 0.0)  # blocks and readahead, never one stream
    data = random.Random(2).randbytes(128 * BLOCK_SIZE)
    s3_admin.put_object(Bucket=bucket, Key="big", Body=data)
    with FaultProxy(s3_server.endpoint) as proxy:
        pace = slowed(proxy.endpoint)
        connected.connect.add_data_store(
            "p", store_config(s3_server, bucket, endpoint=proxy.endpoint)
        )
        connected.connect.link_file("/big", "p", "big")
        got = bytearray()
        with connected.fs.open("/big", "rb") as handle:
            while chunk := handle.read(64 * 1024):
                got += chunk
    assert got == data
    lengths = []
    for seen in proxy.requests("GET"):
        first, last = seen.range.removeprefix("bytes=").split("-")
        lengths.append(int(last) - int(first) + 1)
    # The window never outgrew the pace's share: no GET asks for more.
    # The share only grew during the read (each answer adds a little), so its
    # final value bounds the window all along; a window that ignored the pace
    # would reach REQUEST_SIZE (32 blocks) GETs here.
    allowed = pace.limit(prefetch.MAX_WINDOW // BLOCK_SIZE)
    assert allowed < prefetch.REQUEST_SIZE // BLOCK_SIZE - 1
    assert max(lengths) <= (allowed + 1) * BLOCK_SIZE, (lengths, allowed)
