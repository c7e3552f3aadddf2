"""NeuroSync's encoder: the layer-by-layer computation with the transposed attention
is ``nn.TransformerEncoder``'s function (values and gradients, first and second order)."""

from __future__ import annotations

import pytest
import torch

from avalanche_neumod.models.neumosync import NeuroSync
from avalanche_neumod.models.neumosync.fast import TransposedAttention


@pytest.mark.parametrize("batch", [1, 3])
def test_encode_matches_transformer_encoder(batch):
    torch.manual_seed(0)
    ns = NeuroSync(feature_size=5, d_model=16, num_layers=2, num_heads=4, dim_feedforward=32)
    seq = torch.randn(batch, 23, 16, requires_grad=True)
    weights = torch.randn(batch, 23, 16)
    params = list(ns.encoder.parameters()) + [seq]

    ref = ns.encoder(seq)
    ref_grads = torch.autograd.grad((ref * weights).sum(), params)
    out = ns.encode(seq)
    grads = torch.autograd.grad((out * weights).sum(), params)

    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    for g, r in zip(grads, ref_grads):
        torch.testing.assert_close(g, r, rtol=1e-4, atol=1e-4)


def test_transposed_attention_is_softmax_attention_twice_differentiable():
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 7, dtype=torch.double, requires_grad=True) for _ in range(3))
    scale = 0.7
    got = TransposedAttention.apply(q, k, v, scale)
    # o = softmax(scale q k^T) v with q, k, v as (G, T, d_h): the transposes of the inputs
    p = torch.softmax(scale * q.transpose(1, 2) @ k, dim=-1)
    torch.testing.assert_close(got, (p @ v.transpose(1, 2)).transpose(1, 2))

    def fn(q, k, v):
        return TransposedAttention.apply(q, k, v, scale)

    assert torch.autograd.gradcheck(fn, (q, k, v))
    assert torch.autograd.gradgradcheck(fn, (q, k, v))
