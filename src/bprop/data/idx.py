"""Read and write IDX files, the format of MNIST and Fashion-MNIST, gzipped or plain.

An IDX file is a 4-byte magic number, then one 4-byte big-endian size per dimension, then the
data in C order, big-endian. The magic number is two zero bytes, a byte naming the element
type, and a byte giving the number of dimensions:

====  ==============  ==========
code  element type    numpy
====  ==============  ==========
0x08  unsigned byte   ``>u1``
0x09  signed byte     ``>i1``
0x0B  short (2 B)     ``>i2``
0x0C  int (4 B)       ``>i4``
0x0D  float (4 B)     ``>f4``
0x0E  double (8 B)    ``>f8``
====  ==============  ==========

>>> import tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "labels.idx1-ubyte.gz")
>>> write_idx(path, np.array([5, 0, 4], dtype=np.uint8))
>>> read_idx(path)
array([5, 0, 4], dtype=uint8)
"""

from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path

import numpy as np

from .._files import atomic_write

TYPE_CODES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
CODES_BY_KIND = {(dtype.kind, dtype.itemsize): code for code, dtype in TYPE_CODES.items()}


class IDXError(ValueError):
    """An IDX file that is damaged or not an IDX file; the message names the file."""


def read_bytes(path) -> bytes:
    """The content of ``path``, decompressed if it is gzipped."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    return decompress(path.read_bytes(), str(path))


def decompress(raw: bytes, name: str) -> bytes:
    """``raw`` un-gzipped if it starts with gzip's magic bytes, else unchanged."""
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as error:
        raise IDXError(f"{name}: the gzip stream is damaged or truncated ({error})") from None


def parse_idx(content: bytes, name: str = "<bytes>") -> np.ndarray:
    """Decode IDX ``content``; ``name`` is used in error messages."""
    if len(content) < 4:
        raise IDXError(f"{name}: too short to be an IDX file ({len(content)} bytes)")
    zero1, zero2, code, ndim = content[:4]
    if zero1 or zero2 or code not in TYPE_CODES:
        raise IDXError(
            f"{name}: wrong magic number 0x{content[:4].hex()}; an IDX file starts with two "
            f"zero bytes and a type code in {[hex(c) for c in TYPE_CODES]}"
        )
    header_size = 4 + 4 * ndim
    if len(content) < header_size:
        raise IDXError(f"{name}: truncated header ({len(content)} bytes, {ndim} dimensions "
                       f"need {header_size})")
    shape = tuple(int(n) for n in np.frombuffer(content, dtype=">u4", count=ndim, offset=4))
    dtype = TYPE_CODES[code]
    expected = math.prod(shape) * dtype.itemsize  # Python integers: no overflow
    actual = len(content) - header_size
    if actual != expected:
        problem = "truncated" if actual < expected else "has trailing data"
        raise IDXError(
            f"{name}: {problem}: the header promises shape {shape} of {dtype.name} "
            f"({expected} data bytes) but the file holds {actual}"
        )
    data = np.frombuffer(content, dtype=dtype, offset=header_size).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


def read_idx(path) -> np.ndarray:
    """Read an IDX file (gzipped or plain) into an array of its native shape and type."""
    return parse_idx(read_bytes(path), str(path))


def write_idx(path, array, compress: bool | None = None) -> None:
    """Write ``array`` as an IDX file; gzip it if ``compress`` (default: the name ends in .gz).

    The file is written to a temporary name in the same folder and then renamed, so a reader
    never sees half a file.
    """
    array = np.asarray(array)
    key = (array.dtype.kind, array.dtype.itemsize)
    if array.dtype == np.uint8:
        code = 0x08
    elif key in CODES_BY_KIND and array.dtype.kind in "if" and key != ("u", 1):
        code = CODES_BY_KIND[key]
    else:
        raise TypeError(
            f"IDX stores uint8, int8, int16, int32, float32 or float64, not {array.dtype}")
    if array.ndim > 255 or any(n >= 2**32 for n in array.shape):
        raise ValueError(f"shape {array.shape} cannot be stored in an IDX header")
    header = bytes([0, 0, code, array.ndim]) + np.array(array.shape, dtype=">u4").tobytes()
    content = header + array.astype(TYPE_CODES[code], copy=False).tobytes()
    path = Path(path)
    if compress is None:
        compress = path.suffix == ".gz"
    if compress:
        content = gzip.compress(content, mtime=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as file:
        file.write(content)
