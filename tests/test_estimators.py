"""bp.MLPClassifier / bp.MLPRegressor: scikit-learn's contract, with and without it."""

import subprocess
import sys
import warnings

import numpy as np
import pytest

import bprop as bp

sklearn = pytest.importorskip("sklearn", reason="the scikit-learn checks need scikit-learn")


@pytest.mark.parametrize("estimator", [bp.MLPClassifier(max_iter=50),
                                       bp.MLPRegressor(max_iter=50)], ids=type)
def test_scikit_learns_check_estimator_passes(estimator):
    from sklearn.utils.estimator_checks import check_estimator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(estimator, on_fail=None)
    failed = [(r["check_name"], str(r["exception"])[:200]) for r in results
              if r["status"] == "failed"]
    assert len(results) > 40 and failed == []


def test_pipeline_grid_search_and_cross_validation():
    from sklearn.model_selection import GridSearchCV, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = bp.datasets.make_moons(120, noise=0.15, seed=0)
    order = np.random.default_rng(0).permutation(120)  # the moons come sorted along the arcs
    X, y = X[order], y[order]
    pipe = make_pipeline(StandardScaler(), bp.MLPClassifier((8,), learning_rate_init=0.02,
                                                            max_iter=300, random_state=0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sklearn.exceptions.ConvergenceWarning)
        scores = cross_val_score(pipe, X, y, cv=3)
        search = GridSearchCV(pipe, {"mlpclassifier__hidden_layer_sizes": [(2,), (16,)]}, cv=3)
        search.fit(X, y)
    assert scores.shape == (3,) and scores.mean() > 0.85
    assert search.best_params_["mlpclassifier__hidden_layer_sizes"] == (16,)


def test_attributes_are_laid_out_as_scikit_learn_lays_them_out():
    X, y = bp.datasets.make_spirals(90, n_classes=3, noise=0.1, seed=0)
    labels = np.array(["red", "green", "blue"])[y]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sklearn.exceptions.ConvergenceWarning)
        ours = bp.MLPClassifier((7, 5), max_iter=30, random_state=0).fit(X, labels)
        theirs = sklearn.neural_network.MLPClassifier((7, 5), max_iter=30,
                                                      random_state=0).fit(X, labels)
    for name in ("classes_", "n_layers_", "n_outputs_", "n_features_in_", "out_activation_"):
        assert np.array_equal(getattr(ours, name), getattr(theirs, name)), name
    assert [c.shape for c in ours.coefs_] == [c.shape for c in theirs.coefs_]
    assert [b.shape for b in ours.intercepts_] == [b.shape for b in theirs.intercepts_]
    assert len(ours.loss_curve_) == ours.n_iter_ == 30 and ours.loss_ == ours.loss_curve_[-1]
    assert set(ours.predict(X)) <= {"red", "green", "blue"}
    proba = ours.predict_proba(X)
    assert proba.shape == (90, 3) and np.allclose(proba.sum(axis=1), 1)
    assert ours.get_params()["hidden_layer_sizes"] == (7, 5)
    assert ours.set_params(alpha=0.5).alpha == 0.5


def test_binary_multilabel_and_multi_output():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((80, 3))
    binary = (X[:, 0] > 0).astype(int)
    clf = bp.MLPClassifier((8,), learning_rate_init=0.05, max_iter=200, tol=1e-3,
                           random_state=0).fit(X, binary)
    assert clf.out_activation_ == "logistic" and clf.predict_proba(X).shape == (80, 2)
    assert clf.score(X, binary) > 0.95
    multilabel = np.column_stack([X[:, 0] > 0, X[:, 1] > 0]).astype(int)
    clf = bp.MLPClassifier((16,), learning_rate_init=0.05, max_iter=300, tol=1e-3,
                           random_state=0).fit(X, multilabel)
    assert clf.predict(X).shape == (80, 2) and (clf.predict(X) == multilabel).mean() > 0.9
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sklearn.exceptions.ConvergenceWarning)
        reg = bp.MLPRegressor((16,), learning_rate_init=0.01, max_iter=500, tol=1e-6,
                              random_state=0).fit(X, np.column_stack([X.sum(axis=1), X[:, 0]]))
    assert reg.predict(X).shape == (80, 2) and reg.score(
        X, np.column_stack([X.sum(axis=1), X[:, 0]])) > 0.95


def test_partial_fit_warm_start_and_early_stopping():
    X, y = bp.datasets.make_moons(200, noise=0.2, seed=1)
    clf = bp.MLPClassifier((16,), random_state=0)
    with pytest.raises(ValueError, match="needs classes"):
        clf.partial_fit(X, y)
    for _ in range(3):
        clf.partial_fit(X, y, classes=[0, 1])
    assert clf.n_iter_ == 3 and len(clf.loss_curve_) == 3
    warm = bp.MLPClassifier((16,), max_iter=5, warm_start=True, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bp.estimators.ConvergenceWarning)
        warm.fit(X, y)
        first = [c.copy() for c in warm.coefs_]
        warm.fit(X, y)
    assert warm.n_iter_ == 10 and not np.array_equal(first[0], warm.coefs_[0])
    stopper = bp.MLPClassifier((32,), learning_rate_init=0.05, early_stopping=True,
                               n_iter_no_change=5, max_iter=500, random_state=0).fit(X, y)
    assert stopper.n_iter_ < 500 and len(stopper.validation_scores_) == stopper.n_iter_
    assert stopper.best_validation_score_ == max(stopper.validation_scores_)


def test_extras_dropout_batch_norm_dtype():
    X, y = bp.datasets.make_moons(100, noise=0.1, seed=0)
    clf = bp.MLPClassifier((16,), dropout=0.2, batch_norm=True, dtype="float32",
                           learning_rate_init=0.01, max_iter=100, tol=1e-2,
                           random_state=0).fit(X, y)
    kinds = [type(layer).__name__ for layer in clf.model_.layers]
    assert kinds == ["Dense", "BatchNorm", "ReLU", "Dropout", "Dense"]
    assert clf.coefs_[0].dtype == np.float32 and clf.score(X, y) > 0.8


@pytest.mark.parametrize("params, message", [
    ({"activation": "gelu"}, "activation must be one of"),
    ({"solver": "lbfgs"}, "solver must be one of"),
    ({"hidden_layer_sizes": (0,)}, "hidden_layer_sizes must be positive integers"),
    ({"validation_fraction": 1.0}, "validation_fraction must be in"),
    ({"batch_size": 0}, "batch_size must be 'auto' or a positive integer"),
])
def test_bad_parameters_are_reported_at_fit(params, message):
    clf = bp.MLPClassifier(**params)  # __init__ only stores, as scikit-learn requires
    with pytest.raises(ValueError, match=message):
        clf.fit(np.zeros((4, 2)), [0, 1, 0, 1])


def test_the_estimators_work_without_scikit_learn():
    code = """
import sys
sys.modules["sklearn"] = None   # make every 'import sklearn' fail
import numpy as np, bprop as bp
X, y = bp.datasets.make_moons(100, noise=0.1, seed=0)
clf = bp.MLPClassifier((16,), learning_rate_init=0.02, max_iter=300, tol=1e-3,
                       random_state=0).fit(X, y)
reg = bp.MLPRegressor((8,), max_iter=50, tol=1e-2).fit(X, y.astype(float))
assert clf.score(X, y) > 0.9 and clf.get_params()["hidden_layer_sizes"] == (16,)
assert reg.set_params(alpha=0.1).alpha == 0.1 and "MLPRegressor(" in repr(reg)
try:
    bp.MLPClassifier().predict(X)
except bp.estimators.NotFittedError:
    print("ok")
"""
    done = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_fit_forgets_the_classes_of_an_earlier_partial_fit():
    X = np.random.default_rng(0).standard_normal((30, 2))
    clf = bp.MLPClassifier((4,), max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bp.estimators.ConvergenceWarning)
        clf.partial_fit(X, np.arange(30) % 3, classes=[0, 1, 2])
        clf.fit(X, np.where(X[:, 0] > 0, "a", "b"))
    assert clf.classes_.tolist() == ["a", "b"] and clf.out_activation_ == "logistic"
    with pytest.raises(ValueError, match="does not support early_stopping"):
        bp.MLPClassifier(early_stopping=True).partial_fit(X, np.arange(30) % 2, classes=[0, 1])
