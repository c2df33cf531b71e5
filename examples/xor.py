"""Run the 'xor' seed tutorial; its code is in src/bprop/demos/xor.py.

Run: python examples/xor.py [output-folder]   (the same as: bprop demo xor)
"""

import sys

from bprop.demos import run

run("xor", *sys.argv[1:])
