"""Run the 'planar' seed tutorial; its code is in src/bprop/demos/planar.py.

Run: python examples/planar.py [output-folder]   (the same as: bprop demo planar)
"""

import sys

from bprop.demos import run

run("planar", *sys.argv[1:])
