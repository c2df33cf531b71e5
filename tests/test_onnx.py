"""ONNX export and import: every export runs in ONNX Runtime (and onnx's own reference
evaluator) and computes what bprop computes; round trips keep the weights bit for bit; what
has no counterpart is refused by name."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from support import relative_error

import bprop as bp
from bprop.estimators import ConvergenceWarning
from bprop.nn.layer import Layer

onnx = pytest.importorskip("onnx", reason="the onnx package is not installed: the ONNX tests "
                           "skip (pip install 'bprop[onnx]' onnxruntime)")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

TOLERANCE = {"float32": 1e-5, "float64": 1e-10}


def _runtimes() -> list[str]:
    """ONNX Runtime where it is installed, and onnx's reference evaluator always."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return ["reference"]
    return ["onnxruntime", "reference"]


RUNTIMES = _runtimes()


def run(proto, X, runtime: str = RUNTIMES[0]) -> dict[str, np.ndarray]:
    """Every output of the ONNX model ``proto`` for the input ``X``, by name."""
    names = [value.name for value in proto.graph.output]
    feed = {proto.graph.input[0].name: X}
    if runtime == "onnxruntime":
        import onnxruntime

        session = onnxruntime.InferenceSession(proto.SerializeToString(),
                                               providers=["CPUExecutionProvider"])
        return dict(zip(names, session.run(names, feed), strict=True))
    from onnx.reference import ReferenceEvaluator

    return dict(zip(names, ReferenceEvaluator(proto).run(names, feed), strict=True))


def with_statistics(model: bp.Sequential, seed: int = 1) -> bp.Sequential:
    """``model`` with BatchNorm parameters and running statistics far from their defaults, so
    that an export that ignored them would be caught."""
    rng = np.random.default_rng(seed)
    state = model.state_dict()
    for name, value in state.items():
        if name.endswith("running_var"):
            state[name] = rng.uniform(0.5, 2.0, value.shape)
        elif name.endswith(("running_mean", "bias")):
            state[name] = rng.normal(0, 0.5, value.shape)
        elif name.endswith("weight") and value.ndim == 1:
            state[name] = rng.uniform(0.5, 1.5, value.shape)
    model.load_state_dict(state)
    return model


def every_layer(dtype: str) -> bp.Sequential:
    """A network with every kind of layer bprop has, ending in a Softmax."""
    return with_statistics(bp.Sequential(
        [bp.Dense(5, 8), bp.BatchNorm(8, momentum=0.2, eps=1e-3), bp.LeakyReLU(0.1),
         bp.Dropout(0.3), bp.Dense(8, 7, bias=False), bp.Tanh(), bp.Dense(7, 6), bp.Sigmoid(),
         bp.Dense(6, 6), bp.ReLU(), bp.BatchNorm(6), bp.Identity(), bp.Dense(6, 4),
         bp.Softmax()], seed=0, dtype=dtype))


def data(n: int = 33, features: int = 5, seed: int = 2) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, features))


# -- every layer, both precisions, every form ------------------------------------------------
@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("fold_batchnorm", [False, True])
@pytest.mark.parametrize("dense", ["gemm", "matmul"])
def test_every_layer_computes_what_bprop_computes(runtime, dtype, fold_batchnorm, dense):
    model = every_layer(dtype)
    X = data().astype(dtype)
    proto = bp.export_onnx(model, fold_batchnorm=fold_batchnorm, dense=dense)
    outputs = run(proto, X, runtime)
    assert list(outputs) == ["output", "probabilities", "label"]
    assert outputs["output"].dtype == np.dtype(dtype)
    assert relative_error(outputs["output"], model.forward(X)) <= TOLERANCE[dtype]
    assert relative_error(outputs["probabilities"], model.predict_proba(X)) <= TOLERANCE[dtype]
    np.testing.assert_array_equal(outputs["label"], model.predict(X))
    ops = [node.op_type for node in proto.graph.node]
    # (the first BatchNorm follows a Dense layer, the second a ReLU)
    assert ops.count("BatchNormalization") == (1 if fold_batchnorm else 2)
    assert ("Gemm" in ops) == (dense == "gemm") and ("MatMul" in ops) == (dense == "matmul")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_batch_dimension_is_free(dtype):
    model = every_layer(dtype)
    proto = bp.export_onnx(model)
    for rows in (1, 2, 257):
        X = data(rows).astype(dtype)
        assert relative_error(run(proto, X)["output"], model.forward(X)) <= TOLERANCE[dtype]
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch" and dims[1].dim_value == 5


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("opset", [14, 15, 17, 18, 21])
def test_each_opset_from_14(opset, runtime):
    model = every_layer("float32")
    proto = bp.export_onnx(model, opset=opset)
    assert [o.version for o in proto.opset_import if o.domain == ""] == [opset]
    assert proto.ir_version == helper.find_min_ir_version_for(list(proto.opset_import))
    X = data().astype(np.float32)
    outputs = run(proto, X, runtime)
    assert relative_error(outputs["probabilities"], model.predict_proba(X)) <= 1e-5


def test_a_float64_leaky_relu_keeps_its_slope_exactly():
    # ONNX attributes are float32: LeakyRelu(alpha=0.01) would compute with 0.0099999998.
    model = bp.Sequential([bp.Dense(3, 4), bp.LeakyReLU(0.01)], seed=0, dtype="float64")
    X = -np.abs(data(9, 3))
    out = run(bp.export_onnx(model), X)["output"]
    assert relative_error(out, model.forward(X)) <= 1e-13


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_classifier_heads(dtype):
    X = data(60, 4)
    three = np.random.default_rng(0).integers(0, 3, 60)
    cases = {
        # logits trained with softmax cross-entropy: the head applies the softmax
        "logits": (bp.mlp([4, 6, 3], seed=0, dtype=dtype), three, "cross_entropy"),
        # one logistic output from logits: one label per row
        "binary logits": (bp.mlp([4, 6, 1], seed=0, dtype=dtype), three % 2,
                          bp.BinaryCrossEntropy(from_logits=True)),
        # one sigmoid output
        "sigmoid": (bp.mlp([4, 6, 1], output="sigmoid", seed=0, dtype=dtype), three % 2, "bce"),
        # three independent sigmoid outputs: a label per output
        "multilabel": (bp.mlp([4, 6, 3], output="sigmoid", seed=0, dtype=dtype),
                       np.eye(3)[three], "bce"),
    }
    for name, (model, y, loss) in cases.items():
        model.fit(X, y, loss=loss, epochs=3, batch_size=16)
        outputs = run(bp.export_onnx(model), X.astype(dtype))
        assert relative_error(outputs["probabilities"], model.predict_proba(X)) <= \
            TOLERANCE[dtype], name
        np.testing.assert_array_equal(outputs["label"], model.predict(X), err_msg=name)
        assert outputs["label"].dtype == np.int64, name


def test_class_names_become_the_labels():
    model = bp.mlp([4, 6, 3], output="softmax", seed=0)
    X = data(20, 4).astype(np.float32)
    names = np.array(["cat", "dog", "emu"])
    proto = bp.export_onnx(model, classes=list(names))
    for runtime in RUNTIMES:
        np.testing.assert_array_equal(run(proto, X, runtime)["label"], names[model.predict(X)])
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["classes"] == '["cat", "dog", "emu"]' and meta["task"] == "multiclass"
    binary = bp.mlp([4, 5, 1], output="sigmoid", seed=0)
    labels = run(bp.export_onnx(binary, classes=[10, 20]), X)["label"]
    np.testing.assert_array_equal(labels, np.array([10, 20])[binary.predict(X)])


def test_a_regression_model_gives_its_output_only():
    model = bp.mlp([3, 8, 2], seed=0)
    X = data(10, 3).astype(np.float32)
    outputs = run(bp.export_onnx(model), X)
    assert list(outputs) == ["output"]
    assert relative_error(outputs["output"], model.predict(X)) <= 1e-5


def test_the_model_method_and_the_file(tmp_path):
    model = every_layer("float32")
    path = tmp_path / "model.onnx"
    returned = model.to_onnx(path, opset=17, fold_batchnorm=True)
    assert onnx.load(path) == returned == bp.export_onnx(model, fold_batchnorm=True)
    onnx.checker.check_model(str(path))
    assert returned.producer_name == "bprop"


# -- estimators ------------------------------------------------------------------------------
def test_estimators_export_with_their_labels():
    warnings.simplefilter("ignore", ConvergenceWarning)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 4))
    targets = {"text": np.array(["low", "mid", "high"])[rng.integers(0, 3, 80)],
               "two ints": rng.integers(0, 2, 80) * 5 + 3,
               "multilabel": rng.integers(0, 2, (80, 3))}
    for name, y in targets.items():
        clf = bp.MLPClassifier((8,), max_iter=15, random_state=0).fit(X, y)
        outputs = run(bp.export_onnx(clf), X.astype(clf.model_.dtype))
        assert relative_error(outputs["probabilities"], clf.predict_proba(X)) <= 1e-10, name
        np.testing.assert_array_equal(outputs["label"], clf.predict(X), err_msg=name)
    for y in (X @ [1.0, 2, 3, 4], X[:, :2] * 100):
        reg = bp.MLPRegressor((8,), max_iter=15, random_state=0).fit(X, y)
        out = run(bp.export_onnx(reg), X)["output"]
        assert relative_error(out.reshape(np.shape(y)), reg.predict(X)) <= 1e-10


def test_an_unfitted_estimator_is_refused():
    with pytest.raises(ValueError, match="not fitted yet"):
        bp.export_onnx(bp.MLPClassifier())


# -- import ----------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("dense", ["gemm", "matmul"])
def test_round_trip_keeps_every_weight_and_setting(tmp_path, dtype, dense):
    model = every_layer(dtype)
    path = tmp_path / "model.onnx"
    bp.export_onnx(model, path, dense=dense)
    back = bp.import_onnx(path)
    assert back.dtype == model.dtype
    assert [type(layer) for layer in back.layers] == [type(layer) for layer in model.layers]
    for mine, theirs in zip(model.layers, back.layers, strict=True):
        assert mine.get_config() == theirs.get_config()
    expected, got = model.state_dict(), back.state_dict()
    assert expected.keys() == got.keys()
    for name in expected:
        assert got[name].dtype == expected[name].dtype, name
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)


def test_import_takes_bytes_and_loaded_models_and_a_dtype():
    model = bp.mlp([3, 4, 2], seed=0)
    proto = bp.export_onnx(model)
    X = data(7, 3)
    for source in (proto, proto.SerializeToString()):
        back = bp.import_onnx(source, dtype="float64")
        assert back.dtype == np.float64
        for name, value in model.state_dict().items():
            np.testing.assert_array_equal(back.state_dict()[name], value, err_msg=name)
        assert relative_error(back.forward(X), model.forward(X)) <= 1e-6


def _torch_export(module, example, path, dynamo: bool) -> None:
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            torch.onnx.export(module, (example,), path, dynamo=True, input_names=["x"],
                              dynamic_shapes=({0: torch.export.Dim("batch")},), verbose=False)
        else:
            torch.onnx.export(module, (example,), path, dynamo=False, input_names=["x"],
                              dynamic_axes={"x": {0: "batch"}})


@pytest.mark.parametrize("dynamo", [False, True])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_an_mlp_exported_by_pytorch(tmp_path, dynamo, dtype):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    if dynamo:
        pytest.importorskip("onnxscript", reason="torch.onnx.export(dynamo=True) needs "
                            "onnxscript, which is not installed")
    torch.manual_seed(0)
    module = torch.nn.Sequential(
        torch.nn.Linear(5, 16), torch.nn.BatchNorm1d(16), torch.nn.LeakyReLU(0.2),
        torch.nn.Dropout(0.25), torch.nn.Linear(16, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3),
        torch.nn.Softmax(dim=1)).to(getattr(torch, dtype))
    optimizer = torch.optim.SGD(module.parameters(), lr=0.1)
    for _ in range(5):  # (so that the running statistics are not their defaults)
        x = torch.randn(32, 5, dtype=module[0].weight.dtype)
        optimizer.zero_grad()
        module(x)[:, 0].sum().backward()
        optimizer.step()
    module.eval()
    path = tmp_path / "torch.onnx"
    _torch_export(module, torch.zeros(4, 5, dtype=module[0].weight.dtype), path, dynamo)
    model = bp.import_onnx(path)
    assert model.dtype == np.dtype(dtype)
    X = data(20, 5).astype(dtype)
    with torch.no_grad():
        expected = module(torch.from_numpy(X)).numpy()
    assert relative_error(model.forward(X), expected) <= TOLERANCE[dtype]


# -- refusals --------------------------------------------------------------------------------
class Square(Layer):
    def _forward(self, x, training):
        return x * x

    def _backward(self, grad_out, need_input_grad):
        return grad_out


def test_a_layer_without_an_onnx_form_is_named():
    model = bp.Sequential([bp.Dense(2, 3), Square()], seed=0)
    with pytest.raises(bp.ConversionError, match=r"layer 1 Square\(\) has no ONNX form"):
        bp.export_onnx(model)


def test_export_settings_are_checked():
    model = bp.mlp([2, 3], seed=0)
    with pytest.raises(ValueError, match="opset must be an integer from 14"):
        bp.export_onnx(model, opset=13)
    with pytest.raises(ValueError, match="dense must be 'gemm' or 'matmul'"):
        bp.export_onnx(model, dense="conv")
    with pytest.raises(ValueError, match="classes= must name 3 classes"):
        bp.export_onnx(bp.mlp([2, 3], output="softmax", seed=0), classes=["a", "b"])
    with pytest.raises(ValueError, match="classes= is for a classifier"):
        bp.export_onnx(bp.Sequential([bp.Dense(2, 3)], seed=0), classes=["a", "b", "c"])
    with pytest.raises(TypeError, match="takes a bprop Sequential"):
        bp.export_onnx("model.npz")


def graph_of(nodes, initializers=(), inputs=("x",), opset=17, output="y"):
    """A model of ``nodes`` over float inputs (n, 3)."""
    values = [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["n", 3])
              for name in inputs]
    graph = helper.make_graph(nodes, "g", values,
                              [helper.make_tensor_value_info(output, TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(np.asarray(v, np.float32), name)
                               for name, v in initializers])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def test_an_unsupported_operator_is_named_with_its_node():
    proto = graph_of([helper.make_node("Gemm", ["x", "w"], ["h"], name="first"),
                      helper.make_node("Exp", ["h"], ["y"], name="grow")],
                     [("w", np.ones((3, 3)))])
    with pytest.raises(bp.ConversionError, match=r"node 'grow' \(Exp\) is not an operator "
                       r"bprop can import; it reads chains of Gemm"):
        bp.import_onnx(proto)


@pytest.mark.parametrize("nodes, initializers, inputs, match", [
    ([helper.make_node("Add", ["x", "z"], ["y"], name="sum")], [], ("x", "z"),
     "2 data inputs"),
    ([helper.make_node("Softmax", ["x"], ["y"], name="s", axis=0)], [], ("x",),
     r"'s' \(Softmax\) takes the softmax over axis 0"),
    ([helper.make_node("PRelu", ["x", "slope"], ["y"], name="p")],
     [("slope", [0.1, 0.2, 0.3])], ("x",), "a slope per feature"),
    ([helper.make_node("BatchNormalization", ["x", "g", "b", "m", "v"], ["y"], name="bn",
                       training_mode=1)],
     [(n, np.ones(3)) for n in "gbmv"], ("x",), "in training mode"),
    ([helper.make_node("Gemm", ["w", "x"], ["y"], name="left")], [("w", np.ones((3, 3)))],
     ("x",), "reads the data after its constants"),
    ([helper.make_node("Gemm", ["x", "w", "c"], ["y"], name="wide")],
     [("w", np.ones((3, 2))), ("c", np.ones(5))], ("x",), r"a bias of shape \(5,\)"),
    ([helper.make_node("Identity", ["x"], ["y"])], [], (), "0 data inputs"),
])
def test_graphs_that_are_not_a_bprop_chain_are_refused(nodes, initializers, inputs, match):
    with pytest.raises(bp.ConversionError, match=match):
        bp.import_onnx(graph_of(nodes, initializers, inputs))


def test_several_outputs_need_a_choice():
    proto = bp.export_onnx(bp.mlp([3, 2], output="softmax", seed=0))
    assert len(bp.import_onnx(proto).layers) == 2  # ("output" is the network's)
    proto.graph.output[0].name = "renamed"
    with pytest.raises(ValueError, match="say which one the network computes with output="):
        bp.import_onnx(proto)
    with pytest.raises(ValueError, match="has no output 'nope'"):
        bp.import_onnx(proto, output="nope")


def test_damaged_large_and_split_files_are_refused(tmp_path):
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\xff" * 100)
    with pytest.raises(bp.ModelFileError, match="is not an ONNX model"):
        bp.import_onnx(garbage)
    path = tmp_path / "model.onnx"
    bp.export_onnx(bp.mlp([3, 4, 2], seed=0), path)
    with pytest.raises(bp.ModelFileError, match="over max_bytes=100"):
        bp.import_onnx(path, max_bytes=100)
    with pytest.raises(FileNotFoundError, match="no ONNX model at"):
        bp.import_onnx(tmp_path / "missing.onnx")



def test_weights_in_files_beside_the_model_are_read_from_its_folder_only(tmp_path):
    model = bp.mlp([3, 4, 2], seed=0)
    split = tmp_path / "split.onnx"
    onnx.save(bp.export_onnx(model), split, save_as_external_data=True,
              all_tensors_to_one_file=True, location="weights.bin", size_threshold=0)
    back = bp.import_onnx(split)
    np.testing.assert_array_equal(back.layers[2].weight, model.layers[2].weight)
    with pytest.raises(bp.ModelFileError, match="over max_bytes"):
        bp.import_onnx(split, max_bytes=split.stat().st_size + 10)
    with pytest.raises(bp.ModelFileError, match="give the path of its file"):
        bp.import_onnx(split.read_bytes())
    (tmp_path / "weights.bin").unlink()
    with pytest.raises(bp.ModelFileError, match="not in"):
        bp.import_onnx(split)
    hostile = onnx.load(split, load_external_data=False)
    for tensor in hostile.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = "../../etc/passwd"
    (tmp_path / "inner").mkdir()
    onnx.save(hostile, tmp_path / "inner" / "hostile.onnx")
    with pytest.raises(bp.ModelFileError, match="outside its folder"):
        bp.import_onnx(tmp_path / "inner" / "hostile.onnx")


def test_integer_inputs_are_refused_unless_a_dtype_is_given():
    proto = bp.export_onnx(bp.mlp([3, 2], seed=0))
    proto.graph.input[0].type.tensor_type.elem_type = TensorProto.INT32
    with pytest.raises(bp.ConversionError, match="computes in float32 or float64"):
        bp.import_onnx(proto)
    assert bp.import_onnx(proto, dtype="float64").dtype == np.float64


def test_without_the_onnx_package_the_message_says_what_to_install(hide_package):
    hide_package("onnx")
    model = bp.mlp([2, 2], seed=0)
    with pytest.raises(bp.MissingPackageError, match=r'pip install "bprop\[onnx\]"'):
        bp.export_onnx(model)
    with pytest.raises(bp.MissingPackageError, match="import_onnx needs the onnx package"):
        bp.import_onnx(b"")


def test_gemm_alpha_beta_and_transposed_weights_are_read():
    rng = np.random.default_rng(3)
    weight, bias = rng.normal(size=(4, 3)), rng.normal(size=4)  # (PyTorch's layout: out, in)
    proto = graph_of([helper.make_node("Gemm", ["x", "w", "c"], ["y"], alpha=0.5, beta=2.0,
                                       transB=1)], [("w", weight), ("c", bias)])
    model = bp.import_onnx(proto)
    X = data(6, 3).astype(np.float32)
    assert relative_error(model.forward(X), run(proto, X)["y"]) <= 1e-6
    np.testing.assert_allclose(model.layers[0].weight, 0.5 * weight.T.astype(np.float32),
                               rtol=1e-7)


def test_constants_made_by_constant_cast_and_transpose_nodes():
    weight = np.arange(12, dtype=np.float64).reshape(4, 3) / 10
    nodes = [helper.make_node("Constant", [], ["w64"], value=numpy_helper.from_array(weight)),
             helper.make_node("Cast", ["w64"], ["w32"], to=TensorProto.FLOAT),
             helper.make_node("Transpose", ["w32"], ["w"], perm=[1, 0]),
             helper.make_node("MatMul", ["x", "w"], ["h"]),
             helper.make_node("Identity", ["b0"], ["b"]),
             helper.make_node("Add", ["h", "b"], ["y"])]
    proto = graph_of(nodes, [("b0", [1.0, 2.0, 3.0, 4.0])])
    model = bp.import_onnx(proto)
    assert [type(layer) for layer in model.layers] == [bp.Dense]
    np.testing.assert_array_equal(model.layers[0].weight, weight.T.astype(np.float32))
    np.testing.assert_array_equal(model.layers[0].bias, [1, 2, 3, 4])


def test_an_input_wider_or_narrower_than_the_first_layer_is_refused():
    proto = graph_of([helper.make_node("Gemm", ["x", "w"], ["y"])], [("w", np.ones((7, 4)))])
    with pytest.raises(bp.ConversionError, match="has 3 features but its first layer reads 7"):
        bp.import_onnx(proto)


def test_a_constant_kept_in_another_file_is_refused(tmp_path, monkeypatch):
    # onnx would read it relative to the current folder, not the model's: refused outright
    monkeypatch.chdir(tmp_path)
    (tmp_path / "secret.bin").write_bytes(np.float32(0.25).tobytes())
    value = numpy_helper.from_array(np.zeros(1, np.float32), "slope")
    value.ClearField("float_data")
    value.data_location = TensorProto.EXTERNAL
    for key, entry in (("location", "secret.bin"), ("offset", "0"), ("length", "4")):
        value.external_data.add(key=key, value=entry)
    proto = graph_of([helper.make_node("Constant", [], ["s"], value=value),
                      helper.make_node("PRelu", ["x", "s"], ["y"], name="leaky")])
    with pytest.raises(bp.ModelFileError, match="keeps its constant in another file"):
        bp.import_onnx(proto)


@pytest.mark.parametrize("nodes, initializers, match", [
    ([helper.make_node("BatchNormalization", ["x", "g", "b", "m"], ["y"], name="short")],
     [(n, np.ones(3)) for n in "gbm"], r"'short' \(BatchNormalization\) has 3 constant inputs"),
    ([helper.make_node("Dropout", ["x", "r"], ["y"], name="all")], [("r", 1.0)],
     r"'all' \(Dropout\) cannot be a bprop layer"),
    ([helper.make_node("LeakyRelu", ["x"], ["y"], name="neg", alpha=-1.0)], [],
     r"'neg' \(LeakyRelu\) cannot be a bprop layer"),
    ([helper.make_node("PRelu", ["s", "x"], ["y"], name="swapped")], [("s", [0.1])],
     "reads the data after its constants"),
])
def test_settings_no_bprop_layer_takes_are_refused_by_node(nodes, initializers, match):
    with pytest.raises(bp.ConversionError, match=match):
        bp.import_onnx(graph_of(nodes, initializers))


def test_boolean_and_real_class_labels_keep_their_type():
    X = data(12, 4).astype(np.float32)
    model = bp.mlp([4, 5, 1], output="sigmoid", seed=0)
    labels = run(bp.export_onnx(model, classes=[False, True]), X)["label"]
    assert labels.dtype == np.bool_
    np.testing.assert_array_equal(labels, model.predict(X).astype(bool))
    labels = run(bp.export_onnx(model, classes=[0.5, 1.5]), X)["label"]
    np.testing.assert_array_equal(labels, np.array([0.5, 1.5])[model.predict(X)])


def test_a_float32_attribute_comes_back_as_the_same_float32(tmp_path):
    model = bp.Sequential([bp.Dense(3, 3), bp.LeakyReLU(0.123456789), bp.Dropout(1 / 3)],
                          seed=0)
    back = bp.import_onnx(bp.export_onnx(model))
    assert np.float32(back.layers[1].alpha) == np.float32(0.123456789)
    assert np.float32(back.layers[2].p) == np.float32(1 / 3)
    X = -np.abs(data(5, 3)).astype(np.float32)
    np.testing.assert_array_equal(back.forward(X), model.forward(X))


def test_exporting_to_a_folder_says_so(tmp_path):
    with pytest.raises(IsADirectoryError, match="it is a folder"):
        bp.export_onnx(bp.mlp([2, 2], seed=0), tmp_path)
