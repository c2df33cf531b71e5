"""Run every seed tutorial in turn: single layer, XOR, planar flower, quadratic, perceptron,
and a network trained with autograd alone. Their code is in src/bprop/demos/.

Pictures go to the folder given as the first argument (default: demo_output/) when matplotlib
is installed.

Run: python examples/seed_demos.py [output-folder]   (the same as: bprop demo all)
"""

import sys

from bprop.demos import run

run("all", *sys.argv[1:])
