import json
import os
import zipfile

import numpy as np
import pytest

import bprop as bp
from bprop import io


def trained_model(dtype="float32"):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 4))
    y = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 1)
    model = bp.Sequential([bp.Dense(4, 16, init="xavier"), bp.BatchNorm(16), bp.LeakyReLU(0.05),
                           bp.Dropout(0.2), bp.Dense(16, 3)], seed=3, dtype=dtype)
    optimizer = bp.Adam(0.01)
    model.fit(X, y, loss="cross_entropy", optimizer=optimizer, epochs=3, batch_size=16)
    return model, optimizer, X, y


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_round_trip_predicts_exactly_the_same(tmp_path, dtype):
    model, _, X, y = trained_model(dtype)
    path = tmp_path / "model.bprop"
    model.save(path)
    loaded = bp.load(path)
    assert loaded.dtype == model.dtype
    assert [repr(layer) for layer in loaded.layers] == [repr(layer) for layer in model.layers]
    np.testing.assert_array_equal(loaded.forward(X), model.forward(X))
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    np.testing.assert_array_equal(loaded.layers[1].buffers["running_var"],
                                  model.layers[1].buffers["running_var"])
    assert loaded.evaluate(X, y) == model.evaluate(X, y)  # the loss came along


def test_saved_optimizer_state_continues_training_identically(tmp_path):
    model, optimizer, X, y = trained_model()
    path = tmp_path / "checkpoint.npz"
    bp.save(model, path, optimizer=optimizer)
    loaded, loaded_optimizer = bp.load(path, optimizer=True)
    assert isinstance(loaded_optimizer, bp.Adam) and loaded_optimizer.lr == optimizer.lr
    for m, opt in [(model, optimizer), (loaded, loaded_optimizer)]:
        m.fit(X, y, loss="cross_entropy", optimizer=opt, epochs=2, batch_size=16)
    for a, b in zip(model.parameters(), loaded.parameters(), strict=True):
        np.testing.assert_array_equal(a.value, b.value)
    assert bp.load(path, optimizer=False) is not None
    model.save(tmp_path / "plain.npz")
    assert bp.load(tmp_path / "plain.npz", optimizer=True)[1] is None


class Boom:
    """Unpickling this would create a folder: the proof that code ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_a_file_carrying_a_pickle_is_refused_without_running_it(tmp_path):
    model, _, _, _ = trained_model()
    path = tmp_path / "evil.npz"
    model.save(path)
    marker = tmp_path / "code-ran"
    # Add an object array, which .npy stores as a pickle.
    with zipfile.ZipFile(path, "a") as archive, archive.open("param/evil.npy", "w") as member:
        np.lib.format.write_array(member, np.array([Boom(str(marker))], dtype=object),
                                  allow_pickle=True)
    with zipfile.ZipFile(path) as archive:  # the payload really is there
        assert b"mkdir" in archive.read("param/evil.npy") and b"code-ran" in archive.read(
            "param/evil.npy")
    with pytest.raises(bp.ModelFileError, match="pickled Python objects"):
        bp.load(path)
    assert not marker.exists()
    # The payload is live: a loader that allowed pickles would have run it.
    with np.load(path, allow_pickle=True) as archive:
        archive["param/evil"]
    assert marker.exists()


def test_unknown_format_version_is_refused(tmp_path):
    model, _, _, _ = trained_model()
    path = tmp_path / "future.npz"
    model.save(path)
    with np.load(path) as archive:
        arrays = {name: archive[name] for name in archive.files}
    header = json.loads(arrays["__header__"].tobytes())
    header["format_version"] = 99
    arrays["__header__"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    np.savez(path, **arrays)
    with pytest.raises(bp.ModelFileError, match="format version 99.*reads version 1"):
        bp.load(path)


def test_an_interrupted_save_leaves_the_old_file_loadable(tmp_path, monkeypatch):
    model, _, X, _ = trained_model()
    path = tmp_path / "model.npz"
    model.save(path)
    expected = model.forward(X)
    original = np.savez

    def dies_halfway(file, **arrays):
        original(file, **dict(list(arrays.items())[:2]))  # part of the data reaches the disk
        raise KeyboardInterrupt

    monkeypatch.setattr(io.np, "savez", dies_halfway)
    model.layers[0].weight = np.zeros((4, 16))
    with pytest.raises(KeyboardInterrupt):
        model.save(path)
    monkeypatch.undo()
    np.testing.assert_array_equal(bp.load(path).forward(X), expected)
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]  # no temporary left behind


@pytest.mark.parametrize("content, message", [
    (b"not a zip at all", "not a readable bprop model file"),
    (None, "not a bprop model file"),
])
def test_files_that_are_not_models(tmp_path, content, message):
    path = tmp_path / "file.npz"
    if content is None:
        np.savez(path, weights=np.zeros(3))
    else:
        path.write_bytes(content)
    with pytest.raises(bp.ModelFileError, match=message):
        bp.load(path)


def test_damaged_weights_and_unknown_layers_are_reported(tmp_path):
    model, _, _, _ = trained_model()
    path = tmp_path / "model.npz"
    model.save(path)
    with np.load(path) as archive:
        arrays = {name: archive[name] for name in archive.files}
    arrays["param/0.weight"] = np.zeros((2, 2), dtype=np.float32)
    np.savez(tmp_path / "bad_shape.npz", **arrays)
    with pytest.raises(bp.ModelFileError, match="damaged.*0.weight has shape"):
        bp.load(tmp_path / "bad_shape.npz")
    header = json.loads(arrays["__header__"].tobytes())
    header["layers"][2]["type"] = "os.system"
    arrays["__header__"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    np.savez(tmp_path / "bad_layer.npz", **arrays)
    with pytest.raises(bp.ModelFileError, match="unknown layer type 'os.system'"):
        bp.load(tmp_path / "bad_layer.npz")


def test_save_errors(tmp_path):
    class Custom(bp.Identity):
        pass

    with pytest.raises(TypeError, match="custom layer"):
        bp.Sequential([bp.Dense(1, 1), Custom()]).save(tmp_path / "m.npz")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        bp.Sequential([bp.Dense(1, 1)]).save(tmp_path / "missing" / "m.npz")
    with pytest.raises(FileNotFoundError, match="no model file"):
        bp.load(tmp_path / "nothing.npz")
