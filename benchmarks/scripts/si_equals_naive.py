"""SI (Avalanche 0.6.0) against Naive: bit-identical after 3 experiences (docs/baselines.md)."""

import torch
from avalanche.training import Naive, SynapticIntelligence
from avalanche.training.plugins import EvaluationPlugin

from avalanche_neumod.benchmarks import ExperienceTensors, tensor_benchmark
from avalanche_neumod.models import MLP

g = torch.Generator().manual_seed(0)


def exp(n):
    return ExperienceTensors(
        torch.randn(n, 20, generator=g),
        torch.randint(0, 4, (n,), generator=g),
        torch.zeros(n, dtype=torch.long),
    )


bm = tensor_benchmark([exp(256) for _ in range(3)], [exp(64)])


def run(cls, **kw):
    torch.manual_seed(1)
    m = MLP(input_size=20, hidden_sizes=(32,), num_classes=4)
    s = cls(
        model=m,
        optimizer=torch.optim.SGD(m.parameters(), lr=0.1),
        criterion=torch.nn.CrossEntropyLoss(),
        train_mb_size=16,
        evaluator=EvaluationPlugin(loggers=[]),
        **kw,
    )
    for e in bm.train_stream:
        s.train(e)
    return torch.cat([p.detach().flatten() for p in m.parameters()])


a = run(Naive)
for lam in (1.0, 1e6):
    b = run(SynapticIntelligence, si_lambda=lam)
    diff = (a - b).abs().max().item()
    same = torch.equal(a, b)
    print(f"si_lambda={lam:g}: bit-identical to Naive: {same}; max |diff| = {diff:.3g}")
