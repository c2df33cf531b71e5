"""What the scripts run under mpiexec share."""

import traceback


def run_everywhere(main) -> None:
    """``main()``, and if it fails in this process, the traceback and an end of every process
    (MPI's abort): the others would wait for this one in their next collective for ever."""
    try:
        main()
    except BaseException:
        traceback.print_exc()
        from bprop.distributed import MPIWorld

        MPIWorld().comm.Abort(1)
