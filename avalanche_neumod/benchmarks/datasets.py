"""Dataset loading into in-memory uint8 tensors (``docs/streams.md``, "Data").

Every loader returns a :class:`ImageSplits`: it unpacks as
``x_train, y_train, x_test, y_test = load_mnist()`` (uint8 images, int64 targets)
and also carries ``classes`` (class names, index = target), ``path`` (where the
data was read) and ``extras`` (dataset-specific extras, e.g. CIFAR-100's coarse
labels). MNIST images are ``[N, 28, 28]``; colour images are ``[N, 3, H, W]``.

Data root: the ``root`` argument, else the ``NEUMOD_DATA_ROOT`` environment
variable, else Avalanche's default (``~/.avalanche/data``). Under the root each
dataset keeps its standard layout:

=====================  =====================================================
MNIST                  ``<root>/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte``
                       (torchvision's ``MNIST(root)``)
CIFAR-10               ``<root>/cifar-10-batches-py/`` (torchvision's pickles), else
                       ``<root>/cifar10-jpeg/{train,test}/<class>/*.jpg``
CIFAR-100              ``<root>/cifar-100-python/{train,test,meta}`` (torchvision's)
Tiny-ImageNet-200      ``<root>/tiny-imagenet-200/`` (Stanford's layout)
any class folders      ``<dir>/{train,test}/<class>/*`` (:func:`load_image_folder`)
=====================  =====================================================

Results are cached per process (keyed on the resolved path), so a stream built
twice decodes once. The returned tensors are shared with the cache: treat them
as read-only (index or ``clone()`` before modifying).

CIFAR pickles are read here, in torchvision's format (same file names, same
keys), rather than through ``torchvision.datasets.CIFAR10``: torchvision refuses
any file whose md5 differs from the official one, which would reject small files
written in the same format (as the tests do) or re-packed copies. Pass
``check_integrity=True`` to verify the official md5s with torchvision's list.
``download=True`` downloads (and verifies) through torchvision first.

The pickles are read with a restricted unpickler (:class:`_SafeUnpickler`): it
builds only builtin containers, strings, bytes, numbers and numpy arrays, and
refuses anything else (a planted pickle cannot run code). A malformed file
(unreadable, wrong keys, fewer labels than images, labels out of range, a
non-image named ``.jpg``, a class folder without images) raises
:class:`DatasetFormatError` naming the file or folder.
"""

from __future__ import annotations

import functools
import operator
import os
import pickle
import re
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np
import torch
from avalanche.benchmarks.datasets import default_dataset_location
from torchvision.datasets import CIFAR10, CIFAR100, MNIST
from torchvision.datasets.mnist import read_image_file, read_label_file
from torchvision.datasets.utils import check_integrity, download_and_extract_archive
from torchvision.io import ImageReadMode, decode_image, decode_jpeg

PathLike = Union[str, os.PathLike]

ENV_VAR = "NEUMOD_DATA_ROOT"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".ppm", ".pgm", ".webp")
TINY_IMAGENET_URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"

__all__ = [
    "DatasetFormatError",
    "DatasetNotFoundError",
    "ImageSplits",
    "clear_cache",
    "data_root",
    "load_cifar10",
    "load_cifar100",
    "load_image_folder",
    "load_mnist",
    "load_tiny_imagenet",
]


class DatasetNotFoundError(FileNotFoundError):
    """A dataset is not where it was looked for (the message says where and how to get it)."""


class DatasetFormatError(ValueError):
    """A dataset file or folder is present but malformed (the message names it)."""


class ImageSplits(tuple):
    """``(x_train, y_train, x_test, y_test)`` plus ``classes``, ``path`` and ``extras``."""

    classes: tuple[str, ...]
    path: Path
    extras: dict[str, Any]

    def __new__(
        cls,
        x_train: torch.Tensor,
        y_train: torch.Tensor,
        x_test: torch.Tensor,
        y_test: torch.Tensor,
        classes: Sequence[str],
        path: Path,
        extras: Optional[dict[str, Any]] = None,
    ) -> ImageSplits:
        self = super().__new__(cls, (x_train, y_train, x_test, y_test))
        self.classes = tuple(classes)
        self.path = Path(path)
        self.extras = dict(extras or {})
        return self

    def __getnewargs__(self) -> tuple:  # pickling / copying
        return (*self, self.classes, self.path, self.extras)

    def __getstate__(self) -> dict[str, Any]:
        return {"classes": self.classes, "path": self.path, "extras": self.extras}

    x_train = property(operator.itemgetter(0), doc="Train images, uint8.")
    y_train = property(operator.itemgetter(1), doc="Train targets, int64.")
    x_test = property(operator.itemgetter(2), doc="Test images, uint8.")
    y_test = property(operator.itemgetter(3), doc="Test targets, int64.")

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def data_root(root: Optional[PathLike] = None) -> Path:
    """The data root: ``root``, else ``$NEUMOD_DATA_ROOT``, else Avalanche's default."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    return Path(default_dataset_location(""))


def _missing(name: str, searched: Sequence[Path], layout: str, how: str) -> DatasetNotFoundError:
    paths = "\n".join(f"  - {p}" for p in searched)
    return DatasetNotFoundError(
        f"{name} not found. Searched:\n{paths}\nExpected layout: {layout}\n"
        f"To get it: {how}, or point the data root at a folder holding it "
        f"(argument root=..., or the {ENV_VAR} environment variable)."
    )


def clear_cache() -> None:
    """Forget every cached dataset (frees memory)."""
    for fn in (_mnist, _cifar_pickles, _folder_split, _tiny_train, _tiny_val):
        fn.cache_clear()


# ---------------------------------------------------------------- MNIST

_MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def load_mnist(root: Optional[PathLike] = None, download: bool = False) -> ImageSplits:
    """MNIST: 60,000 train and 10,000 test images, uint8 ``[N, 28, 28]``.

    Read with torchvision's ``MNIST(root)`` from ``<root>/MNIST/raw/``;
    ``download=True`` lets torchvision fetch it.
    """
    base = data_root(root)
    raw = base / "MNIST" / "raw"
    if download:
        MNIST(str(base), train=True, download=True)
    if not all((raw / f).is_file() for f in _MNIST_FILES):
        raise _missing(
            "MNIST",
            [raw],
            "<root>/MNIST/raw/ with the four uncompressed IDX files " + ", ".join(_MNIST_FILES),
            "call load_mnist(download=True) on a machine with internet access",
        )
    return _mnist(str(raw.resolve()))


def _read_idx(path: Path, images: bool) -> torch.Tensor:
    """One IDX file through torchvision's reader; a malformed file names itself."""
    try:
        t = read_image_file(str(path)) if images else read_label_file(str(path))
    except Exception as exc:  # the reader fails with whatever parsing hits first
        raise DatasetFormatError(
            f"{path}: not a valid IDX {'image' if images else 'label'} file "
            f"(truncated or corrupted? {type(exc).__name__}: {exc})"
        ) from exc
    return t


@functools.lru_cache(maxsize=4)
def _mnist(raw: str) -> ImageSplits:
    r = Path(raw)
    x_tr = _read_idx(r / _MNIST_FILES[0], True)
    y_tr = _read_idx(r / _MNIST_FILES[1], False).long()
    x_te = _read_idx(r / _MNIST_FILES[2], True)
    y_te = _read_idx(r / _MNIST_FILES[3], False).long()
    for x, y, fx, fy in ((x_tr, y_tr, *_MNIST_FILES[:2]), (x_te, y_te, *_MNIST_FILES[2:])):
        if len(x) != len(y):
            raise DatasetFormatError(
                f"{r / fx} holds {len(x)} images but {r / fy} holds {len(y)} labels"
            )
        if len(y) and not (0 <= int(y.min()) and int(y.max()) <= 9):
            raise DatasetFormatError(f"{r / fy}: labels must be in 0..9, found {int(y.max())}")
    classes = [
        f"{i} - {w}"
        for i, w in enumerate(
            ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
        )
    ]
    return ImageSplits(x_tr, y_tr, x_te, y_te, classes, r)


# ---------------------------------------------------------------- CIFAR


def _cifar_spec(which: str) -> dict[str, Any]:
    cls = CIFAR10 if which == "cifar10" else CIFAR100
    return {
        "cls": cls,
        "folder": cls.base_folder,
        "train": [f for f, _ in cls.train_list],
        "test": [f for f, _ in cls.test_list],
        "meta": cls.meta["filename"],
        "md5": dict(cls.train_list + cls.test_list),
    }


def load_cifar10(
    root: Optional[PathLike] = None,
    download: bool = False,
    check_integrity: bool = False,
    train_per_class: Optional[int] = None,
    test_per_class: Optional[int] = None,
) -> ImageSplits:
    """CIFAR-10, uint8 ``[N, 3, 32, 32]``, 10 classes.

    Looks for torchvision's pickles ``<root>/cifar-10-batches-py/`` first, then the
    class-folder layout ``<root>/cifar10-jpeg/{train,test}/<class>/*.jpg``.
    ``train_per_class`` / ``test_per_class`` keep only the first k images of each
    class (file order; only those are decoded), for small CPU runs and tests.
    """
    base = data_root(root)
    spec = _cifar_spec("cifar10")
    pickles = base / spec["folder"]
    folders = base / "cifar10-jpeg"
    if download and not _has_files(pickles, spec) and not folders.is_dir():
        spec["cls"](str(base), train=True, download=True)
    if _has_files(pickles, spec):
        if check_integrity:
            _check_md5(pickles, spec)
        full = _cifar_pickles(str(pickles.resolve()), "cifar10")
        return _limit(full, train_per_class, test_per_class)
    if (folders / "train").is_dir() and (folders / "test").is_dir():
        return load_image_folder(
            folders, train_per_class=train_per_class, test_per_class=test_per_class
        )
    raise _missing(
        "CIFAR-10",
        [pickles, folders],
        f"torchvision's pickles <root>/{spec['folder']}/ ({', '.join(spec['train'])}, "
        f"{', '.join(spec['test'])}, {spec['meta']}), or class folders "
        "<root>/cifar10-jpeg/{train,test}/<class>/*.jpg",
        "call load_cifar10(download=True) on a machine with internet access",
    )


def load_cifar100(
    root: Optional[PathLike] = None,
    download: bool = False,
    check_integrity: bool = False,
    train_per_class: Optional[int] = None,
    test_per_class: Optional[int] = None,
) -> ImageSplits:
    """CIFAR-100, uint8 ``[N, 3, 32, 32]``, 100 fine classes.

    Read from torchvision's pickles ``<root>/cifar-100-python/``. ``extras`` holds
    the 20 superclasses: ``y_train_coarse``, ``y_test_coarse``, ``coarse_classes``.
    ``train_per_class`` / ``test_per_class``: first k images of each fine class.
    """
    base = data_root(root)
    spec = _cifar_spec("cifar100")
    pickles = base / spec["folder"]
    if download and not _has_files(pickles, spec):
        spec["cls"](str(base), train=True, download=True)
    if not _has_files(pickles, spec):
        raise _missing(
            "CIFAR-100",
            [pickles],
            f"torchvision's pickles <root>/{spec['folder']}/ (train, test, meta)",
            "call load_cifar100(download=True) on a machine with internet access",
        )
    if check_integrity:
        _check_md5(pickles, spec)
    full = _cifar_pickles(str(pickles.resolve()), "cifar100")
    return _limit(full, train_per_class, test_per_class)


def _has_files(folder: Path, spec: dict[str, Any]) -> bool:
    names = spec["train"] + spec["test"] + [spec["meta"]]
    return all((folder / n).is_file() for n in names)


def _check_md5(folder: Path, spec: dict[str, Any]) -> None:
    bad = [n for n, md5 in spec["md5"].items() if not check_integrity(str(folder / n), md5)]
    if bad:
        raise ValueError(f"md5 mismatch for {', '.join(bad)} in {folder} (corrupted download?)")


def _first_per_class(y: torch.Tensor, k: Optional[int], name: str) -> Optional[torch.Tensor]:
    """Indices (in order) of the first ``k`` items of each class; None for all."""
    if k is None:
        return None
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"{name} must be an integer >= 1 or None, got {k!r}")
    counts = torch.bincount(y)
    smallest = int(counts[counts > 0].min())
    if k > smallest:
        raise ValueError(f"{name}={k} is larger than the smallest class ({smallest} items)")
    order = torch.argsort(y, stable=True)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.empty_like(y)
    rank[order] = torch.arange(len(y)) - starts[y[order]]
    return torch.nonzero(rank < k).flatten()


def _limit(d: ImageSplits, train_k: Optional[int], test_k: Optional[int]) -> ImageSplits:
    """``d`` cut to the first k images per class of each split (extras cut alike)."""
    tr = _first_per_class(d.y_train, train_k, "train_per_class")
    te = _first_per_class(d.y_test, test_k, "test_per_class")
    if tr is None and te is None:
        return d
    tr = torch.arange(len(d.y_train)) if tr is None else tr
    te = torch.arange(len(d.y_test)) if te is None else te
    extras = dict(d.extras)
    for key, idx in (("y_train_coarse", tr), ("y_test_coarse", te)):
        if key in extras:
            extras[key] = extras[key][idx]
    return ImageSplits(
        d.x_train[tr], d.y_train[tr], d.x_test[te], d.y_test[te], d.classes, d.path, extras
    )


# What a CIFAR pickle may ask for: builtin containers/numbers/strings, numpy's array
# (and scalar) reconstruction, and ``_codecs.encode`` (bytes in Python 3 protocol-2 pickles).
_SAFE_GLOBALS = {
    "builtins": set(
        "dict list tuple set frozenset str bytes bytearray int float complex bool".split()
    ),
    "numpy": {"ndarray", "dtype"},
    "numpy.core.multiarray": {"_reconstruct", "scalar"},
    "numpy._core.multiarray": {"_reconstruct", "scalar"},
    "_codecs": {"encode"},
}
_SAFE_GLOBALS["__builtin__"] = _SAFE_GLOBALS["builtins"]  # Python 2 pickles (official CIFAR)


class _SafeUnpickler(pickle.Unpickler):
    """An unpickler that builds only plain data and numpy arrays (never calls anything else)."""

    def find_class(self, module: str, name: str) -> Any:
        if name not in _SAFE_GLOBALS.get(module, ()):
            raise pickle.UnpicklingError(
                f"refused to load {module}.{name}: a CIFAR pickle holds only builtin "
                "containers, strings, numbers and numpy arrays (the file may have been "
                "tampered with; check_integrity=True verifies the official md5s)"
            )
        return super().find_class(module, name)


def _unpickle(path: Path) -> dict[str, Any]:
    """Read one CIFAR pickle with :class:`_SafeUnpickler`; errors name the file."""
    try:
        with open(path, "rb") as f:
            d = _SafeUnpickler(f, encoding="latin1").load()
    except Exception as exc:
        raise DatasetFormatError(
            f"{path}: cannot read this CIFAR pickle ({type(exc).__name__}: {exc})"
        ) from exc
    if not isinstance(d, dict):
        raise DatasetFormatError(f"{path}: a CIFAR pickle holds a dict, got {type(d).__name__}")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in d.items()}


def _keys(d: dict[str, Any], keys: Sequence[str], path: Path) -> None:
    missing = [k for k in keys if k not in d]
    if missing:
        raise DatasetFormatError(
            f"{path}: missing key(s) {missing} (found {sorted(map(str, d))}); "
            "expected torchvision's CIFAR format"
        )


def _labels(d: dict[str, Any], key: str, n: int, k: int, path: Path) -> np.ndarray:
    """``d[key]`` as int64 labels: one per image (``n``), each in ``[0, k)``."""
    try:
        y = np.asarray(d[key])
        ok = y.ndim == 1 and (y.size == 0 or np.issubdtype(y.dtype, np.integer))
    except Exception:  # ragged or odd objects
        ok = False
    if not ok:
        raise DatasetFormatError(f"{path}: {key!r} must be a flat list of integer labels")
    if len(y) != n:
        raise DatasetFormatError(f"{path}: {n} images but {len(y)} {key!r} (must be equal)")
    if len(y) and (y.min() < 0 or y.max() >= k):
        raise DatasetFormatError(
            f"{path}: {key!r} must be in [0, {k}) (the meta file's {k} names), "
            f"found {int(y.min())}..{int(y.max())}"
        )
    return y.astype(np.int64)


def _images(d: dict[str, Any], path: Path) -> np.ndarray:
    """``d["data"]`` as uint8 ``[N, 3, 32, 32]`` (rows of 3072 values)."""
    try:
        x = np.asarray(d["data"])
    except Exception:  # ragged nested lists
        x = None
    if not (x is not None and x.ndim == 2 and x.shape[1] == 3 * 32 * 32):
        shape = getattr(x, "shape", type(d["data"]).__name__)
        raise DatasetFormatError(f"{path}: 'data' must be an (N, 3072) array, got {shape}")
    if x.dtype != np.uint8:
        if not np.issubdtype(x.dtype, np.integer) or (x.size and (x.min() < 0 or x.max() > 255)):
            raise DatasetFormatError(f"{path}: 'data' must hold pixel values 0..255")
    return x.astype(np.uint8, copy=False).reshape(-1, 3, 32, 32)


@functools.lru_cache(maxsize=4)
def _cifar_pickles(folder: str, which: str) -> ImageSplits:
    spec = _cifar_spec(which)
    f = Path(folder)
    label_key = "labels" if which == "cifar10" else "fine_labels"
    meta_path = f / spec["meta"]
    meta = _unpickle(meta_path)
    name_keys = (
        ["label_names"] if which == "cifar10" else ["fine_label_names", "coarse_label_names"]
    )
    _keys(meta, name_keys, meta_path)
    names = {}
    for k in name_keys:
        v = meta[k]
        if not (isinstance(v, (list, tuple)) and v and all(isinstance(c, str) for c in v)):
            raise DatasetFormatError(f"{meta_path}: {k!r} must be a non-empty list of names")
        names[k] = tuple(v)
    n_classes = len(names[name_keys[0]])

    def read(files: list[str]) -> tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
        xs, ys, cs = [], [], []
        for n in files:
            path = f / n
            d = _unpickle(path)
            _keys(d, ["data", label_key] + (["coarse_labels"] if which == "cifar100" else []), path)
            x = _images(d, path)
            xs.append(x)
            ys.append(_labels(d, label_key, len(x), n_classes, path))
            if which == "cifar100":
                k = len(names["coarse_label_names"])
                cs.append(_labels(d, "coarse_labels", len(x), k, path))
        coarse = torch.from_numpy(np.concatenate(cs)) if cs else None
        return torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys)), coarse

    x_tr, y_tr, c_tr = read(spec["train"])
    x_te, y_te, c_te = read(spec["test"])
    if which == "cifar10":
        return ImageSplits(x_tr, y_tr, x_te, y_te, names["label_names"], f)
    extras = {
        "y_train_coarse": c_tr,
        "y_test_coarse": c_te,
        "coarse_classes": names["coarse_label_names"],
    }
    return ImageSplits(x_tr, y_tr, x_te, y_te, names["fine_label_names"], f, extras)


# ---------------------------------------------------------------- image files


def _natural_key(name: str) -> list:
    return [int(s) if s.isdigit() else s for s in re.split(r"(\d+)", name)]


def _decode_one(path: Path, data: torch.Tensor, mode: Any) -> torch.Tensor:
    try:
        return decode_image(data, mode=mode)
    except Exception as exc:
        raise DatasetFormatError(
            f"{path}: cannot decode this image ({type(exc).__name__}: {exc})"
        ) from exc


def _decode(files: Sequence[Path], channels: int) -> torch.Tensor:
    """Decode image files to one uint8 ``[N, C, H, W]`` tensor (JPEGs in one batch call).

    A file named ``.jpg`` that holds another format is decoded by its content; one
    that does not decode at all, or whose size differs from the first file's, raises
    :class:`DatasetFormatError` naming it.
    """
    mode = ImageReadMode.RGB if channels == 3 else ImageReadMode.GRAY
    raw = [torch.frombuffer(bytearray(p.read_bytes()), dtype=torch.uint8) for p in files]
    is_jpeg = [p.suffix.lower() in (".jpg", ".jpeg") for p in files]
    out: list[Optional[torch.Tensor]] = [None] * len(files)
    jpeg_idx = [i for i, j in enumerate(is_jpeg) if j]
    if jpeg_idx:
        try:
            decoded = decode_jpeg([raw[i] for i in jpeg_idx], mode=mode)
        except Exception:  # find the culprit: decode one by one (by content, not suffix)
            decoded = [_decode_one(files[i], raw[i], mode) for i in jpeg_idx]
        for i, img in zip(jpeg_idx, decoded):
            out[i] = img
    for i, j in enumerate(is_jpeg):
        if not j:
            out[i] = _decode_one(files[i], raw[i], mode)
    if not out:
        return torch.empty(0, channels, 0, 0, dtype=torch.uint8)
    first = tuple(out[0].shape)  # type: ignore[union-attr]
    for p, t in zip(files, out):
        if tuple(t.shape) != first:  # type: ignore[union-attr]
            raise DatasetFormatError(
                f"{p}: image of shape {tuple(t.shape)}, but {files[0]} is {first}; "  # type: ignore[union-attr]
                "this loader keeps whole datasets in one tensor and needs one size"
            )
    return torch.stack(out)  # type: ignore[arg-type]


def _list_class_folder(split_dir: Path) -> dict[str, list[Path]]:
    classes = sorted(d.name for d in split_dir.iterdir() if d.is_dir())
    return {
        c: sorted(
            (p for p in (split_dir / c).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES),
            key=lambda p: _natural_key(p.name),
        )
        for c in classes
    }


def load_image_folder(
    path: PathLike,
    channels: int = 3,
    train_per_class: Optional[int] = None,
    test_per_class: Optional[int] = None,
) -> ImageSplits:
    """Any class-folder layout ``<path>/{train,test}/<class>/*``, uint8 ``[N, C, H, W]``.

    Classes are the sorted folder names of ``train/`` (as ``ImageFolder`` does);
    ``test/`` must not hold other classes, and every class needs at least one
    image in each split (an empty or missing class folder raises
    :class:`DatasetFormatError`). All images must have one size. Files
    are taken in natural name order; ``train_per_class`` / ``test_per_class`` keep
    the first k of each class (only those are decoded).
    """
    _check_k("train_per_class", train_per_class)
    _check_k("test_per_class", test_per_class)
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    p = Path(path).expanduser()
    if not ((p / "train").is_dir() and (p / "test").is_dir()):
        raise _missing(
            f"class-folder dataset {p.name!r}",
            [p / "train", p / "test"],
            "<path>/train/<class>/<image> and <path>/test/<class>/<image>",
            "place the images in that layout",
        )
    return _image_folder(str(p.resolve()), channels, train_per_class, test_per_class)


def _check_k(name: str, k: Optional[int]) -> None:
    if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
        raise ValueError(f"{name} must be an integer >= 1 or None, got {k!r}")


def _take(files: list[Path], k: Optional[int], name: str, where: Path) -> list[Path]:
    if k is None:
        return files
    if k > len(files):
        raise ValueError(f"{name}={k} is larger than the {len(files)} images in {where}")
    return files[:k]


def _image_folder(
    path: str, channels: int, train_k: Optional[int], test_k: Optional[int]
) -> ImageSplits:
    p = Path(path)
    classes = tuple(sorted(d.name for d in (p / "train").iterdir() if d.is_dir()))
    if not classes:
        raise ValueError(f"{p / 'train'} has no class folders")
    unknown = {d.name for d in (p / "test").iterdir() if d.is_dir()} - set(classes)
    if unknown:
        raise ValueError(f"{p / 'test'} has classes not in train/: {sorted(unknown)}")
    x_tr, y_tr = _folder_split(path, "train", classes, channels, train_k)
    x_te, y_te = _folder_split(path, "test", classes, channels, test_k)
    return ImageSplits(x_tr, y_tr, x_te, y_te, classes, p)


@functools.lru_cache(maxsize=8)
def _folder_split(
    path: str, split: str, classes: tuple[str, ...], channels: int, k: Optional[int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """One split of a class-folder dataset, decoded (cached per split and k)."""
    d = Path(path) / split
    listing = _list_class_folder(d)
    for c in classes:
        if not listing.get(c):
            what = "is missing" if c not in listing else "holds no image files"
            raise DatasetFormatError(
                f"{d / c}: the class folder {what} (class {c!r} of {Path(path) / 'train'}); "
                f"every class needs images ({', '.join(IMAGE_SUFFIXES)}) in train/ and test/"
            )
    name = f"{split}_per_class"
    per = {c: _take(listing.get(c, []), k, name, d / c) for c in classes}
    files = [f for c in classes for f in per[c]]
    y = [i for i, c in enumerate(classes) for _ in per[c]]
    return _decode(files, channels), torch.tensor(y, dtype=torch.long)


def load_tiny_imagenet(
    root: Optional[PathLike] = None,
    download: bool = False,
    train_per_class: Optional[int] = None,
    test_per_class: Optional[int] = None,
) -> ImageSplits:
    """Tiny-ImageNet-200, uint8 ``[N, 3, 64, 64]``, 200 classes (greyscale files as RGB).

    Stanford's layout under ``<root>/tiny-imagenet-200/``: classes in ``wnids.txt``
    order; train from ``train/<wnid>/images/*.JPEG``; the labelled val set
    (``val/images`` with ``val/val_annotations.txt``) is the test split.
    ``extras["words"]`` gives each class's human-readable name from ``words.txt``.
    ``download=True`` fetches and extracts Stanford's zip (about 240 MB).
    ``train_per_class`` / ``test_per_class`` keep the first k images of each class
    (natural file order; val in annotation order); only those are decoded.
    """
    _check_k("train_per_class", train_per_class)
    _check_k("test_per_class", test_per_class)
    base = data_root(root)
    folder = base / "tiny-imagenet-200"
    if download and not (folder / "wnids.txt").is_file():
        download_and_extract_archive(TINY_IMAGENET_URL, str(base))
    needed = [folder / "wnids.txt", folder / "train", folder / "val" / "val_annotations.txt"]
    absent = [p for p in needed if not p.exists()]
    if folder.is_dir() and 0 < len(absent) < len(needed):
        raise DatasetNotFoundError(
            f"Tiny-ImageNet-200 at {folder} is incomplete: missing "
            + ", ".join(str(p) for p in absent)
            + f" (a partial extraction? call load_tiny_imagenet(download=True) "
            f"or re-extract {TINY_IMAGENET_URL})"
        )
    if absent:
        raise _missing(
            "Tiny-ImageNet-200",
            [folder],
            "<root>/tiny-imagenet-200/{wnids.txt, train/<wnid>/images/*.JPEG, "
            "val/images/*.JPEG, val/val_annotations.txt}",
            f"call load_tiny_imagenet(download=True) (fetches {TINY_IMAGENET_URL})",
        )
    return _tiny_imagenet(str(folder.resolve()), train_per_class, test_per_class)


def _tiny_imagenet(folder: str, train_k: Optional[int], test_k: Optional[int]) -> ImageSplits:
    f = Path(folder)
    wnids = tuple(w.strip() for w in (f / "wnids.txt").read_text().splitlines() if w.strip())
    if not wnids:
        raise DatasetFormatError(f"{f / 'wnids.txt'} lists no class")
    x_tr, y_tr = _tiny_train(folder, wnids, train_k)
    x_te, y_te, vfiles = _tiny_val(folder, wnids, test_k)
    index = {w: i for i, w in enumerate(wnids)}
    words: dict[str, str] = {}
    if (f / "words.txt").is_file():
        for line in (f / "words.txt").read_text().splitlines():
            k, _, v = line.partition("\t")
            if k in index:
                words[k] = v
    extras = {"words": tuple(words.get(w, w) for w in wnids), "val_files": vfiles}
    return ImageSplits(x_tr, y_tr, x_te, y_te, wnids, f, extras)


@functools.lru_cache(maxsize=4)
def _tiny_train(
    folder: str, wnids: tuple[str, ...], k: Optional[int]
) -> tuple[torch.Tensor, torch.Tensor]:
    f = Path(folder)
    files: list[Path] = []
    y: list[int] = []
    for i, w in enumerate(wnids):
        where = f / "train" / w / "images"
        imgs = sorted(where.glob("*.JPEG"), key=lambda p: _natural_key(p.name))
        if not imgs:
            raise DatasetFormatError(f"{where}: no *.JPEG images for class {w!r} of wnids.txt")
        imgs = _take(imgs, k, "train_per_class", where)
        files += imgs
        y += [i] * len(imgs)
    return _decode(files, 3), torch.tensor(y, dtype=torch.long)


@functools.lru_cache(maxsize=4)
def _tiny_val(
    folder: str, wnids: tuple[str, ...], k: Optional[int]
) -> tuple[torch.Tensor, torch.Tensor, tuple[Path, ...]]:
    f = Path(folder)
    index = {w: i for i, w in enumerate(wnids)}
    files: list[Path] = []
    y: list[int] = []
    seen = [0] * len(wnids)
    ann = f / "val" / "val_annotations.txt"
    for line in ann.read_text().splitlines():
        parts = line.split("\t")
        if len(parts) < 2:
            continue
        if parts[1] not in index:
            raise DatasetFormatError(f"{ann} names {parts[1]!r}, not in wnids.txt")
        c = index[parts[1]]
        if k is not None and seen[c] >= k:
            continue
        seen[c] += 1
        files.append(f / "val" / "images" / parts[0])
        y.append(c)
    if min(seen, default=0) == 0:
        empty = [w for w, n in zip(wnids, seen) if n == 0]
        raise DatasetFormatError(f"{ann} lists no val image for class(es) {empty[:5]}")
    if k is not None and min(seen) < k:
        raise ValueError(f"test_per_class={k} is larger than a class's val images")
    return _decode(files, 3), torch.tensor(y, dtype=torch.long), tuple(files)
