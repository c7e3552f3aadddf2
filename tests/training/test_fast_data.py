"""The fast training path: minibatch contract, epoch coverage, equivalence with the stock path."""

from __future__ import annotations

import pytest
import torch
from avalanche.benchmarks.scenarios.dataset_scenario import benchmark_from_datasets
from avalanche.core import SupervisedPlugin
from avalanche.evaluation.metrics import accuracy_metrics, loss_metrics
from avalanche.training import Naive
from avalanche.training.plugins import EvaluationPlugin, ReplayPlugin
from torch import nn
from toy_runs import toy_bench, toy_data, toy_strategy

from avalanche_neumod.benchmarks import ExperienceTensors, experience_tensors
from avalanche_neumod.benchmarks.tensor_data import tensor_dataset
from avalanche_neumod.models import MLP
from avalanche_neumod.training import FastDataPlugin, FastNaive, TensorBatchLoader


def _quiet():
    return EvaluationPlugin(accuracy_metrics(experience=True, stream=True), loggers=[])


def test_loader_covers_every_sample_once_per_epoch():
    d = ExperienceTensors(torch.arange(23).float().unsqueeze(1), torch.arange(23), 1)
    loader = TensorBatchLoader(d, batch_size=5, shuffle=True)
    batches = list(loader)
    assert len(loader) == len(batches) == 5
    assert [len(b[1]) for b in batches] == [5, 5, 5, 5, 3]
    seen = torch.cat([b[1] for b in batches])
    assert sorted(seen.tolist()) == list(range(23))
    assert seen.tolist() != list(range(23))  # shuffled
    for x, y, t in batches:  # the [x, y, t] contract, rows aligned
        assert torch.equal(x.squeeze(1).long(), y) and torch.all(t == 1)
    assert len(TensorBatchLoader(d, 5, drop_last=True)) == 4
    assert sum(len(b[1]) for b in TensorBatchLoader(d, 5, drop_last=True)) == 20


def test_loader_seeded_generator_and_transform():
    d = toy_data(30)
    a = [b[1] for b in TensorBatchLoader(d, 7, True, generator=torch.Generator().manual_seed(3))]
    b = [b[1] for b in TensorBatchLoader(d, 7, True, generator=torch.Generator().manual_seed(3))]
    c = [b[1] for b in TensorBatchLoader(d, 7, True, generator=torch.Generator().manual_seed(4))]
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    assert not all(torch.equal(u, v) for u, v in zip(a, c))
    x0 = next(iter(TensorBatchLoader(d, 4, transform=lambda x: x * 0)))[0]
    assert torch.all(x0 == 0)
    with pytest.raises(ValueError, match="batch_size"):
        TensorBatchLoader(d, 0)


def test_fast_naive_equals_a_hand_written_loop():
    bm = toy_bench()
    torch.manual_seed(1)
    model = MLP(6, (8,), 3)
    hand = MLP(6, (8,), 3)
    hand.load_state_dict(model.state_dict())
    strategy = toy_strategy(
        FastNaive,
        model=model,
        train_mb_size=8,
        train_epochs=2,
        evaluator=_quiet(),
    )
    torch.manual_seed(2)
    for exp in bm.train_stream:
        strategy.train(exp, eval_streams=[])
    torch.manual_seed(2)
    opt = torch.optim.SGD(hand.parameters(), lr=0.1)
    for exp in bm.train_stream:
        d = exp.tensors
        for _ in range(2):
            order = torch.randperm(len(d))
            for i in range(0, len(d), 8):
                idx = order[i : i + 8]
                opt.zero_grad()
                nn.functional.cross_entropy(hand(d.x[idx]), d.y[idx]).backward()
                opt.step()
    for p, q in zip(model.parameters(), hand.parameters()):
        assert torch.equal(p, q)


def test_plugin_in_avalanche_naive_matches_fast_naive_and_stock_eval():
    bm = toy_bench()
    results = []
    for cls, plugins in ((FastNaive, []), (Naive, [FastDataPlugin()]), (Naive, [])):
        torch.manual_seed(0)
        ev = EvaluationPlugin(
            accuracy_metrics(epoch=True, experience=True, stream=True),
            loss_metrics(epoch=True),
            loggers=[],
        )
        s = toy_strategy(
            cls,
            train_mb_size=8,
            train_epochs=1,
            eval_mb_size=7,
            evaluator=ev,
            plugins=plugins,
        )
        torch.manual_seed(5)
        s.train(bm.train_stream[0], eval_streams=[])
        metrics = s.eval(bm.test_stream)
        results.append((metrics, [p.detach().clone() for p in s.model.parameters()]))
    (m_fast, p_fast), (m_plug, p_plug), (m_stock, _) = results
    assert all(torch.equal(a, b) for a, b in zip(p_fast, p_plug))
    assert m_fast == m_plug
    # evaluation is order-free: the stock loader gives the same accuracy for the same model
    torch.manual_seed(0)
    model = MLP(6, (8,), 3)
    for p, q in zip(model.parameters(), p_fast):
        p.data.copy_(q)
    stock = toy_strategy(
        Naive,
        model=model,
        eval_mb_size=7,
        evaluator=_quiet(),
    )
    fast = toy_strategy(
        FastNaive,
        model=model,
        eval_mb_size=7,
        evaluator=_quiet(),
    )
    ms, mf = stock.eval(bm.test_stream), fast.eval(bm.test_stream)
    key = "Top1_Acc_Stream/eval_phase/test_stream/Task000"
    assert ms[key] == pytest.approx(mf[key], abs=1e-12)


def test_same_random_stream_as_avalanche_with_the_plugin_over_train_and_eval_cycles():
    """A suite's cycle (train an experience, evaluate the stream, next experience) gives
    bitwise the same run with our template as with Avalanche's Naive + FastDataPlugin:
    both consume torch's global RNG alike (one draw per evaluated experience: the stock
    evaluation loader's, and ours in its place)."""
    bm = toy_bench(n_exp=3, n=40)
    params = []
    for cls in (Naive, FastNaive):
        torch.manual_seed(0)
        s = toy_strategy(
            cls,
            train_mb_size=8,
            evaluator=EvaluationPlugin(accuracy_metrics(experience=True), loggers=[]),
            plugins=[FastDataPlugin()],
        )
        for exp in bm.train_stream:
            s.train(exp, eval_streams=[])
            s.eval(bm.test_stream)
        params.append([p.detach().clone() for p in s.model.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*params))


_COUNTED = (
    "before_forward",
    "after_update",
    "after_eval_iteration",
    "before_training",
    "before_training_exp",
    "before_training_epoch",
    "after_training_exp",
    "before_eval",
    "before_eval_exp",
    "after_eval_exp",
    "after_eval_dataset_adaptation",
)


class _Counter(SupervisedPlugin):
    """Counts the calls of a per-iteration and per-experience subset of the hooks."""

    def __init__(self):
        super().__init__()
        self.calls = dict.fromkeys(_COUNTED, 0)
        for event in _COUNTED:
            setattr(self, event, self._count(event))

    def _count(self, event):
        def hook(strategy, **kw):
            self.calls[event] += 1

        return hook


# _Counter's hooks are instance attributes; the lean dispatch reads the class, so the
# class must define them too (as a user's plugin would).
for _event in _COUNTED:
    setattr(_Counter, _event, lambda self, strategy, _e=_event, **kw: None)


def test_lean_dispatch_calls_every_acting_hook():
    bm = toy_bench(n_exp=2, n=40)
    counts = []
    for cls in (FastNaive, Naive):
        c = _Counter()
        s = toy_strategy(
            cls,
            train_mb_size=8,
            eval_mb_size=10,
            evaluator=_quiet(),
            plugins=[c, FastDataPlugin()],
        )
        for exp in bm.train_stream:
            s.train(exp, eval_streams=[])
        s.eval(bm.test_stream)
        counts.append(c.calls)
    assert counts[0] == counts[1]
    assert counts[0] == {
        "before_forward": 10,
        "after_update": 10,
        "after_eval_iteration": 4,
        "before_training": 2,
        "before_training_exp": 2,
        "before_training_epoch": 2,
        "after_training_exp": 2,
        "before_eval": 1,
        "before_eval_exp": 2,
        "after_eval_exp": 2,
        "after_eval_dataset_adaptation": 2,
    }


def test_evaluation_plugin_own_hooks_still_run():
    """``EvaluationPlugin.before_eval`` runs its stream check even with no metric acting:
    the fast template fails exactly where Avalanche's does, and passes without the check."""
    bm = toy_bench(n_exp=2, n=40)
    failures = []
    for cls in (FastNaive, Naive):
        for strict in (True, False):
            s = toy_strategy(
                cls,
                evaluator=EvaluationPlugin(loggers=[], strict_checks=strict),
            )
            try:
                s.eval(bm.test_stream[:1])
                failures.append((cls.__name__, strict, None))
            except Exception as e:  # the check's own failure, whatever its type
                failures.append((cls.__name__, strict, type(e).__name__))
    (_, _, fast_strict), (_, _, fast_lax), (_, _, stock_strict), (_, _, stock_lax) = failures
    assert fast_strict is not None and fast_strict == stock_strict
    assert fast_lax is None and stock_lax is None


@pytest.mark.parametrize("fast_first", [True, False])
def test_replay_keeps_its_own_loader(fast_first):

    bm = toy_bench(n_exp=2, n=40)
    model = MLP(6, (8,), 3)
    seen = []

    class Spy(SupervisedPlugin):
        def before_training_epoch(self, strategy, **kw):
            seen.append(type(strategy.dataloader).__name__)

    plugins = [FastDataPlugin(), ReplayPlugin(mem_size=20)]
    s = toy_strategy(
        Naive,
        model=model,
        train_mb_size=8,
        evaluator=_quiet(),
        plugins=(plugins if fast_first else plugins[::-1]) + [Spy()],
    )
    for exp in bm.train_stream:
        s.train(exp, eval_streams=[])
    # no buffer yet on the first experience: the fast path serves it; then replay's loader
    assert seen == ["TensorBatchLoader", "ReplayDataLoader"]


def test_experiences_without_tensors_are_materialised_once():
    g = torch.Generator().manual_seed(0)
    data = ExperienceTensors(
        torch.randn(30, 4, generator=g), torch.randint(0, 2, (30,), generator=g), 0
    )
    bm = benchmark_from_datasets(train=[tensor_dataset(data)], test=[tensor_dataset(data)])
    exp = bm.train_stream[0]
    assert not hasattr(exp, "tensors")
    with pytest.warns(UserWarning, match="materialising"):
        got = experience_tensors(exp)
    assert torch.equal(got.x, data.x) and torch.equal(got.y, data.y)
    assert experience_tensors(exp) is got  # cached on the experience


def test_optimizer_update_skipped_only_when_nothing_changed(monkeypatch):
    """Avalanche's per-experience optimizer update runs when the model's parameters
    change (a new layer joins the optimizer, as in Avalanche) and is skipped otherwise."""
    import avalanche.training.templates.observation_type.batch_observation as bo

    calls = []
    original = bo.update_optimizer

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(bo, "update_optimizer", counting)
    bm = toy_bench(n_exp=3, n=16)
    s = toy_strategy(FastNaive, train_mb_size=8, evaluator=_quiet())
    model = s.model
    s.train(bm.train_stream[0], eval_streams=[])
    first = len(calls)
    assert first >= 1  # the first experience reads every parameter in
    s.train(bm.train_stream[1], eval_streams=[])
    assert len(calls) == first  # nothing changed: skipped
    model.extra = nn.Linear(3, 3)  # a new parameterised module (unused by forward)
    s.train(bm.train_stream[2], eval_streams=[])
    assert len(calls) > first
    in_optimizer = {id(p) for g in s.optimizer.param_groups for p in g["params"]}
    assert id(model.extra.weight) in in_optimizer and id(model.extra.bias) in in_optimizer
