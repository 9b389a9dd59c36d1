"""Folders of photos of any size and mode, brought to one square size, and the cache that keeps them decoded.

A folder (and its subfolders) of .png, .jpg, .bmp, .gif or .webp files becomes one uint8
array (N, S, S, C): each image cropped to its centred square (or stretched) and resized
with Pillow, in threads. Folders of CACHE_MIN_FILES images or more keep the decoded array
in the Keras cache and reuse it while their files are unchanged. A folder with one
subfolder per class gives labels too (folder_classes).
"""

import hashlib
import json
import os
import time
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .datasets import CATS_DOGS, cache_name, check_images, keras_home
from .files import atomic_path
from .panel import RESIZES

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


FOLDER_SIZE = 32  # the side folders of photos are brought to when image_size is 0: the tutorial's models take 32 x 32


CACHE_MIN_FILES = 1000  # folders with at least this many images keep their decoded array in the Keras cache


GREY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N")  # Pillow modes stored as greyscale


def is_folder(dataset):
    """True when dataset names a folder of image files (or cats_vs_dogs): images of any size, brought to one."""
    if dataset in CATS_DOGS:
        return True
    return os.path.isdir(dataset) and not os.path.exists(os.path.join(dataset, "data_batch_1"))


def check_load_options(image_size, resize, channels):
    """One ValueError for each bad image_size, resize or channels, saying what is allowed."""
    if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)) or image_size < 0:
        raise ValueError(f"image_size must be a whole number of pixels (0: the dataset's or architecture's size), "
                         f"got {image_size!r}")
    if resize not in RESIZES:
        raise ValueError(f"resize must be one of {', '.join(RESIZES)} (crop: the centred square, then resized; "
                         f"stretch: the whole image squeezed to a square), got {resize!r}")
    if channels not in (0, 1, 3):
        raise ValueError(f"channels must be 0 (greyscale only when every image is), 1 (greyscale) or 3 (RGB), "
                         f"got {channels!r}")


def folder_classes(folder):
    """The class names of a folder with one subfolder per class: its subfolders' names, sorted (hidden ones left out).

    ValueError when it has no subfolder holding images: a conditional GAN needs the classes.
    """
    names = sorted(d.name for d in os.scandir(folder) if d.is_dir() and not d.name.startswith(".")
                   and d.name != "__MACOSX" and image_files(d.path)) if os.path.isdir(folder) else []
    if not names:
        raise ValueError(f"folder {folder!r} has no subfolders of images, so its images have no classes; a "
                         "conditional GAN (arch cgan or acgan) wants one subfolder per class (e.g. photos/cats/*.jpg, "
                         "photos/dogs/*.jpg), or train an unconditional arch (tutorial, dcgan)")
    return names


def read_image_folder(folder, image_size=FOLDER_SIZE, resize="crop", channels=0, limit=0, workers=0, cache=None,
                      log=None, labels=False):
    """Every image file in a folder and its subfolders, in path order -> uint8 (N, image_size, image_size, C).

    Files may have any size and Pillow mode (RGB, RGBA, P, L, CMYK, 16-bit...). Each is
    brought to a square: resize='crop' keeps the centred square and resizes it,
    'stretch' resizes the whole image. channels 0: one channel when every image is
    stored greyscale, else RGB (transparent pixels become white); 1 or 3 forces it.
    Files that cannot be read (truncated, empty, not images) are skipped with one
    warning; a folder with none readable is a ValueError. limit keeps the first N
    readable images. workers: decoding threads (0: Python's default, 1: none).
    cache: keep the decoded array as an .npy under the Keras cache and reuse it while
    the folder's files (names, sizes, times) are unchanged; None does it for folders
    of CACHE_MIN_FILES images or more. log: a function given one line about the load.
    labels=True: (x, int64 labels (N,)), each image's class the index of its subfolder among
    folder_classes(folder); an image outside the class subfolders is a ValueError. The cache
    keeps the images alone: the labels follow from the file names, which its listing fixes.
    """
    check_load_options(image_size, resize, channels)
    if image_size < 1:
        raise ValueError(f"image_size must be at least 1 pixel for a folder, got {image_size}")
    start = time.perf_counter()
    files = image_files(folder)
    if not files:
        raise ValueError(f"folder {folder!r} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
    file_labels = _file_labels(folder, files) if labels else None
    wanted = min(limit, len(files)) if limit else len(files)
    if cache is None:
        cache = wanted >= CACHE_MIN_FILES
    npy, meta = _cache_paths(folder, image_size, resize, channels, limit)
    listing = _listing_digest(folder, files) if cache else None
    cached = _read_cache(npy, meta, listing, image_size) if cache else None
    if cached is not None:
        x, skipped, tried = cached
        where = f"from the cache {npy}"
    else:
        workers = workers or min(32, (os.cpu_count() or 1) + 4)  # ThreadPoolExecutor's default
        x, skipped, tried = _decode_files(files, image_size, resize, channels, workers, wanted)
        where = f"{workers} thread{'s' * (workers > 1)}"
        if cache:
            where += _write_cache(npy, meta, x, listing, tried, skipped)
    if not len(x):  # one error for the one fact, no warning before it
        raise ValueError(f"folder {folder!r} holds {len(files)} image files but none could be read as an image "
                         f"(e.g. {skipped[0]}); check that they are whole JPEG, PNG, BMP or GIF files")
    if skipped:  # tried: all the files, or with a limit as many as it took to find that many images
        warnings.warn(f"skipped {len(skipped)} of {tried} files in {folder} that are not readable images, "
                      f"e.g. {skipped[0]}", stacklevel=2)
    if log:
        log(f"{folder}: {len(files):,} image files, {len(skipped):,} skipped -> uint8 {x.shape} ({resize}) "
            f"in {time.perf_counter() - start:.1f} s, {where}")
    if labels:  # the files read: the first `tried`, less the skipped ones, in path order, as decoded
        gone = set(skipped)
        return x, np.array([y for f, y in zip(files[:tried], file_labels) if f not in gone], np.int64)[:len(x)]
    return x


def _file_labels(folder, files):
    """The class of each file: the index of its first folder under `folder` among folder_classes(folder)."""
    index = {name: i for i, name in enumerate(folder_classes(folder))}
    out = []
    for path in files:
        top = os.path.relpath(path, folder).split(os.sep)[0]
        if top not in index:
            raise ValueError(f"{path} lies outside the class subfolders of {folder!r} ({', '.join(index)}); move it "
                             "into the subfolder of its class")
        out.append(index[top])
    return out


def resize_images(x, image_size, resize="crop", channels=0, workers=0, log=None):
    """uint8 images (N, H, W) or (N, H, W, C) -> uint8 (N, S, S, C'), each brought to a square like a folder's.

    image_size 0 keeps the size (N, H, W, C'); channels 0 keeps the channels. Returns x
    itself when nothing changes.
    """
    check_load_options(image_size, resize, channels)
    x = check_images(x, name="images to resize", scaled=False)  # uint8 (N, H, W, C)
    h, w, c = x.shape[1:]
    out_h, out_w = (image_size, image_size) if image_size else (h, w)
    channels = channels or c
    if (out_h, out_w, channels) == (h, w, c):
        return x
    from PIL import Image

    start = time.perf_counter()
    mode = "L" if channels == 1 else "RGB"
    out = np.empty((len(x), out_h, out_w, channels), np.uint8)

    def one(i):
        im = Image.fromarray(x[i, ..., 0] if c == 1 else x[i]).convert(mode)  # (H, W) is mode L, (H, W, 3) RGB
        out[i] = np.asarray(_fit(im, image_size, resize) if image_size else im).reshape(out_h, out_w, channels)

    with ThreadPoolExecutor(workers or None) as pool:  # Pillow releases the GIL while it resizes
        list(pool.map(one, range(len(x))))
    if log:
        log(f"resized {len(x):,} images {h}x{w}x{c} -> {out_h}x{out_w}x{channels} ({resize}) "
            f"in {time.perf_counter() - start:.1f} s")
    return out


def image_files(folder):
    """Image files (by extension) under folder, sorted by path; hidden files and folders (.DS_Store, __MACOSX) left out."""
    files = []
    for root, dirs, names in os.walk(folder, followlinks=True):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d != "__MACOSX"]
        files += [os.path.join(root, n) for n in names if n.lower().endswith(IMAGE_EXTENSIONS) and not n.startswith(".")]
    return sorted(files)


def _decode_files(files, size, resize, channels, workers, wanted):
    """Decode files in order until `wanted` images are read -> (uint8 (n, size, size, C), skipped paths, files tried).

    Pillow releases the GIL while it decodes and resizes, so threads run in parallel.
    """
    out = np.empty((wanted, size, size, 1 if channels == 1 else 3), np.uint8)  # auto: RGB until all prove grey
    n, taken, skipped, all_grey = 0, 0, [], True

    def decode(path):
        return _decode(path, size, resize, channels)

    pool = ThreadPoolExecutor(workers) if workers > 1 else None
    try:
        while n < wanted and taken < len(files):
            batch = files[taken:taken + wanted - n]  # a skipped file makes room for the next one
            taken += len(batch)
            for path, image in zip(batch, pool.map(decode, batch) if pool else map(decode, batch)):
                if image is None:
                    skipped.append(path)
                    continue
                out[n] = image  # (size, size, 1) fills all 3 channels while the choice is open
                all_grey &= image.shape[-1] == 1
                n += 1
    finally:
        if pool:
            pool.shutdown(cancel_futures=True)
    x = out[:n]
    if channels == 0 and all_grey and n:
        x = np.ascontiguousarray(x[..., :1])
    return x, skipped, taken


def _decode(path, size, resize, channels):
    """One image file -> uint8 (size, size, 1 or 3), or None when it cannot be read as an image.

    channels 0: 1 channel for files stored greyscale, 3 for the rest.
    """
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as im:
            mode = "L" if (channels == 1 or (channels == 0 and im.mode in GREY_MODES)) else "RGB"
            # JPEG only: decode at 1/2, 1/4 or 1/8 scale while that stays at least twice the size (as Image.thumbnail)
            im.draft(mode, (2 * size, 2 * size))
            im.load()
            ImageOps.exif_transpose(im, in_place=True)  # phone photos: upright as they are shown
            image = np.asarray(_fit(_convert(im, mode), size, resize))
    except MemoryError:
        raise
    except Exception:  # Pillow raises OSError, ValueError, SyntaxError, ... for broken files: all mean "skip it"
        return None
    return image.reshape(size, size, -1)  # L: (size, size) -> (size, size, 1)


def _convert(im, mode):
    """A Pillow image of any mode -> mode 'L' or 'RGB'.

    16-bit greyscale is scaled to 8 bits (Pillow's convert would clip it at 255);
    transparent pixels are laid on white.
    """
    from PIL import Image

    if im.mode.startswith("I"):  # 16-bit (or 32-bit) integer greys, 0..65535
        im = Image.fromarray((np.asarray(im, np.float32) / 257).round().clip(0, 255).astype(np.uint8))
    if "A" in im.getbands() or "transparency" in im.info:
        im = Image.alpha_composite(Image.new("RGBA", im.size, "white"), im.convert("RGBA"))
    return im.convert(mode)


def _fit(im, size, resize):
    """A Pillow image -> size x size: its centred square resized ('crop'), or all of it ('stretch').

    Bicubic resampling, antialiased when shrinking (Lanczos differs by under 1 level of 255 on
    average for faces at 64 x 64 and costs half as much again: 250 against 165 us), after a
    quick reduction by whole factors while at least twice the size remains (reducing_gap), as
    Pillow's thumbnail does. An image already size x size comes back unchanged.
    """
    from PIL import Image

    w, h = im.size
    box = (0, 0, w, h)
    if resize == "crop":
        side = min(w, h)
        left, top = (w - side) / 2, (h - side) / 2  # fractional: exactly centred
        box = (left, top, left + side, top + side)
    return im.resize((size, size), Image.Resampling.BICUBIC, box=box, reducing_gap=2.0)


def _cache_paths(folder, size, resize, channels, limit):
    """The cache's .npy and .json for one folder and one set of load options (a changed folder overwrites them)."""
    key = json.dumps([os.path.abspath(folder), size, resize, channels, limit])
    name = hashlib.sha256(key.encode()).hexdigest()[:24]
    base = os.path.join(keras_home(), "gan_lib", "folders", name)
    return base + ".npy", base + ".json"


CACHE_VERSION = 1  # bump when decoding changes: older cache files are then decoded again


def _listing_digest(folder, files):
    """A digest of the files' relative paths, sizes and modification times, and of CACHE_VERSION."""
    h = hashlib.sha256(f"gan_lib folder cache {CACHE_VERSION}\n".encode())
    for path in files:
        try:
            st = os.stat(path)
            stamp = f"{st.st_size} {st.st_mtime_ns}"
        except OSError:
            stamp = "missing"
        h.update(f"{os.path.relpath(path, folder)}\0{stamp}\n".encode())
    return h.hexdigest()


def _read_cache(npy, meta, listing, size):
    """(x, skipped paths, files tried) from the cache when its listing matches, else None."""
    try:
        with open(meta) as f:
            info = json.load(f)
        if info.get("listing") != listing:
            return None
        x = np.load(npy, allow_pickle=False)
    except (OSError, ValueError, EOFError):  # no cache yet, or a damaged one: decode again
        return None
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1:3] != (size, size) or list(x.shape) != info.get("shape"):
        return None
    return x, info.get("skipped", []), info.get("tried", len(x))


def _write_cache(npy, meta, x, listing, tried, skipped):
    """Save x and its listing atomically; returns a few words for the report. Never fails the load."""
    try:
        if os.path.exists(meta):
            os.remove(meta)  # first: a .json always describes the .npy beside it
        with atomic_path(npy) as tmp:
            np.save(tmp, x)
        info = {"listing": listing, "shape": list(x.shape), "tried": tried, "skipped": skipped}
        with atomic_path(meta) as tmp, open(tmp, "w") as f:
            json.dump(info, f)
    except OSError as e:
        warnings.warn(f"could not cache the decoded images in {npy} ({e.strerror or e}); the next load decodes "
                      "them again", stacklevel=3)
        return ""
    return f"; cached in {cache_name(npy)}"
