"""The catalogue of layers: every layer class, by name, and the activations and init schemes.

The layers live one concept to a module: the contract and base class in :mod:`.layer`,
:mod:`.dense`, :mod:`.activations`, :mod:`.dropout` and :mod:`.batchnorm`, the weight
initialisation schemes in :mod:`.init`. This module gathers them, so that
``from bprop.nn.layers import Dense, LAYERS`` names everything a model file or a builder needs.
"""

from __future__ import annotations

from .activations import (
    ACTIVATIONS,
    Activation,
    Identity,
    LeakyReLU,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
    activation,
)
from .batchnorm import BatchNorm
from .dense import Dense
from .dropout import Dropout
from .init import INITS
from .layer import Layer

#: every layer class of bprop by name: the types a model file may name
LAYERS = {cls.__name__: cls for cls in
          (Dense, Identity, Sigmoid, Tanh, ReLU, LeakyReLU, Softmax, Dropout, BatchNorm)}

__all__ = ["ACTIVATIONS", "INITS", "LAYERS", "Activation", "BatchNorm", "Dense", "Dropout",
           "Identity", "Layer", "LeakyReLU", "ReLU", "Sigmoid", "Softmax", "Tanh", "activation"]
