"""Protocol validity: does Naive fit task 1 of a memorisation stream, and after how many epochs?

For a suite stream (default: the `plasticity` suite's `lab` preset), the Naive row's cell
is built by the library exactly as `neumod run` builds it (model, optimizer, batch size,
FastDataPlugin) on one tuning seed, restricted to task 1, and trained for the largest
requested epoch count. At each requested epoch the training accuracy on task 1 (the
stream's own end-of-task reading: memorisation streams test on their training images) is
measured with the model in eval mode; the time of those evaluations is excluded from the
training time. One line of JSON per (stream, lr), and a Markdown table at the end.

    NEUMOD_DATA_ROOT=/work/shared/datasets PYTHONPATH=. python \
        benchmarks/scripts/fit_task1.py --streams random_label_mnist --lrs 0.003 0.01 0.03 \
        --epochs 25 50 100 200 400 --threads 1 --out /tmp/fit_task1.jsonl

The rule (docs/suites.md, "Protocol validity"): the papers' 400 epochs where Naive reaches
>= 95 % on task 1 at its tuned learning rate, else the smallest count that meets it.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time

import torch
from avalanche.core import SupervisedPlugin

from avalanche_neumod.benchmarks.tensor_data import experience_tensors
from avalanche_neumod.experiment import registry
from avalanche_neumod.experiment.cell import _build, seed_everything, stream_info
from avalanche_neumod.experiment.monitor import TrainMonitor
from avalanche_neumod.experiment.suite import expand, load_suite


class EpochProbe(SupervisedPlugin):
    """Training accuracy on the current experience at the given epochs (1-based)."""

    def __init__(self, at: list[int], x: torch.Tensor, y: torch.Tensor, bs: int = 1024):
        super().__init__()
        self.at, self.x, self.y, self.bs = set(at), x, y, bs
        self.epoch = 0
        self.rows: list[dict] = []
        self.t_start = time.perf_counter()
        self.eval_s = 0.0
        self.epoch_s: list[float] = []  # each epoch's training time (the load varies)
        self._t_epoch = 0.0

    @torch.no_grad()
    def _accuracy(self, model: torch.nn.Module) -> float:
        was = model.training
        model.eval()
        correct = 0
        for i in range(0, len(self.y), self.bs):
            out = model(self.x[i : i + self.bs])
            correct += int((out.argmax(1) == self.y[i : i + self.bs]).sum())
        model.train(was)
        return correct / len(self.y)

    def before_training_epoch(self, strategy, **kwargs):
        self._t_epoch = time.perf_counter()

    def after_training_epoch(self, strategy, **kwargs):
        self.epoch_s.append(time.perf_counter() - self._t_epoch)
        self.epoch += 1
        if self.epoch in self.at:
            t0 = time.perf_counter()
            acc = self._accuracy(strategy.model)
            self.eval_s += time.perf_counter() - t0
            train_s = time.perf_counter() - self.t_start - self.eval_s
            self.rows.append({"epoch": self.epoch, "accuracy": acc, "train_s": train_s})
            print(
                f"  epoch {self.epoch:4d}: task-1 accuracy {100 * acc:5.1f} %  "
                f"train {train_s:7.1f} s ({train_s / self.epoch:.3f} s/epoch)",
                flush=True,
            )


def fit(cfg: dict, epochs: list[int], root: str | None) -> dict:
    cfg = copy.deepcopy(cfg)
    cfg["stream"]["args"]["n_experiences"] = 1  # task 1's labels do not depend on the count
    cfg["train"]["epochs"] = max(epochs)
    seed_everything(int(cfg["seed"]))
    st = cfg["stream"]
    bm = registry.build_stream(st["name"], st["args"], cfg["seed"], root, st.get("wrappers"))
    info = stream_info(bm)
    exp = bm.train_stream[0]
    t = experience_tensors(exp)
    strategy, _ = _build(cfg, bm, info, TrainMonitor(log_every=100))
    probe = EpochProbe(epochs, t.x, t.y)
    strategy.plugins.append(probe)
    probe.t_start = time.perf_counter()
    strategy.train(exp)
    return {
        "stream": cfg["stream_key"],
        "method": cfg["method_key"],
        "seed": cfg["seed"],
        "lr": cfg["optimizer"]["lr"],
        "optimizer": cfg["optimizer"]["name"],
        "model": cfg["model"]["name"],
        "n_samples": len(t.y),
        "mb_size": cfg["train"]["mb_size"],
        "threads": torch.get_num_threads(),
        "rows": probe.rows,
        # the least-loaded epoch is the cleanest estimate of one epoch's cost on a shared CPU
        "epoch_s_min": min(probe.epoch_s),
        "epoch_s_median": sorted(probe.epoch_s)[len(probe.epoch_s) // 2],
    }


def table(results: list[dict]) -> str:
    epochs = sorted({r["epoch"] for res in results for r in res["rows"]})
    head = (
        "| stream | lr | "
        + " | ".join(f"{e} ep" for e in epochs)
        + " | s/epoch (mean) | s/epoch (min) |"
    )
    lines = [head, "|" + "---|" * (len(epochs) + 4)]
    for res in results:
        acc = {r["epoch"]: r["accuracy"] for r in res["rows"]}
        last = res["rows"][-1]
        cells = [f"{100 * acc[e]:.1f}" if e in acc else "" for e in epochs]
        lines.append(
            f"| {res['stream']} | {res['lr']} | "
            + " | ".join(cells)
            + f" | {last['train_s'] / last['epoch']:.3f} | {res['epoch_s_min']:.3f} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--suite", default="plasticity")
    p.add_argument("--preset", default="lab")
    p.add_argument("--streams", nargs="+", default=["random_label_mnist", "random_label_cifar10"])
    p.add_argument("--method", default="Naive")
    p.add_argument("--seed", type=int, default=100, help="a tuning seed (never a reported one)")
    p.add_argument("--lrs", nargs="+", type=float, default=[0.01])
    p.add_argument("--epochs", nargs="+", type=int, default=[25, 50, 100, 200, 400])
    p.add_argument("--threads", type=int, default=1, help="torch threads (a --jobs 2 cell: 1)")
    p.add_argument("--data-root", default=os.environ.get("NEUMOD_DATA_ROOT"))
    p.add_argument("--out", help="append one JSON line per (stream, lr) here")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    suite = load_suite(a.suite, a.preset)
    results = []
    for cfg in expand(suite, seeds=[a.seed], methods=[a.method], streams=a.streams):
        for lr in a.lrs:
            c = copy.deepcopy(cfg)
            c["optimizer"]["lr"] = lr
            print(f"{c['stream_key']} {a.method} lr={lr} seed={a.seed}", flush=True)
            res = fit(c, a.epochs, a.data_root)
            results.append(res)
            if a.out:
                with open(a.out, "a") as f:
                    f.write(json.dumps(res) + "\n")
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
