"""bprop: neural networks whose backpropagation is written by hand, layer by layer, in NumPy.

>>> import bprop as bp
>>> model = bp.Sequential([bp.Dense(2, 4), bp.Tanh(), bp.Dense(4, 1), bp.Sigmoid()], seed=0)
>>> X, y = bp.datasets.make_xor()
>>> history = model.fit(X, y, loss="bce", optimizer=bp.SGD(lr=1.0, momentum=0.9),
...                     epochs=300, batch_size=4)
>>> model.predict(X).tolist()
[0, 1, 1, 0]
"""

from . import datasets, plotting
from .gradcheck import GradcheckReport, gradcheck
from .layers import (
    Dense,
    Identity,
    Layer,
    LeakyReLU,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
    activation,
)
from .losses import MSE, BinaryCrossEntropy, Loss, SoftmaxCrossEntropy
from .metrics import accuracy, mean_absolute_error, mean_squared_error, r2_score
from .model import History, Sequential, TrainingDivergedError
from .optim import SGD, Optimizer
from .parameter import Parameter
from .perceptron import Perceptron

__version__ = "0.1.0"

__all__ = [
    "MSE",
    "SGD",
    "BinaryCrossEntropy",
    "Dense",
    "GradcheckReport",
    "History",
    "Identity",
    "Layer",
    "LeakyReLU",
    "Loss",
    "Optimizer",
    "Parameter",
    "Perceptron",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "Softmax",
    "SoftmaxCrossEntropy",
    "Tanh",
    "TrainingDivergedError",
    "accuracy",
    "activation",
    "datasets",
    "plotting",
    "gradcheck",
    "mean_absolute_error",
    "mean_squared_error",
    "r2_score",
]
