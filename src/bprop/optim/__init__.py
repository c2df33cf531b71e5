"""Everything that turns gradients into better weights: optimizers, learning-rate schedules,
weight penalties, gradient clipping, and the callbacks that watch training."""

from .optimizers import (
    OPTIMIZERS,
    SGD,
    Adam,
    AdamW,
    Optimizer,
    RMSProp,
    clip_grad_norm,
    clip_grad_value,
    flush_subnormals,
    fused_adam_available,
    get_optimizer,
)

__all__ = [
    "OPTIMIZERS",
    "SGD",
    "Adam",
    "AdamW",
    "Optimizer",
    "RMSProp",
    "clip_grad_norm",
    "clip_grad_value",
    "flush_subnormals",
    "fused_adam_available",
    "get_optimizer",
]
