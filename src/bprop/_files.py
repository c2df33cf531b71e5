"""Writing files so that a reader never sees half of one, and nothing is left behind.

A save writes a temporary file beside its target and renames it over the target, so the
target is always either the old file or the complete new one. The temporary is named
``.NAME.PID-RANDOM.part`` (the writer's process id and eight hex digits) and, where the
platform has ``fcntl``, it stays locked (``flock``) by its writer until the rename is done.
A save that is killed leaves its temporary behind; the next save to the same folder removes
every such leftover whose lock can be taken (where locks are missing: whose writer's process
has gone), and never touches another file.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

try:
    import fcntl
except ImportError:  # Windows: leftovers are judged by their writer's process id alone
    fcntl = None

#: bprop's own temporaries: ``.NAME.PID-RANDOM.part``.
TEMPORARY = re.compile(r"\.(?P<name>.+)\.(?P<pid>[1-9][0-9]{0,9})-[0-9a-f]{8}\.part")
#: Temporaries of bprop before they carried a process id (``tempfile.mkstemp``'s names).
LEGACY_TEMPORARY = re.compile(r"\.(?P<name>.+)\.[a-z0-9_]{8}\.part")
#: A legacy temporary holds no lock and no process id; one that nobody has written to for
#: this long (seconds) is taken to be abandoned, since a save writes steadily until it ends.
LEGACY_AGE_S = 3600.0
#: Symbolic links followed before a save gives up, as the operating system does (ELOOP).
MAX_LINKS = 40


@contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """Open a temporary file beside ``path`` for writing; on success, rename it over ``path``.

    If the body raises (or the process is interrupted), the temporary file is removed and any
    previous file at ``path`` is left intact. The rename is atomic on POSIX and Windows.

    - Leftover temporaries of interrupted saves in the same folder are removed first
      (:func:`remove_stale_temporaries`).
    - While the file is written and renamed, Ctrl-C (SIGINT) is held back and delivered once
      the rename is done (:func:`deferred_interrupts`), so neither a first nor a second
      Ctrl-C can stop a save halfway.
    - If ``path`` is a symbolic link, its target is written and the link kept.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write; its folder must exist.

    Yields
    ------
    BinaryIO
        The temporary file, open for writing bytes.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> with atomic_write(folder / "numbers.bin") as file:
    ...     _ = file.write(b"1234")
    >>> (folder / "numbers.bin").read_bytes()
    b'1234'
    """
    given = Path(path)
    path = _follow_links(given)
    folder = path.parent
    if not folder.is_dir():
        where = path if path == given else f"{path} (the target of the link {given})"
        raise FileNotFoundError(f"cannot write {where}: the folder {folder} does not exist")
    remove_stale_temporaries(folder, path.name)
    with deferred_interrupts():
        descriptor, temporary = _create_temporary(folder, path.name)
        try:
            with os.fdopen(descriptor, "wb") as file:
                yield file
                file.flush()
                os.fsync(file.fileno())
                # The file is private (0600) while written; give it the mode a plain open()
                # would have, or keep the mode of the file it replaces.
                os.chmod(temporary, path.stat().st_mode & 0o777 if path.exists()
                         else _default_mode())
                if fcntl is not None:
                    # renamed while still locked, so no cleaner can take it for a leftover
                    os.replace(temporary, path)
            if fcntl is None:
                os.replace(temporary, path)  # Windows cannot rename a file that is open
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        _sync_folder(folder)


def remove_stale_temporaries(folder: str | os.PathLike, name: str | None = None) -> list[Path]:
    """Remove the temporaries that interrupted saves left in ``folder``; return those removed.

    Only bprop's own temporaries (``.NAME.PID-RANDOM.part``) are candidates, and only those
    that no process is writing: where ``fcntl`` exists, one whose lock can be taken; elsewhere
    (or where the file system has no locks), one whose writer's process is no longer alive.
    Temporaries written by older versions of bprop (``.NAME.XXXXXXXX.part``, no process id)
    are removed only for ``name`` and only when unmodified for :data:`LEGACY_AGE_S` seconds.
    Errors (a file that vanished, a permission refused) skip that file; they never fail.

    Parameters
    ----------
    folder : str or os.PathLike
        The folder to clean.
    name : str, optional
        The name of the file being saved, whose legacy temporaries may be removed too.

    Returns
    -------
    list of Path
        The temporaries removed.
    """
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    removed = []
    for entry in entries:
        if not (entry.name.startswith(".") and entry.name.endswith(".part")):
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            found = TEMPORARY.fullmatch(entry.name)
            if found is not None:
                gone = _remove_if_abandoned(entry.path, int(found["pid"]))
            else:
                legacy = LEGACY_TEMPORARY.fullmatch(entry.name)
                gone = (legacy is not None and legacy["name"] == name
                        and time.time() - entry.stat(follow_symlinks=False).st_mtime
                        > LEGACY_AGE_S)
                if gone:
                    os.unlink(entry.path)
        except OSError:
            continue
        if gone:
            removed.append(Path(entry.path))
    return removed


class _Deferral:
    """A SIGINT handler that only records the signal, for :func:`deferred_interrupts`."""

    def __init__(self) -> None:
        self.frame = None
        self.received = False

    def __call__(self, signum, frame) -> None:
        self.received = True
        self.frame = frame


@contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Hold back Ctrl-C (SIGINT) in the body and deliver it, once, when the body ends.

    The handler in place before is restored on exit and, if SIGINT arrived meanwhile, called
    then: Python's default raises ``KeyboardInterrupt`` there. Nested uses defer to the
    outermost one. Outside the main thread (where signal handlers cannot be installed) the
    body runs unprotected, as the main thread is the one that receives the signal.

    Examples
    --------
    >>> with deferred_interrupts():
    ...     pass  # a Ctrl-C here would be raised after this line, not inside it
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous is None or isinstance(previous, _Deferral):
        # None: a handler installed from C, which could not be put back
        yield
        return
    deferral = _Deferral()
    try:
        signal.signal(signal.SIGINT, deferral)
    except ValueError:  # a thread or interpreter that may not handle signals
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if deferral.received:
            if previous is signal.SIG_DFL:
                signal.raise_signal(signal.SIGINT)
            elif callable(previous):
                previous(signal.SIGINT, deferral.frame)


def _follow_links(path: Path) -> Path:
    """The file a save to ``path`` should replace: the end of its chain of symbolic links."""
    given = path
    for _ in range(MAX_LINKS):
        if not path.is_symlink():
            return path
        path = path.parent / os.readlink(path)  # (an absolute target replaces the parent)
    raise OSError(errno.ELOOP, f"cannot write {given}: too many levels of symbolic links",
                  str(given))


def _create_temporary(folder: Path, name: str) -> tuple[int, str]:
    """Create, open and lock a new temporary for ``name`` in ``folder``."""
    flags = (os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
             | getattr(os, "O_BINARY", 0))
    while True:
        temporary = str(folder / f".{name}.{os.getpid()}-{secrets.token_hex(4)}.part")
        try:
            descriptor = os.open(temporary, flags, 0o600)
        except FileExistsError:
            continue
        if fcntl is None:
            return descriptor, temporary
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
        except OSError:  # a file system without locks: cleaners fall back to the process id
            return descriptor, temporary
        # A cleaner may have taken the lock and removed the file between its creation and
        # our lock; then it has no name any more, and a fresh one is made.
        if os.fstat(descriptor).st_nlink > 0:
            return descriptor, temporary
        os.close(descriptor)


def _remove_if_abandoned(path: str, pid: int) -> bool:
    """Remove the temporary ``path`` of process ``pid`` if nobody is writing it."""
    if fcntl is None:
        if _alive(pid):
            return False
        os.unlink(path)
        return True
    descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # its writer holds it
        except OSError:
            if _alive(pid):  # no locks on this file system
                return False
        # Its writer may have renamed it over its target since we opened it: remove the name
        # only if it still names the file we hold.
        named, held = os.stat(path, follow_symlinks=False), os.fstat(descriptor)
        if (named.st_dev, named.st_ino) != (held.st_dev, held.st_ino):
            return False
        os.unlink(path)  # under the lock, so no writer can be between creating and locking
        return True
    finally:
        os.close(descriptor)


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists; True when that cannot be told (nothing is removed)."""
    if pid == os.getpid():
        return True  # maybe another thread of ours, writing
    if sys.platform == "win32":
        return _alive_windows(pid)
    try:
        os.kill(pid, 0)  # signal 0 only asks; pid > 0 here, so no process group is meant
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):  # PermissionError: alive, someone else's
        return True
    return True


def _alive_windows(pid: int) -> bool:
    # os.kill(pid, 0) would end the process on Windows; ask the kernel about it instead.
    try:
        import ctypes

        kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
        handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return ctypes.get_last_error() != 87  # ERROR_INVALID_PARAMETER: no such process
        try:
            code = ctypes.c_ulong()
            if not kernel32.GetExitCodeProcess(handle, ctypes.byref(code)):
                return True
            return code.value == 259  # STILL_ACTIVE
        finally:
            kernel32.CloseHandle(handle)
    except (OSError, AttributeError, ValueError):
        return True


def _default_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX); harmless where folders cannot be opened."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` through :func:`atomic_write`: a run folder's small
    files are, like its model, either the old ones or the whole new ones, never half."""
    with atomic_write(path) as file:
        file.write(text.encode("utf-8"))
