"""The trained MNIST model, exported to ONNX and to PyTorch, predicts what bprop predicts."""

from __future__ import annotations

import numpy as np
import pytest
from support import real_mnist_dir, relative_error

import bprop as bp


@pytest.fixture(scope="module")
def trained():
    """A 784-64-10 network after one epoch on 6000 genuine MNIST digits, and 2000 test
    digits."""
    (X, y), (X_test, _) = bp.datasets.load_mnist(real_mnist_dir(), download=False,
                                                 verbose=False)
    model = bp.mlp([784, 64, 10], seed=0)
    model.fit(X[:6000], y[:6000], loss="cross_entropy", optimizer=bp.Adam(lr=1e-3), epochs=1,
              batch_size=64)
    return model, X_test[:2000].astype(np.float32)


def test_in_onnx_runtime(trained):
    pytest.importorskip("onnx", reason="the onnx package is not installed")
    onnxruntime = pytest.importorskip("onnxruntime", reason="ONNX Runtime is not installed")
    model, X = trained
    session = onnxruntime.InferenceSession(bp.export_onnx(model).SerializeToString(),
                                           providers=["CPUExecutionProvider"])
    probabilities, labels = session.run(["probabilities", "label"], {"input": X})
    assert relative_error(probabilities, model.predict_proba(X)) <= 1e-5
    # (a label may differ only where two classes tie to float32 rounding)
    assert (labels == model.predict(X)).mean() >= 0.999


def test_in_the_onnx_reference_evaluator(trained):
    pytest.importorskip("onnx", reason="the onnx package is not installed")
    from onnx.reference import ReferenceEvaluator

    model, X = trained
    (probabilities,) = ReferenceEvaluator(bp.export_onnx(model)).run(["probabilities"],
                                                                      {"input": X})
    assert relative_error(probabilities, model.predict_proba(X)) <= 1e-5


def test_in_pytorch_and_back(trained):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    model, X = trained
    with torch.no_grad():
        logits = bp.to_torch(model)(torch.from_numpy(X))
    probabilities = torch.softmax(logits, dim=1).numpy()
    assert relative_error(probabilities, model.predict_proba(X)) <= 1e-5
    back = bp.from_torch(bp.to_torch(model))
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(back.state_dict()[name], value)
