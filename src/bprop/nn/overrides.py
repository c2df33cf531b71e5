"""How a class written before the checked/inner split keeps working.

Layers and losses have a public pass that checks its input (``forward``, ``backward``) and an
inner pass that holds only the arithmetic (``_forward``, ``_backward``); a model runs the inner
ones. A subclass written before the split overrides the public pass instead; it is given an
inner pass (:func:`through_public`) that runs what the subclass wrote, so that a model runs it
too.
"""

from __future__ import annotations

from collections.abc import Callable


class InnerPass:
    """Marks an object as inside its own public pass ``name``, for :func:`through_public`."""

    __slots__ = ("owner", "flag", "before")

    def __init__(self, owner: object, name: str) -> None:
        self.owner, self.flag = owner, f"_in_public_{name}"

    def __enter__(self) -> None:
        self.before = self.owner.__dict__.get(self.flag, False)
        self.owner.__dict__[self.flag] = True

    def __exit__(self, *exc) -> None:
        if self.before:
            return
        del self.owner.__dict__[self.flag]  # (leaves no trace in copies of the object)


def through_public(cls: type, name: str, call_public: Callable) -> Callable:
    """The inner pass for a subclass ``cls`` that overrides the public pass ``name``:
    ``call_public(self, *args)`` runs it, marked as inside that pass.

    The subclass's method may build on the one it overrides (``super().forward(...)``, which
    checks and then calls the inner pass) or call the inner pass itself: either way, inside
    the public pass the inner pass is the one ``cls`` inherited, so nothing runs twice.
    """
    inherited = getattr(super(cls, cls), f"_{name}")
    flag = f"_in_public_{name}"

    def inner(self, *args):
        if self.__dict__.get(flag):
            return inherited(self, *args)
        with InnerPass(self, name):
            return call_public(self, *args)

    return inner
