"""The core: parameters, layers, losses, metrics and the model that chains them.

Data flow one way: ``Sequential.forward`` runs the layers in order, a loss turns the output
into a number and its gradient, ``Sequential.backward`` runs the layers in reverse, and an
optimizer (:mod:`bprop.optim`) updates the parameters.
"""
