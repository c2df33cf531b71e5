"""Run the 'perceptron' seed tutorial; its code is in src/bprop/demos/perceptron.py.

Run: python examples/perceptron.py [output-folder]   (the same as: bprop demo perceptron)
"""

import sys

from bprop.demos import run

run("perceptron", *sys.argv[1:])
