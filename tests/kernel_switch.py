"""Switching bprop's compiled kernels on and off in a test (they are looked for once and
remembered; ``BPROP_NO_FUSED=1`` switches them off)."""

import pytest

import bprop as bp
from bprop.backend import kernels


def use_compiled_kernels(fused: bool, monkeypatch) -> None:
    """Make the compiled kernels run (``fused``; skips the test if the extension was not
    built) or the NumPy code, for the rest of the test."""
    if fused:
        pytest.importorskip("bprop.backend._fused", reason="the C extension was not built")
        monkeypatch.delenv("BPROP_NO_FUSED", raising=False)
    else:
        monkeypatch.setenv("BPROP_NO_FUSED", "1")
    kernels.reset()
    assert bp.optim.fused_adam_available() == fused
