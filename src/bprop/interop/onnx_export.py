r"""Models to ONNX, the open format that ONNX Runtime, phones and browsers serve.

A bprop network is a chain: every layer reads the output of the one before. Its ONNX form is
the same chain of nodes, each with the data as its first input and its weights as constants:

======================  ===============================================================
bprop layer             ONNX node(s)
======================  ===============================================================
Dense                   ``Gemm(x, W, b)``, or ``MatMul(x, W)`` + ``Add(., b)``
BatchNorm (inference)   ``BatchNormalization(x, gamma, beta, mean, var)``, or folded into
                        the Dense before it
ReLU, Sigmoid, Tanh     ``Relu``, ``Sigmoid``, ``Tanh``
LeakyReLU               ``LeakyRelu`` (float32), ``PRelu`` (float64: see below)
Softmax                 ``Softmax(axis=-1)``
Identity                ``Identity``
Dropout                 ``Dropout(x, ratio)``, the identity at inference
======================  ===============================================================

The exported graph takes ``input`` (n, n_inputs) and gives ``output``, the network's output as
:meth:`~bprop.Sequential.forward` computes it in inference mode. A classifier also gives
``probabilities`` (what ``predict_proba`` returns) and ``label`` (what ``predict`` returns,
by class name when the classes are known); the batch dimension is free. ONNX keeps operator
attributes in float32 only, so where an attribute would round a float64 model's arithmetic
(LeakyReLU's slope) the float64 graph uses an operator that takes it as a float64 tensor
instead; BatchNorm's epsilon stays an attribute (ONNX has nowhere else for it), which moves a
float64 output by about 1e-12 of its size.

The chain is written as a list of :class:`Node` first, which both a standalone file
(:class:`GraphBuilder`) and skl2onnx's pipeline conversion (:mod:`.sklearn_onnx`) turn into
nodes. :mod:`.onnx_import` reads such a chain back.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._files import atomic_write
from .._version import __version__
from ..backend.devices import to_numpy
from ..nn.layers import (
    LAYERS,
    BatchNorm,
    Dense,
    Dropout,
    Identity,
    LeakyReLU,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
)
from ..nn.losses import takes_logits
from ..nn.step import Network
from .common import ConversionError, network_of, require

#: the opset a model is written in unless another is asked for: supported by every ONNX
#: Runtime since 1.12 (2022) and by the other common runtimes
DEFAULT_OPSET = 17
#: the oldest opset whose operators mean what the exported nodes need: BatchNormalization in
#: inference mode unless told otherwise (before 14, its momentum meant training to some
#: runtimes, onnx's reference evaluator among them), Softmax over one axis, Dropout's ratio
#: and Squeeze's axes as inputs
MIN_OPSET = 14

#: what to install for ONNX files
INSTALL = 'pip install "bprop[onnx]" (or pip install onnx)'
# ONNX's element types (TensorProto's codes), named here so that this module imports without
# the onnx package
FLOAT, DOUBLE, INT64, STRING, BOOL = 1, 11, 7, 8, 9
#: the element type of each dtype a bprop model computes in
ELEMENT_TYPES = {np.dtype(np.float32): FLOAT, np.dtype(np.float64): DOUBLE}
_SIMPLE = {ReLU: "Relu", Sigmoid: "Sigmoid", Tanh: "Tanh", Identity: "Identity"}


@dataclass
class Node:
    """One node of a chain: ``op`` of the data (its first input) and of ``constants``."""

    op: str
    constants: list[np.ndarray] = field(default_factory=list)
    attrs: dict = field(default_factory=dict)
    #: the node's name in the file; its constants are called ``name.weight``, ``name.bias``...
    name: str = ""
    #: the constants' names after the node's (by default, what ``op`` calls them)
    constant_names: tuple[str, ...] = ()


# -- export ----------------------------------------------------------------------------------
def export_onnx(model, path: str | os.PathLike | None = None, opset: int | None = None, *,
                fold_batchnorm: bool = False, dense: str = "gemm",
                classes: Sequence | None = None, metadata: dict[str, str] | None = None,
                before: Sequence[Node] = (), after: Sequence[Node] = ()):
    """Write ``model`` as an ONNX model to ``path`` (if given) and return it (an
    ``onnx.ModelProto``).

    Parameters
    ----------
    model : Sequential, MLPClassifier or MLPRegressor
        A bprop network, or a fitted estimator (its class labels become the ``label``
        output's values).
    path : str or path-like, optional
        The ``.onnx`` file to write (atomically: a file already there is replaced whole or
        left as it was).
    opset : int, optional
        The ONNX opset to write, from 14 to the installed onnx package's newest; default 17.
    fold_batchnorm : bool
        Fold each BatchNorm that follows a Dense layer into that layer's weights and bias,
        :math:`W' = W s`, :math:`b' = (b - \\mu) s + \\beta` with
        :math:`s = \\gamma / \\sqrt{\\sigma^2 + \\epsilon}`: one node fewer per layer, the same
        outputs up to rounding.
    dense : {"gemm", "matmul"}
        Write Dense layers as one ``Gemm``, or as ``MatMul`` and ``Add`` (for runtimes
        without Gemm).
    classes : sequence, optional
        Names of a :class:`~bprop.Sequential` classifier's classes, one per class index: the
        ``label`` output gives them instead of the indices.
    metadata : dict of str to str, optional
        More entries for the model's metadata (``metadata_props``), which holds bprop's
        version, the task and the classes.
    before, after : sequences of Node
        Nodes applied to the input before the network and to a regression network's output
        after it (the scaling a run of ``bprop train`` recorded, for ``bprop export``).

    Raises
    ------
    ConversionError
        For a layer that has no ONNX form (one not of bprop's own classes).
    MissingPackageError
        If the ``onnx`` package is not installed.

    Examples
    --------
    With ``onnx`` and ``onnxruntime`` installed::

        import bprop as bp, numpy as np, onnxruntime
        model = bp.mlp([4, 8, 3], output="softmax", seed=0)
        bp.export_onnx(model, "model.onnx")
        session = onnxruntime.InferenceSession("model.onnx")
        labels, = session.run(["label"], {"input": np.ones((2, 4), np.float32)})
    """
    onnx = require("onnx", "export_onnx", INSTALL)
    opset = _check_opset(onnx, DEFAULT_OPSET if opset is None else opset)
    if dense not in ("gemm", "matmul"):
        raise ValueError(f"dense must be 'gemm' or 'matmul', got {dense!r}")
    head = Head.of(model, classes)
    graph = GraphBuilder(onnx)
    if after and head.task != "regression":
        raise ValueError("after= is for a regression model's output; a classifier's "
                         "probabilities are what they are")
    x = graph.input("input", head.network)
    network_output = emit_chain(
        graph, [*before, *network_nodes(head.network, fold_batchnorm, dense), *after], x,
        "output")
    outputs = [("output", head.network.dtype, ["batch", head.network.n_outputs])]
    outputs += head.emit(graph, network_output)
    proto = graph.model(outputs, opset, head.network,
                        metadata={**head.metadata(), **(metadata or {})})
    onnx.checker.check_model(proto)
    if path is not None:
        if Path(path).is_dir():
            raise IsADirectoryError(f"cannot write the ONNX model to {path}: it is a folder; "
                                    "give a file name, e.g. model.onnx")
        with atomic_write(path) as file:
            file.write(proto.SerializeToString())
    return proto


def _check_opset(onnx, opset) -> int:
    newest = onnx.defs.onnx_opset_version()
    if isinstance(opset, bool) or not isinstance(opset, (int, np.integer)) or not (
            MIN_OPSET <= opset <= newest):
        raise ValueError(f"opset must be an integer from {MIN_OPSET} to {newest} (the newest "
                         f"this onnx package knows), got {opset!r}")
    return int(opset)


def network_nodes(model: Network, fold_batchnorm: bool = False, dense: str = "gemm"
                  ) -> list[Node]:
    """The chain of ONNX nodes that computes ``model``'s inference pass, in the model's
    dtype (constants are host copies)."""
    dtype, layers, nodes = model.dtype, model.layers, []
    i = 0
    while i < len(layers):
        layer, prefix = layers[i], str(i)
        kind = type(layer)
        if kind is Dense:
            weight = _host(layer.weight, dtype)
            bias = None if layer.bias is None else _host(layer.bias, dtype)
            following = layers[i + 1] if i + 1 < len(layers) else None
            if fold_batchnorm and type(following) is BatchNorm:
                weight, bias = _folded(weight, bias, following, dtype)
                prefix, i = f"{i}+{i + 1}", i + 1
            if dense == "gemm":
                nodes.append(Node("Gemm", [weight] + ([] if bias is None else [bias]),
                                  name=f"{prefix}.Dense"))
            else:
                nodes.append(Node("MatMul", [weight], name=f"{prefix}.Dense"))
                if bias is not None:
                    nodes.append(Node("Add", [bias], name=f"{prefix}.Dense.bias"))
        elif kind is BatchNorm:
            constants = [_host(layer.params[name].value, dtype) for name in ("weight", "bias")]
            constants += [_host(layer.buffers[name], dtype)
                          for name in ("running_mean", "running_var")]
            # ONNX's momentum weighs the old running value, bprop's (PyTorch's) the new one.
            nodes.append(Node("BatchNormalization", constants,
                              {"epsilon": layer.eps, "momentum": 1 - layer.momentum},
                              name=f"{prefix}.BatchNorm"))
        elif kind in _SIMPLE:
            nodes.append(Node(_SIMPLE[kind], name=f"{prefix}.{kind.__name__}"))
        elif kind is LeakyReLU:
            if dtype == np.float64:  # (the slope as a float64 tensor: an attribute rounds it)
                nodes.append(Node("PRelu", [np.array([layer.alpha], dtype)],
                                  name=f"{prefix}.LeakyReLU"))
            else:
                nodes.append(Node("LeakyRelu", attrs={"alpha": layer.alpha},
                                  name=f"{prefix}.LeakyReLU"))
        elif kind is Softmax:
            nodes.append(Node("Softmax", attrs={"axis": -1}, name=f"{prefix}.Softmax"))
        elif kind is Dropout:
            nodes.append(Node("Dropout", [np.array(layer.p, dtype)], name=f"{prefix}.Dropout"))
        else:
            raise ConversionError(
                f"layer {i} {layer!r} has no ONNX form: only bprop's own layers "
                f"({', '.join(LAYERS)}) are exported")
        i += 1
    return nodes


def _host(array, dtype) -> np.ndarray:
    return np.array(to_numpy(array), dtype=dtype)


def _folded(weight, bias, batchnorm: BatchNorm, dtype) -> tuple[np.ndarray, np.ndarray]:
    """Dense weights and bias with the BatchNorm after them folded in, computed in float64."""
    gamma, beta = (to_numpy(batchnorm.params[n].value).astype(np.float64) for n in
                   ("weight", "bias"))
    mean, var = (to_numpy(batchnorm.buffers[n]).astype(np.float64) for n in
                 ("running_mean", "running_var"))
    scale = gamma / np.sqrt(var + batchnorm.eps)
    bias = np.zeros(weight.shape[1]) if bias is None else bias.astype(np.float64)
    return ((weight.astype(np.float64) * scale).astype(dtype),
            ((bias - mean) * scale + beta).astype(dtype))


@dataclass
class Head:
    """What a classifier adds after the network: ``probabilities`` and ``label``."""

    network: Network
    #: "regression", "multiclass" (softmax over the outputs, the most probable class), "binary"
    #: (one logistic output per column, each thresholded at 0.5) or "two-column" (one
    #: logistic output, and the probabilities of both classes, as scikit-learn gives them)
    task: str
    #: whether the network's output is logits (the probabilities need a softmax or sigmoid)
    logits: bool
    classes: np.ndarray | None = None
    #: one label per row, not a column of them (a Sequential's single binary output)
    squeeze: bool = False

    @classmethod
    def of(cls, model, classes=None) -> Head:
        """The head of ``model``: a Sequential (whose ``classes`` name its class indices) or a
        fitted estimator (which has its own ``classes_``)."""
        network = network_of(model, "export_onnx")
        if network is model:
            task = model._task()
            if classes is not None:
                classes = _check_classes(classes, task, model.n_outputs)
            return cls(model, task, takes_logits(model.loss), classes,
                       squeeze=task == "binary" and model.n_outputs == 1)
        if classes is not None:
            raise ValueError("classes= is for a Sequential: an estimator exports its own "
                             "classes_")
        if getattr(model, "_estimator_type", None) != "classifier":
            return cls(network, "regression", False)
        if model._multilabel:
            return cls(network, "binary", True)
        task = "two-column" if model.out_activation_ == "logistic" else "multiclass"
        return cls(network, task, True, _label_array(model.classes_))

    def emit(self, graph: GraphBuilder, output: str,
             names: tuple[str, str] = ("probabilities", "label")) -> list[tuple]:
        """Add the nodes of ``probabilities`` and ``label`` after the network's ``output``;
        returns their names, element types and shapes."""
        if self.task == "regression":
            return []
        dtype, width = self.network.dtype, self.network.n_outputs
        probabilities, label = names
        if self.task == "two-column":  # [1 - p, p]
            positive = graph.node("Sigmoid", [output])
            negative = graph.node("Sub", [graph.constant(np.array(1, dtype)), positive])
            graph.node("Concat", [negative, positive], probabilities, axis=1)
            width = 2
        elif not self.logits:
            graph.node("Identity", [output], probabilities)
        elif self.task == "multiclass":
            graph.node("Softmax", [output], probabilities, axis=-1)
        else:
            graph.node("Sigmoid", [output], probabilities)
        if self.task == "binary":
            half = graph.constant(np.array(0.5, dtype), "half")
            codes = graph.node("Cast", [graph.node("GreaterOrEqual", [probabilities, half])],
                               to=INT64)
            if self.squeeze:
                codes = graph.node("Squeeze", [codes, graph.constant(np.array([1]), "axis")])
        else:
            codes = graph.node("ArgMax", [probabilities], axis=1, keepdims=0)
        label_shape = ["batch"] if self.task != "binary" or self.squeeze else ["batch", width]
        if self.classes is None:
            graph.node("Identity", [codes], label)
            label_type = np.dtype(np.int64)
        else:
            graph.node("Gather", [graph.constant(self.classes, "classes"), codes], label, axis=0)
            label_type = self.classes.dtype
        return [(probabilities, dtype, ["batch", width]), (label, label_type, label_shape)]

    def metadata(self) -> dict[str, str]:
        data = {"bprop_version": __version__, "task": self.task}
        if self.classes is not None:
            data["classes"] = json.dumps(self.classes.tolist())
        return data


def _label_array(classes) -> np.ndarray:
    """Class labels as an array ONNX can hold: booleans as they are, integers as int64, reals
    as float64, anything else as text."""
    classes = np.asarray(classes)
    if classes.dtype.kind == "b":
        return classes
    if classes.dtype.kind in "iu":
        return classes.astype(np.int64)
    if classes.dtype.kind == "f":
        return classes.astype(np.float64)
    return np.array([str(c) for c in classes.tolist()], dtype=object)


def _check_classes(classes, task: str, n_outputs: int | None) -> np.ndarray:
    if task == "regression":
        raise ValueError("classes= is for a classifier; this model does regression")
    labels = _label_array(list(classes))
    expected = 2 if task == "binary" and n_outputs == 1 else n_outputs
    if task == "binary" and n_outputs != 1:
        raise ValueError("classes= names the classes of one output; this binary model has "
                         f"{n_outputs} independent outputs")
    if labels.ndim != 1 or len(labels) != expected:
        raise ValueError(f"classes= must name {expected} classes (one per class index), got "
                         f"{len(labels)}")
    return labels


class GraphBuilder:
    """Collects the nodes and constants of one ONNX graph under unique names."""

    def __init__(self, onnx) -> None:
        self.onnx = onnx
        self.nodes: list = []
        self.constants: list = []
        self.inputs: list = []
        self._names: set[str] = set()

    def fresh(self, name: str) -> str:
        """``name``, or ``name_2``, ``name_3``, ... if it is taken."""
        candidate, n = name, 1
        while candidate in self._names:
            n += 1
            candidate = f"{name}_{n}"
        self._names.add(candidate)
        return candidate

    def input(self, name: str, model: Network) -> str:
        """Declare the graph's (batch, n_inputs) input; the name it got."""
        name = self.fresh(name)
        self.inputs.append(self.onnx.helper.make_tensor_value_info(
            name, ELEMENT_TYPES[model.dtype], ["batch", model.n_inputs]))
        return name

    def constant(self, value: np.ndarray, name: str = "const") -> str:
        name = self.fresh(name)
        self.constants.append(self.onnx.numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(self, op: str, inputs: list[str], output: str | None = None,
             name: str | None = None, **attrs) -> str:
        """Add an ``op`` node reading ``inputs``; it writes ``output``, or a fresh name made
        from ``name`` (or ``op``) if None, which it returns."""
        if output is None:
            output = self.fresh(f"{name}.out" if name else op.lower())
        self._names.add(output)
        self.nodes.append(self.onnx.helper.make_node(
            op, inputs, [output], name=self.fresh(name or op), **attrs))
        return output

    def model(self, outputs: list[tuple], opset: int, network: Network,
              metadata: dict[str, str]):
        """The ONNX model of this graph, whose ``outputs`` are (name, dtype, shape)."""
        helper = self.onnx.helper
        values = [helper.make_tensor_value_info(name, _element_type(dtype), shape)
                  for name, dtype, shape in outputs]
        graph = helper.make_graph(self.nodes, "bprop", self.inputs, values, self.constants,
                                  doc_string=network.summary())
        proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                                  producer_name="bprop", producer_version=__version__)
        # The IR version the opset came with, not the newest the onnx package writes, so that
        # runtimes a little older than the package read the file.
        proto.ir_version = helper.find_min_ir_version_for(list(proto.opset_import))
        helper.set_model_props(proto, metadata)
        return proto


def _element_type(dtype) -> int:
    """The ONNX element type (TensorProto's code) of a NumPy dtype: FLOAT, DOUBLE, INT64, or
    STRING for text."""
    dtype = np.dtype(dtype)
    return ELEMENT_TYPES.get(dtype) or {"i": INT64, "u": INT64, "b": BOOL}.get(dtype.kind, STRING)


def emit_chain(graph, nodes: list[Node], x: str, output: str) -> str:
    """Add ``nodes`` to ``graph`` (anything with :class:`GraphBuilder`'s ``constant`` and
    ``node``) one after the other from the value ``x``; the last one writes ``output``."""
    for k, node in enumerate(nodes):
        stem = node.name or node.op
        names = node.constant_names or _CONSTANT_NAMES.get(node.op, ())
        constants = [graph.constant(value, f"{stem}.{names[j] if j < len(names) else j}")
                     for j, value in enumerate(node.constants)]
        last = k == len(nodes) - 1
        x = graph.node(node.op, [x, *constants], output if last else None, name=stem,
                       **node.attrs)
    return x


#: what each node's constants are called in the file (after the node's name)
_CONSTANT_NAMES = {"Gemm": ("weight", "bias"), "MatMul": ("weight",), "Add": ("bias",),
                   "BatchNormalization": ("weight", "bias", "running_mean", "running_var"),
                   "PRelu": ("slope",), "Dropout": ("ratio",)}
