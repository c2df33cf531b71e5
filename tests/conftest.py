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
