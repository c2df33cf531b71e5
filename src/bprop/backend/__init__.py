"""The machinery beneath the maths: the optional compiled kernels (``_fused.c``) and how a
caller asks for one (:mod:`bprop.backend.kernels`)."""
