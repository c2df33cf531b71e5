"""Datasets: small seeded toy problems used by the tutorials, demos and tests."""

from .toy import make_planar, make_quadratic, make_xor

__all__ = ["make_planar", "make_quadratic", "make_xor"]
