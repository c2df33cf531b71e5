"""bprop's estimators inside scikit-learn pipelines that skl2onnx converts whole.

skl2onnx converts a pipeline step by step; for a model it has no converter of its own it asks
the model itself, through two methods, ``onnx_shape_calculator()`` and ``onnx_converter()``,
which :class:`~bprop.MLPClassifier` and :class:`~bprop.MLPRegressor` have. They return the
two functions below. The estimator carries them rather than registering them with skl2onnx
when bprop is imported, because importing skl2onnx takes more than a second: this way
``skl2onnx.to_onnx(pipeline, X[:1])`` works whichever of the two was imported first, and
importing bprop costs nothing.

The estimator's nodes are those :func:`bprop.export_onnx` writes for it: a classifier gives
``label`` (its ``classes_``) and ``probabilities`` (a tensor, as ``predict_proba``), a
regressor its outputs. The step's input is cast to the network's dtype if the steps before it
computed in another.
"""

from __future__ import annotations

import numpy as np

from .errors import require
from .onnx_export import _ELEMENT_TYPES, Head, emit_chain, network_nodes

_INSTALL = "pip install skl2onnx"


def shape_calculator(operator) -> None:
    """Set the element types and shapes of a bprop estimator's outputs in skl2onnx's graph."""
    types = require("skl2onnx.common.data_types", "converting a pipeline", _INSTALL)
    head = Head.of(operator.raw_operator)
    rows = operator.inputs[0].get_first_dimension()
    real = {np.dtype(np.float32): types.FloatTensorType,
            np.dtype(np.float64): types.DoubleTensorType}[head.network.dtype]
    if head.task == "regression":
        operator.outputs[0].type = real([rows, head.network.n_outputs])
        return
    width = 2 if head.task == "two-column" else head.network.n_outputs
    if head.classes is not None and head.classes.dtype.kind == "O":
        label = types.StringTensorType([rows])
    elif head.classes is not None and head.classes.dtype.kind == "f":
        label = types.DoubleTensorType([rows])
    else:
        label = types.Int64TensorType([rows] if head.task != "binary" else [rows, width])
    operator.outputs[0].type = label
    operator.outputs[1].type = real([rows, width])


def converter(scope, operator, container) -> None:
    """Add a bprop estimator's nodes to skl2onnx's graph, from the step's input to its
    outputs (``label`` and ``probabilities``, or the regressor's values)."""
    head = Head.of(operator.raw_operator)
    graph = ContainerGraph(scope, container)
    x = operator.inputs[0].full_name
    element = _ELEMENT_TYPES[head.network.dtype]
    if operator.inputs[0].type.to_onnx_type().tensor_type.elem_type != element:
        x = graph.node("Cast", [x], to=element)  # (a step before computed in another dtype)
    nodes = network_nodes(head.network)
    if head.task == "regression":
        emit_chain(graph, nodes, x, operator.outputs[0].full_name)
        return
    output = emit_chain(graph, nodes, x, scope.get_unique_variable_name("output"))
    head.emit(graph, output, names=(operator.outputs[1].full_name,
                                    operator.outputs[0].full_name))


class ContainerGraph:
    """skl2onnx's scope and container behind the two methods :func:`emit_chain` and
    :meth:`Head.emit` call (those of :class:`~bprop.interop.onnx_export.GraphBuilder`)."""

    def __init__(self, scope, container) -> None:
        self.scope, self.container = scope, container

    def constant(self, value, name: str = "const") -> str:
        numpy_helper = require("onnx.numpy_helper", "converting a pipeline", _INSTALL)
        name = self.scope.get_unique_variable_name(name)
        value = np.asarray(value)
        if value.dtype.kind == "O":  # text: skl2onnx copies only numbers' bytes
            self.container.add_initializer(name, 8, list(value.shape),  # TensorProto.STRING
                                           [str(v) for v in value.ravel()])
        else:
            tensor = numpy_helper.from_array(value, name)
            self.container.add_initializer(name, tensor.data_type, list(value.shape), tensor)
        return name

    def node(self, op: str, inputs: list[str], output: str | None = None,
             name: str | None = None, **attrs) -> str:
        output = output or self.scope.get_unique_variable_name(op.lower())
        self.container.add_node(op, inputs, [output],
                                name=self.scope.get_unique_operator_name(name or op), **attrs)
        return output
