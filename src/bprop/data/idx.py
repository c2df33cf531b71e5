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
import io
import math
import zlib
from pathlib import Path
from typing import BinaryIO

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


#: a file is read and decompressed in pieces of this many bytes
_CHUNK = 1 << 20
#: an IDX file is refused if its header promises more data than this, unless told otherwise
MAX_BYTES = 2**31


class IDXError(ValueError):
    """An IDX file that is damaged or not an IDX file; the message names the file."""


class IDXMemoryError(IDXError, MemoryError):
    """Reading an IDX file ran out of memory; the message names the file.

    It is both an :class:`IDXError` (so callers that report damaged files report this too)
    and a :class:`MemoryError` (so code that frees memory on one still sees it).
    """


def out_of_memory(name: str, size: int | None = None) -> IDXMemoryError:
    """The error to raise in place of a bare MemoryError met while reading ``name``."""
    needs = f" (it needs {size:,} bytes)" if size else ""
    return IDXMemoryError(f"{name}: not enough memory to read it{needs}; close other programs "
                          "or use a machine with more memory")


def _open(source: Path | bytes) -> BinaryIO:
    """A stream of the content of the file ``source`` (or of the bytes ``source``), un-gzipped
    as it is read if it starts with gzip's magic bytes: nothing is decompressed before it is
    asked for."""
    stream = io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb")  # noqa: SIM115
    if stream.read(2) == b"\x1f\x8b":
        stream.seek(0)
        return _GzipStream(stream)
    stream.seek(0)
    return stream


class _GzipStream(gzip.GzipFile):
    """A GzipFile that closes the file it reads when it is closed itself (a GzipFile given a
    file object leaves it open)."""

    def __init__(self, file: BinaryIO):
        super().__init__(fileobj=file, mode="rb")
        self._file = file

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._file.close()


def _read_exactly(stream: BinaryIO, into: memoryview, name: str) -> int:
    """Fill ``into`` from ``stream``; returns how many bytes it held (fewer at its end)."""
    filled = 0
    try:
        while filled < len(into):
            # Pieces of _CHUNK bytes: a gzip stream inflates no more than is asked of it.
            size = stream.readinto(into[filled:filled + min(_CHUNK, len(into) - filled)])
            if not size:
                break
            filled += size
    except (EOFError, OSError, zlib.error) as error:
        raise IDXError(f"{name}: the gzip stream is damaged or truncated ({error})") from None
    return filled


def _has_more(stream: BinaryIO, name: str) -> bool:
    """Whether ``stream`` holds another byte (one byte is all that is inflated to know)."""
    try:
        return bool(stream.read(1))
    except (EOFError, OSError, zlib.error) as error:
        raise IDXError(f"{name}: the gzip stream is damaged or truncated ({error})") from None


def read_bytes(path, limit: int | None = None) -> bytes | bytearray:
    """The content of ``path``, decompressed as it is read if it is gzipped.

    With ``limit``, at most ``limit + 1`` bytes are read and returned: a result longer than
    ``limit`` says that the file holds more, and a small gzip file cannot unpack to gigabytes
    before that is known.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    with _open(path) as stream:
        return _read_all(stream, str(path), limit)


def decompress(raw: bytes, name: str, limit: int | None = None) -> bytes | bytearray:
    """``raw`` un-gzipped if it starts with gzip's magic bytes, else unchanged; ``limit`` as
    in :func:`read_bytes`; ``name`` is used in error messages."""
    with _open(bytes(raw)) as stream:
        return _read_all(stream, name, limit)


def _read_all(stream: BinaryIO, name: str, limit: int | None) -> bytes | bytearray:
    """What ``stream`` holds, up to ``limit + 1`` bytes."""
    if limit is not None:
        content = bytearray(limit + 1)
        del content[_read_exactly(stream, memoryview(content), name):]
        return content
    pieces = []
    while True:
        piece = bytearray(_CHUNK)
        size = _read_exactly(stream, memoryview(piece), name)
        pieces.append(piece[:size] if size < _CHUNK else piece)
        if size < _CHUNK:
            return b"".join(pieces)


def _parse_header(head: bytes, name: str) -> tuple[tuple[int, ...], np.dtype, int]:
    """The shape, element type and header size that the first bytes ``head`` of an IDX file
    give (``head`` holds at least the header, or all the file if it is shorter)."""
    if len(head) < 4:
        raise IDXError(f"{name}: too short to be an IDX file ({len(head)} bytes)")
    zero1, zero2, code, ndim = head[:4]
    if zero1 or zero2 or code not in TYPE_CODES:
        raise IDXError(
            f"{name}: wrong magic number 0x{bytes(head[:4]).hex()}; an IDX file starts with "
            f"two zero bytes and a type code in {[hex(c) for c in TYPE_CODES]}"
        )
    header_size = 4 + 4 * ndim
    if len(head) < header_size:
        raise IDXError(f"{name}: truncated header ({len(head)} bytes, {ndim} dimensions "
                       f"need {header_size})")
    shape = tuple(int(n) for n in np.frombuffer(head, dtype=">u4", count=ndim, offset=4))
    return shape, TYPE_CODES[code], header_size


def _size_problem(name: str, shape, dtype: np.dtype, expected: int, actual) -> IDXError:
    problem = "truncated" if isinstance(actual, int) and actual < expected else \
        "has trailing data"
    return IDXError(
        f"{name}: {problem}: the header promises shape {shape} of {dtype.name} "
        f"({expected} data bytes) but the file holds {actual}"
    )


def parse_idx(content: bytes | bytearray, name: str = "<bytes>") -> np.ndarray:
    """Decode IDX ``content``; ``name`` is used in error messages.

    Returns an array of the header's shape and element type, in native byte order.
    """
    # (only the header's bytes are looked at: at most 4 + 4 * 255 of them)
    shape, dtype, header_size = _parse_header(bytes(content[:4 + 4 * 255]), name)
    expected = math.prod(shape) * dtype.itemsize  # Python integers: no overflow
    actual = len(content) - header_size
    if actual != expected:
        raise _size_problem(name, shape, dtype, expected, actual)
    data = np.frombuffer(content, dtype=dtype, offset=header_size).reshape(shape)
    # (a copy unless the content is a fresh buffer that can simply be viewed)
    return data.astype(dtype.newbyteorder("="), copy=not data.flags.writeable)


def read_idx(path, max_bytes: int = MAX_BYTES) -> np.ndarray:
    """Read an IDX file (gzipped or plain) into an array of its native shape and type.

    The header is read first: a file that promises more than ``max_bytes`` of data (2 GiB)
    is refused before anything is allocated, and a gzipped file is decompressed only as far
    as its header promises (plus one byte, to see that nothing follows).

    Raises
    ------
    IDXError
        If the file is not an IDX file, is cut short, holds more than its header promises,
        or promises more than ``max_bytes``; its message names the file. A lack of memory is
        an :class:`IDXMemoryError` naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    name = str(path)
    expected = None
    try:
        with _open(path) as stream:
            head = bytearray(4)
            head = head[:_read_exactly(stream, memoryview(head), name)]
            if len(head) == 4 and not head[0] and not head[1]:
                rest = bytearray(4 * head[3])
                head += rest[:_read_exactly(stream, memoryview(rest), name)]
            shape, dtype, header_size = _parse_header(bytes(head), name)
            expected = math.prod(shape) * dtype.itemsize
            if not isinstance(stream, gzip.GzipFile):  # a plain file: its size is known
                actual = path.stat().st_size - header_size
                if actual != expected:
                    raise _size_problem(name, shape, dtype, expected, actual)
            if expected > max_bytes:
                raise IDXError(
                    f"{name}: the header promises shape {shape} of {dtype.name} "
                    f"({expected:,} data bytes), more than max_bytes={max_bytes:,}; if the "
                    "file is genuine, read it with a larger max_bytes")
            data = np.empty(expected, dtype=np.uint8)
            actual = _read_exactly(stream, memoryview(data), name)
            if actual < expected:
                raise _size_problem(name, shape, dtype, expected, actual)
            if _has_more(stream, name):
                raise _size_problem(name, shape, dtype, expected, f"more than {expected}")
    except MemoryError:
        raise out_of_memory(name, expected) from None
    return data.view(dtype).reshape(shape).astype(dtype.newbyteorder("="), copy=False)


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
