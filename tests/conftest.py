import signal
import threading

import numpy as np
import pytest

from bprop.backend import kernels


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture(autouse=True)
def _look_for_the_compiled_kernels_again():
    """Tests switch the compiled kernels off with BPROP_NO_FUSED (kernel_switch.py); forget
    the choice after each, so that the next test finds them as the environment says."""
    yield
    kernels.reset()


@pytest.fixture(autouse=True)
def _python_handles_ctrl_c():
    """The tests of Ctrl-C need Python's own SIGINT handler, which Python installs only when
    the process it starts in does not ignore SIGINT: run from a background job (``cmd &``),
    the suite would inherit SIG_IGN and those tests would fail for a reason not theirs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.fixture
def hide_package(monkeypatch):
    """``hide_package("onnx")``: bprop's optional imports (through
    ``bprop.interop.common.require``) of that package and its modules fail from then on, as
    they would where it is not installed."""
    from bprop.interop import common

    real = common.importlib.import_module
    hidden: set[str] = set()

    def import_module(name, *args, **kwargs):
        if name.split(".")[0] in hidden:
            raise ImportError(f"No module named {name!r}")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(common.importlib, "import_module", import_module)
    return hidden.add
