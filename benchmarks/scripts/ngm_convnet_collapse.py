"""NGM-SGD on the library's ConvNet, joint Split-MNIST: the per-iteration diagnostics of
docs/ngm.md ("Conv nets: use layers='head'").

Prints, at iterations 1-12 and every 50: loss, batch entropy H, logit std over classes,
each gained layer's mean gain, the fraction of positive outputs of each ReLU, the weight
norms; then the final accuracy per test experience and the collapse flag. Usage::

    python benchmarks/scripts/ngm_convnet_collapse.py --layers all --eta 0.4 --seed 0
    python benchmarks/scripts/ngm_convnet_collapse.py --layers head --eta 0.4 --seed 0
    python benchmarks/scripts/ngm_convnet_collapse.py --eta -1      # plain SGD, no gains
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import torch
from avalanche.core import SupervisedPlugin

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from avalanche_neumod.benchmarks.streams import split_mnist  # noqa: E402
from avalanche_neumod.models import ConvNet  # noqa: E402
from avalanche_neumod.training.ngm import NGMSGD, ngm_baseline  # noqa: E402


class _Probe(SupervisedPlugin):
    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model, self.t, self.active = model, 0, {}
        relus = [m for m in model.modules() if isinstance(m, torch.nn.ReLU)]
        for i, r in enumerate(relus):
            r.register_forward_hook(self._hook(i))

    def _hook(self, i):
        def hook(module, inp, out):
            self.active[i] = (out > 0).float().mean().item()

        return hook

    def after_training_iteration(self, strategy, **kw):
        self.t += 1
        if self.t > 12 and self.t % 50:
            return
        out = strategy.mb_output.detach()
        h = torch.special.entr(out.softmax(-1)).sum(-1).mean().item()
        gains = [round(float(m.gain.mean()), 2) for m in self.model.modules() if hasattr(m, "gain")]
        w = [f"{float(m.weight.norm()):.3g}" for m in self.model.modules() if hasattr(m, "gain")
             or isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))]  # fmt: skip
        act = [round(self.active[i], 3) for i in sorted(self.active)]
        print(
            f"it {self.t:4d} loss {float(strategy.loss):8.3f} H {h:.3f} "
            f"logit-std {float(out.std(1).mean()):.3g} gains {gains} active {act} |W| {w}",
            flush=True,
        )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--layers", default="all")
    ap.add_argument("--eta", type=float, default=0.4, help="< 0: plain SGD without gains")
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--iterations", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--root", default=os.environ.get("NEUMOD_DATA_ROOT"))
    a = ap.parse_args(argv)
    torch.manual_seed(a.seed)
    bm = split_mnist(iterations=a.iterations, batch_size=128, joint=True, seed=a.seed, root=a.root)
    model = ConvNet(in_channels=1, input_size=28)
    kw = dict(model=model, lr=a.lr, train_mb_size=128, evaluator=None, plugins=[_Probe(model)])
    if a.eta >= 0:
        s = NGMSGD(eta=a.eta, layers=a.layers, **kw)
    else:
        s = ngm_baseline("sgd", **kw)
    for exp in bm.train_stream:
        s.train(exp)
    model.eval()
    with torch.no_grad():
        accs = [(model(e.tensors.x).argmax(-1) == e.tensors.y).float().mean().item()
                for e in bm.test_stream]  # fmt: skip
    print("final accuracy per test experience", [round(x, 3) for x in accs])
    print(f"mean {np.mean(accs):.4f}")
    if a.eta >= 0:
        print("collapsed", s.gain_plugin.collapsed, s.gain_plugin.collapse_info)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
