"""bprop's estimators inside scikit-learn pipelines that skl2onnx converts whole.

skl2onnx converts a pipeline step by step, each with the converter registered for its class.
bprop reaches it two ways, because importing skl2onnx takes more than a second and bprop does
not import it unasked:

- :func:`register` puts bprop's converter in skl2onnx's registry; ``bprop.estimators`` calls it
  when it is imported after skl2onnx, and ``bprop.estimators.register_with_skl2onnx()`` does
  otherwise. Registered, the estimators convert anywhere skl2onnx looks converters up (inside
  ``GridSearchCV`` or ``VotingClassifier`` too), and take the option ``zipmap=False``.
- Unregistered, skl2onnx asks a model it does not know for its converter itself, through two
  methods, ``onnx_shape_calculator()`` and ``onnx_converter()``, which the estimators have: a
  pipeline (or an estimator on its own) converts whichever of the two was imported first.

The estimator's nodes are those :func:`bprop.export_onnx` writes for it: a classifier gives
``label`` (its ``classes_``) and ``probabilities`` (a tensor, as ``predict_proba``), a
regressor its outputs. The step's input is cast to the network's dtype if the steps before it
computed in another.
"""

from __future__ import annotations

import numpy as np

from .common import require
from .onnx_export import ELEMENT_TYPES, STRING, Head, emit_chain, network_nodes

_INSTALL = "pip install skl2onnx"


def register(*estimator_classes) -> None:
    """Register bprop's converter with skl2onnx for each of ``estimator_classes`` (under the
    alias ``Bprop`` + the class name). Their probabilities are always a tensor, so the
    option ``zipmap`` is taken only as False."""
    skl2onnx = require("skl2onnx", "converting a pipeline", _INSTALL)
    for cls in estimator_classes:
        classifier = getattr(cls, "_estimator_type", None) == "classifier"
        skl2onnx.update_registered_converter(
            cls, f"Bprop{cls.__name__}", shape_calculator, converter, parser=parser,
            options={"zipmap": [False]} if classifier else None)


def parser(scope, model, inputs, custom_parsers=None) -> list:
    """Declare a registered bprop estimator's step and its outputs in skl2onnx's graph:
    ``label`` and ``probabilities`` for a classifier, ``variable`` for a regressor (their
    types are set by :func:`shape_calculator`)."""
    types = require("skl2onnx.common.data_types", "converting a pipeline", _INSTALL)
    operator = scope.declare_local_operator(f"Bprop{type(model).__name__}", model)
    operator.inputs = inputs
    names = (("label", "probabilities") if getattr(model, "_estimator_type", None) ==
             "classifier" else ("variable",))
    for name in names:
        operator.outputs.append(scope.declare_local_variable(name, types.FloatTensorType()))
    return operator.outputs


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
    kind = None if head.classes is None else head.classes.dtype.kind
    if kind == "O":
        label = types.StringTensorType([rows])
    elif kind == "f":
        label = types.DoubleTensorType([rows])
    elif kind == "b":
        label = types.BooleanTensorType([rows])
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
    element = ELEMENT_TYPES[head.network.dtype]
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
            self.container.add_initializer(name, STRING, list(value.shape),
                                           [str(v) for v in value.ravel()])
        else:
            tensor = numpy_helper.from_array(value, name)
            self.container.add_initializer(name, tensor.data_type, list(value.shape), tensor)
        return name

    def node(self, op: str, inputs: list[str], output: str | None = None,
             name: str | None = None, **attrs) -> str:
        if output is None:
            output = self.scope.get_unique_variable_name(f"{name}.out" if name else op.lower())
        self.container.add_node(op, inputs, [output],
                                name=self.scope.get_unique_operator_name(name or op), **attrs)
        return output
