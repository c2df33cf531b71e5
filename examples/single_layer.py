"""Run the 'single-layer' seed tutorial; its code is in src/bprop/demos/single_layer.py.

Run: python examples/single_layer.py [output-folder]   (the same as: bprop demo single-layer)
"""

import sys

from bprop.demos import run

run("single-layer", *sys.argv[1:])
