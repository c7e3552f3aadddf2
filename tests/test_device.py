"""Every method, plugin and metric, checkpoints and a suite cell on the test device.

The device is ``$NEUMOD_TEST_DEVICE`` (the ``device`` fixture, default ``cpu``);
``benchmarks/gpu_check.sh`` runs these (``-m device``) with ``cuda``. Each cell trains a
few iterations on a tiny synthetic stream through the cell runner, as a suite does,
with ``train.device`` set, and checks that it finished, that its numbers are finite
and that the model (every parameter and buffer) and the data it was served are on
the device.
"""

from __future__ import annotations

import copy
import json
import math

import pytest
import torch
from avalanche.core import SupervisedPlugin

from avalanche_neumod.experiment import cell as cell_mod
from avalanche_neumod.experiment import checkpoint as ckpt
from avalanche_neumod.experiment.suite import expand, load_suite, truncate_cell

pytestmark = [pytest.mark.device, pytest.mark.usefixtures("one_thread")]

SMALL_NEUMOSYNC = {"d_model": 8, "num_layers": 1, "num_heads": 1, "dim_feedforward": 8}
# Per-method arguments that keep a cell tiny (the registry's defaults otherwise).
ARGS = {
    "Replay": {"mem_size": 16},
    "GEM": {"patterns_per_exp": 8},
    "NeuMoSync": SMALL_NEUMOSYNC,
    "CBP": {"rho": 0.1},
    "ReDo": {"F": 2},  # recycle every 2 iterations: the re-initialisation runs
}
METHODS = (
    "Naive",
    "EWC",
    "Replay",
    "SI",
    "LwF",
    "GEM",
    "FastNaive",
    "NeuMoSync",
    "NGMSGD",
    "CBP",
    "ReDo",
    "CReLU",
    "L2Init",
    "L2InitEWC",
    "ShrinkPerturb",
    "MAML",
)
# Every optional measure a suite can ask for, at tiny sizes.
ALL_METRICS = {
    "stability_gap": {"eval_every": 2, "samples_per_exp": 8, "tracked": "all"},
    "transfer": {"beta": 2, "eval_samples": 8},
    "plasticity": {"samples": 8},
    "neumosync_diagnostics": {"samples": 4},
}


def _cfg(method: str, device: torch.device, model=None, stream="flat", metrics=None) -> dict:
    """A cell configuration as :func:`expand` writes it, for ``method`` on a tiny stream."""
    metrics = {} if metrics is None else metrics
    suite = {
        "name": "device",
        "seeds": [0],
        "defaults": {
            "model": model or {"name": "mlp", "args": {"hidden_sizes": [16]}},
            "train": {"mb_size": 8, "eval_mb_size": 16, "device": str(device)},
            "metrics": metrics,
        },
        "streams": {"toy": {"name": f"device_streams:{stream}"}},
        "methods": {
            "Naive": {},
            method if method != "Naive" else "Naive2": {
                "name": method,
                "args": ARGS.get(method, {}),
            },
        },
        "presets": {"cpu": {}},
    }
    return suite


def _expand(tmp_path, suite: dict, method_key: str) -> dict:
    import yaml

    p = tmp_path / "device.yaml"
    p.write_text(yaml.safe_dump(suite, sort_keys=False))
    cells = {c["method_key"]: c for c in expand(load_suite(p))}
    return cells[method_key]


class BatchDevices(SupervisedPlugin):
    """Records the devices of the minibatches the model is given, training and evaluating."""

    def __init__(self):
        super().__init__()
        self.seen: set[str] = set()

    def before_forward(self, strategy, **kwargs):
        self.seen.add(str(strategy.mb_x.device))

    def before_eval_forward(self, strategy, **kwargs):
        self.seen.add(str(strategy.mb_x.device))


@pytest.fixture
def built(monkeypatch):
    """The strategies the cell runner builds in this test, in order (each with a
    :class:`BatchDevices` plugin appended)."""
    out = []
    real = cell_mod._build

    def build(*args, **kwargs):
        strategy, active = real(*args, **kwargs)
        strategy.plugins.append(BatchDevices())
        out.append(strategy)
        return strategy, active

    monkeypatch.setattr(cell_mod, "_build", build)
    return out


def _on(t: torch.Tensor, device: torch.device) -> bool:
    return t.device.type == device.type and (device.index is None or t.device.index == device.index)


def _check(result: dict, strategy, device: torch.device) -> None:
    assert result["status"] == "ok", result.get("traceback") or result.get("error")
    m = result["metrics"]
    rows = m["accuracy_matrix"]
    assert rows and all(math.isfinite(v) for row in rows for v in row)
    assert all(0.0 <= v <= 1.0 for row in rows for v in row)
    bad = [n for n, t in strategy.model.state_dict().items() if not _on(t, device)]
    assert not bad, f"not on {device}: {bad[:5]}"
    seen = next(p for p in strategy.plugins if isinstance(p, BatchDevices)).seen
    assert seen and all(_on(torch.empty(0, device=d), device) for d in seen), seen


def _run(cfg: dict, built: list, device: torch.device, **kw) -> dict:
    r = cell_mod.run_cell(cfg, **kw)
    assert r["status"] == "ok", r.get("traceback") or r.get("error")
    _check(r, built[-1], device)
    return r


@pytest.mark.parametrize("method", METHODS)
def test_method_on_device(method, device, tmp_path, built):
    """Every registered method trains, evaluates and records on the device (MLP)."""
    key = method if method != "Naive" else "Naive2"
    _run(_expand(tmp_path, _cfg(method, device), key), built, device)


CONV = {"name": "convnet", "args": {"channels": 4, "hidden": 16}}
RESNET = {"name": "slim_resnet18", "args": {"nf": 4}}


@pytest.mark.parametrize(
    "method,model",
    [
        ("CBP", CONV),
        ("ReDo", CONV),
        ("CReLU", CONV),
        ("ShrinkPerturb", CONV),
        ("NeuMoSync", CONV),
        ("NGMSGD", CONV),
        ("FastNaive", RESNET),
        ("CBP", RESNET),
        ("ReDo", RESNET),
        ("NeuMoSync", RESNET),
    ],
    ids=lambda v: v["name"] if isinstance(v, dict) else v,
)
def test_method_on_device_conv(method, model, device, tmp_path, built):
    """The unit-level methods (re-initialisation, gains, NeuMoSync) on convolutional models."""
    _run(_expand(tmp_path, _cfg(method, device, model, "images"), method), built, device)


@pytest.mark.parametrize("method", ["FastNaive", "NeuMoSync"])
def test_every_metric_on_device(method, device, tmp_path, built):
    """Every optional measure (stability gap, transfer probes, plasticity, NeuMoSync's
    diagnostics) records finite numbers on the device."""
    cfg = _expand(tmp_path, _cfg(method, device, metrics=ALL_METRICS), method)
    r = _run(cfg, built, device)
    measures = r["measures"]
    want = {"stability_gap", "transfer", "plasticity"} | (
        {"neumosync_diagnostics"} if method == "NeuMoSync" else set()
    )
    assert want <= {k for k, v in measures.items() if v}, sorted(measures)
    assert measures["stability_gap"]["curves"]["0"]["acc"]
    assert measures["transfer"]["A_main"]
    values = list(_numbers({k: measures[k] for k in want}))
    assert values and all(math.isfinite(v) for v in values)


def _numbers(obj):
    """Every number in a JSON value."""
    if isinstance(obj, dict):
        for v in obj.values():
            yield from _numbers(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _numbers(v)
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        yield float(obj)


def _same(a, b, exact: bool) -> bool:
    """Equal JSON values; on a device other than the CPU, floats within 1e-4 (its kernels
    may differ in the last bits from one run to the next)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k], exact) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y, exact) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float) and not exact:
        return a == b or math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-4)
    return a == b


class Killed(BaseException):
    """Stands for a kill: not an Exception, so the cell does not record it."""


@pytest.mark.parametrize("method", ["CBP", "NeuMoSync"])
def test_checkpoint_resume_on_device(method, device, tmp_path, monkeypatch, built):
    """A cell killed after its first experience resumes from its checkpoint on the device
    with the result of an uninterrupted run (bit for bit on the CPU)."""
    suite = _cfg(method, device, metrics={"stability_gap": ALL_METRICS["stability_gap"]})
    suite["streams"]["toy"]["args"] = {"n_experiences": 3}
    cfg = _expand(tmp_path, suite, method)
    full = _run(cfg, built, device)
    path = tmp_path / "c.ckpt"
    real = ckpt.save

    def save_then_die(*a, **k):
        real(*a, **k)
        raise Killed

    monkeypatch.setattr(ckpt, "save", save_then_die)
    with pytest.raises(Killed):
        cell_mod.run_cell(cfg, checkpoint=str(path))
    monkeypatch.setattr(ckpt, "save", real)
    resumed = _run(cfg, built, device, checkpoint=str(path))
    assert resumed["resumed"]["from_experience"] == 1
    keys = ("status", "metrics", "curves", "measures")
    a, b = (json.loads(json.dumps({k: r[k] for k in keys})) for r in (full, resumed))
    assert _same(a, b, exact=device.type == "cpu")


def test_truncated_suite_cell_on_device(device, tmp_path, built):
    """A suite cell through ``load_suite``/``expand``/``truncate_cell`` on the device: the
    truncation keeps the stream, model and method, and cuts experiences and epochs."""
    suite = _cfg("NeuMoSync", device, metrics={"plasticity": {"samples": 8}})
    suite["streams"]["toy"]["args"] = {"n_experiences": 4}
    suite["defaults"]["train"]["epochs"] = 3
    cfg = _expand(tmp_path, suite, "NeuMoSync")
    short = truncate_cell(cfg, experiences=2)
    assert short["stream"]["args"]["n_experiences"] == 2 and short["train"]["epochs"] == 1
    assert cfg["stream"]["args"]["n_experiences"] == 4  # the original is not changed
    assert {k: v for k, v in short.items() if k not in ("stream", "train")} == {
        k: v for k, v in copy.deepcopy(cfg).items() if k not in ("stream", "train")
    }
    r = _run(short, built, device)
    assert len(r["metrics"]["accuracy_matrix"]) == 2


def test_experience_tensors_move_once_per_device():
    """An experience's tensors are copied to a device once and the copy reused (the
    ``meta`` device stands for an accelerator here: no data, only the move); on their
    own device they are not copied at all. A sampled experience moves its shared pool
    once for all experiences that index it."""
    from avalanche_neumod.benchmarks.sampled import SampledTensors
    from avalanche_neumod.benchmarks.tensor_data import ExperienceTensors

    data = ExperienceTensors(torch.randn(6, 3), torch.arange(6) % 2, 0)
    assert data.to("cpu") is data
    moved = data.to("meta")
    assert moved is data.to(torch.device("meta"))
    assert {moved.x.device.type, moved.y.device.type, moved.t.device.type} == {"meta"}
    a = SampledTensors(data, torch.tensor([0, 2, 4]))
    b = SampledTensors(data, torch.tensor([1, 3]))
    ma, mb = a.to("meta"), b.to("meta")
    assert ma is a.to("meta") and ma.pool is mb.pool is moved
    assert ma.index.device.type == "meta" and len(ma) == 3
