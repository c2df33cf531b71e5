"""Saves leave nothing behind and lose nothing: leftovers, Ctrl-C, kill -9, symbolic links."""

import errno
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from bprop import _files
from bprop._files import atomic_write, deferred_interrupts, remove_stale_temporaries

needs_flock = pytest.mark.skipif(_files.fcntl is None, reason="no fcntl.flock here")
posix_only = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="no kill -9 here")

# A writer in another process, loading _files.py alone so that it starts in milliseconds.
WRITER = """
import importlib.util, sys, time
spec = importlib.util.spec_from_file_location("files_under_test", sys.argv[1])
files = importlib.util.module_from_spec(spec)
spec.loader.exec_module(files)
with files.atomic_write(sys.argv[2]) as file:
    file.write(b"new, but only half of it")
    file.flush()
    print("writing", flush=True)
    time.sleep(60)
"""


def dead_pid() -> int:
    """The process id of a process that has ended."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def save(path, content: bytes = b"new") -> None:
    with atomic_write(path) as file:
        file.write(content)


def temporaries(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


def test_leftovers_of_interrupted_saves_are_removed_by_the_next_save_to_the_folder(tmp_path):
    pid = dead_pid()
    leftovers = [tmp_path / f".model.npz.{pid}-0123abcd.part",
                 tmp_path / f".train.gz.{pid}-89abcdef.part"]  # another target, same folder
    for leftover in leftovers:
        leftover.write_bytes(b"half a file")
    save(tmp_path / "model.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]
    assert (tmp_path / "model.npz").read_bytes() == b"new"


def test_a_save_names_its_temporary_with_its_process_id_beside_the_target(tmp_path):
    with atomic_write(tmp_path / "model.npz") as file:
        names = temporaries(tmp_path)
        file.write(b"new")
    assert len(names) == 1
    found = _files.TEMPORARY.fullmatch(names[0])
    assert found is not None and found["name"] == "model.npz"
    assert int(found["pid"]) == os.getpid()
    assert temporaries(tmp_path) == []


@needs_flock
def test_a_temporary_locked_by_its_writer_is_kept_until_the_lock_is_released(tmp_path):
    # a process id that is gone: the lock, not the id, is what says "being written"
    held = tmp_path / f".model.npz.{dead_pid()}-0123abcd.part"
    held.write_bytes(b"being written")
    descriptor = os.open(held, os.O_RDWR)
    try:
        _files.fcntl.flock(descriptor, _files.fcntl.LOCK_EX)
        save(tmp_path / "model.npz")
        assert held.read_bytes() == b"being written"
    finally:
        os.close(descriptor)
    save(tmp_path / "model.npz")
    assert not held.exists()


@posix_only
def test_kill_9_mid_save_keeps_the_old_file_and_the_next_save_cleans_up(tmp_path):
    target = tmp_path / "model.npz"
    save(target, b"old")
    writer = subprocess.Popen([sys.executable, "-c", WRITER, _files.__file__, str(target)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline() == "writing\n"
        [temporary] = temporaries(tmp_path)
        assert f".{writer.pid}-" in temporary
        save(tmp_path / "other.npz")  # a save beside a live writer leaves its file alone
        assert temporaries(tmp_path) == [temporary]
        assert (tmp_path / temporary).read_bytes() == b"new, but only half of it"
    finally:
        writer.kill()
        writer.wait()
        writer.stdout.close()
    assert writer.returncode == -signal.SIGKILL
    assert target.read_bytes() == b"old"
    assert temporaries(tmp_path) == [temporary]  # what kill -9 leaves behind
    save(target, b"new")
    assert temporaries(tmp_path) == []
    assert target.read_bytes() == b"new"


def test_files_that_are_not_bprops_temporaries_are_never_touched(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_bytes(b"keep")
    names = [".model.npz.tmp", "model.npz.part", ".notes.part", ".model.npz.123-XYZW0000.part",
             ".model.npz.0-0123abcd.part", ".model.npz.12-0123abcd.partial",
             ".model.npz.12-0123abc.part", ".model.npz.abcd1234.part",  # legacy, but recent
             ".other.npz.abcd1234.part"]  # legacy, old, but another target's
    for name in names:
        (tmp_path / name).write_bytes(b"someone's")
    (tmp_path / ".folder.12-0123abcd.part").mkdir()
    (tmp_path / ".link.12-0123abcd.part").symlink_to(outside / "precious")
    old = time.time() - 10 * _files.LEGACY_AGE_S
    os.utime(tmp_path / ".other.npz.abcd1234.part", (old, old))
    save(tmp_path / "model.npz")
    for name in names:
        assert (tmp_path / name).read_bytes() == b"someone's", name
    assert (tmp_path / ".folder.12-0123abcd.part").is_dir()
    assert (tmp_path / ".link.12-0123abcd.part").is_symlink()
    assert (outside / "precious").read_bytes() == b"keep"


def test_old_versions_temporaries_are_removed_only_when_long_unmodified(tmp_path):
    stale, fresh = tmp_path / ".model.npz.k2_x9q0a.part", tmp_path / ".model.npz.abcd1234.part"
    stale.write_bytes(b"old")
    fresh.write_bytes(b"maybe still written")
    old = time.time() - 2 * _files.LEGACY_AGE_S
    os.utime(stale, (old, old))
    assert remove_stale_temporaries(tmp_path, "model.npz") == [stale]
    assert fresh.exists()


def test_without_fcntl_a_leftover_is_removed_only_when_its_writer_is_gone(tmp_path, monkeypatch):
    monkeypatch.setattr(_files, "fcntl", None)
    gone = tmp_path / f".model.npz.{dead_pid()}-0123abcd.part"
    mine = tmp_path / f".model.npz.{os.getpid()}-0123abcd.part"  # perhaps another thread's
    parents = tmp_path / f".model.npz.{os.getppid()}-0123abcd.part"
    for path in (gone, mine, parents):
        path.write_bytes(b"half")
    save(tmp_path / "model.npz")
    assert (tmp_path / "model.npz").read_bytes() == b"new"
    assert not gone.exists()
    assert mine.exists() and parents.exists()


def test_ctrl_c_during_a_save_is_delivered_after_the_file_is_complete(tmp_path):
    target = tmp_path / "model.npz"
    save(target, b"old")
    before = signal.getsignal(signal.SIGINT)
    written = []
    with pytest.raises(KeyboardInterrupt), atomic_write(target) as file:
        file.write(b"first half, ")
        os.kill(os.getpid(), signal.SIGINT)  # the first Ctrl-C
        time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGINT)  # and a second one, impatient
        time.sleep(0.01)
        file.write(b"second half")
        written.append(True)
    assert written == [True]
    assert target.read_bytes() == b"first half, second half"
    assert temporaries(tmp_path) == []
    assert signal.getsignal(signal.SIGINT) is before


def test_deferred_ctrl_c_reaches_the_handler_that_was_in_place_once(tmp_path):
    calls = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: calls.append(signum))
    try:
        with deferred_interrupts():
            with atomic_write(tmp_path / "model.npz") as file:  # nested: the outer one delivers
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.01)
                file.write(b"new")
            assert calls == []
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.01)
            assert calls == []
        assert calls == [signal.SIGINT]
    finally:
        signal.signal(signal.SIGINT, previous)
    assert (tmp_path / "model.npz").read_bytes() == b"new"


def test_a_failing_save_removes_its_temporary_and_restores_the_handler(tmp_path):
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(OSError, match="disk full"), atomic_write(tmp_path / "model.npz") as file:
        file.write(b"half")
        raise OSError("disk full")
    assert list(tmp_path.iterdir()) == []
    assert signal.getsignal(signal.SIGINT) is before


def test_a_save_in_another_thread_works_and_leaves_the_handler_alone(tmp_path):
    before = signal.getsignal(signal.SIGINT)
    seen, errors = [], []

    def work():
        try:
            with atomic_write(tmp_path / "model.npz") as file:
                seen.append(signal.getsignal(signal.SIGINT))
                file.write(b"new")
        except BaseException as error:  # reported to the test's thread
            errors.append(error)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert errors == [] and seen == [before]
    assert (tmp_path / "model.npz").read_bytes() == b"new"


def test_saving_through_a_symbolic_link_writes_its_target_and_keeps_the_link(tmp_path):
    runs = tmp_path / "runs" / "7"
    runs.mkdir(parents=True)
    target = runs / "model.npz"
    target.write_bytes(b"old")
    os.chmod(target, 0o640)
    (tmp_path / "runs" / "latest").symlink_to("7", target_is_directory=True)
    link = tmp_path / "model.npz"
    link.symlink_to(os.path.join("runs", "latest", "model.npz"))
    second = tmp_path / "again.npz"
    second.symlink_to("model.npz")  # a chain of two links
    with atomic_write(second) as file:
        assert temporaries(runs) != [] and temporaries(tmp_path) == []  # beside the target
        file.write(b"new")
    assert link.is_symlink() and second.is_symlink()
    assert os.readlink(link) == os.path.join("runs", "latest", "model.npz")
    assert target.read_bytes() == b"new"
    assert target.stat().st_mode & 0o777 == 0o640


def test_a_dangling_link_gets_its_target_created_and_a_loop_is_refused(tmp_path):
    (tmp_path / "dangling").symlink_to("made.npz")
    save(tmp_path / "dangling")
    assert (tmp_path / "dangling").is_symlink()
    assert (tmp_path / "made.npz").read_bytes() == b"new"
    (tmp_path / "a").symlink_to("b")
    (tmp_path / "b").symlink_to("a")
    with pytest.raises(OSError, match="symbolic links") as caught:
        save(tmp_path / "a")
    assert caught.value.errno == errno.ELOOP
    (tmp_path / "nowhere").symlink_to(tmp_path / "missing" / "model.npz")
    with pytest.raises(FileNotFoundError, match="the target of the link"):
        save(tmp_path / "nowhere")


def test_saves_racing_in_one_folder_never_remove_each_others_files(tmp_path):
    # each save cleans the folder while the others create and lock their temporaries
    errors = []

    def work(index):
        try:
            for round in range(25):
                save(tmp_path / f"model{index}.npz", f"{index} {round}".encode())
        except BaseException as error:  # reported to the test's thread
            errors.append(error)

    threads = [threading.Thread(target=work, args=(index,)) for index in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert temporaries(tmp_path) == []
    for index in range(6):
        assert (tmp_path / f"model{index}.npz").read_bytes() == f"{index} 24".encode()


def test_write_text_replaces_a_file_whole(tmp_path):
    from bprop._files import write_text

    path = tmp_path / "config.toml"
    path.write_text("old\n")
    write_text(path, "new = 1\n")
    assert path.read_text() == "new = 1\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.toml"]  # no temporary left
