"""The output batcher flushes by size or after a delay, keeps order, and caps with one marker."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infrastructure.agent.batcher import Chunk, OutputBatcher, truncation_marker


class Sink:
    """Collects flushed batches; `flushed` is set on every flush."""

    def __init__(self) -> None:
        self.batches: list[list[Chunk]] = []
        self.flushed = asyncio.Event()

    async def __call__(self, batch: list[Chunk]) -> None:
        self.batches.append(batch)
        self.flushed.set()

    @property
    def chunks(self) -> list[Chunk]:
        return [chunk for batch in self.batches for chunk in batch]


class Gate:
    """A sleep that returns only when the test opens the gate."""

    def __init__(self) -> None:
        self.delays: list[float] = []
        self.opened = asyncio.Event()

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        await self.opened.wait()


async def never(delay: float) -> None:
    await asyncio.Event().wait()


def run(coroutine):
    return asyncio.run(coroutine)


def test_a_full_batch_is_flushed_at_once_and_never_exceeds_max_bytes() -> None:
    async def scenario() -> Sink:
        sink = Sink()
        batcher = OutputBatcher(sink, max_bytes=10, sleep=never)
        await batcher.add("stdout", "a" * 25)
        assert [len(b[0].text) for b in sink.batches] == [10, 10]
        await batcher.close()
        return sink

    sink = run(scenario())
    assert [[(c.text, c.seq) for c in batch] for batch in sink.batches] == [
        [("a" * 10, 0)],
        [("a" * 10, 1)],
        [("a" * 5, 2)],
    ]


def test_a_pending_batch_is_flushed_after_max_delay() -> None:
    async def scenario() -> tuple[Sink, Gate]:
        sink, gate = Sink(), Gate()
        batcher = OutputBatcher(sink, max_delay=0.2, sleep=gate)
        await batcher.add("stdout", "hello ")
        await batcher.add("stdout", "world")
        await asyncio.sleep(0)
        assert sink.batches == [] and gate.delays == [0.2]  # one timer, started by the first
        gate.opened.set()
        await asyncio.wait_for(sink.flushed.wait(), 5)
        await batcher.close()
        return sink, gate

    sink, gate = run(scenario())
    assert sink.batches == [[Chunk(stream="stdout", text="hello world", seq=0)]]


def test_the_timer_uses_real_time_by_default() -> None:
    async def scenario() -> Sink:
        sink = Sink()
        batcher = OutputBatcher(sink, max_delay=0.01)
        await batcher.add("stderr", "x")
        await asyncio.wait_for(sink.flushed.wait(), 5)
        return sink

    assert run(scenario()).chunks == [Chunk(stream="stderr", text="x", seq=0)]


def test_consecutive_text_of_one_stream_is_merged_and_order_is_kept() -> None:
    async def scenario() -> Sink:
        sink = Sink()
        batcher = OutputBatcher(sink, sleep=never)
        for stream, text in [("stdout", "a"), ("stdout", "b"), ("stderr", "c"), ("stdout", "d")]:
            await batcher.add(stream, text)
        await batcher.close()
        return sink

    assert run(scenario()).batches == [
        [
            Chunk(stream="stdout", text="ab", seq=0),
            Chunk(stream="stderr", text="c", seq=1),
            Chunk(stream="stdout", text="d", seq=2),
        ]
    ]


def test_output_beyond_the_cap_is_dropped_with_exactly_one_marker() -> None:
    async def scenario() -> tuple[Sink, OutputBatcher]:
        sink = Sink()
        batcher = OutputBatcher(sink, cap_bytes=10, sleep=never)
        await batcher.add("stdout", "123456")
        await batcher.add("stderr", "789012")
        await batcher.add("stdout", "more")
        await batcher.add("stdout", "x")
        await batcher.close()
        return sink, batcher

    sink, batcher = run(scenario())
    assert sink.chunks == [
        Chunk(stream="stdout", text="123456", seq=0),
        Chunk(stream="stderr", text="7890", seq=1),
        Chunk(stream="system", text=truncation_marker(10), seq=2),
    ]
    assert truncation_marker(10) == "[output truncated at 10 bytes]"
    assert (batcher.accepted_bytes, batcher.dropped_bytes, batcher.truncated) == (10, 7, True)


def test_a_character_is_never_split() -> None:
    async def scenario() -> Sink:
        sink = Sink()
        batcher = OutputBatcher(sink, max_bytes=5, cap_bytes=9, sleep=never)
        await batcher.add("stdout", "ééé€€")  # 2+2+2+3+3 bytes
        await batcher.close()
        return sink

    sink = run(scenario())
    assert [c.text for c in sink.chunks] == ["éé", "é€", truncation_marker(9)]


def test_an_error_of_a_timed_flush_surfaces_on_close() -> None:
    async def failing(batch: list[Chunk]) -> None:
        raise OSError("store down")

    async def scenario() -> None:
        gate = Gate()
        batcher = OutputBatcher(failing, sleep=gate)
        await batcher.add("stdout", "x")
        gate.opened.set()
        for _ in range(10):
            await asyncio.sleep(0)
        await batcher.close()

    with pytest.raises(OSError, match="store down"):
        run(scenario())


def test_nothing_is_added_after_close() -> None:
    async def scenario() -> None:
        batcher = OutputBatcher(Sink())
        await batcher.close()
        await batcher.add("stdout", "late")

    with pytest.raises(RuntimeError, match="closed"):
        run(scenario())


def expected_runs(adds: list[tuple[str, str]], cap: int) -> list[tuple[str, str]]:
    """The input, character by character, up to the cap, merged by stream."""
    runs: list[tuple[str, str]] = []
    total = 0
    for stream, text in adds:
        for char in text:
            size = len(char.encode())
            if total + size > cap:
                return runs
            total += size
            if runs and runs[-1][0] == stream:
                runs[-1] = (stream, runs[-1][1] + char)
            else:
                runs.append((stream, char))
    return runs


def merged(chunks: list[Chunk]) -> list[tuple[str, str]]:
    runs: list[tuple[str, str]] = []
    for chunk in chunks:
        if runs and runs[-1][0] == chunk.stream:
            runs[-1] = (chunk.stream, runs[-1][1] + chunk.text)
        elif chunk.text:
            runs.append((chunk.stream, chunk.text))
    return runs


@settings(max_examples=200, deadline=None)
@given(
    adds=st.lists(
        st.tuples(st.sampled_from(["stdout", "stderr"]), st.text(max_size=40)), max_size=30
    ),
    max_bytes=st.integers(4, 64),
    cap=st.integers(0, 400),
)
def test_any_output_comes_out_as_the_same_text_in_order_up_to_the_cap(
    adds: list[tuple[str, str]], max_bytes: int, cap: int
) -> None:
    async def scenario() -> Sink:
        sink = Sink()
        batcher = OutputBatcher(sink, max_bytes=max_bytes, cap_bytes=cap, sleep=never)
        for stream, text in adds:
            await batcher.add(stream, text)
        await batcher.close()
        return sink

    sink = run(scenario())
    chunks = sink.chunks
    text = [c for c in chunks if c.stream != "system"]
    markers = [c for c in chunks if c.stream == "system"]
    assert merged(text) == expected_runs(adds, cap)
    total = sum(len(t.encode()) for _, t in adds)
    assert len(markers) == (1 if total > cap else 0)
    assert not markers or chunks[-1] == markers[0]
    assert [c.seq for c in chunks] == list(range(len(chunks)))
    for batch in sink.batches:
        assert sum(len(c.text.encode()) for c in batch if c.stream != "system") <= max_bytes
        assert all(a.stream != b.stream for a, b in zip(batch, batch[1:], strict=False))


def test_flush_passes_on_what_is_pending_before_a_message_that_must_not_overtake_it() -> None:
    async def scenario() -> Sink:
        sink = Sink()
        batcher = OutputBatcher(sink, sleep=never)
        await batcher.add("stdout", "before the question")
        await batcher.flush()
        assert sink.chunks == [Chunk(stream="stdout", text="before the question", seq=0)]
        await batcher.add("stdout", "after")
        await batcher.close()
        return sink

    assert [c.text for c in run(scenario()).chunks] == ["before the question", "after"]
