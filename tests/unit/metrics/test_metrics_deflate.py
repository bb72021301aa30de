"""Deflated pieces (streams.metrics.deflate): kept pieces and plain text join into one valid
gzip member, read back the same by Python's decoder and by the ``gzip`` program."""

from __future__ import annotations

import gzip
import random
import shutil
import subprocess
import zlib

import pytest

from streams.metrics import deflate
from streams.metrics.deflate import Deflated, Piece, gzipped, joined


def _pieces(rng: random.Random) -> list[Piece]:
    """Metrics-like text (repetitive) and random bytes, kept deflated or not, some empty."""
    out: list[Piece] = []
    for _ in range(rng.randrange(0, 12)):
        if rng.random() < 0.5:
            text = "".join(
                f'm{{model_id="m{rng.randrange(100)}",detector="psi"}} {rng.random()}\n'
                for _ in range(rng.randrange(0, 400))
            ).encode()
        else:
            text = rng.randbytes(rng.randrange(0, 70_000))
        out.append(Deflated(text) if rng.random() < 0.5 else text)
    return out


def _one_member(body: bytes) -> bytes:
    """The text of ``body``, which must be exactly one gzip member with nothing after it."""
    reader = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    text = reader.decompress(body)
    assert reader.eof
    assert reader.unused_data == b""
    return text


@pytest.mark.parametrize("seed", range(40))
def test_pieces_join_into_one_gzip_member_of_their_text(seed: int) -> None:
    pieces = _pieces(random.Random(seed))
    text = b"".join(p if isinstance(p, bytes) else p.text() for p in pieces)
    assert joined(pieces) == text
    body = gzipped(pieces)
    assert _one_member(body) == text
    assert gzip.decompress(body) == text  # checks the CRC-32 and the length too


def test_kept_pieces_are_written_as_they_are_not_compressed_again() -> None:
    kept = [Deflated(b'driftradar_detector_statistic{model_id="a"} 0.5\n' * 500) for _ in range(3)]
    body = gzipped([b"# HELP x\n", kept[0], kept[1], b"plain\n", kept[2]])
    assert all(piece.data in body for piece in kept)
    assert len(kept[0].data) * 10 < len(kept[0].text())


@pytest.mark.skipif(shutil.which("gzip") is None, reason="no gzip program")
def test_the_gzip_program_reads_the_body() -> None:
    """Another decoder (GNU gzip, which checks the CRC and the length) reads it too."""
    pieces = [*_pieces(random.Random(7)), Deflated(b"last line\n")]
    text = joined(pieces)
    out = subprocess.run(
        ["gzip", "-dc"], input=gzipped(pieces), capture_output=True, check=True
    ).stdout
    assert out == text


def test_an_empty_body_is_an_empty_gzip_member() -> None:
    assert _one_member(gzipped([])) == b""
    assert gzip.decompress(gzipped([b"", Deflated(b"")])) == b""


def _shift_bit_by_bit(size: int) -> int:
    """zlib's ``x2nmodp(size, 3)`` as zlib writes it, one bit of ``size`` at a time."""
    power, k = 1 << 31, 3
    while size:
        if size & 1:
            power = deflate._multiply(deflate._X2N[k & 31], power)
        size >>= 1
        k += 1
    return power


@pytest.mark.parametrize("size", [0, 1, 255, 256, 65_535, 65_536, 2**24 + 3, 2**32 + 5, 2**40 + 77])
def test_the_crc_operator_of_a_length_is_zlibs(size: int) -> None:
    assert deflate._crc_shift(size) == _shift_bit_by_bit(size)


def test_crcs_combine_into_the_crc_of_the_joined_text() -> None:
    rng = random.Random(3)
    for _ in range(200):
        a, b = rng.randbytes(rng.randrange(3000)), rng.randbytes(rng.randrange(70_000))
        combined = deflate._multiply(deflate._crc_shift(len(b)), zlib.crc32(a)) ^ zlib.crc32(b)
        assert combined == zlib.crc32(a + b)
