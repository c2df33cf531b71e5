"""Tools around the core, never imported by it: gradient checking, ``explain``, plotting and
the comparison with other libraries."""
