"""Dataset loaders: real data in ../shared/datasets, CIFAR pickles on generated files."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.datasets import CIFAR10, CIFAR100

from avalanche_neumod.benchmarks import datasets as ds
from avalanche_neumod.benchmarks.datasets import (
    DatasetNotFoundError,
    data_root,
    load_cifar10,
    load_cifar100,
    load_image_folder,
    load_mnist,
    load_tiny_imagenet,
)

sys.path.insert(0, str(Path(__file__).parent))
from cifar_files import write_cifar10, write_cifar100  # noqa: E402

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_mnist_sizes_and_class_counts(data_root):
    x_tr, y_tr, x_te, y_te = load_mnist(data_root)
    assert x_tr.shape == (60000, 28, 28) and x_te.shape == (10000, 28, 28)
    assert x_tr.dtype == torch.uint8 and y_tr.dtype == torch.int64
    assert torch.bincount(y_tr).tolist() == MNIST_TRAIN_COUNTS
    assert torch.bincount(y_te).tolist() == MNIST_TEST_COUNTS


def test_loaders_cache_per_process(data_root):
    assert load_mnist(data_root) is load_mnist(str(data_root) + "/")


def test_data_root_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("NEUMOD_DATA_ROOT", str(tmp_path / "env"))
    assert data_root(tmp_path / "arg") == tmp_path / "arg"
    assert data_root() == tmp_path / "env"
    monkeypatch.delenv("NEUMOD_DATA_ROOT")
    assert data_root().parts[-2:] == (".avalanche", "data")


def test_cifar10_class_folders(data_root):
    d = load_cifar10(data_root)
    assert d.num_classes == 10 and d.classes[0] == "airplane" and d.classes[-1] == "truck"
    assert d.x_train.shape[1:] == (3, 32, 32) and d.x_train.dtype == torch.uint8
    assert torch.bincount(d.y_test).tolist() == [1000] * 10
    assert torch.bincount(d.y_train, minlength=10).min() > 0
    # the re-encoded images are real CIFAR: mean pixel close to the published statistics
    mean = d.x_test.float().mean(dim=(0, 2, 3)) / 255
    assert torch.allclose(mean, torch.tensor([0.4942, 0.4851, 0.4504]), atol=0.01)
    small = load_cifar10(data_root, train_per_class=3, test_per_class=2)
    assert small.y_train.tolist() == [c for c in range(10) for _ in range(3)]
    assert torch.equal(small.x_test[2:4], d.x_test[1000:1002])  # first two of class 1
    with pytest.raises(ValueError, match="train_per_class"):
        load_cifar10(data_root, train_per_class=5000)


def test_image_splits_pickle_round_trip(tmp_path):
    import pickle

    write_cifar100(tmp_path, per_class=1, test_per_class=1)
    d = load_cifar100(tmp_path)
    e = pickle.loads(pickle.dumps(d))
    assert all(torch.equal(a, b) for a, b in zip(d, e))
    assert e.classes == d.classes and e.path == d.path
    assert torch.equal(e.extras["y_test_coarse"], d.extras["y_test_coarse"])


def test_image_folder_small(tmp_path):
    from torchvision.io import encode_png

    for split, n in (("train", 3), ("test", 2)):
        for c in ("b_cls", "a_cls"):
            (tmp_path / split / c).mkdir(parents=True)
            for i in range(n):
                img = torch.full((3, 8, 8), 40 * i + (c == "b_cls") * 100, dtype=torch.uint8)
                (tmp_path / split / c / f"{i}.png").write_bytes(encode_png(img).numpy().tobytes())
    d = load_image_folder(tmp_path)
    assert d.classes == ("a_cls", "b_cls")
    assert d.y_train.tolist() == [0, 0, 0, 1, 1, 1] and d.y_test.tolist() == [0, 0, 1, 1]
    assert d.x_train[:, 0, 0, 0].tolist() == [0, 40, 80, 100, 140, 180]  # PNG is lossless


def test_tiny_imagenet_val_labels_match_annotations(data_root):
    d = load_tiny_imagenet(data_root, train_per_class=2)
    folder = data_root / "tiny-imagenet-200"
    wnids = (folder / "wnids.txt").read_text().split()
    assert d.num_classes == 200 and list(d.classes) == wnids
    assert d.x_train.shape[1:] == (3, 64, 64) and d.x_test.shape == (10000, 3, 64, 64)
    ann = dict(
        line.split("\t")[:2]
        for line in (folder / "val/val_annotations.txt").read_text().splitlines()
    )
    names = [p.name for p in d.extras["val_files"]]
    assert [wnids[i] for i in d.y_test.tolist()] == [ann[n] for n in names]
    assert torch.bincount(d.y_test).tolist() == [50] * 200
    assert torch.bincount(d.y_train).tolist() == [2] * 200
    assert d.x_train.shape == (400, 3, 64, 64)
    # one decoded val image equals torchvision's own decoding of its file
    from torchvision.io import ImageReadMode, decode_image, read_file

    k = 1234
    ref = decode_image(read_file(str(d.extras["val_files"][k])), mode=ImageReadMode.RGB)
    assert torch.equal(d.x_test[k], ref)


def test_cifar10_pickles_match_torchvision_reader(tmp_path, monkeypatch):
    write_cifar10(tmp_path)
    d = load_cifar10(tmp_path)
    assert d.x_train.shape == (100, 3, 32, 32) and d.x_test.shape == (30, 3, 32, 32)
    # torchvision's own reader on the same files (its md5 check bypassed) agrees
    monkeypatch.setattr(CIFAR10, "_check_integrity", lambda self: True)
    monkeypatch.setattr("torchvision.datasets.cifar.check_integrity", lambda *a, **k: True)
    tv = CIFAR10(str(tmp_path), train=True)
    assert np.array_equal(d.x_train.permute(0, 2, 3, 1).numpy(), tv.data)
    assert d.y_train.tolist() == list(tv.targets)
    assert list(d.classes) == tv.classes
    with pytest.raises(ValueError, match="md5"):
        load_cifar10(tmp_path, check_integrity=True)


def test_cifar10_prefers_pickles_over_folders(tmp_path):
    write_cifar10(tmp_path)
    (tmp_path / "cifar10-jpeg" / "train").mkdir(parents=True)
    (tmp_path / "cifar10-jpeg" / "test").mkdir(parents=True)
    assert load_cifar10(tmp_path).path.name == "cifar-10-batches-py"


def test_cifar100_pickles(tmp_path, monkeypatch):
    write_cifar100(tmp_path)
    d = load_cifar100(tmp_path)
    assert d.num_classes == 100 and d.x_train.shape == (600, 3, 32, 32)
    assert torch.bincount(d.y_train).tolist() == [6] * 100
    assert torch.equal(d.extras["y_train_coarse"], d.y_train // 5)
    assert len(d.extras["coarse_classes"]) == 20
    small = load_cifar100(tmp_path, train_per_class=2, test_per_class=1)
    assert torch.bincount(small.y_train).tolist() == [2] * 100
    assert torch.equal(small.extras["y_train_coarse"], small.y_train // 5)
    assert small.x_test.shape == (100, 3, 32, 32)
    monkeypatch.setattr(CIFAR100, "_check_integrity", lambda self: True)
    monkeypatch.setattr("torchvision.datasets.cifar.check_integrity", lambda *a, **k: True)
    tv = CIFAR100(str(tmp_path), train=False)
    assert np.array_equal(d.x_test.permute(0, 2, 3, 1).numpy(), tv.data)
    assert d.y_test.tolist() == list(tv.targets) and list(d.classes) == tv.classes


@pytest.mark.parametrize(
    "loader, expected",
    [
        (load_mnist, "MNIST/raw"),
        (load_cifar10, "cifar10-jpeg"),
        (load_cifar100, "cifar-100-python"),
        (load_tiny_imagenet, "tiny-imagenet-200"),
    ],
)
def test_missing_dataset_error(tmp_path, loader, expected):
    with pytest.raises(DatasetNotFoundError) as e:
        loader(tmp_path)
    msg = str(e.value)
    assert isinstance(e.value, FileNotFoundError)
    assert str(tmp_path) in msg and expected in msg
    assert "download=True" in msg and "NEUMOD_DATA_ROOT" in msg


def test_clear_cache(data_root):
    a = load_mnist(data_root)
    ds.clear_cache()
    assert load_mnist(data_root) is not a
