"""Gradient accumulation: n micro-batches give the gradient (and the update) of one step
over the whole batch, and grad_accum = 1 is the plain step."""

import pytest
import torch

from vlm4vla.train.loop import EpochSampler, LoopConfig, accumulate, micro_batches, run_loop


def test_micro_batches_cover_every_index_once():
    idx = list(range(10))
    for n in (1, 3, 4, 10, 32):
        parts = micro_batches(idx, n)
        assert [i for p in parts for i in p] == idx and all(parts)
        assert len(parts) == min(n, 10) and max(map(len, parts)) - min(map(len, parts)) <= 1


class _Acc:  # the slice of accelerate's API that accumulate() uses, on one CPU process
    def autocast(self):
        import contextlib
        return contextlib.nullcontext()

    def no_sync(self, model):
        import contextlib
        return contextlib.nullcontext()

    def backward(self, loss):
        loss.backward()


def _data():
    g = torch.Generator().manual_seed(0)
    return torch.randn(12, 5, generator=g), torch.randn(12, 3, generator=g)


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))


def _loss(model, batch):
    x, y = batch
    err = (model(x) - y) ** 2
    return {"loss": err.mean(), "first_dim": err[:, 0].mean()}


@pytest.mark.parametrize("n", [2, 3, 5])
def test_accumulated_gradient_equals_the_single_step_gradient(n):
    x, y = _data()
    get = lambda idx: (x[idx], y[idx])  # noqa: E731
    idx = list(range(12))
    grads, logged = [], []
    for parts in (1, n):
        model = _model()
        losses = accumulate(model, _loss, get, idx, parts, _Acc())
        grads.append([p.grad.clone() for p in model.parameters()])
        logged.append({k: float(v.detach()) for k, v in losses.items()})
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert logged[0] == pytest.approx(logged[1], rel=1e-5)  # sample-weighted logged losses


def test_training_with_grad_accum_matches_plain_training(tmp_path):
    x, y = _data()
    get = lambda idx: (x[idx], y[idx])  # noqa: E731
    weights = []
    for accum in (1, 4):
        model = _model()
        cfg = LoopConfig(steps=6, lr=1e-2, grad_clip=1.0, log_every=3, grad_accum=accum)
        run_loop(model, _loss, EpochSampler(12, 8, seed=1), get, cfg, tmp_path / f"s{accum}",
                 config_hash=str(accum), progress=False, tensorboard=False, seed=0)
        weights.append([p.detach().clone() for p in model.parameters()])
    for a, b in zip(*weights):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    with pytest.raises(AssertionError):  # the check can fail: other data, other weights
        model = _model()
        for a, b in zip(weights[0], model.parameters()):
            torch.testing.assert_close(a, b.detach(), rtol=1e-4, atol=1e-5)
