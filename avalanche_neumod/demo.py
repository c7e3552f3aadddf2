"""``make demo``: a 3-experience Permuted MNIST run through the fast path, printing accuracies."""

from __future__ import annotations

import time

import torch
from avalanche.evaluation.metrics import accuracy_metrics
from avalanche.training.plugins import EvaluationPlugin

from .benchmarks.streams import permuted_mnist
from .models import MLP
from .training import FastNaive


def main() -> None:
    torch.manual_seed(0)
    bm = permuted_mnist(n_experiences=3, train_size=2000, test_size=500, seed=0)
    model = MLP(784, (100, 100), 10)
    ev = EvaluationPlugin(accuracy_metrics(experience=True, stream=True), loggers=[])
    strategy = FastNaive(
        model=model,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.01),
        train_mb_size=16,
        evaluator=ev,
    )
    t0 = time.time()
    for exp in bm.train_stream:
        strategy.train(exp, eval_streams=[])
        res = strategy.eval(bm.test_stream)
        accs = [
            res[f"Top1_Acc_Exp/eval_phase/test_stream/Task000/Exp{k:03d}"]
            for k in range(len(bm.test_stream))
        ]
        print(
            f"after experience {exp.current_experience}: test accuracy per experience "
            + " ".join(f"{a:.3f}" for a in accs)
        )
    print(f"done in {time.time() - t0:.1f} s")


if __name__ == "__main__":
    main()
