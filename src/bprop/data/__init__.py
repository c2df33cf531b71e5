"""Datasets: seeded toy problems, the offline digits, MNIST and Fashion-MNIST, CSV files."""

from .csv import CSVData, load_csv, load_features
from .digits import load_digits
from .idx import IDXError, read_idx, write_idx
from .mnist import FASHION_CLASSES, load_fashion_mnist, load_mnist
from .toy import make_circles, make_moons, make_planar, make_quadratic, make_spirals, make_xor

__all__ = [
    "FASHION_CLASSES",
    "CSVData",
    "IDXError",
    "load_csv",
    "load_digits",
    "load_fashion_mnist",
    "load_features",
    "load_mnist",
    "make_circles",
    "make_moons",
    "make_planar",
    "make_quadratic",
    "make_spirals",
    "make_xor",
    "read_idx",
    "write_idx",
]
