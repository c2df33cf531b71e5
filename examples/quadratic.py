"""Run the 'quadratic' seed tutorial; its code is in src/bprop/demos/quadratic.py.

Run: python examples/quadratic.py [output-folder]   (the same as: bprop demo quadratic)
"""

import sys

from bprop.demos import run

run("quadratic", *sys.argv[1:])
