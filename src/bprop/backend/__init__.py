"""The machinery beneath the maths: devices and their array modules (:mod:`.devices`: NumPy,
CuPy, and the CPU stand-in for CuPy of :mod:`.standin`), the optional compiled kernels
(``_fused.c`` on the CPU, :mod:`.cuda_kernels` on a GPU) and how a caller asks for one
(:mod:`.kernels`), and CUDA graphs of the training step (:mod:`.graphs`)."""
