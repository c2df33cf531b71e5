"""The estimators against scikit-learn's own MLPs where issue 15 found gaps: sample_weight in
fit, partial_fit and score (from identical weights, the same weights after training), string
classes in partial_fit, pickling with the optimizer's state, complex input and numeric
parameters (with and without scikit-learn)."""

import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest

import bprop as bp

sklearn = pytest.importorskip("sklearn", reason="the comparisons need scikit-learn")
sklearn_nn = pytest.importorskip("sklearn.neural_network")
SKLEARN_WEIGHS = tuple(int(part) for part in sklearn.__version__.split(".")[:2]) >= (1, 7)
needs_weights = pytest.mark.skipif(not SKLEARN_WEIGHS,
                                   reason="scikit-learn's MLPs take sample_weight from 1.7")

N, STEPS = 30, 15
SETTINGS = dict(hidden_layer_sizes=(5,), solver="sgd", alpha=0.05, batch_size=12,
                learning_rate_init=0.1, momentum=0.0, shuffle=False, tol=0.0,
                n_iter_no_change=10**6, max_iter=1, warm_start=True, random_state=0)


def problem(task, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N, 4))
    weights = rng.integers(0, 4, N).astype(float) * rng.uniform(0.5, 1.5, N)
    weights[:3] = 0  # (never a whole batch: scikit-learn divides by the batch's weight sum)
    if task == "regression":
        return X, X @ rng.standard_normal(4) + 0.5, weights
    if task == "binary":
        return X, np.where(X[:, 0] + X[:, 1] > 0, "yes", "no"), weights
    return X, np.argmax(X[:, :3], axis=1), weights


def initial_weights(n_out, seed=1):
    rng = np.random.default_rng(seed)
    return ([rng.uniform(-0.5, 0.5, (4, 5)), rng.uniform(-0.5, 0.5, (5, n_out))],
            [rng.uniform(-0.5, 0.5, 5), rng.uniform(-0.5, 0.5, n_out)])


def from_identical_weights(cls, X, y, weights, n_out):
    """``cls`` with SETTINGS, fitted once to make its network, then given our initial
    weights (the way tests/test_trajectories.py compares with scikit-learn)."""
    estimator = cls(**SETTINGS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        estimator.fit(X, y, sample_weight=weights)
    coefs, intercepts = initial_weights(n_out)
    estimator.coefs_ = [c.copy() for c in coefs]
    estimator.intercepts_ = [b.copy() for b in intercepts]
    return estimator


def pairs(task):
    if task == "regression":
        return bp.MLPRegressor, sklearn_nn.MLPRegressor
    return bp.MLPClassifier, sklearn_nn.MLPClassifier


def assert_same_network(ours, theirs):
    for mine, peer in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_,
                          strict=True):
        np.testing.assert_allclose(mine, peer, rtol=0, atol=1e-10)


TASKS = ["binary", "multiclass", "regression"]


@needs_weights
@pytest.mark.parametrize("task", TASKS)
def test_fit_with_sample_weight_follows_scikit_learn(task):
    X, y, weights = problem(task)
    n_out = 3 if task == "multiclass" else 1
    start = initial_weights(n_out)
    models = [from_identical_weights(cls, X, y, weights, n_out) for cls in pairs(task)]
    for estimator in models:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            estimator.set_params(max_iter=STEPS).fit(X, y, sample_weight=weights)
    ours, theirs = models
    assert np.abs(ours.coefs_[0] - start[0][0]).max() > 1e-2  # (they moved)
    assert_same_network(ours, theirs)
    # (the first entry is the fit that made the networks, from their own initial weights)
    np.testing.assert_allclose(ours.loss_curve_[1:], theirs.loss_curve_[1:], rtol=1e-10)
    # and the weights mattered: without them the network differs
    unweighted = from_identical_weights(pairs(task)[0], X, y, None, n_out)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        unweighted.set_params(max_iter=STEPS).fit(X, y)
    assert np.abs(unweighted.coefs_[0] - ours.coefs_[0]).max() > 1e-3


@needs_weights
@pytest.mark.parametrize("task", TASKS)
def test_partial_fit_and_score_with_sample_weight_follow_scikit_learn(task):
    X, y, weights = problem(task)
    n_out = 3 if task == "multiclass" else 1
    ours, theirs = (from_identical_weights(cls, X, y, weights, n_out) for cls in pairs(task))
    for _ in range(5):
        for estimator in (ours, theirs):
            estimator.partial_fit(X, y, sample_weight=weights)
    assert_same_network(ours, theirs)
    np.testing.assert_allclose(ours.loss_curve_[1:], theirs.loss_curve_[1:], rtol=1e-10)
    X_test, y_test, w_test = problem(task, seed=5)
    assert ours.score(X_test, y_test, sample_weight=w_test) == pytest.approx(
        theirs.score(X_test, y_test, sample_weight=w_test), rel=1e-9)
    assert ours.score(X_test, y_test, sample_weight=w_test) != pytest.approx(
        ours.score(X_test, y_test))


@needs_weights
def test_early_stopping_scores_the_validation_part_with_its_weights():
    X, y, weights = problem("binary")
    clf = bp.MLPClassifier((4,), early_stopping=True, validation_fraction=0.3, max_iter=5,
                           n_iter_no_change=100, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(X, y, sample_weight=weights)
    assert len(clf.validation_scores_) == 5


def test_score_honours_sample_weight_without_scikit_learn():
    code = """
import sys
sys.modules["sklearn"] = None   # make every 'import sklearn' fail
import numpy as np, bprop as bp
rng = np.random.default_rng(0)
X = rng.standard_normal((40, 2))
y = (X[:, 0] > 0).astype(int)
clf = bp.MLPClassifier((4,), max_iter=3, random_state=0).fit(X, y)
right = clf.predict(X) == y
w = np.where(right, 1.0, 3.0)
expected = right.sum() / (right.sum() + 3 * (~right).sum())
assert abs(clf.score(X, y, sample_weight=w) - expected) < 1e-12, clf.score(X, y, sample_weight=w)
reg = bp.MLPRegressor((4,), max_iter=3, random_state=0).fit(X, X[:, 0])
w = rng.random(40)
assert reg.score(X, X[:, 0], sample_weight=w) != reg.score(X, X[:, 0])
reg.fit(X, X[:, 0], sample_weight=w)
reg.partial_fit(X, X[:, 0], sample_weight=w)
for bad in (X + 1j, ):
    try:
        clf.fit(bad, y)
    except TypeError as error:
        assert "X holds complex numbers" in str(error)
    else:
        raise AssertionError("complex X accepted")
try:
    clf.fit(X, y, sample_weight=w + 1j)
except TypeError as error:
    assert "sample_weight holds complex" in str(error)
try:
    bp.MLPClassifier(max_iter=2.5).fit(X, y)
except ValueError as error:
    assert "max_iter must be a positive integer" in str(error)
print("ok")
"""
    done = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


# -- complex input and numeric parameters --------------------------------------------------
@pytest.mark.parametrize("where", ["X", "y", "sample_weight", "X in score", "y in score",
                                   "X in predict", "list X"])
def test_complex_input_is_a_type_error_naming_it(where):
    X, y, weights = problem("regression")
    reg = bp.MLPRegressor((3,), max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reg.fit(X, y)
        calls = {
            "X": lambda: reg.fit(X + 5j, y), "y": lambda: reg.fit(X, y + 1j),
            "sample_weight": lambda: reg.fit(X, y, sample_weight=weights + 0j),
            "X in score": lambda: reg.score(X * 1j, y), "y in score": lambda: reg.score(X, y * 1j),
            "X in predict": lambda: reg.predict(X + 1j),
            "list X": lambda: reg.fit([[complex(v) for v in row] for row in X], y)}
        with pytest.raises(TypeError, match="holds complex numbers"):
            calls[where]()
    name = where.split()[-1] if where.startswith("list") else where.split()[0]
    with pytest.raises(TypeError, match=f"^{name} holds complex"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        calls[where]()


def test_complex_input_no_longer_trains_on_its_real_part():
    X, y, _ = problem("binary")
    with pytest.raises(TypeError), warnings.catch_warnings():
        warnings.simplefilter("error")  # (a ComplexWarning was all there was)
        bp.MLPClassifier((3,), max_iter=2).fit(X + 5j, y)
    with pytest.raises(TypeError, match="X holds complex"):
        bp.Sequential([bp.Dense(4, 1)]).fit(X + 5j, np.zeros(N), loss="mse")


@pytest.mark.parametrize("name, value, error", [
    ("max_iter", 2.5, ValueError), ("max_iter", 0, ValueError), ("max_iter", "10", ValueError),
    ("n_iter_no_change", 1.5, ValueError), ("n_iter_no_change", 0, ValueError),
    ("batch_size", 2.5, ValueError), ("batch_size", -1, ValueError),
    ("batch_size", "all", ValueError), ("learning_rate_init", 0, ValueError),
    ("learning_rate_init", np.inf, ValueError), ("epsilon", -1e-8, ValueError),
    ("alpha", -0.1, ValueError), ("alpha", np.nan, ValueError), ("tol", "small", ValueError),
    ("power_t", -1, ValueError), ("momentum", 1.5, ValueError), ("beta_1", 1.0, ValueError),
    ("beta_2", -0.1, ValueError), ("validation_fraction", 0.0, ValueError),
    ("dropout", 1.0, ValueError), ("verbose", -1, ValueError), ("verbose", 0.5, ValueError),
    ("shuffle", "yes", ValueError), ("early_stopping", 1, ValueError),
    ("hidden_layer_sizes", (4, 2.5), ValueError),
    ("alpha", 1e-4 + 1j, TypeError), ("max_iter", 10 + 0j, TypeError),
    ("momentum", np.complex128(0.5), TypeError), ("batch_size", 8j, TypeError),
])
def test_every_numeric_parameter_is_checked_for_type_and_range(name, value, error):
    X, y, _ = problem("binary")
    clf = bp.MLPClassifier(**{"hidden_layer_sizes": (3,), name: value})
    with pytest.raises(error, match=f"^{name} "):
        clf.fit(X, y)
    with pytest.raises(error, match=f"^{name} "):
        clf.partial_fit(X, y, classes=["no", "yes"])


def test_max_iter_two_and_a_half_is_refused_before_training():
    X, y, _ = problem("binary")
    clf = bp.MLPClassifier((3,), max_iter=2.5)
    with pytest.raises(ValueError, match="max_iter must be a positive integer, got 2.5"):
        clf.fit(X, y)
    assert not hasattr(clf, "model_")


# -- string classes in partial_fit -------------------------------------------------------------
def test_partial_fit_takes_string_classes_as_fit_and_scikit_learn_do():
    X, y, _ = problem("binary")
    ours = bp.MLPClassifier((4,), random_state=0)
    theirs = sklearn_nn.MLPClassifier((4,), random_state=0)
    for estimator in (ours, theirs):
        estimator.partial_fit(X, y, classes=["no", "yes"])
        estimator.partial_fit(X, y)
    assert ours.classes_.tolist() == theirs.classes_.tolist() == ["no", "yes"]
    assert set(ours.predict(X)) <= {"no", "yes"} and ours.n_iter_ == 2
    assert ours.predict_proba(X).shape == (N, 2)
    with pytest.raises(ValueError, match="not in classes_"):
        bp.MLPClassifier((4,)).partial_fit(X, y, classes=["no", "maybe"])
    with pytest.raises(TypeError, match="classes holds complex"):
        bp.MLPClassifier((4,)).partial_fit(X, y, classes=[1j, 2j])
    three = bp.MLPClassifier((4,), random_state=0).partial_fit(
        X, np.array(["a", "b", "c"])[np.arange(N) % 3], classes=np.array(["c", "a", "b"]))
    assert three.classes_.tolist() == ["a", "b", "c"] and three.out_activation_ == "softmax"


# -- pickling keeps the optimizer's state ----------------------------------------------------
@pytest.mark.parametrize("solver", ["adam", "sgd"])
@pytest.mark.parametrize("task", ["binary", "regression"])
def test_an_unpickled_estimator_continues_bit_for_bit(task, solver):
    X, y, weights = problem(task)
    cls = pairs(task)[0]
    original = cls((6,), solver=solver, random_state=0, momentum=0.9)
    for _ in range(3):
        original.partial_fit(X, y, **({"classes": ["no", "yes"]} if task == "binary" else {}))
    copy = pickle.loads(pickle.dumps(original))
    steps = original._optimizer._step_count(original.model_.parameters())
    assert copy._optimizer._step_count(copy.model_.parameters()) == steps > 0
    for estimator in (original, copy):
        for _ in range(2):
            estimator.partial_fit(X, y, sample_weight=weights)
    for a, b in zip(original.coefs_ + original.intercepts_, copy.coefs_ + copy.intercepts_,
                    strict=True):
        assert np.array_equal(a, b)
    assert original.loss_curve_ == copy.loss_curve_


def test_a_model_pickled_with_its_optimizer_continues_bit_for_bit():
    X, y, _ = problem("multiclass")
    model = bp.Sequential([bp.Dense(4, 6), bp.ReLU(), bp.Dense(6, 3)], seed=0, dtype="float64")
    optimizer = bp.Adam(lr=0.01)
    model.fit(X, y, loss="cross_entropy", optimizer=optimizer, epochs=2, batch_size=8)
    model_copy, optimizer_copy = pickle.loads(pickle.dumps((model, optimizer)))
    assert optimizer_copy.state_dict(model_copy.parameters())["step"] == 8
    for net, opt in ((model, optimizer), (model_copy, optimizer_copy)):
        net.fit(X, y, loss="cross_entropy", optimizer=opt, epochs=2, batch_size=8)
    for a, b in zip(model.parameters(), model_copy.parameters(), strict=True):
        assert np.array_equal(a.value, b.value)
    # an optimizer pickled alone keeps no state for parameters nobody has
    alone = pickle.loads(pickle.dumps(optimizer))
    assert alone._states == {} and alone.lr == optimizer.lr


def test_an_estimator_pickled_on_the_device_continues_bit_for_bit():
    from bprop.backend.devices import stand_in_for_cuda

    X, y, weights = problem("multiclass")
    with stand_in_for_cuda():
        original = bp.MLPClassifier((6,), random_state=0, device="cuda", max_iter=3, tol=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            original.fit(X, y, sample_weight=weights)
        copy = pickle.loads(pickle.dumps(original))
        for estimator in (original, copy):
            estimator.partial_fit(X, y, sample_weight=weights)
    assert copy.model_.device.name == "cuda"
    for a, b in zip(original.coefs_, copy.coefs_, strict=True):
        assert np.array_equal(a, b)


def test_partial_fit_refuses_other_classes_than_the_first_call_s():
    X = np.random.default_rng(0).normal(size=(20, 3))
    y = np.array(["no", "yes"] * 10)
    clf = bp.MLPClassifier((4,), random_state=0)
    clf.partial_fit(X, y, classes=["no", "yes"])
    clf.partial_fit(X, y, classes=["yes", "no"])  # (the same set, in another order: fine)
    with pytest.raises(ValueError, match="not the same as on the first call"):
        clf.partial_fit(X, y, classes=["no", "yes", "maybe"])


@pytest.mark.parametrize("seed", [1.5, -1, "0", True])
def test_a_bad_random_state_is_refused_by_name(seed):
    X = np.random.default_rng(0).normal(size=(10, 2))
    with pytest.raises(ValueError, match="random_state must be"):
        bp.MLPClassifier((3,), random_state=seed).fit(X, np.arange(10) % 2)
