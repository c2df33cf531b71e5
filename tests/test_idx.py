import gzip

import numpy as np
import pytest

from bprop.data import IDXError, read_idx, write_idx
from bprop.data.idx import parse_idx


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32,
                                   np.float64])
@pytest.mark.parametrize("name", ["data.idx", "data.idx.gz"])
def test_round_trip_every_element_type(tmp_path, dtype, name, rng):
    array = (rng.standard_normal((3, 4, 2)) * 50).astype(dtype)
    write_idx(tmp_path / name, array)
    back = read_idx(tmp_path / name)
    assert back.dtype == dtype and back.shape == (3, 4, 2)
    np.testing.assert_array_equal(back, array)
    assert (tmp_path / name).read_bytes()[:2] == (b"\x1f\x8b" if name.endswith(".gz") else b"\0\0")


def test_header_layout_is_the_standard_one(tmp_path):
    write_idx(tmp_path / "labels", np.array([7, 2, 1], dtype=np.uint8))
    assert (tmp_path / "labels").read_bytes() == bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 2, 1])
    write_idx(tmp_path / "ints", np.array([[1, -2]], dtype=np.int32))
    raw = (tmp_path / "ints").read_bytes()
    assert raw[:4] == bytes([0, 0, 0x0C, 2]) and raw[-4:] == (-2).to_bytes(4, "big", signed=True)


@pytest.mark.parametrize("content, message", [
    (bytes([1, 0, 8, 1, 0, 0, 0, 1, 5]), "wrong magic number"),
    (bytes([0, 0, 0x0A, 1, 0, 0, 0, 1, 5]), "wrong magic number"),
    (bytes([0, 0, 8]), "too short"),
    (bytes([0, 0, 8, 3, 0, 0, 0, 1]), "truncated header"),
    (bytes([0, 0, 8, 1, 0, 0, 0, 4, 1, 2]), "truncated: the header promises shape \\(4,\\)"),
    (bytes([0, 0, 8, 1, 0, 0, 0, 1, 1, 2]), "trailing data"),
])
def test_damaged_files_name_the_file_and_the_problem(tmp_path, content, message):
    path = tmp_path / "broken-idx1-ubyte"
    path.write_bytes(content)
    with pytest.raises(IDXError, match=f"broken-idx1-ubyte.*{message}"):
        read_idx(path)


def test_truncated_gzip_is_reported(tmp_path):
    path = tmp_path / "cut.gz"
    path.write_bytes(gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 100]) + bytes(100))[:30])
    with pytest.raises(IDXError, match="cut.gz: the gzip stream is damaged or truncated"):
        read_idx(path)


def test_write_errors(tmp_path):
    with pytest.raises(TypeError, match="IDX stores"):
        write_idx(tmp_path / "x", np.zeros(2, dtype=np.int64))
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "absent")
    assert parse_idx(bytes([0, 0, 8, 0, 9])).tolist() == 9  # a 0-dimensional array


def test_absurd_header_sizes_are_reported_not_overflowed(tmp_path):
    path = tmp_path / "huge-idx3-ubyte"
    path.write_bytes(bytes([0, 0, 8, 4]) + (2**32 - 1).to_bytes(4, "big") * 4 + b"\0" * 10)
    with pytest.raises(IDXError, match="huge-idx3-ubyte: truncated.*file holds 10"):
        read_idx(path)


@pytest.mark.parametrize("name", ["data.idx", "data.idx.gz"])
def test_reading_with_a_limit_stops_one_byte_past_it(tmp_path, name):
    from bprop.data.idx import decompress, read_bytes

    write_idx(tmp_path / name, np.arange(100, dtype=np.uint8))
    whole = read_bytes(tmp_path / name)
    assert len(whole) == 108 and bytes(read_bytes(tmp_path / name, limit=108)) == whole
    assert bytes(read_bytes(tmp_path / name, limit=50)) == whole[:51]  # one byte more: too long
    raw = (tmp_path / name).read_bytes()
    assert bytes(decompress(raw, name, limit=10)) == whole[:11]
    assert bytes(decompress(raw, name)) == whole


def test_a_gzipped_file_holding_more_than_its_header_promises_is_refused(tmp_path):
    path = tmp_path / "long-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 2, 7, 8, 9])))
    with pytest.raises(IDXError, match="long-idx1-ubyte.gz: has trailing data.*more than 2"):
        read_idx(path)
    path.write_bytes(gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 4, 7, 8, 9])))
    with pytest.raises(IDXError, match="truncated: .* but the file holds 3"):
        read_idx(path)
