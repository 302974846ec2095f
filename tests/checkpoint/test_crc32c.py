"""CRC-32C against published vectors and a naive bytewise reference, on both sides of every lane boundary."""
import numpy as np
import pytest

from warmstart.checkpoint import crc32c as module
from warmstart.checkpoint.crc32c import masked_crc32c, unmask_crc32c

# Both implementations: the numpy lanes always, and what crc32c() uses (google-crc32c's C code where installed).
IMPLS = {"numpy": module.crc32c_numpy, "default": module.crc32c}


@pytest.fixture(params=list(IMPLS))
def crc32c(request):
    return IMPLS[request.param]


def _reference_table() -> list[int]:
    table = []
    for byte in range(256):
        c = byte
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _reference_table()


def _reference_prefixes(data: bytes, lengths) -> dict[int, int]:
    """The textbook bytewise CRC-32C of ``data[:n]`` for every n in ``lengths``, in one pass over ``data``."""
    want, out, reg = set(lengths), {}, 0xFFFFFFFF
    if 0 in want:
        out[0] = 0
    for i, byte in enumerate(data[: max(want)], 1):
        reg = _TABLE[(reg ^ byte) & 0xFF] ^ (reg >> 8)
        if i in want:
            out[i] = reg ^ 0xFFFFFFFF
    return out


def test_published_vectors(crc32c):
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(b"") == 0
    # RFC 3720 (iSCSI), B.4
    assert crc32c(bytes(32)) == 0x8A9136AA
    assert crc32c(b"\xff" * 32) == 0x62A8AB43
    assert crc32c(bytes(range(32))) == 0x46DD794E
    assert crc32c(bytes(range(31, -1, -1))) == 0x113FDB5C


def test_short_lengths_match_the_reference(crc32c):
    data = np.random.default_rng(1).integers(0, 256, 5001, dtype=np.uint8).tobytes()
    lengths = [*range(300), *range(300, 5001, 233), *np.random.default_rng(2).integers(0, 5001, 20).tolist()]
    ref = _reference_prefixes(data, lengths)
    for n in lengths:
        assert crc32c(data[:n]) == ref[n], n


def test_lengths_around_the_lane_boundaries_match_the_reference(crc32c):
    # 4096 is where the lane path starts; lanes double up to 2**14 as the data reaches 64 bytes a lane, so every
    # power of two from 4096 to 2**20 is a boundary; multiples of 65536 are folds of whole lanes.
    edges = {1 << k for k in range(12, 21)} | {65536 * k for k in range(1, 6)} | {(1 << 20) + 16384 * 3}
    lengths = sorted({n + d for n in edges for d in (-1, 0, 1)} | {4000, 4095 + 64 * 7 + 3, 700_001})
    data = np.random.default_rng(3).integers(0, 256, max(lengths), dtype=np.uint8).tobytes()
    ref = _reference_prefixes(data, lengths)
    for n in lengths:
        assert crc32c(data[:n]) == ref[n], n


@pytest.mark.parametrize("n", [4096, 65537, 1 << 20])
def test_leading_and_trailing_zeros_count(n, crc32c):
    # The lane path pads with zeros at the front, which must not pass for data that starts with zeros.
    data = bytes(n)
    ref = _reference_prefixes(b"\x00" + data + b"\x00", [n, n + 1, n + 2])
    assert crc32c(data) == ref[n]
    assert crc32c(b"\x00" + data) == ref[n + 1]
    assert crc32c(b"\x00" + data + b"\x00") == ref[n + 2]
    assert len({ref[n], ref[n + 1], ref[n + 2]}) == 3


def test_numpy_arrays_and_buffers_are_checked_by_their_bytes(crc32c):
    a = np.random.default_rng(4).standard_normal((123, 77)).astype(np.float32)
    raw = a.tobytes()
    assert crc32c(a) == crc32c(raw) == crc32c(bytearray(raw)) == crc32c(memoryview(raw))
    assert crc32c(a[:, ::2]) == crc32c(a[:, ::2].tobytes())  # not contiguous: the bytes of its elements, in order
    assert crc32c(a.T) == crc32c(a.T.tobytes())
    assert crc32c(np.zeros(0, np.float64)) == 0
    assert crc32c(np.frombuffer(b"123456789", np.uint8)) == 0xE3069283
    assert crc32c(memoryview(a)) == crc32c(raw)  # a multi-byte, multi-dimensional memoryview


def test_mask_round_trip(crc32c):
    values = [0, 1, 0xFFFFFFFF, 0xE3069283, 0x80000000, 0x7FFF, *np.random.default_rng(5).integers(
        0, 1 << 32, 200, dtype=np.uint64).tolist()]
    for c in values:
        assert unmask_crc32c((((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF) == c
    data = b"warmstart"
    c = crc32c(data)
    assert masked_crc32c(data) == ((((c >> 15) | (c << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF
    assert masked_crc32c(data) != c
    assert unmask_crc32c(masked_crc32c(data)) == c
