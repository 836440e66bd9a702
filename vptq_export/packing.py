"""Bit packing of VPTQ indices (microsoft/VPTQ `pack_index` / `unpack_index_tensor`, CUDA
`iterator_packed_tensor`); see docs/op-spec.md, "Packed index layout".

Per (group g, index row r) the gs merged codes `main | (res << index_bits)` (T = index_bits +
res_index_bits bits each) form one LSB-first bit stream: element e occupies stream bits
[e*T, (e+1)*T). The stream is zero-padded to a multiple of 32 bits; word w holds stream bits
[32w, 32w+32), bit j of the word = stream bit 32w + j. Rows never share words. Words are uint32
bit patterns stored as int32.

Unlike upstream's Python unpack, the residual is masked with its own width (upstream masks it
with index_bits, which is wrong when res_index_bits > index_bits).
"""

from __future__ import annotations

import numpy as np

# Rows processed per chunk when packing, to bound the temporary bit arrays.
_PACK_ROWS_PER_CHUNK = 4096


def packed_words(num_elements: int, total_bits: int) -> int:
    return (num_elements * total_bits + 31) // 32


def merge_codes(indices: np.ndarray, res_indices: np.ndarray | None, index_bits: int) -> np.ndarray:
    """main | res << index_bits as uint64 (inputs: any integer arrays of unsigned values)."""
    merged = indices.astype(np.uint64)
    if res_indices is not None:
        merged = merged | (res_indices.astype(np.uint64) << np.uint64(index_bits))
    return merged


def pack_codes(codes: np.ndarray, total_bits: int) -> np.ndarray:
    """Pack codes [..., n] (each < 2**total_bits) into int32 words [..., ceil(n*T/32)]."""
    if not 1 <= total_bits <= 32:
        raise ValueError(f"total index bits must be in 1..32, got {total_bits}")
    codes = np.asarray(codes, dtype=np.uint64)
    if codes.size and int(codes.max()) >> total_bits:
        raise ValueError(f"a code does not fit in {total_bits} bits")
    lead, n = codes.shape[:-1], codes.shape[-1]
    words = packed_words(n, total_bits)
    flat = codes.reshape(-1, n)
    out = np.empty((flat.shape[0], words), dtype=np.uint32)
    bit_weights = (np.uint64(1) << np.arange(32, dtype=np.uint64))
    shifts = np.arange(total_bits, dtype=np.uint64)
    for start in range(0, flat.shape[0], _PACK_ROWS_PER_CHUNK):
        chunk = flat[start:start + _PACK_ROWS_PER_CHUNK]
        bits = ((chunk[..., None] >> shifts) & np.uint64(1)).astype(np.uint8)  # [rows, n, T]
        bits = bits.reshape(chunk.shape[0], n * total_bits)
        pad = words * 32 - n * total_bits
        if pad:
            bits = np.concatenate([bits, np.zeros((chunk.shape[0], pad), np.uint8)], axis=1)
        bits = bits.reshape(chunk.shape[0], words, 32).astype(np.uint64)
        out[start:start + chunk.shape[0]] = (bits * bit_weights).sum(-1).astype(np.uint32)
    return out.reshape(*lead, words).view(np.int32)


def unpack_codes(packed: np.ndarray, num_elements: int, total_bits: int) -> np.ndarray:
    """Inverse of pack_codes: int32 words [..., W] -> uint64 codes [..., num_elements]."""
    if not 1 <= total_bits <= 32:
        raise ValueError(f"total index bits must be in 1..32, got {total_bits}")
    words = np.asarray(packed).view(np.uint32).astype(np.uint64)
    need = packed_words(num_elements, total_bits)
    if words.shape[-1] < need:
        raise ValueError(f"packed rows hold {words.shape[-1]} words, {need} needed for "
                         f"{num_elements} codes of {total_bits} bits")
    # One extra zero word so that a code may always read the word after its first one.
    words = np.concatenate([words, np.zeros(words.shape[:-1] + (1,), np.uint64)], axis=-1)
    offset = np.arange(num_elements, dtype=np.int64) * total_bits
    first = offset // 32
    shift = (offset % 32).astype(np.uint64)
    lo = words[..., first]
    hi = words[..., first + 1]
    both = lo | (hi << np.uint64(32))
    return (both >> shift) & np.uint64((1 << total_bits) - 1)


def pack_indices(indices: np.ndarray, res_indices: np.ndarray | None, index_bits: int,
                 res_index_bits: int = 0) -> np.ndarray:
    """[G, NI, gs] main (and residual) indices -> packed int32 [G, NI, ceil(gs*T/32)]."""
    if (res_indices is None) != (res_index_bits == 0):
        raise ValueError("res_indices and res_index_bits must be given together")
    codes = merge_codes(indices, res_indices, index_bits)
    return pack_codes(codes, index_bits + res_index_bits)


def unpack_indices(packed: np.ndarray, group_size: int, index_bits: int,
                   res_index_bits: int = 0) -> tuple[np.ndarray, np.ndarray | None]:
    """Packed int32 [G, NI, W] -> (main [G, NI, gs], residual [G, NI, gs] or None), int64."""
    codes = unpack_codes(packed, group_size, index_bits + res_index_bits)
    main = (codes & np.uint64((1 << index_bits) - 1)).astype(np.int64)
    if res_index_bits == 0:
        return main, None
    res = ((codes >> np.uint64(index_bits)) & np.uint64((1 << res_index_bits) - 1)).astype(np.int64)
    return main, res


def as_unsigned16(values: np.ndarray) -> np.ndarray:
    """int16 (or float16 bit patterns, `indices_as_float`) storage -> int64 of the uint16 bits."""
    values = np.asarray(values)
    if values.dtype in (np.int16, np.float16, np.uint16):
        return values.view(np.uint16).astype(np.int64)
    return values.astype(np.int64)
