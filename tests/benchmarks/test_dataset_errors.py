"""Broken or planted data files: refused with an error naming the file."""

from __future__ import annotations

import pickle
import struct
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from avalanche_neumod.benchmarks import joint, recurring
from avalanche_neumod.benchmarks.datasets import (
    DatasetFormatError,
    DatasetNotFoundError,
    load_cifar10,
    load_cifar100,
    load_image_folder,
    load_mnist,
    load_tiny_imagenet,
)

sys.path.insert(0, str(Path(__file__).parent))
from cifar_files import _dump, write_cifar10, write_cifar100  # noqa: E402

# ---------------------------------------------------------------- CIFAR pickles


class _Planted:
    """Unpickles as ``func(*args)``: what a malicious pickle does."""

    def __init__(self, func, args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _planted(kind: str, marker: Path) -> _Planted:
    import builtins
    import os

    if kind == "os.system":
        return _Planted(os.system, (f"touch '{marker}'",))
    code = f"open({str(marker)!r}, 'w').close()"
    return _Planted(getattr(builtins, kind.split(".")[1]), (code,))


@pytest.mark.parametrize("kind", ["os.system", "builtins.exec", "builtins.eval"])
@pytest.mark.parametrize("target", ["batches.meta", "data_batch_2"])
def test_cifar_planted_pickle_refused_and_not_run(tmp_path, kind, target):
    d = write_cifar10(tmp_path, per_batch=4, n_test=4)
    marker = tmp_path / "pwned"
    obj = {"label_names": _planted(kind, marker)} if target == "batches.meta" else None
    if obj is None:
        obj = {
            "labels": [0] * 4,
            "data": np.zeros((4, 3072), np.uint8),
            "x": _planted(kind, marker),
        }
    _dump(d / target, obj)
    with pytest.raises(DatasetFormatError, match="refused") as e:
        load_cifar10(tmp_path)
    assert str(d / target) in str(e.value)
    assert not marker.exists()


def test_cifar_reads_python2_style_and_protocol2_pickles(tmp_path):
    # official files are Python 2 pickles (module names __builtin__, numpy.core...);
    # a protocol-2 rewrite from Python 3 encodes bytes through _codecs.encode
    d = write_cifar10(tmp_path, per_batch=4, n_test=4)
    ref = load_cifar10(tmp_path)
    with open(d / "test_batch", "rb") as f:
        obj = pickle.load(f)
    obj["names"] = {b"raw bytes", "str"}  # a set and bytes: builtins + _codecs globals
    blob = pickle.dumps(obj, protocol=2)
    blob = blob.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    blob = blob.replace(b"cbuiltins\nset", b"c__builtin__\nset")
    (d / "test_batch").write_bytes(blob)
    from avalanche_neumod.benchmarks import datasets as ds

    ds.clear_cache()
    got = load_cifar10(tmp_path)
    assert torch.equal(got.x_test, ref.x_test) and torch.equal(got.y_test, ref.y_test)


def test_cifar_fewer_labels_than_images_refused(tmp_path):
    d = write_cifar10(tmp_path, per_batch=4, n_test=4)
    _dump(
        d / "data_batch_3",
        {"labels": [1] * 85, "data": np.zeros((100, 3072), np.uint8)},
    )
    with pytest.raises(DatasetFormatError, match="100 images but 85") as e:
        load_cifar10(tmp_path)
    assert str(d / "data_batch_3") in str(e.value)


def test_cifar_label_out_of_range_refused(tmp_path):
    d = write_cifar100(tmp_path, per_class=1, test_per_class=1)
    with open(d / "test", "rb") as f:
        obj = pickle.load(f)
    obj["coarse_labels"][0] = 20  # only 20 superclasses
    _dump(d / "test", obj)
    with pytest.raises(DatasetFormatError, match=r"coarse_labels.*\[0, 20\)") as e:
        load_cifar100(tmp_path)
    assert str(d / "test") in str(e.value)


def test_cifar_wrong_keys_named(tmp_path):
    d = write_cifar10(tmp_path, per_batch=4, n_test=4)
    _dump(d / "test_batch", {"labels": [0] * 4, "images": np.zeros((4, 3072), np.uint8)})
    with pytest.raises(DatasetFormatError, match=r"missing key\(s\) \['data'\]") as e:
        load_cifar10(tmp_path)
    assert str(d / "test_batch") in str(e.value)


def test_cifar_md5_check_still_available(tmp_path):
    write_cifar10(tmp_path, per_batch=4, n_test=4)
    with pytest.raises(ValueError, match="md5 mismatch"):
        load_cifar10(tmp_path, check_integrity=True)


# ---------------------------------------------------------------- MNIST IDX files


def _idx(path: Path, n: int, images: bool, truncate: int = 0) -> None:
    dims = (n, 28, 28) if images else (n,)
    head = bytes([0, 0, 0x08, len(dims)]) + b"".join(struct.pack(">i", k) for k in dims)
    body = bytes(int(np.prod(dims)) - truncate)
    path.write_bytes(head + body)


def _mnist_files(root: Path, n_train: int = 6, n_test: int = 4) -> Path:
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    _idx(raw / "train-images-idx3-ubyte", n_train, True)
    _idx(raw / "train-labels-idx1-ubyte", n_train, False)
    _idx(raw / "t10k-images-idx3-ubyte", n_test, True)
    _idx(raw / "t10k-labels-idx1-ubyte", n_test, False)
    return raw


def test_mnist_small_files_load(tmp_path):
    _mnist_files(tmp_path)
    x, y, xt, yt = load_mnist(tmp_path)
    assert x.shape == (6, 28, 28) and yt.shape == (4,)


def test_mnist_truncated_file_named(tmp_path):
    raw = _mnist_files(tmp_path)
    _idx(raw / "t10k-images-idx3-ubyte", 4, True, truncate=100)
    with pytest.raises(DatasetFormatError, match="truncated or corrupted") as e:
        load_mnist(tmp_path)
    assert str(raw / "t10k-images-idx3-ubyte") in str(e.value)


def test_mnist_empty_file_named(tmp_path):
    raw = _mnist_files(tmp_path)
    (raw / "train-labels-idx1-ubyte").write_bytes(b"")
    with pytest.raises(DatasetFormatError) as e:
        load_mnist(tmp_path)
    assert str(raw / "train-labels-idx1-ubyte") in str(e.value)


def test_mnist_count_mismatch_named(tmp_path):
    raw = _mnist_files(tmp_path)
    _idx(raw / "train-labels-idx1-ubyte", 5, False)
    with pytest.raises(DatasetFormatError, match="6 images but .* 5 labels"):
        load_mnist(tmp_path)


# ---------------------------------------------------------------- image folders


def _png(img: torch.Tensor) -> bytes:
    from torchvision.io import encode_png

    return encode_png(img).numpy().tobytes()


def _jpg(img: torch.Tensor) -> bytes:
    from torchvision.io import encode_jpeg

    return encode_jpeg(img).numpy().tobytes()


def _folder(root: Path, classes=("a", "b"), n: int = 2, enc=_jpg, suffix: str = ".jpg") -> Path:
    for split in ("train", "test"):
        for c in classes:
            (root / split / c).mkdir(parents=True)
            for i in range(n):
                img = torch.full((3, 8, 8), 30 * i, dtype=torch.uint8)
                (root / split / c / f"{i}{suffix}").write_bytes(enc(img))
    return root


def test_image_folder_non_jpeg_named_jpg(tmp_path):
    root = _folder(tmp_path)
    bad = root / "train" / "b" / "1.jpg"
    bad.write_bytes(_png(torch.zeros(3, 8, 8, dtype=torch.uint8))[:20])  # not a JPEG, not whole
    with pytest.raises(DatasetFormatError, match="cannot decode") as e:
        load_image_folder(root)
    assert str(bad) in str(e.value)


def test_image_folder_png_named_jpg_decoded_by_content(tmp_path):
    root = _folder(tmp_path)
    (root / "train" / "b" / "1.jpg").write_bytes(_png(torch.full((3, 8, 8), 77, dtype=torch.uint8)))
    d = load_image_folder(root)
    assert d.x_train[3].flatten().unique().tolist() == [77]  # lossless PNG content


def test_cifar_data_not_an_image_array_named(tmp_path):
    d = write_cifar10(tmp_path, per_batch=4, n_test=4)
    _dump(d / "data_batch_1", {"labels": [0] * 4, "data": np.zeros((4, 32, 32), np.uint8)})
    with pytest.raises(DatasetFormatError, match=r"'data' must be an \(N, 3072\) array") as e:
        load_cifar10(tmp_path)
    assert str(d / "data_batch_1") in str(e.value)


def test_image_folder_size_mismatch_names_file(tmp_path):
    root = _folder(tmp_path, enc=_png, suffix=".png")
    odd = root / "test" / "a" / "1.png"
    odd.write_bytes(_png(torch.zeros(3, 9, 8, dtype=torch.uint8)))
    with pytest.raises(DatasetFormatError, match="one size") as e:
        load_image_folder(root)
    assert str(odd) in str(e.value)


@pytest.mark.parametrize("split", ["train", "test"])
def test_image_folder_empty_class_folder_refused(tmp_path, split):
    root = _folder(tmp_path)
    for p in (root / split / "b").iterdir():
        p.unlink()
    (root / split / "b" / "notes.txt").write_text("no images here")
    with pytest.raises(DatasetFormatError, match="holds no image files") as e:
        load_image_folder(root)
    assert str(root / split / "b") in str(e.value)


def test_image_folder_class_missing_from_test_refused(tmp_path):
    root = _folder(tmp_path)
    for p in (root / "test" / "b").iterdir():
        p.unlink()
    (root / "test" / "b").rmdir()
    with pytest.raises(DatasetFormatError, match="is missing"):
        load_image_folder(root)


# ---------------------------------------------------------------- Tiny-ImageNet


def _tiny(root: Path, annotations: bool = True) -> Path:
    f = root / "tiny-imagenet-200"
    wnids = ["n01", "n02"]
    (f / "val" / "images").mkdir(parents=True)
    (f / "wnids.txt").write_text("\n".join(wnids) + "\n")
    lines = []
    for k, w in enumerate(wnids):
        (f / "train" / w / "images").mkdir(parents=True)
        img = _jpg(torch.full((3, 64, 64), 50 * k, dtype=torch.uint8))
        (f / "train" / w / "images" / f"{w}_0.JPEG").write_bytes(img)
        (f / "val" / "images" / f"val_{k}.JPEG").write_bytes(img)
        lines.append(f"val_{k}.JPEG\t{w}\t0\t0\t64\t64")
    if annotations:
        (f / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    return f


def test_tiny_imagenet_small_layout_loads(tmp_path):
    _tiny(tmp_path)
    d = load_tiny_imagenet(tmp_path)
    assert d.y_train.tolist() == [0, 1] and d.y_test.tolist() == [0, 1]


def test_tiny_imagenet_missing_annotations_named(tmp_path):
    f = _tiny(tmp_path, annotations=False)
    with pytest.raises(DatasetNotFoundError) as e:
        load_tiny_imagenet(tmp_path)
    msg = str(e.value)
    assert "incomplete" in msg and str(f / "val" / "val_annotations.txt") in msg
    assert "not found" not in msg


def test_tiny_imagenet_empty_class_folder_refused(tmp_path):
    f = _tiny(tmp_path)
    (f / "train" / "n02" / "images" / "n02_0.JPEG").unlink()
    with pytest.raises(DatasetFormatError, match="no \\*.JPEG") as e:
        load_tiny_imagenet(tmp_path)
    assert str(f / "train" / "n02" / "images") in str(e.value)


def test_tiny_imagenet_non_jpeg_named(tmp_path):
    f = _tiny(tmp_path)
    bad = f / "val" / "images" / "val_1.JPEG"
    bad.write_bytes(b"GIF89a not really")
    with pytest.raises(DatasetFormatError, match="cannot decode") as e:
        load_tiny_imagenet(tmp_path)
    assert str(bad) in str(e.value)


# ---------------------------------------------------------------- stream variants


@pytest.mark.parametrize("variant", [joint, recurring])
def test_variants_of_an_empty_stream(variant):
    empty = SimpleNamespace(train_stream=[], test_stream=[], neumod_info={})
    with pytest.raises(ValueError, match="at least one training experience"):
        variant(empty)
