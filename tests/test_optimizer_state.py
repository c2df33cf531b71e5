"""The optimizers' state is PyTorch's, by name and value, and state saved under the names of
the previous model-file format loads and trains on exactly as before."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from kernel_switch import use_compiled_kernels

import bprop as bp

PREVIOUS_FORMAT = Path(__file__).parent / "data" / "previous_format"




# -- against PyTorch ---------------------------------------------------------------------------

#: bprop's optimizer, PyTorch's class and its settings (weight decay given per group below)
CASES = {
    "adam": (lambda: bp.Adam(lr=0.01), "Adam", {"lr": 0.01}),
    "adam-l2": (lambda: bp.Adam(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05),
                "Adam", {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-6}),
    "adamw": (lambda: bp.AdamW(lr=0.01, weight_decay=0.1), "AdamW", {"lr": 0.01}),
    "sgd-momentum": (lambda: bp.SGD(lr=0.05, momentum=0.9), "SGD",
                     {"lr": 0.05, "momentum": 0.9}),
    "sgd-nesterov": (lambda: bp.SGD(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
                     "SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
    "rmsprop": (lambda: bp.RMSProp(lr=0.01), "RMSprop", {"lr": 0.01}),
    "rmsprop-momentum": (lambda: bp.RMSProp(lr=0.01, momentum=0.5), "RMSprop",
                         {"lr": 0.01, "momentum": 0.5}),
    "rmsprop-centered": (lambda: bp.RMSProp(lr=0.01, momentum=0.5, centered=True,
                                            weight_decay=0.01),
                         "RMSprop", {"lr": 0.01, "momentum": 0.5, "centered": True}),
}

#: shapes, decay, and the size of the gradients (so that the moments span a few decades)
PARAMETERS = [((4, 3), True, 1.0), ((3,), False, 0.1), ((3, 2), True, 10.0)]

#: float64: the two libraries round differently in the last bits only (PyTorch's lerp for the
#: first moments, among others); float32: the same, at float32's precision.
TOLERANCE = {"float64": 1e-12, "float32": 1e-6}


def assert_close(actual, expected, rtol, what):
    # An element's rounding error is relative to the terms summed into it, whose size is
    # that of the array's largest values, not to the element itself, which may have cancelled
    # to almost zero (a moment whose gradients changed sign): hence atol = rtol * the largest.
    np.testing.assert_allclose(actual, expected, rtol=rtol,
                               atol=rtol * float(np.abs(expected).max()), err_msg=what)


@pytest.mark.parametrize("fused", [False, True], ids=["numpy", "compiled"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", CASES)
def test_twenty_steps_give_pytorch_s_state_and_parameters(case, dtype, fused, monkeypatch):
    torch = pytest.importorskip("torch", reason="the comparison with PyTorch needs torch")
    use_compiled_kernels(fused, monkeypatch)
    make_ours, their_class, settings = CASES[case]
    rng = np.random.default_rng(20)
    starts = [rng.standard_normal(shape).astype(dtype) for shape, _, _ in PARAMETERS]
    ours = [bp.Parameter(start, decay=decay)
            for start, (_, decay, _) in zip(starts, PARAMETERS, strict=True)]
    theirs = [torch.tensor(start, requires_grad=True) for start in starts]
    optimizer = make_ours()
    # bprop decays the decay=True parameters only: PyTorch with two groups
    groups = [{"params": [t for t, (_, decay, _) in zip(theirs, PARAMETERS, strict=True)
                          if decay == decays],
               "weight_decay": optimizer.weight_decay if decays else 0.0}
              for decays in (True, False)]
    twin = getattr(torch.optim, their_class)(groups, **settings)
    for _ in range(20):
        for param, tensor, (shape, _, size) in zip(ours, theirs, PARAMETERS, strict=True):
            grad = (size * rng.standard_normal(shape)).astype(dtype)
            param.grad[...] = grad
            tensor.grad = torch.tensor(grad)
        optimizer.step(ours)
        twin.step()

    rtol = TOLERANCE[dtype]
    state = optimizer.state_dict(ours)
    assert state["step"] == 20
    if their_class != "SGD":  # PyTorch's SGD keeps no step count
        assert all(twin.state[t]["step"] == 20 for t in theirs)
    their_names = set(twin.state[theirs[0]]) - {"step"}
    assert set(state["arrays"]) == their_names
    for name, array in state["arrays"].items():
        assert array.dtype == dtype and array.shape == (sum(p.size for p in ours),)
        expected = np.concatenate([twin.state[t][name].numpy().ravel() for t in theirs])
        assert_close(array, expected, rtol, name)
    for k, (param, tensor) in enumerate(zip(ours, theirs, strict=True)):
        assert_close(param.value, tensor.detach().numpy(), rtol, f"parameter {k}")


def test_the_state_is_kept_flat_in_parameter_order():
    first, second = bp.Parameter([1.0, 2.0]), bp.Parameter([[3.0], [4.0], [5.0]])
    first.grad[...], second.grad[...] = [1.0, 2.0], [[3.0], [4.0], [5.0]]
    optimizer = bp.SGD(lr=0.1, momentum=0.9)
    optimizer.step([first, second])
    np.testing.assert_array_equal(optimizer.state_dict([first, second])["arrays"]
                                  ["momentum_buffer"], [1.0, 2.0, 3.0, 4.0, 5.0])


# -- the previous model-file format ------------------------------------------------------------

def _generator():
    spec = importlib.util.spec_from_file_location("previous_format_generator",
                                                  PREVIOUS_FORMAT / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


#: the first format's state arrays and what each becomes (the name now, the factor)
CONVERSIONS = {
    "adam": {"mean_sum": ("exp_avg", 1 - 0.8), "square_sum": ("exp_avg_sq", 1 - 0.99)},
    "adamw": {"mean_sum": ("exp_avg", 1 - 0.9), "square_sum": ("exp_avg_sq", 1 - 0.999)},
    "sgd": {"velocity": ("momentum_buffer", 1)},
    "rmsprop": {"square": ("square_avg", 1), "mean": ("grad_avg", 1),
                "momentum": ("momentum_buffer", 1)},
}


@pytest.mark.parametrize("fused", [False, True], ids=["numpy", "compiled"])
@pytest.mark.parametrize("case", CONVERSIONS)
def test_a_file_of_the_previous_format_loads_and_trains_on_as_before(case, fused, monkeypatch):
    """The files were written by bprop at commit d81a6f6 (tests/data/previous_format/
    generate.py), after 5 steps, and *.after.npz holds what that code reached 10 steps later.
    The arithmetic is not the same (Adam's moments were kept as sums, M = m / (1 - b1)), so the
    weights agree to the last few bits only: rtol 1e-12 in float64."""
    use_compiled_kernels(fused, monkeypatch)
    generator = _generator()
    path = PREVIOUS_FORMAT / f"{case}.npz"
    with np.load(path) as file:
        saved = {name[len("optim/"):]: file[name] for name in file.files
                 if name.startswith("optim/")}
    assert set(saved) == set(CONVERSIONS[case])  # the file is of the previous format
    model, optimizer = bp.load(path, optimizer=True)
    state = optimizer.state_dict(model.parameters())
    assert state["step"] == generator.SAVED_AFTER
    assert set(state["arrays"]) == {new for new, _ in CONVERSIONS[case].values()}
    for old, (new, factor) in CONVERSIONS[case].items():
        np.testing.assert_allclose(state["arrays"][new], saved[old] * factor, rtol=1e-15,
                                   atol=0, err_msg=old)

    with np.load(PREVIOUS_FORMAT / f"{case}.after.npz") as after:
        after = dict(after)
    generator.train(bp, model, optimizer, after["X"], after["y"], generator.CONTINUED)
    for name, param in model.named_parameters():
        expected = after[f"param/{name}"]
        np.testing.assert_allclose(param.value, expected, rtol=1e-12,
                                   atol=1e-12 * np.abs(expected).max(), err_msg=name)
    state = optimizer.state_dict(model.parameters())
    assert state["step"] == int(after["step"]) == generator.SAVED_AFTER + generator.CONTINUED
    for old, (new, factor) in CONVERSIONS[case].items():
        expected = after[f"optim/{old}"] * factor
        np.testing.assert_allclose(state["arrays"][new], expected, rtol=1e-12,
                                   atol=1e-12 * np.abs(expected).max(), err_msg=new)


def test_previous_names_are_converted_only_as_a_whole_set():
    param = bp.Parameter([1.0, 2.0])
    optimizer = bp.Adam()
    mixed = {"mean_sum": np.zeros(2), "exp_avg_sq": np.zeros(2)}
    with pytest.raises(ValueError, match=r"Adam after 3 steps keeps the arrays \['exp_avg', "
                                         r"'exp_avg_sq'\], got \['exp_avg_sq', 'mean_sum'\]"):
        optimizer.load_state_dict([param], {"step": 3, "arrays": mixed})
    with pytest.raises(ValueError, match="'exp_avg_sq' holds invalid values"):
        optimizer.load_state_dict([param], {"step": 3, "arrays": {
            "mean_sum": np.zeros(2), "square_sum": -np.ones(2)}})
