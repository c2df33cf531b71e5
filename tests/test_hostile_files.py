"""Crafted files that once cost minutes and gigabytes are refused at once, in little memory.

Every hostile file is built here, small, by hand: a zip archive is written byte by byte so
that its entries can claim any size, method or checksum, and a deflate stream of gigabytes of
zeros is made by repeating one compressed block (a full flush makes each block independent),
so no test compresses more than a few megabytes. Each refusal must take under a second,
allocate under 100 MB (tracemalloc's peak) and give a one-line message naming the file.
"""

import bz2
import gzip
import json
import lzma
import os
import struct
import subprocess
import sys
import time
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest

import bprop as bp
from bprop import io
from bprop.data import IDXError, mnist, read_idx, write_idx
from bprop.data.idx import IDXMemoryError

MB = 1 << 20
#: the bounds every refusal must keep to
SECONDS, PEAK_BYTES, MESSAGE_CHARS = 1.0, 100 * MB, 1000


def refused(call, error=Exception, match: str = ""):
    """Run ``call``, which must raise ``error`` matching ``match`` within the bounds above;
    returns the message."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(error, match=match) as caught:
            call()
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    message = str(caught.value)
    assert elapsed < SECONDS, f"refused after {elapsed:.2f} s: {message}"
    assert peak < PEAK_BYTES, f"refused after allocating {peak / MB:.0f} MB: {message}"
    assert "\n" not in message and len(message) < MESSAGE_CHARS, message[:2000]
    return message


# -- building files by hand ------------------------------------------------------------------

def zeros_deflated(size: int) -> bytes:
    """A raw deflate stream of ``size`` zero bytes (a multiple of 16 MiB, or less), made
    without compressing more than 16 MiB."""
    block = min(size, 16 * MB)
    assert size % block == 0
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = compressor.compress(bytes(block)) + compressor.flush(zlib.Z_FULL_FLUSH)
    return chunk * (size // block) + compressor.flush()


def deflated(data: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush()


def zip_archive(entries) -> bytes:
    """A zip file of ``entries``, each ``(name, payload, method, size, crc)``: ``payload``
    already compressed, ``size`` the unpacked size the archive claims (None: the payload's
    length), ``crc`` the checksum it claims (None: the payload's own, right for a stored
    entry). Names may repeat; nothing is checked."""
    local, directory = bytearray(), bytearray()
    for name, payload, method, size, crc in entries:
        encoded = name.encode()
        size = len(payload) if size is None else size
        crc = zlib.crc32(payload) if crc is None else crc
        offset = len(local)
        local += struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, method, 0, 0x21, crc,
                             len(payload), size, len(encoded), 0) + encoded + payload
        directory += struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 20, 20, 0, method, 0,
                                 0x21, crc, len(payload), size, len(encoded), 0, 0, 0, 0, 0,
                                 offset) + encoded
    end = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, len(entries), len(entries),
                      len(directory), len(local), 0)
    return bytes(local + directory + end)


def npy_header(shape, dtype="<f4") -> bytes:
    """The header of a .npy file of ``shape`` and ``dtype`` (its data would follow)."""
    from io import BytesIO
    buffer = BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": dtype, "fortran_order": False, "shape": tuple(shape)})
    return buffer.getvalue()


def model_header(layers, dtype="float32") -> bytes:
    """The ``__header__.npy`` entry of a model file describing ``layers`` (built without
    their weights: only the description is taken)."""
    model = bp.Sequential([bp.Identity()], seed=0)
    header = {"format": io.FORMAT, "format_version": io.FORMAT_VERSION,
              "bprop_version": bp.__version__, "dtype": dtype, "seed": 0,
              "rng_state": model.rng.bit_generator.state, "layers": layers, "loss": None,
              "optimizer": None}
    text = json.dumps(header).encode()
    return npy_header((len(text),), "|u1") + text


def dense(n_in: int, n_out: int, bias: bool = True) -> dict:
    return {"type": "Dense", "config": {"n_in": n_in, "n_out": n_out, "bias": bias}}


STORED, DEFLATED, BZIP2, LZMA = 0, 8, 12, 14


def write(tmp_path, name: str, entries) -> Path:
    path = tmp_path / name
    path.write_bytes(zip_archive(entries))
    return path


# -- model files -----------------------------------------------------------------------------

#: the issue's model: one Dense(1, 530000000) of float32 zeros, 2.12 GB unpacked
HUGE = [dense(1, 530_000_000, bias=False)]
HUGE_SIZE = len(npy_header((1, 530_000_000))) + 530_000_000 * 4


@pytest.mark.parametrize("method, compress", [(BZIP2, bz2.compress),
                                              (LZMA, lzma.compress)])
def test_methods_numpy_never_writes_are_refused_from_the_directory(tmp_path, method, compress):
    # A 2 KB file whose one array claims 2.12 GB (its payload is a little of the zeros:
    # the method alone must refuse it, before a byte of it is decompressed).
    payload = compress(npy_header((1, 530_000_000)) + bytes(MB))
    path = write(tmp_path, "bomb.npz", [("__header__.npy", model_header(HUGE), STORED, None, None),
                                        ("param/0.weight.npy", payload, method, HUGE_SIZE, 0)])
    assert path.stat().st_size < 10_000
    name = {BZIP2: "bzip2", LZMA: "lzma"}[method]
    message = refused(lambda: bp.load(path), bp.ModelFileError,
                      f"compressed with {name}; model files are stored or deflated")
    assert str(path) in message and "'param/0.weight.npy'" in message


def test_a_deflated_model_of_gigabytes_from_megabytes_is_refused_before_inflating(tmp_path):
    # The 2 MB deflate version: 2.12 GB of zeros, honestly described.
    data = zeros_deflated(127 * 16 * MB)  # (the .npy header's bytes are a few zeros more)
    path = write(tmp_path, "zeros.npz", [
        ("__header__.npy", model_header(HUGE), STORED, None, None),
        ("param/0.weight.npy", deflated(npy_header((1, 530_000_000))) + data, DEFLATED,
         HUGE_SIZE, 0)])
    assert path.stat().st_size < 3 * MB
    refused(lambda: bp.load(path), bp.ModelFileError, "would inflate .* more than 100 times")


def test_compressed_sizes_that_the_file_cannot_hold_are_refused(tmp_path):
    # The 2 MB file again, its directory claiming 21.3 MB of compressed bytes for the array,
    # so that the ratio of the sizes it claims (under 100) would let it through.
    data = zeros_deflated(127 * 16 * MB)
    path = write(tmp_path, "lying.npz", [
        ("__header__.npy", model_header(HUGE), STORED, None, None),
        ("param/0.weight.npy", deflated(npy_header((1, 530_000_000))) + data, DEFLATED,
         HUGE_SIZE, 0)])
    raw = bytearray(path.read_bytes())
    entry = raw.rfind(b"PK\x01\x02")  # the array's directory entry (the last one)
    struct.pack_into("<I", raw, entry + 20, 21_300_000)  # its compressed size
    path.write_bytes(bytes(raw))
    assert path.stat().st_size < 3 * MB
    refused(lambda: bp.load(path), bp.ModelFileError, "compressed bytes")


def test_a_deflated_array_beyond_its_declared_size_is_refused_at_once(tmp_path):
    weight = npy_header((4, 3)) + np.ones((4, 3), "<f4").tobytes()
    stream = zlib.compressobj(9, zlib.DEFLATED, -15)
    # The array's data, then 64 MiB of zeros that no shape accounts for.
    payload = stream.compress(weight) + stream.flush(zlib.Z_FULL_FLUSH) + \
        zeros_deflated(64 * MB)
    header = ("__header__.npy", model_header([dense(4, 3, bias=False)]), STORED, None, None)
    # The directory says how much it unpacks to: refused from the directory.
    honest = write(tmp_path, "honest.npz", [header, ("param/0.weight.npy", payload, DEFLATED,
                                                     len(weight) + 64 * MB, 0)])
    refused(lambda: bp.load(honest, max_bytes=2**40), bp.ModelFileError,
            "would inflate|holds more than its shape")
    # The directory claims the declared size: decompressing stops there, and the checksum
    # (of the whole stream) refuses it.
    lying = write(tmp_path, "lying.npz", [header, ("param/0.weight.npy", payload, DEFLATED,
                                                   len(weight), 12345)])
    refused(lambda: bp.load(lying), bp.ModelFileError,
            "'param/0.weight' does not match its checksum")
    # The same bytes, honestly checksummed, load: the stream really holds the weights.
    good = write(tmp_path, "good.npz", [header, ("param/0.weight.npy", deflated(weight),
                                                 DEFLATED, len(weight), zlib.crc32(weight))])
    np.testing.assert_array_equal(bp.load(good).layers[0].weight, np.ones((4, 3)))


def test_an_entry_that_unpacks_to_more_than_its_shape_is_refused(tmp_path):
    weight = npy_header((4, 3)) + np.ones((4, 3), "<f4").tobytes()
    header = ("__header__.npy", model_header([dense(4, 3, bias=False)]), STORED, None, None)
    path = write(tmp_path, "long.npz", [header, ("param/0.weight.npy", weight + bytes(100),
                                                 STORED, None, None)])
    refused(lambda: bp.load(path), bp.ModelFileError,
            r"'param/0.weight' holds more than its shape: it unpacks to 276 bytes, but "
            r"\(4, 3\) of float32 takes 176")


def test_an_absurd_model_description_is_checked_against_max_bytes_first(tmp_path):
    # Dense(1, 530000000) in float64 (4.24 GB) from arrays of bytes (530 MB, within the
    # 2 GiB cap), claimed by a 1 KB file.
    weight = npy_header((1, 530_000_000), "|u1")
    path = write(tmp_path, "absurd.npz", [
        ("__header__.npy", model_header(HUGE, dtype="float64"), STORED, None, None),
        ("param/0.weight.npy", weight, STORED, len(weight) + 530_000_000, None)])
    assert path.stat().st_size < 2000
    message = refused(lambda: bp.load(path), bp.ModelFileError,
                      "describes a model of 530,000,000 float64 values")
    assert "4,240,000,000 bytes), more than max_bytes=2,147,483,648" in message
    # Within a smaller cap the bytes themselves are refused first.
    refused(lambda: bp.load(path, max_bytes=10**8), bp.ModelFileError,
            r"would unpack to 530,00\d,\d{3} bytes, more than max_bytes=100,000,000")


def test_duplicate_entries_are_refused(tmp_path):
    model = bp.Sequential([bp.Dense(2, 3)], seed=0)
    model.save(tmp_path / "model.npz")
    import zipfile
    with zipfile.ZipFile(tmp_path / "model.npz") as archive:
        entries = [(info.filename, archive.read(info), STORED, None, None)
                   for info in archive.infolist()]
    twice = write(tmp_path, "twice.npz", [*entries, entries[1]])
    refused(lambda: bp.load(twice), bp.ModelFileError,
            rf"more than one entry named \['{entries[1][0]}'\]")
    assert bp.load(write(tmp_path, "once.npz", entries)) is not None  # (the rest is sound)


def test_unknown_entries_are_refused_in_a_short_message(tmp_path):
    model = bp.Sequential([bp.Dense(2, 3)], seed=0)
    model.save(tmp_path / "model.npz")
    import zipfile
    with zipfile.ZipFile(tmp_path / "model.npz") as archive:
        entries = [(info.filename, archive.read(info), STORED, None, None)
                   for info in archive.infolist()]
    # 300 extra entries with 10,000-character names: 3 MB of names.
    extra = [(f"{i:03d}" + "x" * 10_000, b"", STORED, None, None) for i in range(300)]
    path = write(tmp_path, "extra.npz", entries + extra)
    message = refused(lambda: bp.load(path), bp.ModelFileError,
                      r"unexpected entries \['000x+\.\.\., '001x+\.\.\., .*\] and 295 more")
    assert len(message) < 600
    # Optimizer state without an optimizer in the header is unexpected too.
    state = ("optim/exp_avg.npy", npy_header((9,)) + bytes(36), STORED, None, None)
    refused(lambda: bp.load(write(tmp_path, "state.npz", [*entries, state])),
            bp.ModelFileError, r"unexpected entries \['optim/exp_avg.npy'\]")


def test_absurd_entry_counts_are_refused_before_the_directory_is_read(tmp_path):
    header = ("__header__.npy", model_header([dense(2, 3)]), STORED, None, None)
    many = [header] + [(f"param/{i}.npy", b"", STORED, None, None)
                       for i in range(io._MAX_MEMBERS)]
    path = write(tmp_path, "many.npz", many)
    refused(lambda: bp.load(path), bp.ModelFileError,
            f"holds {io._MAX_MEMBERS + 1:,} entries .*; a model file holds at most")
    # An end record that understates the count: the directory, once read, gives it away.
    understate(path)
    refused(lambda: bp.load(path), bp.ModelFileError,
            f"holds {io._MAX_MEMBERS + 1:,} entries; a model file holds at most")
    # And a directory of absurd size is not read at all (2,000 names of 10,000 characters).
    long = [header] + [(f"{i:04d}" + "x" * 10_000, b"", STORED, None, None)
                       for i in range(2000)]
    path = write(tmp_path, "long.npz", long)
    understate(path)
    refused(lambda: bp.load(path), bp.ModelFileError,
            "holds 2 entries \\(20,1..,... bytes of zip directory\\)")


def test_a_zip64_end_record_announcing_a_billion_entries_is_refused(tmp_path):
    header = ("__header__.npy", model_header([dense(2, 3)]), STORED, None, None)
    data = zip_archive([header])[:-22]  # (without its end record)
    directory = data.rindex(b"PK\x01\x02")
    # zip64's end record, its locator, and an end record that defers to them
    record = struct.pack("<4sQHHIIQQQQ", b"PK\x06\x06", 44, 45, 45, 0, 0, 10**9, 10**9,
                         len(data) - directory, directory)
    locator = struct.pack("<4sIQI", b"PK\x06\x07", 0, len(data), 1)
    end = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF,
                      0xFFFFFFFF, 0)
    path = tmp_path / "billion.npz"
    path.write_bytes(data + record + locator + end)
    refused(lambda: bp.load(path), bp.ModelFileError, "holds 1,000,000,000 entries")


def understate(path: Path) -> None:
    """Make the end record of the zip file ``path`` say that it holds 2 entries."""
    data = bytearray(path.read_bytes())
    struct.pack_into("<HH", data, len(data) - 22 + 8, 2, 2)
    path.write_bytes(bytes(data))


def test_names_and_values_from_the_header_are_cut_in_messages(tmp_path):
    header = ("__header__.npy", model_header([{"type": "x" * 500_000, "config": {}}]), STORED,
              None, None)
    path = write(tmp_path, "long-name.npz", [header])
    message = refused(lambda: bp.load(path), bp.ModelFileError,
                      "unknown layer type 'xxxx.*\\.\\.\\.")
    assert len(message) < 300


def test_a_big_genuine_model_still_loads_within_its_own_size(tmp_path):
    # (the bounds are on extra memory: a real model costs its size, and little more)
    model = bp.Sequential([bp.Dense(1000, 2000), bp.ReLU(), bp.Dense(2000, 10)], seed=0)
    path = tmp_path / "big.npz"
    model.save(path)
    tracemalloc.start()
    loaded = bp.load(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    size = sum(p.size * 4 for p in model.parameters())
    assert peak < size + 8 * MB, (peak, size)
    x = np.ones((2, 1000), dtype=np.float32)
    np.testing.assert_array_equal(loaded.forward(x), model.forward(x))


# -- IDX and MNIST files ---------------------------------------------------------------------

def gzip_of(header: bytes, zeros: int) -> bytes:
    """A gzip file of ``header`` followed by ``zeros`` zero bytes (its checksum is wrong:
    whoever reads to its end is told so, and nobody should read that far)."""
    stream = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = stream.compress(header) + stream.flush(zlib.Z_FULL_FLUSH)
    return (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" + head + zeros_deflated(zeros)
            + struct.pack("<II", 0, zeros & 0xFFFFFFFF))


#: the header of MNIST's training images: 60,000 images of 28 x 28 bytes
MNIST_HEADER = bytes([0, 0, 8, 3]) + np.array([60000, 28, 28], ">u4").tobytes()


@pytest.fixture
def bomb_folder(tmp_path, monkeypatch):
    """A folder like MNIST's whose training images are 3 MB of gzip holding 3 GiB of zeros
    behind a genuine header; the other files are small."""
    monkeypatch.delenv("BPROP_DATA", raising=False)
    folder = tmp_path / "mnist"
    folder.mkdir()
    (folder / "train-images-idx3-ubyte.gz").write_bytes(gzip_of(MNIST_HEADER, 3 << 30))
    for spec in list(mnist.MNIST.files.values())[1:]:
        write_idx(folder / spec.name, np.zeros(3, dtype=np.uint8))
    return folder


def test_a_gzip_bomb_in_the_mnist_folder_is_refused_naming_the_file(bomb_folder):
    bomb = bomb_folder / "train-images-idx3-ubyte.gz"
    assert bomb.stat().st_size < 4 * MB
    message = refused(lambda: bp.datasets.load_mnist(bomb_folder, download=False), IDXError,
                      "is not the genuine train-images-idx3-ubyte.gz")
    assert str(bomb) in message and "more than the genuine 47,040,016 bytes" in message


def test_a_gzip_bomb_read_as_idx_stops_after_its_header_s_size(bomb_folder):
    bomb = bomb_folder / "train-images-idx3-ubyte.gz"
    message = refused(lambda: read_idx(bomb), IDXError, "has trailing data")
    assert message.startswith(str(bomb))


def test_an_idx_header_promising_too_much_is_refused_before_allocating(tmp_path):
    path = tmp_path / "huge-idx3-ubyte.gz"
    header = bytes([0, 0, 0x0E, 3]) + np.array([2**31, 2**31, 2**31], ">u4").tobytes()
    path.write_bytes(gzip.compress(header + bytes(1000)))
    refused(lambda: read_idx(path), IDXError, "huge-idx3-ubyte.gz: the header promises shape "
                                              r"\(2147483648, 2147483648, 2147483648\)")
    small = tmp_path / "small-idx1-ubyte"
    write_idx(small, np.arange(100, dtype=np.uint8))
    refused(lambda: read_idx(small, max_bytes=99), IDXError, "more than max_bytes=99")
    assert read_idx(small, max_bytes=100).tolist() == list(range(100))


def test_running_out_of_memory_is_an_idx_error_naming_the_file(tmp_path):
    # A real MemoryError: a header promising 64 GiB, with max_bytes raised, read under an
    # address-space limit of at most 4 GiB.
    path = tmp_path / "big-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(bytes([0, 0, 8, 3]) + np.array([4096] * 3, ">u4").tobytes()
                                   + bytes(100)))
    script = f"""
import resource
_, hard = resource.getrlimit(resource.RLIMIT_AS)
limit = 4 << 30 if hard == resource.RLIM_INFINITY else min(hard, 4 << 30)
resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
from bprop.data.idx import read_idx, IDXError, IDXMemoryError
try:
    read_idx({str(path)!r}, max_bytes=2**40)
except IDXMemoryError as error:
    assert isinstance(error, IDXError) and isinstance(error, MemoryError)
    print(error)
"""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{path}: not enough memory to read it"), result.stdout


def test_the_command_line_refuses_the_gzip_bomb_in_one_line(bomb_folder, capsys):
    from bprop.cli.main import main

    status = main(["train", "--dataset", "mnist", "--data-dir", str(bomb_folder.parent),
                   "--epochs", "1", "--out", str(bomb_folder.parent / "run")])
    error = capsys.readouterr().err.strip()
    assert status == 2 and len(error.splitlines()) == 1, error
    assert "train-images-idx3-ubyte.gz is not the genuine" in error


def test_memory_errors_while_loading_mnist_name_the_file(bomb_folder, monkeypatch):
    def no_memory(path, limit=None):
        raise MemoryError

    monkeypatch.setattr(mnist, "read_bytes", no_memory)
    with pytest.raises(IDXMemoryError, match="train-images-idx3-ubyte.gz: not enough memory"):
        bp.datasets.load_mnist(bomb_folder, download=False)


# -- where the data folder is ----------------------------------------------------------------

def fake_mnist(folder: Path, seed: int = 0) -> tuple[mnist.Source, np.ndarray]:
    """Four tiny MNIST-like files in ``folder`` and a Source (folder name "fake") for them."""
    import hashlib
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, 5).astype(np.uint8)
    arrays = {"train_images": rng.integers(0, 256, (5, 28, 28), dtype=np.uint8),
              "train_labels": labels,
              "test_images": rng.integers(0, 256, (2, 28, 28), dtype=np.uint8),
              "test_labels": labels[:2]}
    files = {}
    for role, spec in mnist.MNIST.files.items():
        write_idx(folder / spec.name, arrays[role])
        raw = mnist.decompress((folder / spec.name).read_bytes(), spec.name)
        files[role] = mnist.IDXFile(spec.name, len(raw), hashlib.sha256(raw).hexdigest())
    return mnist.Source("Fake-MNIST", "fake", files, mirrors=()), labels


def load_fake(source, data_dir):
    (_, labels), _ = mnist.load(source, data_dir, scale=False, flatten=True, download=False,
                                verbose=False)
    return labels


def test_data_dir_and_bprop_data_accept_the_parent_or_the_folder_alike(tmp_path, monkeypatch):
    monkeypatch.delenv("BPROP_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    (tmp_path / "data" / "fake").mkdir(parents=True)
    source, labels = fake_mnist(tmp_path / "data" / "fake")
    for folder in (tmp_path / "data", tmp_path / "data" / "fake"):
        np.testing.assert_array_equal(load_fake(source, folder), labels)
        assert mnist.data_folder(source, folder) == (tmp_path / "data" / "fake").resolve()
        monkeypatch.setenv("BPROP_DATA", str(folder))
        np.testing.assert_array_equal(load_fake(source, None), labels)
        assert mnist.data_folder(source) == (tmp_path / "data" / "fake").resolve()
    monkeypatch.delenv("BPROP_DATA")
    assert mnist.data_folder(source) is None
    # Downloads go where the next search looks first.
    assert mnist.download_folder(source, tmp_path / "data") == tmp_path / "data" / "fake"
    assert mnist.download_folder(source, tmp_path / "fake") == tmp_path / "fake"


SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def test_the_command_line_finds_real_mnist_from_either_folder(monkeypatch):
    if not (SHARED / "mnist" / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip("the real MNIST files are not in ../shared/data/mnist")
    from bprop.cli import data

    monkeypatch.delenv("BPROP_DATA", raising=False)
    parent = data.load("mnist", data_dir=str(SHARED))
    itself = data.load("mnist", data_dir=str(SHARED / "mnist"))
    assert parent.X_train.shape == itself.X_train.shape == (60000, 784)
    np.testing.assert_array_equal(parent.y_test, itself.y_test)
    monkeypatch.setenv("BPROP_DATA", str(SHARED / "mnist"))
    np.testing.assert_array_equal(data.load("mnist").y_test, itself.y_test)


def test_the_subfolder_wins_and_the_other_dataset_s_folder_is_not_taken(tmp_path,
                                                                       monkeypatch):
    monkeypatch.delenv("BPROP_DATA", raising=False)
    (tmp_path / "fake").mkdir()
    source, labels = fake_mnist(tmp_path / "fake", seed=0)
    other, other_labels = fake_mnist(tmp_path, seed=1)  # loose files beside the subfolder
    assert not np.array_equal(labels, other_labels)
    np.testing.assert_array_equal(load_fake(source, tmp_path), labels)
    # MNIST's and Fashion-MNIST's files have the same names: a folder named after one
    # dataset is never read as the other.
    assert mnist.search_folders(mnist.FASHION_MNIST, tmp_path / "mnist") == [
        tmp_path / "mnist" / "fashion-mnist"]
    assert mnist.search_folders(mnist.MNIST, tmp_path / "mnist") == [
        tmp_path / "mnist" / "mnist", tmp_path / "mnist"]
