"""Suite files: presets, expansion into cells, precedence, and the errors for bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from avalanche_neumod.experiment import registry
from avalanche_neumod.experiment.suite import (
    SuiteError,
    available_suites,
    deep_merge,
    expand,
    find_suite,
    load_suite,
    package_suites,
    shipped_suites,
    suite_dirs,
)

SUITES = (
    "smoke",
    "plasticity",
    "recurring",
    "transfer",
    "maml",
    "ablation",
    "stability_gap",
    "perf",
    "neumosync_study",
)


def test_every_shipped_suite_is_tested():
    assert set(SUITES) == set(shipped_suites())


def test_suites_are_package_data_found_by_name(tmp_path, monkeypatch):
    """Shipped suites live in the package, found from any folder; ``$NEUMOD_SUITES`` and
    ``./benchmarks`` come first, and a suite of one's own is taken by path."""
    import avalanche_neumod

    pkg = package_suites()
    assert pkg.parent == Path(avalanche_neumod.__file__).parent
    monkeypatch.chdir(tmp_path)  # no ./benchmarks here
    monkeypatch.delenv("NEUMOD_SUITES", raising=False)
    assert suite_dirs() == [pkg]
    assert available_suites() == shipped_suites()
    assert find_suite("smoke") == pkg / "smoke.yaml"
    mine, env = tmp_path / "benchmarks", tmp_path / "env"
    mine.mkdir()
    env.mkdir()
    (mine / "smoke.yaml").write_text((pkg / "smoke.yaml").read_text())
    assert find_suite("smoke") == mine / "smoke.yaml"  # the user's folder wins
    (env / "smoke.yaml").write_text((pkg / "smoke.yaml").read_text())
    monkeypatch.setenv("NEUMOD_SUITES", str(env))
    assert suite_dirs()[:2] == [env, mine] and find_suite("smoke") == env / "smoke.yaml"
    own = tmp_path / "elsewhere" / "my_suite.yaml"
    own.parent.mkdir()
    own.write_text((pkg / "smoke.yaml").read_text().replace("name: smoke", "name: my_suite"))
    assert load_suite(own, "cpu").name == "my_suite"
    assert "my_suite" not in available_suites()  # by path only


def test_old_suite_path_says_to_use_the_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SuiteError, match=r"benchmarks/smoke\.yaml; the suite 'smoke' is found"):
        find_suite("benchmarks/smoke.yaml")
    with pytest.raises(SuiteError, match=r"suite file not found: nope\.yaml$"):
        find_suite("nope.yaml")


def test_presets_and_expansion(tiny_suite):
    s = load_suite(tiny_suite, "cpu")
    cells = expand(s)
    assert [c["cell_id"] for c in cells] == [
        f"{st}__{m}__seed0" for st in ("toy", "toy2") for m in ("FastNaive", "Naive", "Boom")
    ]
    assert len(expand(load_suite(tiny_suite, "two_seeds"))) == 12
    only = expand(s, seeds=[3, 4], methods=["Naive"], streams=["toy2"])
    assert [c["cell_id"] for c in only] == ["toy2__Naive__seed3", "toy2__Naive__seed4"]
    boom = next(c for c in cells if c["method_key"] == "Boom")
    assert boom["method"]["name"] == "FastNaive"
    assert boom["optimizer"] == {"name": "sgd", "lr": 1e8}
    naive = next(c for c in cells if c["method_key"] == "Naive")
    assert naive["method"]["target"] == "avalanche.training:Naive"
    assert naive["method"]["kind"] == "avalanche"
    assert naive["model"] == {"name": "mlp", "args": {"hidden_sizes": [16]}}
    assert naive["train"]["mb_size"] == 8


def test_precedence(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text(
        """
name: prec
defaults: {optimizer: {name: sgd, lr: 0.1}, train: {mb_size: 4}}
streams:
  a:
    name: "toy:toy_stream"
    train: {mb_size: 6}
    methods: {EWC: {args: {ewc_lambda: 7}}}
methods:
  Naive: {}
  EWC: {optimizer: {momentum: 0.9}}
  LwF: {optimizer: {name: adam, lr: 0.001}}
  NeuMoSync: {}
  NGMSGD: {args: {eta: 0.4}, optimizer: {name: sgd, lr: 0.2}}
presets:
  cpu: {defaults: {optimizer: {lr: 0.05}}}
"""
    )
    cells = {c["method_key"]: c for c in expand(load_suite(p, "cpu"))}
    # registry defaults < suite defaults < stream < method < stream's per-method override
    assert cells["EWC"]["optimizer"] == {"name": "sgd", "lr": 0.05, "momentum": 0.9}
    assert cells["EWC"]["method"]["args"] == {"ewc_lambda": 7}
    assert cells["EWC"]["train"]["mb_size"] == 6
    # a different optimizer name replaces the one below instead of merging into it
    assert cells["LwF"]["optimizer"] == {"name": "adam", "lr": 0.001}
    # NeuMoSync trains with the suite's optimizer like every method; NGM-SGD,
    # whose optimizer is its mechanism, keeps its own against shared optimizers; its
    # arguments merge with the suite's, and its own entry may still replace it
    assert cells["NeuMoSync"]["optimizer"] == {"name": "sgd", "lr": 0.05}
    assert cells["NGMSGD"]["optimizer"] == {"name": "sgd", "lr": 0.2}
    assert cells["NGMSGD"]["method"]["args"] == {"eta": 0.4, "lr": 0.01}


def test_deep_merge_semantics():
    base = {"a": {"x": 1, "y": 2}, "b": [1, 2], "c": 3}
    over = {"a": {"y": 5}, "b": [9], "c": None}
    assert deep_merge(base, over) == {"a": {"x": 1, "y": 5}, "b": [9]}
    assert base == {"a": {"x": 1, "y": 2}, "b": [1, 2], "c": 3}


def test_unknown_suite_lists_valid():
    with pytest.raises(SuiteError) as e:
        load_suite("no_such_suite")
    assert "no_such_suite" in str(e.value)
    for name in SUITES:
        assert name in str(e.value)


def test_unknown_preset_lists_valid(tiny_suite):
    with pytest.raises(SuiteError, match=r"unknown preset 'huge'.*valid presets: cpu, two_seeds"):
        load_suite(tiny_suite, "huge")


def test_unknown_method_lists_valid(tmp_path):
    p = tmp_path / "m.yaml"
    p.write_text(
        'name: m\nstreams: {a: {name: "toy:toy_stream"}}\nmethods: {Naiive: {}}\n'
        "presets: {cpu: {}}\n"
    )
    with pytest.raises(registry.RegistryError) as e:
        load_suite(p)
    msg = str(e.value)
    assert "unknown method 'Naiive'" in msg
    for name in ("Naive", "EWC", "Replay", "SI", "LwF", "NeuMoSync", "CBP", "MAML"):
        assert name in msg


def test_unknown_stream_lists_valid(tmp_path, monkeypatch):
    from avalanche_neumod import benchmarks

    monkeypatch.setattr(
        benchmarks, "STREAMS", {"permuted_mnist": None, "split_mnist": None}, raising=False
    )
    p = tmp_path / "s.yaml"
    p.write_text("name: s\nstreams: {pmnsit: {}}\nmethods: {Naive: {}}\npresets: {cpu: {}}\n")
    with pytest.raises(
        registry.RegistryError,
        match=r"unknown stream 'pmnsit'.*permuted_mnist, "
        r"split_mnist",
    ):
        load_suite(p)


def test_unknown_names_in_run_filters(tiny_suite):
    s = load_suite(tiny_suite)
    with pytest.raises(
        SuiteError,
        match=r"unknown method\(s\) Foo.*valid methods: FastNaive, "
        r"Naive, Boom",
    ):
        expand(s, methods=["Foo"])
    with pytest.raises(SuiteError, match=r"valid streams: toy, toy2"):
        expand(s, streams=["nope"])


def test_unknown_key_and_model_and_optimizer(tmp_path):
    p = tmp_path / "k.yaml"
    base = 'name: k\nstreams: {a: {name: "toy:toy_stream"}}\npresets: {cpu: {}}\n'
    p.write_text(base + "methods: {Naive: {lr: 0.1}}\n")
    with pytest.raises(SuiteError, match=r"unknown key\(s\) lr; valid keys: .*optimizer"):
        load_suite(p)
    p.write_text(base + "methods: {Naive: {model: resnet}}\n")
    with pytest.raises(registry.RegistryError, match=r"unknown model 'resnet'.*convnet, mlp"):
        load_suite(p)
    p.write_text(base + "methods: {Naive: {optimizer: {name: adagrad}}}\n")
    with pytest.raises(registry.RegistryError, match=r"unknown optimizer 'adagrad'.*adam"):
        load_suite(p)
    p.write_text(base + "methods: {Naive: {metrics: {speed: {}}}}\n")
    with pytest.raises(registry.RegistryError, match=r"unknown metric 'speed'.*stability_gap"):
        load_suite(p)


def test_malformed_yaml_names_the_line(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("name: bad\nstreams:\n  a: {name: x\nmethods: {Naive: {}}\n")
    with pytest.raises(SuiteError) as e:
        load_suite(p)
    assert "line 4" in str(e.value) and str(p) in str(e.value)
    p.write_text("name: bad\nmethods:\n  - a\n  b: 1\n")
    with pytest.raises(SuiteError, match="line 4"):
        load_suite(p)


def test_user_strategy_by_import_path(tmp_path):
    p = tmp_path / "u.yaml"
    p.write_text(
        'name: u\nstreams: {a: {name: "toy:toy_stream"}}\npresets: {cpu: {}}\n'
        'methods: {Naive: {}, Mine: {name: "avalanche.training:Cumulative"}}\n'
    )
    (c,) = expand(load_suite(p), methods=["Mine"])
    assert c["method"]["target"] == "avalanche.training:Cumulative"
    assert c["method"]["kind"] == "user"
    p.write_text(p.read_text().replace("Cumulative", "Nope"))
    s = load_suite(p)  # resolved lazily: fails when a cell builds it
    with pytest.raises(registry.RegistryError, match="has no attribute 'Nope'"):
        registry.resolve(expand(s, methods=["Mine"])[0]["method"]["target"])


@pytest.mark.parametrize("name", SUITES)
def test_shipped_suites_parse(name):
    """Every shipped suite has both presets and expands with every name valid."""
    path = shipped_suites()[name]
    from avalanche_neumod.experiment.suite import read_yaml

    raw = read_yaml(path)
    assert {"cpu", "paper"} <= set(raw["presets"])
    for preset in ("cpu", "paper"):
        cells = expand(load_suite(path, preset))  # every name valid, every cell resolvable
        assert cells and all(c["seed"] in (0, 1, 2, 3, 4) for c in cells)
    # the cpu preset's seeds: one for the demo and the timings, five where the report
    # decides NeuMoSync's mechanisms and variants, three elsewhere
    want = {"smoke": 1, "perf": 1, "ablation": 5, "neumosync_study": 5}.get(name, 3)
    assert len({c["seed"] for c in expand(load_suite(path, "cpu"))}) == want
