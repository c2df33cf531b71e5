import numpy as np
import pytest

import bprop as bp


def test_split_sizes_order_and_no_overlap():
    X, y = np.arange(40).reshape(20, 2), np.arange(20)
    X_train, X_test, y_train, y_test = bp.train_test_split(X, y, test_size=0.25, seed=0)
    assert len(X_test) == 5 and len(X_train) == 15
    np.testing.assert_array_equal(X_train[:, 0] // 2, y_train)   # rows stay paired
    assert sorted(np.concatenate([y_train, y_test])) == list(range(20))
    again = bp.train_test_split(X, y, test_size=0.25, seed=0)
    np.testing.assert_array_equal(again[3], y_test)
    _, _, _, tail = bp.train_test_split(X, y, test_size=3, shuffle=False)
    assert tail.tolist() == [17, 18, 19]


def test_stratified_split_keeps_class_proportions():
    y = np.array([0] * 60 + [1] * 30 + [2] * 10)
    X = np.arange(100).reshape(-1, 1)
    _, _, y_train, y_test = bp.train_test_split(X, y, test_size=0.2, stratify=y, seed=1)
    assert np.bincount(y_test).tolist() == [12, 6, 2]
    assert np.bincount(y_train).tolist() == [48, 24, 8]


@pytest.mark.parametrize("kwargs, message", [
    ({"test_size": 0}, "test_size"), ({"test_size": 1.0}, "test_size"),
    ({"test_size": 10}, "both parts need at least one"),
    ({"stratify": np.array([0] * 9 + [1])}, "at least 2 samples of every class"),
])
def test_split_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        bp.train_test_split(np.zeros((10, 1)), np.zeros(10), **kwargs)


def test_standard_scaler_fits_on_training_data_only_and_handles_constants():
    train = np.array([[1.0, 5.0], [3.0, 5.0]])
    scaler = bp.StandardScaler().fit(train)
    np.testing.assert_allclose(scaler.transform(train), [[-1, 0], [1, 0]])
    test = np.array([[5.0, 6.0]])
    np.testing.assert_allclose(scaler.transform(test), [[3, 1]])   # training statistics
    np.testing.assert_allclose(scaler.inverse_transform(scaler.transform(test)), test)
    assert scaler.transform(train.astype(np.float32)).dtype == np.float32


def test_min_max_scaler_range_and_constants():
    scaler = bp.MinMaxScaler(feature_range=(-1, 1)).fit([[0.0, 2.0], [10.0, 2.0]])
    # The constant column maps to the low end; one unit above it moves by the full range.
    np.testing.assert_allclose(scaler.transform([[5.0, 2.0], [10.0, 3.0]]), [[0, -1], [1, 1]])
    back = scaler.inverse_transform(scaler.transform([[7.0, 2.0]]))
    np.testing.assert_allclose(back, [[7.0, 2.0]])


def test_scaler_errors():
    with pytest.raises(RuntimeError, match="not fitted yet"):
        bp.StandardScaler().transform([[1.0]])
    scaler = bp.StandardScaler().fit([[1.0, 2.0]])
    with pytest.raises(ValueError, match="3 features per sample"):
        scaler.transform([[1.0, 2.0, 3.0]])
    with pytest.raises(ValueError, match="feature_range"):
        bp.MinMaxScaler(feature_range=(1, 0))
    with pytest.raises(ValueError, match="NaN"):
        bp.StandardScaler().fit([[np.nan]])


def test_one_hot():
    encoded = bp.one_hot([2, 0], n_classes=4)
    assert encoded.tolist() == [[0, 0, 1, 0], [1, 0, 0, 0]] and encoded.dtype == np.float32
    with pytest.raises(ValueError, match="does not fit n_classes=2"):
        bp.one_hot([2], n_classes=2)
    with pytest.raises(ValueError, match="non-negative"):
        bp.one_hot([-1])


def test_minibatches_cover_the_data_once():
    X, y = np.arange(10), np.arange(10) * 10
    batches = list(bp.minibatches(X, y, batch_size=4, seed=0))
    assert [len(b) for b, _ in batches] == [4, 4, 2]
    assert sorted(np.concatenate([b for b, _ in batches]).tolist()) == list(range(10))
    assert all((yb == xb * 10).all() for xb, yb in batches)
    kept = list(bp.minibatches(X, batch_size=4, shuffle=False, drop_last=True))
    assert [b.tolist() for b in kept] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    again = [b for b, _ in bp.minibatches(X, y, batch_size=4, seed=0)]
    assert all((a == b).all() for a, (b, _) in zip(again, batches, strict=True))


@pytest.mark.parametrize("n_classes, per_class, test_size", [
    (10, 10, 15), (3, 7, 0.3), (50, 4, 0.5), (4, 3, 4)])
def test_stratified_split_gives_exactly_the_requested_size(n_classes, per_class, test_size):
    y = np.repeat(np.arange(n_classes), per_class)
    X = np.arange(len(y)).reshape(-1, 1)
    _, X_test, _, y_test = bp.train_test_split(X, y, test_size=test_size, stratify=y, seed=0)
    expected = test_size if isinstance(test_size, int) else int(np.ceil(test_size * len(y)))
    assert len(y_test) == expected
    assert set(y_test) == set(range(n_classes))           # every class on the test side
    assert len(set(range(len(y))) - set(X_test.ravel())) >= n_classes  # and on the train side


def test_stratified_split_refuses_parts_smaller_than_the_number_of_classes():
    y = np.repeat(np.arange(10), 10)
    with pytest.raises(ValueError, match="needs at least 10 samples in each part"):
        bp.train_test_split(np.zeros((100, 1)), y, test_size=5, stratify=y)
    with pytest.raises(ValueError, match="stratify must be 1-D"):
        bp.train_test_split(np.zeros((100, 1)), y, stratify=y.reshape(50, 2))


def test_a_constant_column_with_rounding_noise_still_scales_to_zero():
    X = np.full((1000, 1), 0.1)
    np.testing.assert_allclose(bp.StandardScaler().fit_transform(X), 0.0, atol=1e-12)
    scaler = bp.StandardScaler().fit([[1.0], [3.0]])
    assert scaler.var_.tolist() == [1.0] and scaler.n_features_in_ == 1
    mm = bp.MinMaxScaler().fit([[1.0], [3.0]])
    assert mm.data_max_.tolist() == [3.0] and mm.data_range_.tolist() == [2.0]
    with pytest.raises(ValueError, match="StandardScaler \\(as fitted\\) expects 1"):
        scaler.transform([[1.0, 2.0]])
    with pytest.raises(ValueError, match="needs n_classes"):
        bp.one_hot([])
    assert bp.one_hot([], n_classes=3).shape == (0, 3)
