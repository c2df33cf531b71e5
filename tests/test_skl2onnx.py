"""scikit-learn pipelines holding bprop's estimators convert whole with skl2onnx, and the
converted pipeline predicts what the pipeline predicts."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import bprop as bp
from bprop.estimators import ConvergenceWarning, register_with_skl2onnx

skl2onnx = pytest.importorskip("skl2onnx", reason="skl2onnx is not installed: the pipeline "
                               "conversion tests skip (pip install skl2onnx onnxruntime)")
onnxruntime = pytest.importorskip("onnxruntime", reason="ONNX Runtime is not installed")
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402


def run(proto, X) -> dict[str, np.ndarray]:
    session = onnxruntime.InferenceSession(proto.SerializeToString(),
                                           providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(names, {session.get_inputs()[0].name: X}), strict=True))


def fitted(pipeline: Pipeline, X, y) -> Pipeline:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return pipeline.fit(X, y)


@pytest.fixture
def features() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.normal(size=(150, 4)) * [1, 10, 100, 1000] + [0, -5, 50, 500]


TARGETS = {
    "text classes": lambda X: np.array(["cat", "dog", "emu"])[
        (X[:, 0] > 0).astype(int) + (X[:, 1] > -5)],
    "two integer classes": lambda X: np.where(X[:, 2] > 50, 7, 3),
}


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("input_dtype", [np.float64, np.float32])
def test_a_classifier_pipeline_converts_whole(features, target, input_dtype):
    y = TARGETS[target](features)
    pipeline = fitted(Pipeline([("scale", StandardScaler()),
                                ("mlp", bp.MLPClassifier((16,), max_iter=30, random_state=0))]),
                      features, y)
    proto = skl2onnx.to_onnx(pipeline, features[:1].astype(input_dtype))
    outputs = run(proto, features.astype(input_dtype))
    assert list(outputs) == ["label", "probabilities"]
    np.testing.assert_array_equal(outputs["label"], pipeline.predict(features))
    # The scaler computes in the input's precision: float32 input rounds there first.
    tolerance = 1e-10 if input_dtype is np.float64 else 1e-5
    np.testing.assert_allclose(outputs["probabilities"], pipeline.predict_proba(features),
                               rtol=0, atol=tolerance)


@pytest.mark.parametrize("outputs_", [1, 2])
def test_a_regressor_pipeline_converts_whole(features, outputs_):
    y = features[:, :outputs_] * 3.0 + 1.0
    y = y.ravel() if outputs_ == 1 else y
    pipeline = fitted(Pipeline([("scale", StandardScaler()),
                                ("mlp", bp.MLPRegressor((16,), max_iter=30, random_state=0))]),
                      features, y)
    (predicted,) = run(skl2onnx.to_onnx(pipeline, features[:1]), features).values()
    expected = pipeline.predict(features).reshape(len(features), -1)
    np.testing.assert_allclose(predicted, expected, rtol=1e-10, atol=1e-10 * np.abs(
        expected).max())


def test_a_float32_estimator_casts_what_the_scaler_gives_it(features):
    y = TARGETS["text classes"](features)
    pipeline = fitted(Pipeline([("scale", StandardScaler()),
                                ("mlp", bp.MLPClassifier((8,), max_iter=20, random_state=0,
                                                         dtype="float32"))]), features, y)
    proto = skl2onnx.to_onnx(pipeline, features[:1])
    assert "Cast" in [node.op_type for node in proto.graph.node]
    outputs = run(proto, features)
    assert outputs["probabilities"].dtype == np.float32
    np.testing.assert_allclose(outputs["probabilities"], pipeline.predict_proba(features),
                               atol=1e-5)


def test_an_estimator_on_its_own_and_multilabel_targets(features):
    y = np.column_stack([features[:, 0] > 0, features[:, 1] > -5]).astype(int)
    clf = fitted(bp.MLPClassifier((8,), max_iter=20, random_state=0), features / 100, y)
    outputs = run(skl2onnx.to_onnx(clf, features[:1] / 100), features / 100)
    np.testing.assert_array_equal(outputs["label"], clf.predict(features / 100))
    np.testing.assert_allclose(outputs["probabilities"], clf.predict_proba(features / 100),
                               atol=1e-10)


def test_registered_estimators_convert_inside_meta_estimators(features):
    # (this module imported skl2onnx first, but other tests may have imported the estimators
    # before it: register explicitly, as a user who imports bprop first does)
    register_with_skl2onnx()
    from sklearn.ensemble import VotingRegressor
    from sklearn.model_selection import GridSearchCV

    y = TARGETS["text classes"](features)
    search = fitted(GridSearchCV(Pipeline([("scale", StandardScaler()),
                                           ("mlp", bp.MLPClassifier((8,), max_iter=15,
                                                                    random_state=0))]),
                                 {"mlp__alpha": [1e-4, 1e-1]}, cv=2), features, y)
    proto = skl2onnx.to_onnx(search, features[:1], options={"zipmap": False})
    outputs = run(proto, features)
    np.testing.assert_array_equal(outputs["label"], search.predict(features))
    np.testing.assert_allclose(outputs["probabilities"], search.predict_proba(features),
                               atol=1e-10)
    scaled = StandardScaler().fit_transform(features)
    voting = fitted(VotingRegressor([("a", bp.MLPRegressor((8,), max_iter=15, random_state=0)),
                                     ("b", bp.MLPRegressor((4,), max_iter=15,
                                                           random_state=1))]),
                    scaled, scaled[:, 0])
    (predicted,) = run(skl2onnx.to_onnx(voting, scaled[:1]), scaled).values()
    np.testing.assert_allclose(predicted.ravel(), voting.predict(scaled), atol=1e-10)


def test_zipmap_is_taken_only_as_false(features):
    register_with_skl2onnx()
    pipeline = fitted(Pipeline([("scale", StandardScaler()),
                                ("mlp", bp.MLPClassifier((8,), max_iter=5, random_state=0))]),
                      features, TARGETS["two integer classes"](features))
    skl2onnx.to_onnx(pipeline, features[:1], options={"zipmap": False})
    with pytest.raises(ValueError, match="zipmap"):
        skl2onnx.to_onnx(pipeline, features[:1], options={"zipmap": True})


SCRIPT = """
import warnings
import numpy as np
{first}
from sklearn.model_selection import GridSearchCV
warnings.simplefilter("ignore")
X = np.random.default_rng(0).normal(size=(60, 3))
search = GridSearchCV(bp.MLPClassifier((4,), max_iter=5, random_state=0),
                      {{"alpha": [1e-4, 1e-2]}}, cv=2).fit(X, X[:, 0] > 0)
pipeline_like = bp.MLPClassifier((4,), max_iter=5, random_state=0).fit(X, X[:, 0] > 0)
skl2onnx.to_onnx(pipeline_like, X[:1])  # (converts either way)
try:
    skl2onnx.to_onnx(search, X[:1])
    print("search converted")
except Exception as error:
    print("search refused:", type(error).__name__)
"""


@pytest.mark.parametrize("first, expected", [
    ("import skl2onnx\nimport bprop as bp\nbp.MLPClassifier", "search converted"),
    ("import bprop as bp\nbp.MLPClassifier\nimport skl2onnx", "search refused"),
    ("import bprop as bp\nimport skl2onnx\n"
     "from bprop.estimators import register_with_skl2onnx\nregister_with_skl2onnx()",
     "search converted"),
])
def test_which_import_order_registers(first, expected):
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", SCRIPT.format(first=first)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert expected in result.stdout, result.stdout
