import io as io_module
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


def replace_member(path, name, data):
    """Rewrite the zip archive ``path`` with its entry ``name`` holding ``data`` instead (the
    entry keeps its place; every other entry is copied unchanged)."""
    with zipfile.ZipFile(path) as archive:
        entries = [(info, data if info.filename == name else archive.read(info))
                   for info in archive.infolist()]
    with zipfile.ZipFile(path, "w") as archive:
        for info, content in entries:
            archive.writestr(info, content)


def rewrite(path, change):
    """Rewrite a saved model file after ``change(arrays, header)`` edits its content."""
    with np.load(path) as archive:
        arrays = {name: archive[name] for name in archive.files}
    header = json.loads(arrays["__header__"].tobytes())
    change(arrays, header)
    arrays["__header__"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    np.savez(path, **arrays)


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
    # Replace the first weights with an object array, which .npy stores as a pickle.
    payload = io_module.BytesIO()
    np.lib.format.write_array(payload, np.array([Boom(str(marker))], dtype=object),
                              allow_pickle=True)
    replace_member(path, "param/0.weight.npy", payload.getvalue())
    with zipfile.ZipFile(path) as archive:  # the payload really is there
        assert b"mkdir" in archive.read("param/0.weight.npy")
    with pytest.raises(bp.ModelFileError, match="pickled Python objects"):
        bp.load(path)
    assert not marker.exists()
    # The payload is live: a loader that allowed pickles would have run it.
    with np.load(path, allow_pickle=True) as archive:
        archive["param/0.weight"]
    assert marker.exists()


def test_unknown_format_version_is_refused(tmp_path):
    model, _, _, _ = trained_model()
    path = tmp_path / "future.npz"
    model.save(path)
    rewrite(path, lambda arrays, header: header.update(format_version=99))
    with pytest.raises(bp.ModelFileError, match="format version 99.*reads version 1"):
        bp.load(path)


def test_new_files_are_format_version_2_and_version_1_files_still_load(tmp_path):
    import json
    import zipfile

    model, _, X, _ = trained_model()
    path = tmp_path / "model.npz"
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        header = json.loads(np.load(archive.open("__header__.npy")).tobytes())
    assert header["format_version"] == 2
    rewrite(path, lambda arrays, header: header.update(format_version=1))
    np.testing.assert_array_equal(bp.load(path).forward(X), model.forward(X))
    rewrite(path, lambda arrays, header: header.update(format_version=True))
    with pytest.raises(bp.ModelFileError, match="format version True"):
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
    for name in ("bad_shape.npz", "bad_layer.npz"):
        model.save(tmp_path / name)
    rewrite(tmp_path / "bad_shape.npz", lambda arrays, header: arrays.update(
        {"param/0.weight": np.zeros((2, 2), dtype=np.float32)}))
    with pytest.raises(bp.ModelFileError, match="damaged: 'param/0.weight' has shape"):
        bp.load(tmp_path / "bad_shape.npz")
    rewrite(tmp_path / "bad_layer.npz",
            lambda arrays, header: header["layers"][2].update(type="os.system"))
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


def set_step(step):
    def change(arrays, header):
        header["optimizer"]["step"] = step
    return change


def drop_moments(arrays, header):
    del arrays["optim/exp_avg"]


def nan_moment(arrays, header):
    arrays["optim/exp_avg"] = np.full_like(arrays["optim/exp_avg"], np.nan)


def negative_variance(arrays, header):
    arrays["buffer/1.running_var"] = -np.ones_like(arrays["buffer/1.running_var"])


def text_weights(arrays, header):
    arrays["param/0.weight"] = np.full(arrays["param/0.weight"].shape, "x")


def huge_layer(arrays, header):
    header["layers"][0]["config"]["n_out"] = 10**13


def wrong_optimizer_size(arrays, header):
    arrays["optim/exp_avg_sq"] = arrays["optim/exp_avg_sq"][:5]


def extra_member(arrays, header):
    arrays["notes"] = np.zeros(3)


@pytest.mark.parametrize("change, message", [
    (set_step(-1), "step count must be a whole number >= 0"),
    (set_step(1e300), "step count must be a whole number >= 0"),
    (drop_moments, "keeps the arrays"),
    (nan_moment, "'exp_avg' holds invalid values"),
    (negative_variance, "1.running_var holds invalid values"),
    (text_weights, "holds <U1, not numbers"),
    (huge_layer, "'param/0.weight' has shape \\(4, 16\\) but the model description needs"),
    (wrong_optimizer_size, "'optim/exp_avg_sq' has shape \\(5,\\)"),
    (extra_member, "unexpected entries \\['notes.npy'\\]"),
])
def test_hostile_or_damaged_contents_are_refused_clearly(tmp_path, change, message):
    model, optimizer, _, _ = trained_model()
    path = tmp_path / "model.npz"
    model.save(path, optimizer=optimizer)
    rewrite(path, change)
    with pytest.raises(bp.ModelFileError, match=message):
        bp.load(path, optimizer=True)


def test_malformed_archives_never_escape_as_raw_exceptions(tmp_path):
    model, _, _, _ = trained_model()
    # A header stored as raw bytes instead of an .npy array.
    raw_header = tmp_path / "raw_header.npz"
    with zipfile.ZipFile(raw_header, "w") as archive:
        archive.writestr("__header__.npy", b'{"format": "bprop-model"}')
    # A header nested deeper than json can parse.
    deep = tmp_path / "deep.npz"
    model.save(deep)
    rewrite(deep, lambda arrays, header: header.update(layers="[" * 100000))
    # A zip whose declared unpacked size is huge (the central directory says so).
    bomb = tmp_path / "bomb.npz"
    model.save(bomb)
    for path, message in [(raw_header, "not a valid bprop model file"),
                          (deep, "no layers"),
                          (bomb, "more than max_bytes=100")]:
        with pytest.raises(bp.ModelFileError, match=message):
            bp.load(path, max_bytes=100 if path is bomb else 2**31)


def test_saved_files_get_the_usual_permissions(tmp_path):
    model, _, _, _ = trained_model()
    old = os.umask(0o022)
    try:
        model.save(tmp_path / "new.npz")
        (tmp_path / "shared.npz").write_bytes(b"")
        os.chmod(tmp_path / "shared.npz", 0o640)
        model.save(tmp_path / "shared.npz")
    finally:
        os.umask(old)
    assert (tmp_path / "new.npz").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "shared.npz").stat().st_mode & 0o777 == 0o640  # replaced file's mode kept


def test_every_layer_type_with_state_has_its_shapes_known_to_the_loader():
    from bprop.nn.layers import LAYERS

    examples = {"Dense": bp.Dense(3, 2), "BatchNorm": bp.BatchNorm(4)}
    for name, cls in LAYERS.items():
        layer = examples.get(name) or cls()
        actual = {n: p.shape for n, p in layer.params.items()}
        actual.update({n: b.shape for n, b in layer.buffers.items()})
        assert io.parameter_shapes(name, layer.get_config()) == actual, name
    assert io.parameter_shapes("Dense", {"n_in": 3, "n_out": 2, "bias": False}) == {
        "weight": (3, 2)}


def test_arrays_are_read_a_block_at_a_time_into_the_model(tmp_path, monkeypatch):
    model, optimizer, X, _ = trained_model("float64")
    model.save(tmp_path / "model.npz", optimizer=optimizer)
    monkeypatch.setattr(io, "_READ_BLOCK", 40)  # 5 float64 per block: no array ends on one
    loaded, loaded_optimizer = bp.load(tmp_path / "model.npz", optimizer=True)
    for (name, a), (_, b) in zip(loaded.named_parameters(), model.named_parameters(),
                                 strict=True):
        np.testing.assert_array_equal(a.value, b.value, err_msg=name)
        assert a._home is not None and a._home[0] is loaded.parameters()[0]._home[0]
    np.testing.assert_array_equal(loaded.layers[1].buffers["running_mean"],
                                  model.layers[1].buffers["running_mean"])
    np.testing.assert_array_equal(loaded.forward(X), model.forward(X))
    assert loaded_optimizer.state_dict(loaded.parameters())["step"] == optimizer.state_dict(
        model.parameters())["step"]


def fortran_weights(arrays, header):
    arrays["param/0.weight"] = np.asfortranarray(arrays["param/0.weight"])


def test_arrays_written_in_another_layout_or_dtype_load_the_same(tmp_path):
    model, _, X, _ = trained_model("float32")
    model.save(tmp_path / "model.npz")
    expected = model.forward(X)
    rewrite(tmp_path / "model.npz", fortran_weights)
    with np.load(tmp_path / "model.npz") as archive:  # (the file really holds Fortran order)
        assert archive["param/0.weight"].flags.f_contiguous
    np.testing.assert_array_equal(bp.load(tmp_path / "model.npz").forward(X), expected)
    rewrite(tmp_path / "model.npz", lambda arrays, header: arrays.update(
        {"param/4.bias": arrays["param/4.bias"].astype(">f8")}))
    np.testing.assert_array_equal(bp.load(tmp_path / "model.npz").forward(X), expected)


def nan_weight(arrays, header):
    arrays["param/4.weight"][3, 1] = np.nan


def test_non_finite_or_missing_weights_are_refused_clearly(tmp_path):
    model, _, _, _ = trained_model()
    model.save(tmp_path / "nan.npz")
    rewrite(tmp_path / "nan.npz", nan_weight)
    with pytest.raises(bp.ModelFileError, match="damaged: 'param/4.weight' holds NaN or infinite"):
        bp.load(tmp_path / "nan.npz")
    # An array whose data stop before its header's shape says they end.
    path = tmp_path / "short.npz"
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        whole = archive.read("param/0.weight.npy")
    replace_member(path, "param/0.weight.npy", whole[:-12])
    with pytest.raises(bp.ModelFileError, match="damaged: 'param/0.weight' is cut short"):
        bp.load(path)


def test_a_file_numpy_compressed_still_loads(tmp_path):
    model, optimizer, X, _ = trained_model()
    model.save(tmp_path / "model.npz", optimizer=optimizer)
    with np.load(tmp_path / "model.npz") as archive:
        arrays = {name: archive[name] for name in archive.files}
    np.savez_compressed(tmp_path / "compressed.npz", **arrays)  # (deflate, as NumPy writes it)
    with zipfile.ZipFile(tmp_path / "compressed.npz") as archive:
        assert {info.compress_type for info in archive.infolist()} == {zipfile.ZIP_DEFLATED}
    loaded, _ = bp.load(tmp_path / "compressed.npz", optimizer=True)
    np.testing.assert_array_equal(loaded.forward(X), model.forward(X))
