"""Reading and writing IDX files (the MNIST container format), with strict checks.

An IDX file is a 4-byte magic number ``00 00 <type> <ndim>``, then ``ndim``
big-endian uint32 dimension sizes, then the items in row-major order. The
course only needs two item types: unsigned bytes (``0x08``, images and labels)
and signed 32-bit integers (``0x0C``, the original indices stored with the
bundled samples).

Every malformed case raises :class:`IDXError` (a ``ValueError``) naming the
source, so a truncated or corrupt file can never come back as an array.
"""

from __future__ import annotations

import numpy as np

__all__ = ["IDXError", "parse_idx", "encode_idx"]

_TYPES = {0x08: np.dtype(np.uint8), 0x0C: np.dtype(">i4")}


class IDXError(ValueError):
    """A byte string is not a well-formed IDX file."""


def parse_idx(raw: bytes, *, source: str = "IDX data") -> np.ndarray:
    """Decode uncompressed IDX bytes into a NumPy array (uint8 or int32).

    The header must be well formed and the payload must hold exactly the
    number of items the header announces: missing bytes (a truncated file)
    and trailing bytes both raise :class:`IDXError`.
    """
    if len(raw) < 4:
        raise IDXError(f"{source}: only {len(raw)} bytes, too short for an IDX header")
    zero0, zero1, type_code, ndim = raw[0], raw[1], raw[2], raw[3]
    if zero0 != 0 or zero1 != 0 or type_code not in _TYPES or not 1 <= ndim <= 4:
        raise IDXError(
            f"{source}: bad IDX magic number 0x{int.from_bytes(raw[:4], 'big'):08X} "
            "(expected 0x00000801 for labels or 0x00000803 for images)"
        )
    header_len = 4 + 4 * ndim
    if len(raw) < header_len:
        raise IDXError(f"{source}: header truncated ({len(raw)} of {header_len} bytes)")
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = _TYPES[type_code]
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    payload = len(raw) - header_len
    if payload < expected:
        raise IDXError(
            f"{source}: truncated, the header announces shape {dims} "
            f"({expected} data bytes) but only {payload} bytes follow"
        )
    if payload > expected:
        raise IDXError(
            f"{source}: {payload - expected} unexpected trailing bytes after the "
            f"{expected} data bytes of shape {dims}"
        )
    array = np.frombuffer(raw, dtype=dtype, offset=header_len).reshape(dims)
    if dtype.byteorder == ">":
        array = array.astype(dtype.newbyteorder("="))
    return array


def encode_idx(array: np.ndarray) -> bytes:
    """Encode a uint8 or int32 array as uncompressed IDX bytes."""
    array = np.asarray(array)
    if array.dtype == np.uint8:
        code, data = 0x08, np.ascontiguousarray(array)
    elif array.dtype == np.int32 or array.dtype == np.int64:
        if array.size and (array.min() < -(2**31) or array.max() >= 2**31):
            raise ValueError("values do not fit in int32")
        code, data = 0x0C, np.ascontiguousarray(array, dtype=">i4")
    else:
        raise ValueError(f"IDX encoding supports uint8 and int32 arrays, got {array.dtype}")
    if not 1 <= array.ndim <= 4:
        raise ValueError(f"IDX encoding supports 1 to 4 dimensions, got {array.ndim}")
    header = bytes([0, 0, code, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape
    )
    return header + data.tobytes()
