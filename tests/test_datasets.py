import hashlib
import http.server
import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
from support import real_mnist_dir

import bprop as bp
from bprop.data import mnist
from bprop.data.idx import IDXError, write_idx


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    """No BPROP_DATA, an empty cache, and no system folders: only what a test puts there."""
    monkeypatch.delenv("BPROP_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path


def fake_source(tmp_path, n_train=6, n_test=4, seed=0):
    """A tiny MNIST-like dataset, its files in tmp_path/'files' and a Source describing it."""
    rng = np.random.default_rng(seed)
    folder = tmp_path / "files"
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, n_train).astype(np.uint8),
        "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, n_test).astype(np.uint8),
    }
    files = {}
    for role, spec in mnist.MNIST.files.items():
        write_idx(folder / spec.name, arrays[role])
        raw = mnist.decompress((folder / spec.name).read_bytes(), spec.name)
        files[role] = mnist.IDXFile(spec.name, len(raw), hashlib.sha256(raw).hexdigest())
    source = mnist.Source("Fake-MNIST", "fake", files, mirrors=())
    return source, folder, arrays


# -- toy data --------------------------------------------------------------------------------

@pytest.mark.parametrize("make", [bp.datasets.make_moons, bp.datasets.make_circles,
                                  bp.datasets.make_planar, bp.datasets.make_xor])
def test_toy_sets_are_seeded_and_two_class(make):
    X1, y1 = make(n_samples=100, noise=0.1, seed=3)
    X2, y2 = make(n_samples=100, noise=0.1, seed=3)
    X3, _ = make(n_samples=100, noise=0.1, seed=4)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(X1, X3)
    assert X1.shape == (100, 2) and set(np.unique(y1)) == {0, 1}


def test_quadratic_follows_its_formula():
    X, y = bp.datasets.make_quadratic()
    x = X.ravel()
    assert len(x) == 240 and x[0] == -7 and x[-1] == pytest.approx(4.95)
    np.testing.assert_allclose(y, x**2 + 2 * x - 3)
    _, noisy = bp.datasets.make_quadratic(noise=1.0, seed=0)
    assert 0.8 < np.std(noisy - y) < 1.2


def test_spirals_and_moons_are_learnable_but_not_linear():
    X, y = bp.datasets.make_spirals(300, n_classes=3, noise=0.1, seed=0)
    linear = bp.Sequential([bp.Dense(2, 3)], seed=0)
    linear.fit(X, y, loss="cross_entropy", optimizer=bp.Adam(0.05), epochs=200,
               batch_size=None)
    deep = bp.Sequential([bp.Dense(2, 64), bp.ReLU(), bp.Dense(64, 3)], seed=0)
    deep.fit(X, y, loss="cross_entropy", optimizer=bp.Adam(0.02), epochs=400, batch_size=None)
    assert linear.evaluate(X, y)["accuracy"] < 0.7 < 0.95 < deep.evaluate(X, y)["accuracy"]


def test_toy_argument_errors():
    with pytest.raises(ValueError, match="multiple of n_classes"):
        bp.datasets.make_spirals(100, n_classes=3)
    with pytest.raises(ValueError, match="factor must be between 0 and 1"):
        bp.datasets.make_circles(factor=1.5)
    with pytest.raises(ValueError, match="n_samples must be even"):
        bp.datasets.make_planar(101)


# -- digits ------------------------------------------------------------------------------------

def test_load_digits_reads_the_copy_scikit_learn_ships():
    pytest.importorskip("sklearn", reason="load_digits needs scikit-learn installed")
    X, y = bp.datasets.load_digits()
    assert X.shape == (1797, 64) and X.dtype == np.float32 and X.min() >= 0 and X.max() == 1
    assert np.bincount(y).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    raw, _ = bp.datasets.load_digits(scale=False)
    assert raw.dtype == np.uint8 and raw.max() == 16
    from sklearn.datasets import load_digits as sklearn_digits
    np.testing.assert_array_equal(raw, sklearn_digits().data)


def test_load_digits_without_scikit_learn_says_what_to_install(monkeypatch):
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ImportError, match="pip install scikit-learn"):
        bp.datasets.load_digits()


# -- MNIST: the real files ---------------------------------------------------------------------

def test_real_mnist_shapes_counts_and_checksum():
    folder = real_mnist_dir()
    (X_train, y_train), (X_test, y_test) = bp.datasets.load_mnist(folder)
    assert X_train.shape == (60000, 784) and X_train.dtype == np.float32
    assert X_test.shape == (10000, 784) and X_train.min() >= 0 and X_train.max() == 1
    assert np.bincount(y_train).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265,
                                             5851, 5949]
    assert np.bincount(y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974,
                                            1009]
    assert y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    (raw, _), _ = bp.datasets.load_mnist(folder, scale=False, flatten=False)
    assert raw.shape == (60000, 28, 28) and raw.dtype == np.uint8
    assert round(float(raw.mean()), 4) == 33.3184
    digest = hashlib.sha256((folder / "train-images-idx3-ubyte.gz").read_bytes()).hexdigest()
    assert digest == "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"


def test_bprop_reaches_97_percent_on_real_mnist():
    (X_train, y_train), (X_test, y_test) = bp.datasets.load_mnist(real_mnist_dir())
    model = bp.Sequential([bp.Dense(784, 256), bp.ReLU(), bp.Dense(256, 10)], seed=0)
    model.fit(X_train, y_train, loss="cross_entropy", optimizer=bp.Adam(1e-3), epochs=5,
              batch_size=128, metrics=[])
    assert model.evaluate(X_test, y_test)["accuracy"] >= 0.97


def test_search_order_data_dir_then_env_then_cache(isolated, monkeypatch):
    folder = real_mnist_dir()
    env_root = isolated / "env"
    (env_root / "mnist").mkdir(parents=True)
    for name in os.listdir(folder):
        if name.endswith(".gz"):
            os.symlink(folder / name, env_root / "mnist" / name)
    monkeypatch.setenv("BPROP_DATA", str(env_root))
    folders = mnist.candidate_folders(mnist.MNIST)
    assert folders == [env_root / "mnist", isolated / "cache" / "bprop" / "mnist"]
    assert mnist.candidate_folders(mnist.MNIST, "/x") == [Path("/x")]
    assert mnist.candidate_folders(mnist.FASHION_MNIST)[-1] == Path(
        "/usr/share/datasets/fashion-mnist")
    (_, y_train), _ = bp.datasets.load_mnist(download=False)
    assert len(y_train) == 60000


def test_fashion_mnist_from_debians_recompressed_copy():
    folder = Path("/usr/share/datasets/fashion-mnist")
    if not (folder / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
    (X_train, y_train), (X_test, y_test) = bp.datasets.load_fashion_mnist(folder)
    assert X_train.shape == (60000, 784) and X_test.shape == (10000, 784)
    assert np.bincount(y_train).tolist() == [6000] * 10
    assert np.bincount(y_test).tolist() == [1000] * 10
    assert len(bp.datasets.FASHION_CLASSES) == 10


# -- MNIST: damaged and missing files, downloads -------------------------------------------------

def test_a_damaged_file_on_disk_is_refused(isolated):
    folder = real_mnist_dir()
    copy = isolated / "copy"
    shutil.copytree(folder, copy)
    labels = copy / "t10k-labels-idx1-ubyte.gz"
    content = bytearray(mnist.decompress(labels.read_bytes(), "x"))
    content[100] = (content[100] + 1) % 10   # one label changed: still a valid IDX file
    labels.write_bytes(bytes(content))      # and no longer gzipped: plain files are accepted
    with pytest.raises(IDXError, match="t10k-labels-idx1-ubyte.gz is not the genuine"):
        bp.datasets.load_mnist(copy)


def test_files_found_uncompressed_or_recompressed_are_accepted(isolated):
    source, folder, arrays = fake_source(isolated)
    plain = isolated / "plain"
    plain.mkdir()
    for spec in source.files.values():
        raw = mnist.decompress((folder / spec.name).read_bytes(), spec.name)
        (plain / spec.name.removesuffix(".gz").replace("-idx", ".idx")).write_bytes(raw)
    (X_train, y_train), (X_test, _) = mnist.load(source, plain, scale=False, flatten=False,
                                                  download=False, verbose=False)
    np.testing.assert_array_equal(X_train, arrays["train_images"])
    np.testing.assert_array_equal(y_train, arrays["train_labels"])


def test_missing_files_without_download_say_which_files_to_place_where(isolated):
    with pytest.raises(FileNotFoundError) as caught:
        bp.datasets.load_mnist(isolated / "empty", download=False)
    message = str(caught.value)
    assert "train-images-idx3-ubyte.gz" in message and "t10k-labels-idx1-ubyte.gz" in message
    assert str(isolated / "empty") in message and "BPROP_DATA" in message


def test_image_and_label_counts_must_agree(isolated):
    source, folder, _ = fake_source(isolated)
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.zeros(3, dtype=np.uint8))
    raw = mnist.decompress((folder / "t10k-labels-idx1-ubyte.gz").read_bytes(), "x")
    files = dict(source.files)
    files["test_labels"] = mnist.IDXFile("t10k-labels-idx1-ubyte.gz", len(raw),
                                         hashlib.sha256(raw).hexdigest())
    source = mnist.Source("Fake", "fake", files, mirrors=())
    with pytest.raises(IDXError, match="holds 4 images but .*holds 3 labels"):
        mnist.load(source, folder, scale=True, flatten=True, download=False, verbose=False)


class FileServer:
    """Serve a folder on 127.0.0.1 (only this machine), optionally cutting files short."""

    def __init__(self, folder: Path, truncate: int | None = None):
        root, cut = str(folder), truncate

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=root, **kwargs)

            def copyfile(self, source, outputfile):
                data = source.read()
                outputfile.write(data[:cut] if cut else data)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def test_download_verifies_and_caches_atomically(isolated, capsys):
    source, folder, arrays = fake_source(isolated)
    with FileServer(folder) as server:
        source = mnist.Source(source.title, source.folder, source.files,
                              mirrors=("http://127.0.0.1:9/unreachable/", server.url))
        (X_train, y_train), _ = mnist.load(source, None, scale=False, flatten=True,
                                           download=True, verbose=True)
    np.testing.assert_array_equal(X_train, arrays["train_images"].reshape(6, -1))
    cached = sorted(p.name for p in (isolated / "cache" / "bprop" / "fake").iterdir())
    assert cached == sorted(spec.name for spec in source.files.values())  # no partial files
    assert "downloading train-images-idx3-ubyte.gz" in capsys.readouterr().err
    # The next load finds the cache and needs no server.
    (_, again), _ = mnist.load(source, None, scale=False, flatten=True, download=False,
                               verbose=False)
    np.testing.assert_array_equal(again, y_train)


def test_a_corrupt_download_never_becomes_a_cached_file(isolated):
    source, folder, _ = fake_source(isolated)
    corrupt = isolated / "corrupt"
    shutil.copytree(folder, corrupt)
    write_idx(corrupt / "train-labels-idx1-ubyte.gz", np.full(6, 9, dtype=np.uint8))
    with FileServer(corrupt) as server:
        source = mnist.Source(source.title, source.folder, source.files, mirrors=(server.url,))
        with pytest.raises(FileNotFoundError, match="(?s)downloading failed.*not the genuine"):
            mnist.load(source, None, scale=True, flatten=True, download=True, verbose=False)
    cache = isolated / "cache" / "bprop" / "fake"
    assert not (cache / "train-labels-idx1-ubyte.gz").exists()
    assert not [p for p in cache.iterdir() if p.name.startswith(".")]  # no temporary left


def test_an_interrupted_download_is_refused(isolated):
    source, folder, _ = fake_source(isolated)
    with FileServer(folder, truncate=50) as server:
        source = mnist.Source(source.title, source.folder, source.files, mirrors=(server.url,))
        with pytest.raises(FileNotFoundError, match="downloading failed"):
            mnist.load(source, None, scale=True, flatten=True, download=True, verbose=False)
    assert not list((isolated / "cache" / "bprop" / "fake").iterdir())


def test_no_network_gives_the_manual_instructions(isolated):
    source, _, _ = fake_source(isolated)
    source = mnist.Source(source.title, source.folder, source.files,
                          mirrors=("http://127.0.0.1:9/",))
    with pytest.raises(FileNotFoundError, match="(?s)downloading failed.*Place these four files"):
        mnist.load(source, None, scale=True, flatten=True, download=True, verbose=False)


def test_a_folder_with_only_some_files_says_which_are_missing(isolated):
    source, folder, _ = fake_source(isolated)
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match="has some of the files, but not "
                                                "t10k-labels-idx1-ubyte.gz"):
        mnist.load(source, folder, scale=True, flatten=True, download=False, verbose=False)


def test_env_folder_wins_over_the_cache_and_paths_are_expanded(isolated, monkeypatch):
    source, folder, arrays = fake_source(isolated)
    other, _, other_arrays = fake_source(isolated / "other", seed=1)
    cache = isolated / "cache" / "bprop" / "fake"
    shutil.copytree(isolated / "other" / "files", cache)
    monkeypatch.setenv("HOME", str(isolated))
    (isolated / "env").mkdir()
    shutil.copytree(folder, isolated / "env" / "fake")
    monkeypatch.setenv("BPROP_DATA", "~/env")
    # The fake sets differ in content, so their checksums tell which folder was read.
    (_, y_env), _ = mnist.load(source, None, scale=True, flatten=True, download=False,
                               verbose=False)
    np.testing.assert_array_equal(y_env, arrays["train_labels"])
    monkeypatch.delenv("BPROP_DATA")
    (_, y_cache), _ = mnist.load(other, None, scale=True, flatten=True, download=False,
                                 verbose=False)
    np.testing.assert_array_equal(y_cache, other_arrays["train_labels"])
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")
    assert mnist.cache_folder(source) == isolated / ".cache" / "bprop" / "fake"


def test_fashion_mnist_is_found_where_debian_installs_it(isolated):
    if not Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz").is_file():
        pytest.skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
    (_, y_train), _ = bp.datasets.load_fashion_mnist(download=False)
    assert len(y_train) == 60000 and y_train.dtype == np.int64


class GarbageServer:
    """Answers every connection on 127.0.0.1 with something that is not HTTP."""

    def __init__(self):
        import socket

        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(8)
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}/"
        self.thread = threading.Thread(target=self.serve, daemon=True)

    def serve(self):
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            with connection:
                connection.recv(4096)
                connection.sendall(b"garbage\r\n\r\n")

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.socket.close()


def test_a_mirror_speaking_garbage_is_skipped_for_the_next(isolated):
    source, folder, arrays = fake_source(isolated)
    with GarbageServer() as garbage, FileServer(folder) as good:
        source = mnist.Source(source.title, source.folder, source.files,
                              mirrors=(garbage.url, good.url))
        (_, y_train), _ = mnist.load(source, None, scale=True, flatten=True, download=True,
                                     verbose=False)
    np.testing.assert_array_equal(y_train, arrays["train_labels"])
