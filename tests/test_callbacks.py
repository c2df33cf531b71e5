import numpy as np
import pytest

import bprop as bp


def overfitting_setup():
    """A wide network on few noisy points: validation loss falls, then rises."""
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (20, 1))
    y = np.sin(3 * X.ravel()) + 0.3 * rng.standard_normal(20)
    X_val = rng.uniform(-1, 1, (50, 1))
    y_val = np.sin(3 * X_val.ravel())
    return X, y, X_val, y_val


def new_model():
    return bp.Sequential([bp.Dense(1, 64), bp.Tanh(), bp.Dense(64, 64), bp.Tanh(),
                          bp.Dense(64, 1)], seed=0, dtype="float64")


def test_early_stopping_stops_and_restores_the_best_weights():
    X, y, X_val, y_val = overfitting_setup()
    stopper = bp.EarlyStopping(monitor="val_loss", patience=5)
    model = new_model()
    history = model.fit(X, y, loss="mse", optimizer=bp.Adam(0.01), epochs=500, batch_size=None,
                        validation_data=(X_val, y_val), callbacks=[stopper])
    val = history["val_loss"]
    assert stopper.stopped_epoch is not None and history.epochs < 500
    assert history.epochs == stopper.best_epoch + 5 + 2  # best, then patience + 1 worse epochs
    assert stopper.best == min(val) == val[stopper.best_epoch]
    # The restored model is the one of the best epoch: replay training up to it.
    replay = new_model()
    replay.fit(X, y, loss="mse", optimizer=bp.Adam(0.01), epochs=stopper.best_epoch + 1,
               batch_size=None)
    for a, b in zip(model.parameters(), replay.parameters(), strict=True):
        np.testing.assert_array_equal(a.value, b.value)
    assert model.evaluate(X_val, y_val)["loss"] == pytest.approx(min(val))


def test_early_stopping_without_restoring_keeps_the_last_weights():
    X, y, X_val, y_val = overfitting_setup()
    model = new_model()
    history = model.fit(X, y, loss="mse", optimizer=bp.Adam(0.01), epochs=500, batch_size=None,
                        validation_data=(X_val, y_val),
                        callbacks=[bp.EarlyStopping(patience=3, restore_best_weights=False)])
    assert model.evaluate(X_val, y_val)["loss"] == pytest.approx(history["val_loss"][-1])
    assert history["val_loss"][-1] > min(history["val_loss"])


def test_early_stopping_on_accuracy_maximises():
    stopper = bp.EarlyStopping(monitor="val_accuracy", patience=0)
    assert stopper.mode == "max"
    stopper.on_train_begin(new_model())
    history = bp.History()
    for epoch, acc in enumerate([0.5, 0.7, 0.6]):
        history.append({"val_accuracy": acc})
        stopped = stopper.on_epoch_end(epoch, history)
    assert stopped and stopper.best == 0.7 and stopper.best_epoch == 1


def test_user_callbacks_function_class_and_flag():
    X, y = np.array([[0.0], [1.0]]), np.array([0.0, 1.0])
    seen = []

    def stop_after_three(epoch, history):
        seen.append((epoch, len(history["loss"])))
        return epoch == 2

    model = bp.Sequential([bp.Dense(1, 1)], seed=0)
    history = model.fit(X, y, loss="mse", epochs=10, callbacks=[stop_after_three])
    assert history.epochs == 3 and seen == [(0, 1), (1, 2), (2, 3)]

    class Recorder(bp.Callback):
        def __init__(self):
            self.calls = []

        def on_train_begin(self, model):
            self.calls.append("begin")

        def on_epoch_end(self, epoch, history):
            self.calls.append(epoch)
            if epoch == 1:
                self.model.stop_training = True

        def on_train_end(self, model):
            self.calls.append("end")

    recorder = Recorder()
    recorder.model = model
    model.fit(X, y, loss="mse", epochs=10, callbacks=[recorder])
    assert recorder.calls == ["begin", 0, 1, "end"]


def test_callback_errors():
    model = bp.Sequential([bp.Dense(1, 1)])
    with pytest.raises(ValueError, match="monitors 'val_loss'.*pass validation_data"):
        model.fit([[0.0]], [0.0], loss="mse", callbacks=[bp.EarlyStopping()])
    with pytest.raises(TypeError, match="must be a Callback or a function"):
        model.fit([[0.0]], [0.0], loss="mse", callbacks=["early"])
    with pytest.raises(ValueError, match="patience must be a non-negative integer"):
        bp.EarlyStopping(patience=-1)


def test_callbacks_receive_the_model_and_monitors_are_checked_before_training():
    class StopViaFlag(bp.Callback):
        def on_epoch_end(self, epoch, history):
            self.model.stop_training = True

    model = bp.Sequential([bp.Dense(1, 1)], seed=0)
    history = model.fit([[0.0], [1.0]], [0.0, 1.0], loss="mse", epochs=5,
                        callbacks=[StopViaFlag()])
    assert history.epochs == 1
    before = model.layers[0].weight.copy()
    with pytest.raises(ValueError, match="will have only"):
        model.fit([[0.0], [1.0]], [0.0, 1.0], loss="mse", epochs=5,
                  callbacks=[bp.EarlyStopping(monitor="val_loss")])
    np.testing.assert_array_equal(model.layers[0].weight, before)  # nothing was trained


def test_a_nan_epoch_is_never_the_best():
    stopper = bp.EarlyStopping(monitor="val_loss", patience=5)
    stopper.on_train_begin(new_model())
    history = bp.History()
    for epoch, value in enumerate([float("nan"), 0.5, 0.4]):
        history.append({"val_loss": value})
        stopper.on_epoch_end(epoch, history)
    assert stopper.best == 0.4 and stopper.best_epoch == 2
