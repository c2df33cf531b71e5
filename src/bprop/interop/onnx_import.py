r"""ONNX models to bprop: a chain of the operators that :func:`bprop.export_onnx` writes,
whoever wrote it (``torch.onnx.export`` of an MLP, for one), read back as a
:class:`~bprop.Sequential`; anything else is refused with the operator and the node named.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..io import ModelFileError
from ..nn.layers import (
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
from ..nn.model import Sequential
from .common import ConversionError, require
from .onnx_export import ELEMENT_TYPES, INSTALL


def import_onnx(source: str | os.PathLike | bytes | object, *, output: str | None = None,
                dtype=None, max_bytes: int = 2**31) -> Sequential:
    """A :class:`~bprop.Sequential` computing what an ONNX model's graph computes.

    The graph must be a chain from one input of shape (n, features) to ``output`` made of
    the operators :func:`export_onnx` writes: ``Gemm`` (any ``alpha``, ``beta``,
    ``transB``), ``MatMul`` (with an ``Add`` of its bias after it), ``BatchNormalization``,
    ``Relu``, ``LeakyRelu``, ``PRelu`` (one slope for every feature), ``Sigmoid``, ``Tanh``,
    ``Softmax`` over the features, ``Identity`` and ``Dropout``, whose weights are
    constants (initializers, ``Constant`` nodes, or those passed through ``Identity``,
    ``Cast`` or ``Transpose``, as ``torch.onnx.export`` writes them). Nodes that do not lead
    to ``output`` (a classifier's ``label``, say) are left out.

    Parameters
    ----------
    source : str, path-like, bytes or onnx.ModelProto
        The model file, its bytes, or the loaded model.
    output : str, optional
        The graph output to rebuild; needed only if the graph has several and none is called
        ``"output"``.
    dtype : {"float32", "float64"}, optional
        The model's precision; by default the graph input's.
    max_bytes : int
        A larger file is refused (2 GiB, protobuf's own limit, by default).

    Raises
    ------
    ConversionError
        For a graph that is not such a chain: the message names the operator and the node.
    ModelFileError
        For a file that is not an ONNX model, or that keeps weights (external data) anywhere
        but in files in its own folder.
    """
    onnx = require("onnx", "import_onnx", INSTALL)
    proto, where = _read_model(onnx, source, max_bytes)
    graph = proto.graph
    values = _constants(onnx, graph, where)
    inputs = [value for value in graph.input if value.name not in values]
    if len(inputs) != 1:
        raise ConversionError(f"{where}: the graph has {len(inputs)} data inputs "
                              f"({', '.join(v.name for v in inputs) or 'none'}); a bprop model "
                              "reads one (n, features) array")
    x = inputs[0]
    element = x.type.tensor_type.elem_type
    if dtype is None:
        types = {code: dt for dt, code in ELEMENT_TYPES.items()}
        if element not in types:
            raise ConversionError(
                f"{where}: the input {x.name!r} holds "
                f"{onnx.helper.tensor_dtype_to_np_dtype(element) if element else 'no'} "
                "numbers; a bprop model computes in float32 or float64 (give dtype=)")
        dtype = types[element]
    dtype = np.dtype(dtype)
    if dtype not in ELEMENT_TYPES:
        raise ValueError(f"dtype must be float32 or float64, got {dtype}")
    chain = _chain_to(onnx, graph, values, x.name, _output_name(graph, output, where), where)
    opset = max((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")),
                default=1)
    layers = _layers(chain, opset)
    if not layers:
        raise ConversionError(f"{where}: the graph computes nothing from its input; a bprop "
                              "model needs at least one layer")
    state = {}
    for i, (_, arrays) in enumerate(layers):
        state.update({f"{i}.{name}": value for name, value in arrays.items()})
    try:
        model = Sequential([layer for layer, _ in layers], dtype=dtype, initialise=False)
        model.load_state_dict({name: value.astype(dtype) for name, value in state.items()})
    except ValueError as error:  # (layer sizes that do not chain)
        raise ConversionError(f"{where}: its nodes do not fit together as layers: "
                              f"{error}") from None
    _check_input_width(x, model.n_inputs, where)
    return model


def _check_input_width(x, n_inputs: int | None, where: str) -> None:
    """Refuse an input declared (n, features) with another number of features than the first
    layer reads, or of another rank (a runtime would refuse to run such a graph)."""
    if not x.type.tensor_type.HasField("shape"):
        return
    dims = x.type.tensor_type.shape.dim
    if len(dims) != 2:
        raise ConversionError(f"{where}: the input {x.name!r} has {len(dims)} dimensions; a "
                              "bprop model reads (n, features)")
    if dims[1].HasField("dim_value") and n_inputs is not None and dims[1].dim_value != n_inputs:
        raise ConversionError(f"{where}: the input {x.name!r} has {dims[1].dim_value} features "
                              f"but its first layer reads {n_inputs}")


def _read_model(onnx, source, max_bytes: int):
    """The model in ``source``, with the weights it keeps in files beside it read in, and how
    to name it in a message."""
    folder = None
    if isinstance(source, onnx.ModelProto):
        return source, "the ONNX model"
    if isinstance(source, (bytes, bytearray, memoryview)):
        data, where = bytes(source), "the ONNX model"
    else:
        path = Path(os.fspath(source))
        where = str(path)
        if not path.is_file():
            raise FileNotFoundError(f"no ONNX model at {path}")
        size = path.stat().st_size
        if size > max_bytes:
            raise ModelFileError(f"{path} holds {size:,} bytes, over max_bytes={max_bytes:,}; "
                                 "raise max_bytes if you trust the file")
        data, folder = path.read_bytes(), path.parent
    if len(data) > max_bytes:
        raise ModelFileError(f"{where} holds {len(data):,} bytes, over max_bytes={max_bytes:,}")
    try:
        proto = onnx.load_model_from_string(data)
    except Exception as error:  # (protobuf's DecodeError, and what a damaged file raises)
        raise ModelFileError(f"{where} is not an ONNX model ({type(error).__name__}: "
                             f"{str(error)[:200]})") from None
    if not proto.graph.node and not proto.graph.input:
        raise ModelFileError(f"{where} is not an ONNX model (it holds no graph)")
    _read_external_data(onnx, proto, folder, where, max_bytes - len(data))
    return proto, where


def _read_external_data(onnx, proto, folder: Path | None, where: str, max_bytes: int) -> None:
    """Read the weights ``proto`` keeps in other files (``torch.onnx.export`` writes them
    beside the model), from files in ``folder`` only, and no more than ``max_bytes``."""
    external = [t for t in proto.graph.initializer
                if t.data_location == onnx.TensorProto.EXTERNAL]
    if not external:
        return
    if folder is None:
        raise ModelFileError(f"{where} keeps its weights in other files (external data); give "
                             "the path of its file, beside them, instead of its bytes")
    total = 0
    for tensor in external:
        info = {entry.key: entry.value for entry in tensor.external_data}
        location = Path(info.get("location", ""))
        file = (folder / location).resolve()
        if location.is_absolute() or ".." in location.parts or not location.name or \
                not file.is_relative_to(folder.resolve()):
            raise ModelFileError(f"{where} reads weight {tensor.name!r} from {location}, outside "
                                 f"its folder {folder}; refused")
        if not file.is_file():
            raise ModelFileError(f"{where} keeps weight {tensor.name!r} in {location}, which is "
                                 f"not in {folder}; put it beside the model")
        offset = int(info.get("offset", 0))
        total += int(info.get("length", max(file.stat().st_size - offset, 0)))
    if total > max_bytes:
        raise ModelFileError(f"{where} keeps {total:,} bytes of weights beside it, over "
                             f"max_bytes; raise max_bytes if you trust the files")
    try:
        onnx.external_data_helper.load_external_data_for_model(proto, str(folder))
    except Exception as error:  # (a file shorter than its offsets say, among others)
        raise ModelFileError(f"{where}: its weights beside it cannot be read "
                             f"({type(error).__name__}: {str(error)[:200]})") from None


def _constants(onnx, graph, where: str) -> dict[str, np.ndarray]:
    """Every value of ``graph`` that does not depend on its data input: the initializers, the
    outputs of ``Constant`` nodes, and what ``Identity``, ``Cast`` and ``Transpose`` make of
    them."""
    values = {}
    for tensor in graph.initializer:
        if tensor.data_location == onnx.TensorProto.EXTERNAL:  # (a model loaded without them)
            raise ModelFileError(f"{where} has not read weight {tensor.name!r}, which it keeps "
                                 "in another file: give import_onnx the model's path")
        values[tensor.name] = _array(onnx, tensor, f"{where}: weight {tensor.name!r}")
    for node in graph.node:
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
            attribute = {a.name: a for a in node.attribute}
            if "value" not in attribute:
                raise ConversionError(f"{where}: node {_describe(node)} makes a constant "
                                      "bprop cannot read (only a tensor 'value')")
            tensor = attribute["value"].t
            # (only weights, above, are read from files beside the model, from its folder: a
            # constant's file would be looked for wherever Python runs)
            if tensor.data_location == onnx.TensorProto.EXTERNAL:
                raise ModelFileError(f"{where}: node {_describe(node)} keeps its constant in "
                                     "another file; bprop reads only weights (initializers) "
                                     "from files beside the model")
            values[node.output[0]] = _array(onnx, tensor, f"{where}: node {_describe(node)}")
        elif node.op_type in ("Identity", "Cast", "Transpose") and node.input and \
                node.input[0] in values:
            value = values[node.input[0]]
            attrs = _attributes(onnx, node)
            try:
                if node.op_type == "Cast":
                    value = value.astype(onnx.helper.tensor_dtype_to_np_dtype(attrs["to"]))
                elif node.op_type == "Transpose":
                    value = np.transpose(value, attrs.get("perm"))
            except (KeyError, ValueError, TypeError) as error:
                raise ConversionError(f"{where}: node {_describe(node)} cannot be applied to "
                                      f"its constant ({error})") from None
            values[node.output[0]] = value
    return values


def _array(onnx, tensor, what: str) -> np.ndarray:
    """The values of a TensorProto, or a ModelFileError saying ``what`` is damaged."""
    try:
        return onnx.numpy_helper.to_array(tensor)
    except Exception as error:  # (data that do not fit the declared shape, and the like)
        raise ModelFileError(f"{what} is damaged ({type(error).__name__}: "
                             f"{str(error)[:200]})") from None


def _attributes(onnx, node) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _describe(node) -> str:
    return f"{node.name or node.output[0]!r} ({node.op_type})"


def _output_name(graph, output: str | None, where: str) -> str:
    names = [value.name for value in graph.output]
    if output is not None:
        if output not in names:
            raise ValueError(f"{where} has no output {output!r}; it has {', '.join(names)}")
        return output
    if len(names) == 1:
        return names[0]
    if "output" in names:
        return "output"
    raise ValueError(f"{where} has {len(names)} outputs ({', '.join(names)}); say which one "
                     "the network computes with output=")


@dataclass
class Link:
    """One node of the chain being imported: its constants, in the order of its inputs (None
    for an input left out), and whether the data are its first input."""

    node: object
    constants: list
    data_first: bool
    attrs: dict
    where: str

    @property
    def op(self) -> str:
        node = self.node
        return node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}.{node.op_type}"

    def refuse(self, why: str) -> ConversionError:
        return ConversionError(f"{self.where}: node {_describe(self.node)} {why}")


def _chain_to(onnx, graph, values: dict, x: str, output: str, where: str) -> list[Link]:
    """The nodes from the data input ``x`` to ``output``, in order, each with one data input."""
    producer = {name: node for node in graph.node for name in node.output}
    chain, name = [], output
    while name != x:
        if name not in producer:
            raise ConversionError(f"{where}: {name!r} is neither made by a node nor the input")
        node = producer[name]
        data = [n for n in node.input if n and n not in values]
        if len(data) != 1:
            raise ConversionError(
                f"{where}: node {_describe(node)} reads {len(data)} values computed from the "
                f"input; a bprop model is a chain whose every node reads one")
        chain.append(Link(node, [values.get(n) for n in node.input if n != data[0]],
                          node.input[0] == data[0], _attributes(onnx, node), where))
        name = data[0]
        if len(chain) > len(graph.node):  # (a graph that loops back on itself)
            raise ConversionError(f"{where}: the graph has a cycle through {_describe(node)}")
    return chain[::-1]


#: the operators import_onnx reads, for its error message
IMPORTABLE = ("Gemm", "MatMul+Add", "BatchNormalization", "Relu", "LeakyRelu", "PRelu",
              "Sigmoid", "Tanh", "Softmax", "Identity", "Dropout")
_ACTIVATIONS = {"Relu": ReLU, "Sigmoid": Sigmoid, "Tanh": Tanh, "Identity": Identity}


def _layers(chain: list[Link], opset: int) -> list[tuple]:
    """The bprop layers of a chain of ONNX nodes, each with its arrays by parameter name."""
    layers: list[tuple] = []
    k = 0
    while k < len(chain):
        link = chain[k]
        op, constants = link.op, link.constants
        if op in _CONSTANTS and not _CONSTANTS[op][0] <= len(constants) <= _CONSTANTS[op][1]:
            raise link.refuse(f"has {len(constants)} constant inputs; bprop reads it with "
                              f"{'-'.join(map(str, sorted(set(_CONSTANTS[op]))))}")
        if constants and not link.data_first:
            raise link.refuse("reads the data after its constants; bprop's layers read the "
                              "data first (x W, not W x)")
        try:
            k = _layer(chain, k, opset, layers)
        except ValueError as error:  # (a setting no bprop layer takes: a ratio of 1, ...)
            raise link.refuse(f"cannot be a bprop layer: {error}") from None
    return layers


#: how many constant inputs each operator may have (besides its data)
_CONSTANTS = {"Gemm": (1, 2), "MatMul": (1, 1), "Add": (1, 1), "BatchNormalization": (4, 4),
              "PRelu": (1, 1), "Dropout": (0, 2), "Relu": (0, 0), "Sigmoid": (0, 0),
              "Tanh": (0, 0), "Identity": (0, 0), "LeakyRelu": (0, 0), "Softmax": (0, 0)}


def _layer(chain: list[Link], k: int, opset: int, layers: list) -> int:
    """Append the layer of ``chain[k]`` (with the Add after a MatMul) to ``layers``; returns
    the index of the next node."""
    link = chain[k]
    op, attrs, constants = link.op, link.attrs, link.constants
    if op == "Gemm":  # alpha x B' + beta C, B' = B or its transpose
        if attrs.get("transA", 0):
            raise link.refuse("transposes the data (transA); bprop's Dense computes x W")
        weight = _matrix(constants[0], link)
        weight = weight.T if attrs.get("transB", 0) else weight
        alpha, beta = attrs.get("alpha", 1.0), attrs.get("beta", 1.0)
        bias = None
        if len(constants) > 1 and constants[1] is not None:
            bias = _bias(constants[1], weight.shape[1], link) * beta
        layers.append(_dense(weight * alpha if alpha != 1 else weight, bias))
    elif op == "MatMul":  # its bias, if any, is the Add after it
        weight, bias = _matrix(constants[0], link), None
        if k + 1 < len(chain) and chain[k + 1].op == "Add":
            k += 1
            bias = _bias(chain[k].constants[0], weight.shape[1], chain[k])
        layers.append(_dense(weight, bias))
    elif op == "BatchNormalization":
        if attrs.get("training_mode", 0) or any(link.node.output[1:]):
            raise link.refuse("is in training mode; export the model in inference mode")
        gamma, beta, mean, var = (np.asarray(c, np.float64).ravel() for c in constants)
        layer = BatchNorm(len(gamma), momentum=_momentum(attrs.get("momentum", 0.9)),
                          eps=_float32_attr(attrs.get("epsilon", 1e-5)))
        layers.append((layer, {"weight": gamma, "bias": beta, "running_mean": mean,
                               "running_var": var}))
    elif op in _ACTIVATIONS:
        layers.append((_ACTIVATIONS[op](), {}))
    elif op == "LeakyRelu":
        layers.append((LeakyReLU(_float32_attr(attrs.get("alpha", 0.01))), {}))
    elif op == "PRelu":
        slope = np.asarray(constants[0]).ravel()
        if slope.size == 0 or not (slope == slope[0]).all():
            raise link.refuse("has a slope per feature; bprop's LeakyReLU has one for all")
        layers.append((LeakyReLU(_real(slope[0])), {}))
    elif op == "Softmax":
        axis = attrs.get("axis", -1 if opset >= 13 else 1)
        if axis not in (-1, 1):
            raise link.refuse(f"takes the softmax over axis {axis}; bprop's Softmax "
                              "normalises each row (axis 1)")
        layers.append((Softmax(), {}))
    elif op == "Dropout":  # (the ratio is an input since opset 12, an attribute before)
        if len(constants) > 1 and constants[1] is not None and np.asarray(constants[1]).any():
            raise link.refuse("is in training mode; export the model in inference mode")
        ratio = constants[0] if constants and constants[0] is not None else np.float32(
            attrs.get("ratio", 0.5))
        layers.append((Dropout(_real(np.asarray(ratio))), {}))
    else:
        raise link.refuse(f"is not an operator bprop can import; it reads chains of "
                          f"{', '.join(IMPORTABLE)}")
    return k + 1


def _matrix(value, link: Link) -> np.ndarray:
    value = np.asarray(value)
    if value.ndim != 2 or value.dtype.kind != "f":
        raise link.refuse(f"has weights of shape {np.shape(value)} and type {value.dtype}; a Dense "
                     "layer's are a 2-D matrix of reals")
    return value


def _bias(value, n_out: int, link: Link) -> np.ndarray:
    value = np.asarray(value)
    if value.dtype.kind != "f" or value.size not in (1, n_out) or (
            value.ndim == 2 and value.shape[0] != 1) or value.ndim > 2:
        raise link.refuse(f"adds a bias of shape {value.shape}; a Dense layer's has {n_out} values")
    return np.broadcast_to(value.ravel(), (n_out,)).astype(np.float64)


def _dense(weight: np.ndarray, bias) -> tuple:
    layer = Dense(weight.shape[0], weight.shape[1], bias=bias is not None)
    arrays = {"weight": weight}
    if bias is not None:
        arrays["bias"] = bias
    return layer, arrays


def _float32_attr(value) -> float:
    """A value ONNX kept in float32 (every attribute), as the shortest decimal that is that
    float32: 0.01 comes back as 0.01, not 0.009999999776, and its float32 is the same."""
    return float(np.format_float_positional(np.float32(value), unique=True))


def _real(value: np.ndarray) -> float:
    """A scalar constant as a Python float: a float64 exactly, a float32 as its shortest
    decimal (see :func:`_float32_attr`)."""
    return float(value) if value.dtype == np.float64 else _float32_attr(value)


def _momentum(onnx_momentum: float) -> float:
    """bprop's (PyTorch's) BatchNorm momentum, the weight of the new batch's statistics, from
    ONNX's, the weight of the running ones: 1 - 0.9 (a float32) comes back as 0.1."""
    return float(f"{1 - _float32_attr(onnx_momentum):.12g}")
