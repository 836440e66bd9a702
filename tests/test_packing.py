"""Index bit packing (microsoft/VPTQ pack_index layout): hand-computed words, and a round trip
against an independent big-integer bitstream model."""

from __future__ import annotations

import numpy as np
import pytest

from vptq_export.packing import (as_unsigned16, pack_codes, pack_indices, packed_words,
                                 unpack_codes, unpack_indices)


def _u32_as_i32(words):
    """uint32 values written by hand -> the int32 bit patterns a checkpoint stores."""
    return np.array(words, dtype=np.uint64).astype(np.uint32).view(np.int32)


def test_three_bit_codes_in_one_word():
    # k=8 (T=3), gs=4: code e at bits [3e, 3e+3): 1 | 2<<3 | 3<<6 | 4<<9 = 1+16+192+2048
    packed = pack_indices(np.array([[[1, 2, 3, 4]]]), None, 3)
    assert packed.dtype == np.int32 and packed.shape == (1, 1, 1)
    assert packed.tolist() == [[[2257]]]
    main, res = unpack_indices(packed, 4, 3)
    assert main.tolist() == [[[1, 2, 3, 4]]] and res is None


def test_code_straddling_two_words():
    # k=32 (T=5), gs=7: 35 bits -> 2 words; code 6 (21 = 0b10101) sits at stream bits 30..34:
    # its low 2 bits (0b01) end word 0, its high 3 bits (0b101 = 5) start word 1.
    codes = [31, 0, 17, 5, 9, 30, 21]
    word0 = 31 + (17 << 10) + (5 << 15) + (9 << 20) + (30 << 25) + (1 << 30)
    assert word0 == 2089993247                                    # written out by hand
    packed = pack_indices(np.array([[codes]]), None, 5)
    assert packed.tolist() == [[[2089993247, 5]]]
    assert unpack_indices(packed, 7, 5)[0].tolist() == [[codes]]


def test_sixteen_bit_codes():
    # T=16: two codes per word, low half first; 3 codes -> 2 words, the last half zero
    packed = pack_indices(np.array([[[0xFFFF, 0x1234, 0x8000]]]), None, 16)
    assert packed.tolist() == [[_u32_as_i32([0x1234FFFF, 0x00008000]).tolist()]]
    assert unpack_indices(packed, 3, 16)[0].tolist() == [[[0xFFFF, 0x1234, 0x8000]]]


def test_thirty_two_bit_codes_main_plus_residual():
    # k = k_res = 65536: code = main | res << 16 fills a whole word; high bit set -> negative int32
    main = np.array([[[0xABCD, 0x0001]]])
    res = np.array([[[0x8001, 0xFFFF]]])
    packed = pack_indices(main, res, 16, 16)
    assert packed.tolist() == [[[-2147374131, -65535]]]           # 0x8001ABCD, 0xFFFF0001
    assert packed.view(np.uint32).tolist() == [[[0x8001ABCD, 0xFFFF0001]]]
    m, r = unpack_indices(packed, 2, 16, 16)
    assert m.tolist() == main.tolist() and r.tolist() == res.tolist()


def test_residual_wider_than_main():
    # index_bits 2 (k=4), res_index_bits 6 (k_res=64), T=8: code = main | res << 2
    main = np.array([[[3, 1, 0, 2, 1]]])
    res = np.array([[[63, 40, 1, 0, 33]]])
    # codes 255, 161, 4, 2, 133 -> bytes of word 0, then word 1
    packed = pack_indices(main, res, 2, 6)
    assert packed.tolist() == [[[0x0204A1FF, 0x85]]]
    m, r = unpack_indices(packed, 5, 2, 6)
    assert m.tolist() == main.tolist()
    # upstream's Python unpack masks the residual with index_bits (2 bits): it would give 3, 0, 1,
    # 0, 1. The correct 6-bit mask gives the residual back.
    assert r.tolist() == res.tolist()


def test_rows_never_share_words():
    # G=1, NI=2, gs=3, T=5: 15 bits per row, each row starts a fresh word
    packed = pack_indices(np.array([[[1, 2, 3], [31, 31, 31]]]), None, 5)
    assert packed.tolist() == [[[1 + (2 << 5) + (3 << 10)], [32767]]]


def test_all_ones_word_is_minus_one():
    packed = pack_codes(np.full((1, 8), 15), 4)
    assert packed.tolist() == [[-1]]
    assert unpack_codes(packed, 8, 4).tolist() == [[15] * 8]


def _reference_pack(codes: np.ndarray, bits: int) -> np.ndarray:
    """Independent model: each row is one Python int, code e shifted by e*bits."""
    rows = codes.reshape(-1, codes.shape[-1])
    words = packed_words(codes.shape[-1], bits)
    out = np.zeros((rows.shape[0], words), dtype=np.uint32)
    for i, row in enumerate(rows):
        stream = 0
        for e, c in enumerate(row.tolist()):
            stream |= int(c) << (e * bits)
        for w in range(words):
            out[i, w] = (stream >> (32 * w)) & 0xFFFFFFFF
    return out.reshape(codes.shape[:-1] + (words,)).view(np.int32)


@pytest.mark.parametrize("bits", [1, 2, 3, 5, 7, 8, 9, 12, 13, 16, 17, 20, 24, 31, 32])
@pytest.mark.parametrize("gs", [1, 7, 32, 33, 100])
def test_round_trip_matches_bitstream_model(bits, gs):
    rng = np.random.default_rng(bits * 1000 + gs)
    codes = rng.integers(0, 2 ** bits, (2, 3, gs), dtype=np.uint64)
    packed = pack_codes(codes, bits)
    assert packed.shape == (2, 3, (gs * bits + 31) // 32)
    assert np.array_equal(packed, _reference_pack(codes, bits))
    assert np.array_equal(unpack_codes(packed, gs, bits), codes)


def test_split_main_and_residual_all_widths():
    rng = np.random.default_rng(0)
    for ib in range(1, 17):
        for rb in (0, 1, 4, 9, 16):
            if ib + rb > 32:
                continue
            main = rng.integers(0, 2 ** ib, (2, 2, 13))
            res = rng.integers(0, 2 ** rb, (2, 2, 13)) if rb else None
            m, r = unpack_indices(pack_indices(main, res, ib, rb), 13, ib, rb)
            assert np.array_equal(m, main)
            assert (r is None) if rb == 0 else np.array_equal(r, res)


def test_pack_rejects_codes_too_wide():
    with pytest.raises(ValueError, match="does not fit in 3 bits"):
        pack_codes(np.array([[8]]), 3)
    with pytest.raises(ValueError, match="1..32"):
        pack_codes(np.array([[1]]), 33)


def test_unpack_rejects_short_rows():
    with pytest.raises(ValueError, match="2 needed"):
        unpack_codes(np.zeros((1, 1), np.int32), 5, 8)


def test_as_unsigned16_reinterprets_bits():
    stored = np.array([0x0000, 0x7FFF, 0x8000, 0xFFFF], dtype=np.uint16)
    assert as_unsigned16(stored.view(np.int16)).tolist() == [0, 32767, 32768, 65535]
    assert as_unsigned16(stored.view(np.float16)).tolist() == [0, 32767, 32768, 65535]
