"""Run every seed tutorial in turn: single layer, XOR, planar flower, quadratic, perceptron.

Pictures go to the folder given as the first argument (default: demo_output/) when matplotlib
is installed.

Run: python examples/seed_demos.py [output-folder]
"""

import sys
import time

import perceptron
import planar
import quadratic
import single_layer
import xor


def main(out_dir: str = "demo_output") -> None:
    for title, demo in [("single-layer network", single_layer.main), ("XOR", xor.main),
                        ("planar flower", lambda: planar.main(out_dir)),
                        ("quadratic regression", lambda: quadratic.main(out_dir)),
                        ("perceptron", lambda: perceptron.main(out_dir))]:
        print(f"== {title}")
        start = time.perf_counter()
        demo()
        print(f"   ({time.perf_counter() - start:.1f} s)\n")


if __name__ == "__main__":
    main(*sys.argv[1:])
