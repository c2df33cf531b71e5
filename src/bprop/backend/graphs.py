"""CUDA graphs: a training step recorded once and replayed, for CuPy.

A small network's step on a GPU is dozens of tiny kernels, each costing a few microseconds to
launch from Python, far more than their arithmetic. Recorded once as a CUDA graph (CuPy's
stream capture), the whole step is then one launch. :class:`StepGraph` records a function
that computes only on the device (no transfer, no host decision on a value: the training
step's device path is written that way) and replays it; :meth:`StepGraph.record` answers
None where recording is not possible (an old CuPy, a kernel that synchronises, an operation
that cannot be captured), and the caller then runs the step as it is.

What a replay reads and writes are the arrays the recording saw: the caller copies each new
batch into the same input arrays before replaying, and every array the step updates must be
updated in place. The memory the recorded step allocated for its temporaries comes from a
pool of the graph's own, kept as long as the graph, so that nothing else is ever given those
addresses while the graph may still write there (the design of PyTorch's graph pools).
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType


class StepGraph:
    """A recorded step: :meth:`replay` runs it again on the stream it was recorded on."""

    def __init__(self, graph, stream, pool) -> None:
        self._graph, self.stream, self._pool = graph, stream, pool

    @classmethod
    def record(cls, step: Callable[[], object], cupy: ModuleType, stream) -> StepGraph | None:
        """Record ``step()`` on ``stream`` (a non-default CuPy stream) into a graph, without
        running it: a replay runs it. None, and nothing recorded, if CuPy cannot record it.
        (``cupy`` is the array module: CuPy, or the stand-in that models its capture.)

        Run ``step`` once outside the recording first (on the same stream), so that its
        kernels are compiled and the arrays it keeps from step to step exist."""
        pool = cupy.cuda.MemoryPool()
        begin = getattr(stream, "begin_capture", None)
        if begin is None:  # a CuPy without stream capture
            return None
        graph = None
        try:
            with cupy.cuda.using_allocator(pool.malloc), stream:
                begin()
                try:
                    step()
                finally:
                    graph = stream.end_capture()
        except Exception:  # whatever stops the recording: run the step without a graph
            return None
        if graph is None:
            return None
        return cls(graph, stream, pool)

    def replay(self) -> None:
        """Run the recorded step once more (asynchronously, on its stream)."""
        self._graph.launch(stream=self.stream)


def recording_possible(xp: ModuleType) -> bool:
    """Whether steps on arrays of ``xp`` can be recorded: CuPy's with stream capture (and the
    CPU stand-in's, which models it)."""
    streams = getattr(getattr(xp, "cuda", None), "Stream", None)
    return streams is not None and hasattr(streams, "begin_capture")
