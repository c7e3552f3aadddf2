"""Bad values are refused before any cell runs, by the constructors' own rules."""

from __future__ import annotations

import copy
import subprocess
import sys
import time
import warnings

import pytest
import torch
import yaml
from torch import nn
from torch.nn import functional as F

from avalanche_neumod._checks import check_arguments, check_device
from avalanche_neumod.benchmarks import ExperienceTensors, tensor_benchmark
from avalanche_neumod.experiment import suite as S
from avalanche_neumod.models import MLP, UnsupportedModelError
from avalanche_neumod.training import CBP, MAML, NGMSGD, CReLU, FastNaive, NeuMoSync

BASE = {
    "name": "t",
    "seeds": [0],
    "presets": {"cpu": {}},
    "defaults": {"model": {"name": "mlp", "args": {"hidden_sizes": [8]}}, "train": {}},
    "streams": {"perm": {"name": "permuted_mnist", "args": {"n_experiences": 2}}},
    "methods": {"Naive": {}, "CBP": {}},
}


def _set(path, value):
    def f(d):
        *head, last = path
        for k in head:
            d = d.setdefault(k, {})
        d[last] = value

    return f


SUITE_CASES = {
    "cbp rho": (
        _set(["methods", "CBP"], {"args": {"rho": 1.5}}),
        "rho must be a finite number in [0, 1], got 1.5",
    ),
    "cbp rho bool": (_set(["methods", "CBP"], {"args": {"rho": True}}), "rho must be"),
    "lr fast": (
        _set(["defaults", "optimizer"], {"name": "sgd", "lr": "fast"}),
        "optimizer 'sgd': optimizer lr must be a finite number > 0, got 'fast'",
    ),
    "momentum": (
        _set(["defaults", "optimizer"], {"name": "sgd", "lr": 0.1, "momentum": -1}),
        "Invalid momentum value",
    ),
    "device gpu": (
        _set(["defaults", "train", "device"], "gpu"),
        "train.device 'gpu' is not a device",
    ),
    "device cuda:3": (
        _set(["defaults", "train", "device"], "cuda:3"),
        "train.device 'cuda:3' is not available",
    ),
    "epochs 0": (
        _set(["defaults", "train", "epochs"], 0),
        "train.epochs must be an integer >= 1, got 0",
    ),
    "mb_size str": (
        _set(["defaults", "train", "mb_size"], "16"),
        "train.mb_size must be an integer >= 1, got '16'",
    ),
    "recurring every": (
        _set(["streams", "perm", "wrappers"], [{"name": "recurring", "args": {"every": 1}}]),
        "wrapper 'recurring' args: every must be an integer >= 2, got 1",
    ),
    "transfer beta": (
        _set(["defaults", "metrics"], {"transfer": {"beta": 0}}),
        "metric 'transfer': beta must be an integer >= 1, got 0",
    ),
    "tracker eval_every": (
        _set(["defaults", "metrics"], {"stability_gap": {"eval_every": 0}}),
        "metric 'stability_gap': eval_every must be an integer >= 1, got 0",
    ),
    "stream n_experiences": (
        _set(["streams", "perm", "args", "n_experiences"], 0),
        "stream 'permuted_mnist' args: n_experiences must be an integer >= 1, got 0",
    ),
    "model hidden float": (
        _set(["methods", "NMS"], {"name": "NeuMoSync", "args": {"d_model": 16.0}}),
        "method 'NeuMoSync' args: d_model must be an integer >= 1, got 16.0",
    ),
    "consolidation no": (
        _set(["methods", "NMS"], {"name": "NeuMoSync", "args": {"consolidation": "no"}}),
        "consolidation must be True or False, got 'no'",
    ),
    "import path function": (
        _set(["methods", "F"], {"name": "os.path:join"}),
        "not a strategy class",
    ),
}


@pytest.mark.parametrize("case", sorted(SUITE_CASES))
def test_suite_value_refused_at_load(tmp_path, case):
    change, message = SUITE_CASES[case]
    d = copy.deepcopy(BASE)
    change(d)
    p = tmp_path / "t.yaml"
    p.write_text(yaml.safe_dump(d))
    with pytest.raises(S.SuiteError) as e:
        S.load_suite(p, "cpu")
    text = str(e.value)
    assert message in text and "\n" not in text
    assert text.startswith("suite 't' (preset 'cpu'): stream 'perm' x method ")


def _model():
    return MLP(input_size=4, hidden_sizes=(8,), num_classes=2)


CTOR_CASES = [
    (NeuMoSync, {"consolidation": "no"}, "consolidation must be True or False, got 'no'"),
    (MAML, {"first_order": "yes"}, "first_order must be True or False, got 'yes'"),
    (CReLU, {"match_params": "no"}, "match_params must be True or False, got 'no'"),
    (CBP, {"rho": True}, "rho must be a finite number in [0, 1], got True"),
    (FastNaive, {"train_epochs": 0}, "train_epochs must be an integer >= 1, got 0"),
    (NeuMoSync, {"train_epochs": -1}, "train_epochs must be an integer >= 1, got -1"),
    (NeuMoSync, {"alpha_scale": "big"}, "alpha_scale must be one number > 0 or four"),
    (NeuMoSync, {"d_model": 16.0}, "d_model must be an integer >= 1, got 16.0"),
    (FastNaive, {"train_mb_size": "16"}, "train_mb_size must be an integer >= 1, got '16'"),
    (NeuMoSync, {"optimizer": "adam"}, "optimizer must be torch.optim.optimizer.Optimizer"),
    (FastNaive, {"optimizer": "adam"}, "optimizer must be torch.optim.optimizer.Optimizer"),
    (NGMSGD, {"eta": 0.3, "lr": "fast"}, "lr must be a finite number > 0, got 'fast'"),
    (FastNaive, {"device": "cuda"}, "device 'cuda' is not available"),
    (NeuMoSync, {"device": "mps"}, "device 'mps' is not available"),
    (FastNaive, {"device": "gpu"}, "device 'gpu' is not a device"),
]


@pytest.mark.parametrize("cls,kw,message", CTOR_CASES, ids=lambda v: str(v)[:30])
def test_constructor_refuses_and_check_arguments_agrees(cls, kw, message):
    if any(str(v).startswith(("cuda", "mps")) for v in kw.values()) and (
        torch.cuda.is_available() or torch.backends.mps.is_available()
    ):
        pytest.skip("this machine has the device")
    args = {"model": _model(), **kw}
    if cls not in (NeuMoSync, NGMSGD) and "optimizer" not in kw:
        args["optimizer"] = torch.optim.SGD(args["model"].parameters(), lr=0.1)
    with pytest.raises(ValueError, match=None) as built:
        cls(**args)
    assert message in str(built.value)
    with pytest.raises(ValueError) as unbuilt:  # the same rule, nothing built
        check_arguments(cls, kw)
    assert message in str(unbuilt.value)


@pytest.mark.parametrize("device", ["cuda", "cuda:3", "mps", "gpu", 3])
def test_check_device_one_line(device):
    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("has CUDA")
    with pytest.raises(ValueError) as e:
        check_device(device)
    assert "\n" not in str(e.value)


def test_check_device_cpu():
    assert check_device("cpu") == torch.device("cpu")


class _LSTMNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(4, 8, batch_first=True)
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        return self.fc(self.lstm(x.view(x.shape[0], 1, -1))[0][:, -1])


class _FunctionalHead(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 32)
        self.w = nn.Parameter(torch.randn(10, 32))

    def forward(self, x):
        return F.linear(torch.relu(self.fc(x.flatten(1))), self.w)


@pytest.mark.parametrize(
    "model_cls,unread", [(_LSTMNet, "lstm.weight_ih_l0"), (_FunctionalHead, "(w)")]
)
@pytest.mark.parametrize("method", ["NeuMoSync", "NGMSGD"])
def test_unreadable_model_refused(model_cls, unread, method):
    kw = {"eta": 0.3} if method == "NGMSGD" else {}
    cls = {"NeuMoSync": NeuMoSync, "NGMSGD": NGMSGD}[method]
    with pytest.raises(UnsupportedModelError, match="would act on fc only") as e:
        cls(model=model_cls(), **kw)
    assert unread in str(e.value)


@pytest.mark.parametrize("model_cls", [_LSTMNet, _FunctionalHead])
def test_unreadable_model_opt_in_states_what_acts(model_cls):
    with pytest.warns(UserWarning, match="NeuMoSync acts on fc of .* only"):
        NeuMoSync(model=model_cls(), allow_unread=True)
    NGMSGD(model=model_cls(), eta=0.3, layers=["fc"])  # naming the layers is the opt-in


@pytest.mark.parametrize("empty", ["train", "test"])
def test_empty_experience_refused(empty):
    def exp(n):
        return ExperienceTensors(
            torch.zeros(n, 4), torch.zeros(n, dtype=torch.long), torch.zeros(n, dtype=torch.long)
        )

    train, test = [exp(3), exp(0 if empty == "train" else 3)], [exp(0 if empty == "test" else 3)]
    idx = 1 if empty == "train" else 0
    with pytest.raises(ValueError, match=f"{empty} experience {idx} is empty"):
        tensor_benchmark(train, test)


def test_row_relying_on_own_optimizer_warns(tmp_path):
    d = copy.deepcopy(BASE)
    d["methods"]["NeuMoSync-Adam"] = {"name": "NeuMoSync"}
    p = tmp_path / "t.yaml"
    p.write_text(yaml.safe_dump(d))
    with pytest.warns(
        S.OptimizerRuleWarning, match="every method that does not own its optimizer trains with"
    ):
        S.load_suite(p, "cpu")
    d["methods"]["NeuMoSync-Adam"]["optimizer"] = {"name": "adam", "lr": 0.001}
    p.write_text(yaml.safe_dump(d))
    with warnings.catch_warnings():
        warnings.simplefilter("error", S.OptimizerRuleWarning)
        S.load_suite(p, "cpu")


@pytest.mark.parametrize("name", sorted(S.available_suites()))
def test_shipped_suites_check(name):
    presets = sorted(S.read_yaml(S.find_suite(name)).get("presets") or {})
    from avalanche_neumod.cli import main

    for preset in presets:
        with warnings.catch_warnings():
            warnings.simplefilter("error", S.OptimizerRuleWarning)
            assert main(["check", name, "--preset", preset]) == 0


def test_check_refuses_bad_suite_one_line(tmp_path, capsys):
    from avalanche_neumod.cli import main

    d = copy.deepcopy(BASE)
    d["methods"]["CBP"] = {"args": {"rho": 1.5}}
    p = tmp_path / "t.yaml"
    p.write_text(yaml.safe_dump(d))
    assert main(["check", str(p)]) == 2
    assert main(["run", str(p), "--dry-run", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all("rho must be a finite number in [0, 1], got 1.5" in e for e in err)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("folder", ["empty", "missing"])
def test_report_on_empty_folder_is_fast(tmp_path, folder):
    run = tmp_path / folder
    if folder == "empty":
        run.mkdir()
    t0 = time.perf_counter()
    r = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from avalanche_neumod.cli import main; "
            f"sys.exit(main(['report', {str(run)!r}]))",
        ],
        capture_output=True,
        text=True,
    )
    took = time.perf_counter() - t0
    assert r.returncode == 2 and "no results in" in r.stderr
    assert "torch" not in r.stderr
    assert took < 5.0  # well under a second alone; the margin is for a loaded machine
