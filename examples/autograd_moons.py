"""Run the 'autograd' seed tutorial; its code is in src/bprop/demos/autograd_moons.py.

Run: python examples/autograd_moons.py [output-folder]   (the same as: bprop demo autograd)
"""

import sys

from bprop.demos import run

run("autograd", *sys.argv[1:])
