"""Atomic file writes: write under a temporary name in the same folder, then rename.

A kill at any moment leaves either the old file or the new one, never half of one. A folder that is
guarded (a run's, while it trains) is never made again: a write into it after it vanished, or was
replaced by another folder of the same name, raises FolderGone instead of quietly starting a new one.
"""

import contextlib
import errno
import os
import shutil

_GUARDED = {}  # absolute folder -> (st_dev, st_ino) it had when guard() was called


class FolderGone(FileNotFoundError):
    """A guarded folder vanished (deleted, moved, a mount dropped) or was replaced while in use."""


@contextlib.contextmanager
def guard(folder):
    """While inside, writes below `folder` (which must exist) check that it is still the same folder."""
    folder = os.path.abspath(folder)
    st = os.stat(folder)
    _GUARDED[folder] = (st.st_dev, st.st_ino)
    try:
        yield
    finally:
        _GUARDED.pop(folder, None)


def check_guarded(path):
    """FolderGone when `path` lies in a guarded folder that is gone or is not the folder it was."""
    path = os.path.abspath(path)
    for folder, identity in list(_GUARDED.items()):
        if path == folder or path.startswith(folder + os.sep):
            try:
                st = os.stat(folder)
            except FileNotFoundError:
                raise FolderGone(errno.ENOENT, "the folder vanished (deleted, moved or unmounted)", folder) from None
            if (st.st_dev, st.st_ino) != identity:
                raise FolderGone(errno.ENOENT, "the folder was replaced by another of the same name", folder)


def append_text(path, text):
    """Add text at the end of a file (made if missing), in a folder that must be there."""
    check_guarded(path)
    with open(path, "a") as f:
        f.write(text)


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside `path`; on success move it into place.

    The temporary name keeps the extension (Keras and Pillow pick the format
    from it) and starts with '.tmp-' so it is never mistaken for a result.
    """
    path = os.fspath(path)
    folder, name = os.path.split(os.path.abspath(path))
    check_guarded(folder)
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".tmp-{os.getpid()}-{name}")
    try:
        yield tmp
        with open(tmp, "rb+") as f:  # flush to disk before the rename makes it visible
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:  # say which file could not be written, not its temporary name
        if e.filename != tmp and tmp not in str(e):
            raise
        raise OSError(e.errno, e.strerror or str(e).replace(tmp, path), path) from None  # errno picks the subclass
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_text(path, text):
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            f.write(text)


def copy_file(src, dst):
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)
