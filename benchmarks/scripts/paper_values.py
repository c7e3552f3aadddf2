"""Transcribe the NeuMoSync paper's Table 1 and Table 2 from its excerpt into
``avalanche_neumod/reporting/paper_values.yaml`` (the numbers the reports print beside
ours), so no paper value is typed by hand.

    python benchmarks/scripts/paper_values.py /work/shared/papers/neumosync_excerpt.txt
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from avalanche_neumod.reporting.paper_values import TABLE1_KEYS

STREAMS = {
    "Random Label CIFAR-10": "random_label_cifar10",
    "Random Label MNIST": "random_label_mnist",
    "Shuffle CIFAR-10": "shuffle_cifar10",
    "Permuted MNIST": "permuted_mnist",
    "Class Split CIFAR-100": "class_split_cifar100",
    "Class Split T-ImageNet": "class_split_tiny_imagenet",
}
METHODS = {
    "CBP": "CBP",
    "CReLU": "CReLU",
    "ReDo": "ReDo",
    "L2Init + EWC": "L2InitEWC",
    "NeuMoSync": "NeuMoSync",
    "MAML": "MAML",
}
COLUMNS = list(TABLE1_KEYS.values())  # the paper's Table 1 columns, in its order
OUT = Path(__file__).resolve().parents[2] / "avalanche_neumod" / "reporting" / "paper_values.yaml"


def transcribe(excerpt: Path) -> str:
    lines = excerpt.read_text().splitlines()
    i = next(k for k, s in enumerate(lines) if s.startswith("Table 1:"))
    j = next(k for k, s in enumerate(lines) if s.startswith("Table 2:"))
    src = excerpt.name
    out = [
        "# The papers' numbers, printed beside ours by the reports (reporting/paper_values.py).",
        f"# Written by benchmarks/scripts/paper_values.py from {src}; do not edit by hand.",
        "neumosync_table1:",
        f'  source: "NeuMoSync paper, Table 1 ({src}, Adaptation Speed & Knowledge Transfer)"',
        "  units: percent",
        '  spread: "the spread the paper prints beside each value'
        ' (the excerpt does not say which)"',
        "  columns: [" + ", ".join(COLUMNS) + "]",
        "  streams:",
    ]
    stream = None
    for line in lines[i:j]:
        parts = line.split("\t")
        name = re.sub(r"\s*\(.*\)$", "", parts[0].strip())  # "... (Memorization)"
        if name in STREAMS and not any(p.strip() for p in parts[1:]):
            stream = STREAMS[name]
            out.append(f"    {stream}:")
        elif stream and name in METHODS:
            vals = [p.strip() for p in parts[1:] if p.strip()]
            if len(vals) != len(COLUMNS):
                raise SystemExit(f"unexpected Table 1 row: {line!r}")
            cells = []
            for c, v in zip(COLUMNS, vals):
                m = re.fullmatch(r"([-\d.]+) \(([-\d.]+)\)", v)
                if not m:
                    raise SystemExit(f"unexpected Table 1 value {v!r} in {line!r}")
                cells.append(f"{c}: [{m.group(1)}, {m.group(2)}]")
            out.append(f"      {METHODS[name]}: {{{', '.join(cells)}}}")
    head = next(s for s in lines[j:] if s.startswith("Method"))
    names = [STREAMS[h.strip()] for h in head.split("\t")[1:] if h.strip()]
    rows = {}
    for line in lines[j:]:
        parts = [p.strip() for p in line.split("\t") if p.strip()]
        if parts and parts[0] in METHODS and len(parts) == 1 + 2 * len(names):
            rows[METHODS[parts[0]]] = parts[1:]
    out += [
        "neumosync_table2:",
        f'  source: "NeuMoSync paper, Table 2 ({src})"',
        "  units: fraction",
        "  streams:",
    ]
    for k, s in enumerate(names):
        out.append(f"    {s}:")
        for m, v in rows.items():
            out.append(f"      {m}: {{LCA_F: {v[2 * k]}, accuracy: {v[2 * k + 1]}}}")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    OUT.write_text(transcribe(Path(sys.argv[1])))
    print(f"wrote {OUT}")
