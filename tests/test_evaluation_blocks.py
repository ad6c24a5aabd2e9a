"""Importance sampling decodes each chunk of samples in cache-sized blocks: same draws, same estimate."""

from __future__ import annotations

import torch

from vaekit import VAE
from vaekit.evaluation import decode_rows, log_likelihood


def test_decoding_in_blocks_gives_the_unblocked_estimate():
    torch.manual_seed(0)
    model = VAE(30, 4, likelihood="bernoulli", hidden=(32, 32)).eval()
    x = (torch.rand(70, 30, generator=torch.Generator().manual_seed(1)) > 0.5).float()
    torch.manual_seed(5)
    blocked = log_likelihood(model, x, n_samples=300, batch_size=50, max_rows=6000, block_rows=500)
    torch.manual_seed(5)
    whole = log_likelihood(model, x, n_samples=300, batch_size=50, max_rows=6000, block_rows=10**9)
    torch.testing.assert_close(blocked, whole, rtol=1e-5, atol=1e-5)
    assert decode_rows(model) * 4 * 32 <= 4 * 2**20 + 4 * 32 * 256  # the default block fits the cache budget
