"""The experience-tensors contract (``avalanche_neumod.tensors``) and the import direction."""

from __future__ import annotations

import ast
import types
import warnings
from pathlib import Path

import pytest
import torch
from avalanche.benchmarks.utils import AvalancheDataset

import avalanche_neumod
import avalanche_neumod.benchmarks.tensor_data as tensor_data
from avalanche_neumod import tensors
from avalanche_neumod.tensors import (
    ExperienceTensors,
    attach_tensors,
    attached_tensors,
    experience_tensors,
)

PKG = Path(avalanche_neumod.__file__).parent


def _data(n: int = 5) -> ExperienceTensors:
    return ExperienceTensors(torch.randn(n, 3), torch.arange(n) % 2, 0)


def test_attach_then_read_back():
    exp = types.SimpleNamespace()
    assert attached_tensors(exp) is None
    d = _data()
    attach_tensors(exp, d)
    assert attached_tensors(exp) is d
    assert experience_tensors(exp) is d
    assert exp.tensors is d  # the documented storage


def test_attach_refuses_other_objects():
    exp = types.SimpleNamespace()
    with pytest.raises(TypeError, match="ExperienceTensors"):
        attach_tensors(exp, (torch.zeros(2), torch.zeros(2)))
    exp.tensors = "not tensors"
    assert attached_tensors(exp) is None


def test_benchmark_experiences_carry_their_tensors():
    train, test = [_data(6), _data(4)], [_data(3), _data(2)]
    bm = tensor_data.tensor_benchmark(train, test)
    assert [attached_tensors(e) for e in bm.train_stream] == train
    assert all(attached_tensors(e) is d for e, d in zip(bm.test_stream, test))


def test_experience_without_tensors_is_materialised_once_and_attached():
    x, y = torch.randn(7, 2), torch.tensor([0, 1, 0, 1, 1, 0, 1])
    ds = AvalancheDataset([torch.utils.data.TensorDataset(x, y)])
    exp = types.SimpleNamespace(dataset=ds)
    with pytest.warns(UserWarning, match="materialising"):
        d = experience_tensors(exp)
    assert torch.equal(d.x, x) and torch.equal(d.y, y) and torch.equal(d.t, torch.zeros(7))
    assert attached_tensors(exp) is d
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert experience_tensors(exp) is d


def test_old_import_path_reexports_the_same_objects():
    for name in ("TENSORS_ATTR", "ExperienceTensors", "experience_tensors", "attach_tensors"):
        assert getattr(tensor_data, name) is getattr(tensors, name)
    assert tensor_data._TensorSamples is tensors._TensorSamples
    assert avalanche_neumod.ExperienceTensors is ExperienceTensors


def _our_imports(path: Path) -> set[str]:
    """The package modules ``path`` imports (relative imports resolved)."""
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = parts[: len(parts) - node.level]
                out.add(".".join(base + ([node.module] if node.module else [])))
            elif node.module and node.module.startswith("avalanche_neumod"):
                out.add(node.module)
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("avalanche_neumod")}
    return out


@pytest.mark.parametrize("module", ["tensors.py", "observer.py"])
def test_bottom_modules_import_nothing_of_ours(module):
    assert _our_imports(PKG / module) == set()


@pytest.mark.parametrize("sub", ["training", "evaluation"])
def test_training_and_evaluation_do_not_import_benchmarks(sub):
    offenders = {
        str(p.relative_to(PKG)): sorted(m for m in _our_imports(p) if ".benchmarks" in m)
        for p in (PKG / sub).rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}
