r"""The layer contract, and the base class that keeps the bookkeeping out of every layer's maths.

Every layer has two public passes that check what they are given and two inner passes that
hold only the arithmetic:

* ``forward(x, training=False)`` checks ``x`` (a 2-D floating-point array of the layer's
  width and of its parameters' dtype, the layer built) and calls ``_forward(x, training)``,
  which computes the output and caches what the backward pass will need;
* ``backward(grad_out, need_input_grad=True)`` checks ``grad_out`` (a forward pass ran, and
  ``grad_out`` has its output's shape) and calls ``_backward(grad_out, need_input_grad)``,
  which takes :math:`\partial L / \partial \text{out}` (the "delta" arriving from the layer
  above), **adds** the gradients of the layer's own parameters into their ``grad`` (call
  ``zero_grad()`` between steps, as in PyTorch) and returns :math:`\partial L / \partial x` for
  the layer below. With ``need_input_grad=False`` (the first layer of a network, whose input
  is data) it may skip that product and return None.

A :class:`~bprop.Sequential` checks its input once, at its own public entry points, and then
runs the layers' inner passes: per batch, a model does only the arithmetic. A layer used on its
own is checked on every call.

Shapes: ``x`` is ``(m, n_features)`` for a mini-batch of ``m`` samples.

**Gradients are accumulated one way.** An inner backward pass adds to a parameter's gradient
only through :meth:`Parameter.accumulate_matmul` (``grad += a @ b``) and
:meth:`Parameter.accumulate_sum` (``grad += array.sum(axis=0)``). Right after ``zero_grad()``
they write the product or the sum straight into the gradient's memory (no temporary, no pass of
additions over zeros), otherwise they add to it; either way the gradient ends up what
``param.grad += ...`` would make it, bit for bit.

**Writing a layer.** Subclass :class:`Layer`, put the parameters in ``self.params`` (made with
:meth:`Parameter.zeros` if they are drawn when the layer is built: set ``_initialised = False``
and draw them in :meth:`Layer.reset_parameters`), state that is saved but not learned in
``self.buffers``, and write ``_forward`` and ``_backward``. A check of your own goes in
``_check_input`` (call ``super()._check_input`` first). A subclass that overrides the public
``forward`` or ``backward`` instead (as layers were written before the inner passes existed)
keeps working, inside a model too: the model then runs that method.

The array a forward pass returns may be the very array the layer keeps for its backward pass
(no copy is made, for speed): read it, but do not modify it in place before ``backward``.
"""

from __future__ import annotations

import numpy as np

from .._checks import as_array, as_float_dtype
from ..backend.devices import on_device
from .overrides import InnerPass, through_public
from .parameter import Parameter


class Layer:
    """Base class of all layers (see the module's contract).

    Attributes
    ----------
    params : dict[str, Parameter]
        The layer's learnable parameters by name (empty for activations).
    buffers : dict[str, numpy.ndarray]
        State saved with the model but not learned by gradient (running statistics).
    n_inputs, n_outputs : int or None
        Feature counts the layer requires and produces; None when the layer keeps whatever
        width it is given (activations).

    Notes
    -----
    In inference (``training=False``) a layer must treat the rows of its input independently
    (as every layer here does; BatchNorm then uses its running statistics): ``predict`` runs a
    model over slices of rows.
    """

    n_inputs: int | None = None
    n_outputs: int | None = None
    #: the generator a layer that draws random numbers at run time (Dropout) uses
    rng: np.random.Generator | None = None
    #: False while parameters wait to be drawn by reset_parameters (when the layer is built)
    _initialised = True
    #: the shape of the last forward pass's output, which backward's grad_out must have
    _output_shape: tuple[int, ...] | None = None

    def __init__(self) -> None:
        self.params: dict[str, Parameter] = {}
        self.buffers: dict[str, np.ndarray] = {}

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        # A subclass that overrides a public pass instead of the inner one gets an inner pass
        # that runs it, so that a model runs what the subclass wrote.
        if "forward" in vars(cls) and "_forward" not in vars(cls):
            cls._forward = through_public(cls, "forward", _call_forward)
        if "backward" in vars(cls) and "_backward" not in vars(cls):
            cls._backward = through_public(cls, "backward", _call_backward)

    # -- the public, checked passes ----------------------------------------------------------
    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """The layer's output for ``x`` of shape (m, n_inputs), after checking ``x``."""
        x = self._check_input(x, training)
        with InnerPass(self, "forward"):
            out = self._forward(x, training)
        self._output_shape = out.shape
        return out

    def backward(self, grad_out: np.ndarray, need_input_grad: bool = True) -> np.ndarray | None:
        """Add the parameters' gradients and return dLoss/dx (None if not
        ``need_input_grad``), after checking ``grad_out`` against the last forward pass."""
        grad_out = self._check_grad_out(grad_out)
        with InnerPass(self, "backward"):
            return self._backward(grad_out, need_input_grad)

    def __call__(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        return self.forward(x, training=training)

    # -- the inner passes: the maths, nothing else -------------------------------------------
    def _forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} does not define _forward")

    def _backward(self, grad_out: np.ndarray, need_input_grad: bool) -> np.ndarray | None:
        raise NotImplementedError(f"{type(self).__name__} does not define _backward")

    # -- the checks --------------------------------------------------------------------------
    def _check_input(self, x, training: bool) -> np.ndarray:
        """``x`` as a 2-D floating-point array this layer can take, or a clear error."""
        if not (type(x) is np.ndarray or on_device(x)) or x.dtype.kind != "f":
            x = as_array(x, "x")
            if x.dtype.kind != "f":
                x = x.astype(np.float64)
        if x.ndim != 2:
            raise ValueError(f"{self!r} expects a 2-D input (m, n_features), got shape {x.shape}")
        if not self._initialised:
            raise RuntimeError(
                f"{self!r} has no weights yet: put it in a Sequential (which initialises it "
                "from its seed), call layer.build(seed), or set layer.weight"
            )
        if self.n_inputs is not None and x.shape[1] != self.n_inputs:
            raise ValueError(f"{self!r} expects input of shape (m, {self.n_inputs}), got {x.shape}")
        dtype = self._parameter_dtype()
        if dtype is not None and x.dtype != dtype:
            raise TypeError(
                f"{self!r} holds {dtype} parameters but got {x.dtype} input; cast the "
                f"input or build the layer with dtype={x.dtype.name!r} (no silent upcasting)"
            )
        return x

    def _check_grad_out(self, grad_out) -> np.ndarray:
        if self._output_shape is None:
            raise RuntimeError(f"{self!r}: backward() was called before forward()")
        grad_out = as_array(grad_out, "grad_out")
        if grad_out.shape != self._output_shape:
            raise ValueError(
                f"{self!r}: grad_out has shape {grad_out.shape} but the forward output "
                f"had shape {self._output_shape}"
            )
        dtype = self._parameter_dtype()
        if dtype is not None and grad_out.dtype != dtype:
            # Cast when nothing is lost (whole numbers, float32 into float64), else refuse.
            if grad_out.dtype.kind == "f" and not np.can_cast(grad_out.dtype, dtype, "safe"):
                raise TypeError(f"{self!r} holds {dtype} parameters but got a {grad_out.dtype} "
                                f"grad_out, which would lose precision; cast it to {dtype}")
            grad_out = grad_out.astype(dtype)
        return grad_out

    def _parameter_dtype(self) -> np.dtype | None:
        for param in self.params.values():
            return param.dtype
        return None

    # -- parameters and building -------------------------------------------------------------
    def parameters(self) -> list[Parameter]:
        return list(self.params.values())

    def zero_grad(self) -> None:
        for param in self.params.values():
            param.zero_grad()

    def build(self, rng: np.random.Generator | int | None = None, dtype="float64") -> Layer:
        """Cast all parameters and buffers to ``dtype`` and draw those not set yet (from
        ``rng``).

        A :class:`~bprop.Sequential` calls this with its own seeded generator, after packing
        the parameters into its buffer, so the weights are drawn straight into it; call it
        yourself only to use a layer on its own. Returns the layer.
        """
        dtype = as_float_dtype(dtype)
        for param in self.params.values():
            if param.dtype != dtype:
                param.astype(dtype)
        for name, buffer in self.buffers.items():
            self.buffers[name] = buffer.astype(dtype, copy=False)
        if not self._initialised:
            self.reset_parameters(np.random.default_rng(rng))
        return self

    def reset_parameters(self, rng: np.random.Generator) -> None:
        """Draw the parameters that start random (none here) and reset the others."""
        self._initialised = True

    def get_config(self) -> dict:
        """The constructor arguments that recreate this layer (without its parameter values)."""
        return {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def _call_forward(layer: Layer, x: np.ndarray, training: bool) -> np.ndarray:
    return layer.forward(x, training=training)


def _call_backward(layer: Layer, grad_out: np.ndarray, need_input_grad: bool):
    # (the keyword only when needed: such methods were often written as backward(g))
    if need_input_grad:
        return layer.backward(grad_out)
    return layer.backward(grad_out, need_input_grad=False)
