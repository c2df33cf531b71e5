"""The seed tutorials as runnable demos: ``bprop demo NAME`` or ``bprop.demos.run(NAME)``.

Each module reproduces one classic tutorial with bprop; read its source to see how. Every
module has ``run()``, which returns the results as a dict, and ``main(out_dir)``, which prints
them and draws pictures into ``out_dir`` when matplotlib is installed.
"""

from __future__ import annotations

import importlib
import time

#: name -> (module, title), in the order ``all`` runs them
DEMOS = {
    "single-layer": ("single_layer", "single-layer network"),
    "xor": ("xor", "XOR with a hidden layer"),
    "planar": ("planar", "planar flower"),
    "quadratic": ("quadratic", "quadratic regression"),
    "perceptron": ("perceptron", "perceptron"),
    "autograd": ("autograd_moons", "a network trained with autograd alone"),
}


def run(name: str = "all", out_dir: str = "demo_output") -> None:
    """Run one demo by name, or all of them, printing their results."""
    if name != "all" and name not in DEMOS:
        raise ValueError(f"unknown demo {name!r}; choose from {', '.join([*DEMOS, 'all'])}")
    for key in DEMOS if name == "all" else [name]:
        module_name, title = DEMOS[key]
        module = importlib.import_module(f"{__name__}.{module_name}")
        print(f"== {title}")
        start = time.perf_counter()
        module.main(out_dir)
        print(f"   ({time.perf_counter() - start:.1f} s)\n", flush=True)
