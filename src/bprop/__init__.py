"""bprop: neural networks whose backpropagation is written by hand, layer by layer, in NumPy.

>>> import bprop as bp
>>> model = bp.Sequential([bp.Dense(2, 4), bp.Tanh(), bp.Dense(4, 1), bp.Sigmoid()], seed=0)
>>> X, y = bp.datasets.make_xor()
>>> history = model.fit(X, y, loss="bce", optimizer=bp.SGD(lr=1.0, momentum=0.9),
...                     epochs=300, batch_size=4)
>>> model.predict(X).tolist()
[0, 1, 1, 0]
"""

from . import data as datasets
from . import distributed
from ._version import __version__ as __version__
from .backend.devices import Device, DeviceUnavailableError, get_device
from .data.preprocessing import MinMaxScaler, StandardScaler, minibatches, one_hot, train_test_split
from .interop.common import ConversionError, MissingPackageError
from .interop.onnx_export import export_onnx
from .interop.onnx_import import import_onnx
from .interop.torch import from_torch, to_torch
from .io import ModelFileError, load, save
from .nn.builder import mlp
from .nn.history import History, TrainingDivergedError
from .nn.layers import (
    BatchNorm,
    Dense,
    Dropout,
    Identity,
    Layer,
    LeakyReLU,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
    activation,
)
from .nn.losses import MSE, BinaryCrossEntropy, Loss, SoftmaxCrossEntropy, get_loss
from .nn.metrics import accuracy, mean_absolute_error, mean_squared_error, r2_score
from .nn.model import Sequential
from .nn.parameter import Parameter
from .nn.perceptron import Perceptron
from .nn.step import StepResult, TrainingStep
from .optim.callbacks import BestState, Callback, EarlyStopping, Progress
from .optim.optimizers import (
    SGD,
    Adam,
    AdamW,
    Optimizer,
    RMSProp,
    clip_grad_norm,
    clip_grad_value,
    get_optimizer,
)
from .optim.regularizers import L1, L1L2, L2, Regularizer
from .optim.schedules import CosineLR, ExponentialLR, ReduceLROnPlateau, Schedule, StepLR
from .tools import plotting
from .tools.explain import Explanation, explain
from .tools.gradcheck import GradcheckReport, gradcheck

# The scikit-learn estimators and the comparison with other libraries import scikit-learn (if
# installed) when they load, which takes memory and time that the core does not need: they are
# loaded on first use.
_LAZY = {"MLPClassifier": "estimators", "MLPRegressor": "estimators", "compare": "tools.compare"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'bprop' has no attribute {name!r}")

__all__ = [
    "Adam",
    "AdamW",
    "BatchNorm",
    "BestState",
    "BinaryCrossEntropy",
    "Callback",
    "ConversionError",
    "CosineLR",
    "Dense",
    "Device",
    "DeviceUnavailableError",
    "Dropout",
    "EarlyStopping",
    "ExponentialLR",
    "Explanation",
    "GradcheckReport",
    "History",
    "Identity",
    "L1",
    "L1L2",
    "L2",
    "Layer",
    "LeakyReLU",
    "Loss",
    "MLPClassifier",
    "MLPRegressor",
    "MSE",
    "MissingPackageError",
    "MinMaxScaler",
    "ModelFileError",
    "Optimizer",
    "Parameter",
    "Perceptron",
    "Progress",
    "RMSProp",
    "ReLU",
    "ReduceLROnPlateau",
    "Regularizer",
    "SGD",
    "Schedule",
    "Sequential",
    "Sigmoid",
    "Softmax",
    "SoftmaxCrossEntropy",
    "StandardScaler",
    "StepLR",
    "StepResult",
    "Tanh",
    "TrainingDivergedError",
    "TrainingStep",
    "accuracy",
    "activation",
    "compare",
    "clip_grad_norm",
    "clip_grad_value",
    "datasets",
    "distributed",
    "explain",
    "export_onnx",
    "get_device",
    "get_loss",
    "get_optimizer",
    "from_torch",
    "gradcheck",
    "import_onnx",
    "load",
    "mean_absolute_error",
    "mean_squared_error",
    "minibatches",
    "mlp",
    "one_hot",
    "plotting",
    "r2_score",
    "save",
    "to_torch",
    "train_test_split",
]
