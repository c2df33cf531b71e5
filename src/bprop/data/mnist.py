"""MNIST and Fashion-MNIST: find the four IDX files on disk, verify them, or download them.

Where the files are looked for, in order:

1. the ``data_dir`` argument, if given (then only there);
2. ``$BPROP_DATA``;
3. the per-user cache, ``$XDG_CACHE_HOME/bprop/<name>`` (``~/.cache/bprop/<name>`` by default);
4. for Fashion-MNIST, ``/usr/share/datasets/fashion-mnist`` (Debian's
   ``dataset-fashion-mnist`` package).

A folder that you name, ``data_dir`` or ``$BPROP_DATA``, may be either the folder that holds
``mnist/`` and ``fashion-mnist/`` or the ``mnist/`` (``fashion-mnist/``) folder itself: its
subfolder of the dataset's name is looked in first, then the folder itself (unless the folder
is named after the other dataset, whose files have the same names).

Each file may be gzipped or not. Every file is verified by the SHA-256 of its *decompressed*
content, so a genuine copy re-compressed by someone else (Debian's Fashion-MNIST is one) is
accepted, and a damaged one is refused with the name of the file. When the files are nowhere
and ``download=True``, they are fetched from the public mirrors into the cache (``data_dir``
if given), verified the same way before anything is written, and written atomically: a partial
or corrupt download never becomes a cached file. With ``data_dir``, they are downloaded into
``data_dir/<name>`` (or into ``data_dir`` itself if it is named after the dataset), where the
next search finds them.

No file is read whole before it is checked: a gzipped file is decompressed only up to the
size of the genuine file plus one byte, so a small file that would unpack to gigabytes is
refused at once.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._files import atomic_write
from .._progress import ProgressBar
from .idx import IDXError, decompress, out_of_memory, parse_idx, read_bytes


@dataclass(frozen=True)
class IDXFile:
    name: str            # canonical gzipped name, e.g. "train-images-idx3-ubyte.gz"
    content_size: int    # bytes once decompressed
    content_sha256: str  # SHA-256 of the decompressed content


@dataclass(frozen=True)
class Source:
    title: str
    folder: str
    files: dict[str, IDXFile]
    mirrors: tuple[str, ...]
    system_dirs: tuple[str, ...] = ()


# Checksums of the decompressed content of the canonical files (the compressed MNIST files are
# byte-identical to the original distribution; see shared/data/mnist/SOURCE.md).
MNIST = Source(
    title="MNIST",
    folder="mnist",
    files={
        "train_images": IDXFile("train-images-idx3-ubyte.gz", 47040016,
                                "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
        "train_labels": IDXFile("train-labels-idx1-ubyte.gz", 60008,
                                "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
        "test_images": IDXFile("t10k-images-idx3-ubyte.gz", 7840016,
                               "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
        "test_labels": IDXFile("t10k-labels-idx1-ubyte.gz", 10008,
                               "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
    },
    mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/",
             "https://storage.googleapis.com/cvdf-datasets/mnist/"),
)

FASHION_MNIST = Source(
    title="Fashion-MNIST",
    folder="fashion-mnist",
    files={
        "train_images": IDXFile("train-images-idx3-ubyte.gz", 47040016,
                                "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
        "train_labels": IDXFile("train-labels-idx1-ubyte.gz", 60008,
                                "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
        "test_images": IDXFile("t10k-images-idx3-ubyte.gz", 7840016,
                               "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
        "test_labels": IDXFile("t10k-labels-idx1-ubyte.gz", 10008,
                               "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
    },
    mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    system_dirs=("/usr/share/datasets/fashion-mnist",),
)

#: names of the ten Fashion-MNIST classes, by label
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot")

#: the datasets whose files have the same names
SOURCES = (MNIST, FASHION_MNIST)


def load_mnist(data_dir=None, *, scale: bool = True, flatten: bool = True,
               download: bool = True, verbose: bool = True):
    """The MNIST handwritten digits: ``(X_train, y_train), (X_test, y_test)``.

    Parameters
    ----------
    data_dir : folder holding the four files, or holding a ``mnist/`` folder with them; by
        default they are searched for (see the module docstring).
    scale : True for float32 pixels in [0, 1]; False for the raw uint8 values 0..255.
    flatten : True for images as rows of 784 values (ready for ``fit``); False for 28x28.
    download : fetch the files from the public mirrors if they are nowhere to be found.
    verbose : show a progress bar while downloading.

    Returns
    -------
    tuple
        60,000 training and 10,000 test images with their labels (int64, 0..9).
    """
    return load(MNIST, data_dir, scale=scale, flatten=flatten, download=download,
                verbose=verbose)


def load_fashion_mnist(data_dir=None, *, scale: bool = True, flatten: bool = True,
                       download: bool = True, verbose: bool = True):
    """Zalando's Fashion-MNIST (same layout as :func:`load_mnist`; class names in
    :data:`FASHION_CLASSES`)."""
    return load(FASHION_MNIST, data_dir, scale=scale, flatten=flatten, download=download,
                verbose=verbose)


def load(source: Source, data_dir=None, *, scale: bool, flatten: bool, download: bool,
         verbose: bool):
    """``(X_train, y_train), (X_test, y_test)`` of ``source``, found or downloaded (see the
    module docstring); :func:`load_mnist` gives the meaning of the other arguments."""
    folders = search_folders(source, data_dir)
    found = next((folder for folder in folders if find_files(source, folder)), None)
    if found is None:
        if not download:
            raise FileNotFoundError(missing_message(source, folders, "downloading is off"))
        found = download_folder(source, data_dir)
        fetch(source, found, folders, verbose)
    paths = find_files(source, found)
    arrays = {role: read_verified(source.files[role], paths[role]) for role in source.files}
    splits = []
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if len(images) != len(labels):
            raise IDXError(f"{paths[f'{split}_images']} holds {len(images)} images but "
                           f"{paths[f'{split}_labels']} holds {len(labels)} labels")
        if flatten:
            images = images.reshape(len(images), -1)
        if scale:
            try:
                images = images.astype(np.float32)
            except MemoryError:
                raise out_of_memory(str(paths[f"{split}_images"]), images.size * 4) from None
            images /= np.float32(255)  # in place: one float copy of the data, not two
        splits.append((images, labels.astype(np.int64)))
    return tuple(splits)


def data_folder(source: Source, data_dir=None) -> Path | None:
    """The folder that :func:`load` reads ``source``'s files from (absolute), or None if
    they are nowhere yet; for recording where a run's data came from."""
    found = next((folder for folder in search_folders(source, data_dir)
                  if find_files(source, folder)), None)
    return None if found is None else found.expanduser().resolve()


def candidate_folders(source: Source, data_dir=None) -> list[Path]:
    """The places named for the files, in order: ``data_dir`` alone if given, else
    ``$BPROP_DATA/<name>``, the cache and the system folders. :func:`search_folders` expands
    the folders you name into where they are looked in."""
    if data_dir is not None:
        return [Path(data_dir).expanduser()]
    folders = []
    if os.environ.get("BPROP_DATA"):
        folders.append(Path(os.environ["BPROP_DATA"]).expanduser() / source.folder)
    folders.append(cache_folder(source))
    folders.extend(Path(d) for d in source.system_dirs)
    return folders


def search_folders(source: Source, data_dir=None) -> list[Path]:
    """Where the files are looked for, in order.

    ``data_dir`` and ``$BPROP_DATA`` are treated alike: each may be the folder holding
    ``<name>/`` or that folder itself, so ``DIR/<name>`` is looked in, then ``DIR``.
    """
    if data_dir is not None:
        named = [Path(data_dir).expanduser()]
    else:
        named = [Path(os.environ["BPROP_DATA"]).expanduser()] \
            if os.environ.get("BPROP_DATA") else []
    folders = []
    for folder in named:
        folders.append(folder / source.folder)
        # A folder named after another dataset holds that one's files, under the same names.
        if folder.name not in _other_folders(source):
            folders.append(folder)
    if data_dir is None:
        folders.append(cache_folder(source))
        folders.extend(Path(d) for d in source.system_dirs)
    return folders


def _other_folders(source: Source) -> set[str]:
    return {other.folder for other in SOURCES} - {source.folder}


def download_folder(source: Source, data_dir=None) -> Path:
    """Where :func:`fetch` puts files that are nowhere: ``data_dir/<name>`` (``data_dir``
    itself if it is named ``<name>``), or the cache."""
    if data_dir is None:
        return cache_folder(source)
    folder = Path(data_dir).expanduser()
    return folder if folder.name == source.folder else folder / source.folder


def cache_folder(source: Source) -> Path:
    """``$XDG_CACHE_HOME/bprop/<name>``; the XDG rules ignore a relative XDG_CACHE_HOME."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or "")
    if not base.is_absolute():
        base = Path.home() / ".cache"
    return base / "bprop" / source.folder


def find_files(source: Source, folder: Path) -> dict[str, Path] | None:
    """The path of each of the four files in ``folder`` (gzipped or not), or None."""
    paths = {}
    for role, spec in source.files.items():
        plain = spec.name[:-len(".gz")]
        names = [spec.name, plain, plain.replace("-idx", ".idx"),
                 plain.replace("-idx", ".idx") + ".gz"]
        path = next((folder / n for n in names if (folder / n).is_file()), None)
        if path is None:
            return None
        paths[role] = path
    return paths


def _partial(source: Source, folder: Path) -> str:
    """For a folder holding some of the files: which ones are missing."""
    missing = [spec.name for spec in source.files.values()
               if find_files(Source(source.title, source.folder, {"f": spec}, ()), folder)
               is None]
    if len(missing) in (0, len(source.files)):
        return ""
    return f"   (has some of the files, but not {', '.join(missing)})"


def read_verified(spec: IDXFile, path: Path) -> np.ndarray:
    """The array in ``path``, once its decompressed content is known to be ``spec``'s.

    Nothing beyond the genuine file's size plus one byte is decompressed, and a lack of
    memory is an :class:`~bprop.data.idx.IDXMemoryError` naming the file.
    """
    try:
        content = read_bytes(path, limit=spec.content_size)
        check_content(spec, content, str(path))
        return parse_idx(content, str(path))
    except MemoryError as error:
        if isinstance(error, IDXError):
            raise
        raise out_of_memory(str(path), spec.content_size) from None


def check_content(spec: IDXFile, content: bytes | bytearray, name: str) -> None:
    """Refuse ``content`` (the decompressed file ``name``, perhaps cut at one byte more than
    the genuine file's size) unless it is ``spec``'s genuine content."""
    if len(content) == spec.content_size and (
            hashlib.sha256(content).hexdigest() == spec.content_sha256):
        return
    if len(content) > spec.content_size:
        what = (f"its decompressed content is more than the genuine {spec.content_size:,} "
                "bytes")
    else:
        digest = hashlib.sha256(content).hexdigest()
        other = next((f"{source.title}'s {other.name}" for source in SOURCES
                      for other in source.files.values() if other.content_sha256 == digest),
                     None)
        what = f"it is {other}" if other else (
            f"its decompressed content is {len(content):,} bytes with a different SHA-256 "
            "than expected")
    raise IDXError(f"{name} is not the genuine {spec.name} ({what}); the file is damaged or a "
                   "different dataset: delete it and let bprop download it, or replace it")


def fetch(source: Source, folder: Path, searched: list[Path], verbose: bool) -> None:
    """Download every file into ``folder``, verifying each before it is written."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise FileNotFoundError(missing_message(
            source, searched, f"the download folder cannot be created ({error})")) from None
    for spec in source.files.values():
        target = folder / spec.name
        if target.is_file():
            continue
        errors = []
        for mirror in source.mirrors:
            try:
                payload = download(mirror + spec.name, verbose)
                check_content(spec, decompress(payload, mirror + spec.name,
                                               limit=spec.content_size), mirror + spec.name)
            except (OSError, ValueError, http.client.HTTPException) as error:
                errors.append(f"{mirror}: {error}")
                continue
            with atomic_write(target) as file:
                file.write(payload)
            break
        else:
            raise FileNotFoundError(
                missing_message(source, searched, "downloading failed:\n  " + "\n  ".join(errors)))


def download(url: str, verbose: bool, timeout: float = 30.0) -> bytes:
    """The body of ``url``, with a progress bar; raises OSError if it arrives incomplete."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        total = response.length
        bar = ProgressBar(total, f"downloading {url.rsplit('/', 1)[-1]}", unit="B") \
            if verbose else None
        chunks = []
        try:
            while chunk := response.read(1 << 16):
                chunks.append(chunk)
                if bar:
                    bar.update(len(chunk))
        finally:
            if bar:
                bar.close()
    payload = b"".join(chunks)
    if total is not None and len(payload) != total:
        raise OSError(f"incomplete download: {len(payload)} of {total} bytes")
    return payload


def missing_message(source: Source, folders: list[Path], reason: str) -> str:
    names = ", ".join(spec.name for spec in source.files.values())
    places = "\n".join(f"  {folder}{_partial(source, folder)}" for folder in folders)
    return (
        f"{source.title} files not found and {reason}.\nPlace these four files ({names}) in "
        f"one of:\n{places}\nor point BPROP_DATA, or data_dir=... (--data-dir on the command "
        f"line), at their folder or at a folder holding a '{source.folder}' subfolder with them."
    )
