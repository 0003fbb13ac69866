"""Finding, verifying and downloading dataset files.

The data directory is ``$CERTLAB_DATA`` when set, else ``~/.cache/certlab``. A file is used
only after its sha256 matches the registry, checked every time it is used (no cache keyed by
size and modification time, which a same-size corruption with a restored mtime would pass). A missing file is downloaded to a temporary file
in the same folder, verified, and then renamed into place atomically, so a failed or
corrupted download never leaves a half-written file where the loaders look.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from .registry import DataFile, Dataset, dataset_names, get_dataset

__all__ = ["DATA_ENV_VAR", "DataError", "DataUnavailableError", "ChecksumError", "data_dir",
           "sha256_of", "dataset_path", "fetch_file", "fetch_dataset"]

DATA_ENV_VAR = "CERTLAB_DATA"
_DOWNLOAD_TIMEOUT_S = 60


class DataError(RuntimeError):
    """Base class of the data layer's errors."""


class DataUnavailableError(DataError):
    """A dataset file is missing and could not be downloaded."""


class ChecksumError(DataError):
    """A dataset file does not have any of the registered sha256 digests."""


def data_dir(root: str | os.PathLike | None = None) -> Path:
    """The data directory: ``root`` if given, else ``$CERTLAB_DATA``, else ``~/.cache/certlab``."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get(DATA_ENV_VAR)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "certlab"


def sha256_of(path: str | os.PathLike) -> str:
    """The sha256 hex digest of a file (read in 1 MiB blocks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _where(root: Path) -> str:
    source = ("given as root" if os.environ.get(DATA_ENV_VAR) is None or
              Path(os.environ[DATA_ENV_VAR]).expanduser() != root else f"from ${DATA_ENV_VAR}")
    return f"data directory {root} ({source}; set ${DATA_ENV_VAR} to use another one)"


def _verify(path: Path, entry: DataFile, dataset: Dataset, root: Path) -> Path:
    # Hashed on every use: a cache keyed by size and mtime would miss a same-size
    # corruption whose mtime was restored (the files are small: ~0.1 s for all of MNIST).
    digest = sha256_of(path)
    if digest not in entry.sha256:
        raise ChecksumError(
            f"dataset {dataset.name!r}: file {path} is corrupt or not the expected version "
            f"(sha256 {digest}, expected {' or '.join(entry.sha256)}). It was not used. Delete it "
            f"to download a fresh copy, or put the right file there ({_where(root)}).")
    return path


def _download(entry: DataFile) -> bytes:
    errors = []
    for url in entry.urls:
        try:
            with urllib.request.urlopen(url, timeout=_DOWNLOAD_TIMEOUT_S) as response:
                payload = response.read()
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            errors.append(f"{url}: {exc}")
            continue
        if entry.member is None:
            return payload
        try:
            with zipfile.ZipFile(io.BytesIO(payload)) as archive:
                return archive.read(entry.member)
        except (zipfile.BadZipFile, KeyError) as exc:
            errors.append(f"{url}: archive has no usable member {entry.member!r} ({exc})")
    raise DataUnavailableError("; ".join(errors) or "no download address")


def fetch_file(entry: DataFile, dataset: Dataset, root: str | os.PathLike | None = None,
               download: bool = True) -> Path:
    """Return the verified local path of ``entry``, downloading it if missing.

    Raises:
        ChecksumError: the local (or downloaded) file has the wrong sha256; nothing is written.
        DataUnavailableError: the file is missing and could not be downloaded (offline, say).
    """
    base = data_dir(root)
    path = base / entry.relpath
    if path.is_file():
        return _verify(path, entry, dataset, base)
    if not download:
        raise DataUnavailableError(_missing_message(dataset, path, base, "downloads are off"))
    try:
        payload = _download(entry)
    except DataUnavailableError as exc:
        raise DataUnavailableError(_missing_message(dataset, path, base, str(exc))) from None
    digest = hashlib.sha256(payload).hexdigest()
    if digest not in entry.sha256:
        raise ChecksumError(
            f"dataset {dataset.name!r}: the download of {entry.relpath} has sha256 {digest}, "
            f"expected {' or '.join(entry.sha256)}; nothing was written to {path}.")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return _verify(path, entry, dataset, base)


def _missing_message(dataset: Dataset, path: Path, root: Path, reason: str) -> str:
    return (f"dataset {dataset.name!r}: file {path} is missing and could not be downloaded "
            f"({reason}). Put the file there or point ${DATA_ENV_VAR} at a folder that has it "
            f"({_where(root)}). Valid dataset names: {', '.join(dataset_names())}.")


def fetch_dataset(name: str, root: str | os.PathLike | None = None,
                  download: bool = True) -> dict[str, Path]:
    """Verify (and download if missing) every file of dataset ``name``.

    Returns:
        A mapping from each file's registry ``relpath`` to its verified local path.
    """
    dataset = get_dataset(name)
    return {f.relpath: fetch_file(f, dataset, root, download) for f in dataset.files}


def dataset_path(name: str, root: str | os.PathLike | None = None) -> Path:
    """The folder where dataset ``name``'s files live (they may not exist yet)."""
    dataset = get_dataset(name)
    return data_dir(root) / Path(dataset.files[0].relpath).parent
