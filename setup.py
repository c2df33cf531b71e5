"""Build bprop's one optional C extension (src/bprop/backend/_fused.c): Adam's update and ReLU's
backward pass, each in one pass.

Everything else is in pyproject.toml. The extension is optional: without a C compiler the
install still succeeds and bprop computes the same in NumPy.
"""

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class BuildExt(build_ext):
    def build_extensions(self):
        if self.compiler.compiler_type == "unix":  # gcc and clang
            for extension in self.extensions:
                # -ffp-contract=off: no fused multiply-adds, so that the results are bit for bit
                # those of the NumPy code. -fno-math-errno lets sqrt be one instruction. (Last
                # on the command line, so they win over any CFLAGS; -ffast-math in CFLAGS makes
                # _fused.c refuse to compile, and bprop runs its NumPy code.)
                extension.extra_compile_args = ["-O3", "-ffp-contract=off", "-fno-math-errno"]
        super().build_extensions()


setup(
    ext_modules=[Extension("bprop.backend._fused", ["src/bprop/backend/_fused.c"], optional=True)],
    cmdclass={"build_ext": BuildExt},
)
