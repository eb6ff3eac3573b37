"""Reading a worker's messages: whole messages only, never waiting for a late byte."""

from __future__ import annotations

import os
import select
import threading
from collections.abc import Iterator
from multiprocessing import Pipe
from multiprocessing.connection import Connection

import pytest

from ocrpool.pool.protocol import Ack, Frames, Garbled, Outcome


@pytest.fixture
def pipe() -> Iterator[tuple[Connection, Connection]]:
    reader, writer = Pipe(duplex=True)
    yield reader, writer
    reader.close()
    writer.close()


def _framed(message: object) -> bytes:
    """The bytes ``Connection.send`` writes for ``message``."""
    reader, writer = Pipe(duplex=True)
    with reader, writer:
        writer.send(message)
        frames = bytearray()
        while select.select([reader], [], [], 0)[0]:
            frames += os.read(reader.fileno(), 1 << 20)
    return bytes(frames)


def test_every_message_one_read_returns_comes_back_in_order(
    pipe: tuple[Connection, Connection],
) -> None:
    reader, writer = pipe
    sent = [Ack(1), Outcome(1, None, None, 80.0, 0.01, False, started=2), Ack(3)]
    for message in sent:
        writer.send(message)
    assert Frames(reader.fileno()).read() == sent


def test_a_message_cut_short_waits_for_its_rest_without_blocking(
    pipe: tuple[Connection, Connection],
) -> None:
    reader, writer = pipe
    frames = Frames(reader.fileno())
    first, second = _framed(Ack(1)), _framed(Ack(2))
    data = first + second
    for cut in (2, len(first) + 3):  # inside the length, then inside the second pickle
        os.write(writer.fileno(), data[:cut])
        got = frames.read()  # returns with what is complete: a frozen writer blocks nothing
        os.write(writer.fileno(), data[cut:])
        got += frames.read()
        assert got == [Ack(1), Ack(2)]


def test_a_message_larger_than_one_read_is_put_together(
    pipe: tuple[Connection, Connection],
) -> None:
    reader, writer = pipe
    text = "x" * (3 * Frames.CHUNK + 17)
    sender = threading.Thread(target=writer.send, args=(text,))
    sender.start()
    frames, got = Frames(reader.fileno()), []
    while not got:
        select.select([reader], [], [])
        got = frames.read()
    sender.join()
    assert got == [text]


def test_the_end_of_the_stream_mid_message_is_an_eof(
    pipe: tuple[Connection, Connection],
) -> None:
    reader, writer = pipe
    frames = Frames(reader.fileno())
    os.write(writer.fileno(), _framed(Ack(1)) + _framed(Ack(2))[:5])
    writer.close()
    assert frames.read() == [Ack(1)]
    with pytest.raises(EOFError):
        frames.read()


@pytest.mark.parametrize(
    "garbage",
    [b"\x00\x00\x00\x08garbage!", b"\xff\xff\xff\xf0junk"],
    ids=["bytes that do not unpickle", "a negative length"],
)
def test_garbage_after_messages_keeps_the_messages_before_it(
    pipe: tuple[Connection, Connection], garbage: bytes
) -> None:
    reader, writer = pipe
    os.write(writer.fileno(), _framed(Ack(1)) + garbage + _framed(Ack(2)))
    with pytest.raises(Garbled) as caught:
        Frames(reader.fileno()).read()
    assert caught.value.messages == [Ack(1)]
