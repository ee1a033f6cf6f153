"""PyTorch peer of the `train_step` benchmark (docs/BENCH.md).

The same step as crates/train/benches/train_step.rs, in PyTorch eager, float64, on
`--threads` threads (default 1; scripts/bench-torch sets the OpenMP variables to match):
tokens [x_i, log(c_f,i/c_scale + 1e-12) m_i, t] -> Linear(3, 16) + sinusoidal slot encoding
-> one attention head (16x16 W_q, W_k, W_v, no bias; absent keys masked; absent rows zeroed)
-> flatten (112) ++ t -> Linear 113-64-64-64-64-7 with tanh after the first four -> times mask
-> hard projection with w = z m; RK4 with 16 steps from 0 to each sample's t (integrated in
s = tau/t over [0, 1] with the field scaled by t, i.e. the per-sample step t/16, as ionode
does); masked MSE on x(t) against c_p/c_scale (c_p = 0.5 c_f: the target does not change the
cost); backward; one Adam step (lr 1e-3).

Two integrators: a hand-written RK4 and torchdiffeq.odeint(method="rk4", step_size=1/16)
(torchdiffeq's "rk4" is the 3/8-rule variant: also 4 field evaluations per step). With
`--compile`, also the hand-written RK4 under torch.compile (Inductor, default mode; the
forward and loss are compiled, AOTAutograd compiles the backward; compilation happens in the
untimed warm-up steps and its duration is printed).

Prints the median seconds per step at batch 64, 256, 1024 and GFLOP/s with the same matmul
FLOP count as the Rust benchmark.
"""

import argparse
import math
import statistics
import time

import numpy as np
import os

import torch
import torchdiffeq

torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "1")))
torch.set_default_dtype(torch.float64)

S, D, H, STEPS = 7, 16, 64, 16
Z = np.array([1, 1, 1, 2, 2, -1, -2], dtype=np.float64)
J_REF = 1e-5


def matmul_flops(b):
    inp = S * D + 1
    fwd = 2 * S * 3 * D + 3 * 2 * S * D * D + 2 * 2 * S * S * D + 2 * (inp * H + 3 * H * H + H * S)
    return 3 * fwd * 4 * STEPS * b


def synthetic_batch(b, seed):
    rng = np.random.default_rng(seed)
    feed = np.zeros((b, S))
    mask = np.zeros((b, S), dtype=bool)
    for i in range(b):
        n = rng.integers(2, S + 1)
        while True:
            pick = rng.choice(S, size=n, replace=False)
            if (Z[pick] > 0).any() and (Z[pick] < 0).any():
                break
        mask[i, pick] = True
        c = np.exp(rng.uniform(0, math.log(200), size=S)) * mask[i]
        qp = (Z * c)[Z > 0].sum()
        qn = -(Z * c)[Z < 0].sum()
        c[Z < 0] *= qp / qn
        feed[i] = c
    flux = rng.uniform(2e-6, 3e-5, size=b)
    return feed, mask, flux


def sinusoidal(slots, d, base=10000.0):
    out = np.zeros((slots, d))
    for p in range(slots):
        for k in range(d):
            a = p * base ** (-(2 * (k // 2)) / d)
            out[p, k] = math.sin(a) if k % 2 == 0 else math.cos(a)
    return torch.tensor(out)


class Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Linear(3, D)
        a = 1 / math.sqrt(D)
        self.wq = torch.nn.Parameter(torch.empty(D, D).uniform_(-a, a))
        self.wk = torch.nn.Parameter(torch.empty(D, D).uniform_(-a, a))
        self.wv = torch.nn.Parameter(torch.empty(D, D).uniform_(-a, a))
        dims = [S * D + 1, H, H, H, H, S]
        self.net = torch.nn.ModuleList(torch.nn.Linear(dims[i], dims[i + 1]) for i in range(5))
        self.register_buffer("pos", sinusoidal(S, D))

    def bind(self, feed, mask, flux):
        """Per-batch constants (masked, scaled), as ionode's Prepared."""
        z = torch.tensor(Z)
        m = torch.tensor(mask, dtype=torch.float64)
        cf = torch.tensor(feed) * m
        cs = (z.abs() * cf).sum(1, keepdim=True) / 2
        self.m, self.w = m, z * m
        self.key_mask = torch.tensor(mask).unsqueeze(1)  # [B, 1, S]
        self.row_mask = m.unsqueeze(2)
        self.x0 = cf / cs
        self.logf = torch.log(self.x0 + 1e-12) * m
        self.t = torch.tensor(flux / J_REF).unsqueeze(1)  # [B, 1]
        self.ww = (self.w * self.w).sum(1, keepdim=True)
        return cs

    def field(self, s, x):
        """g(x, s) = t f(x, s t)."""
        b = x.shape[0]
        tau = self.t * s
        tokens = torch.stack([x, self.logf, tau.expand(b, S)], dim=2)
        emb = self.embed(tokens) + self.pos
        q, k, v = emb @ self.wq, emb @ self.wk, emb @ self.wv
        scores = (q @ k.transpose(1, 2)) / math.sqrt(D)
        att = torch.softmax(scores.masked_fill(~self.key_mask, float("-inf")), dim=2)
        ctx = (att @ v) * self.row_mask
        h = torch.cat([ctx.reshape(b, S * D), tau], dim=1)
        for i, lin in enumerate(self.net):
            h = lin(h)
            if i < 4:
                h = torch.tanh(h)
        f = h * self.m
        f = f - self.w * (self.w * f).sum(1, keepdim=True) / self.ww
        return f * self.t

    def rk4(self, x):
        ds = 1.0 / STEPS
        for n in range(STEPS):
            s0 = n * ds
            k1 = self.field(s0, x)
            k2 = self.field(s0 + ds / 2, x + ds / 2 * k1)
            k3 = self.field(s0 + ds / 2, x + ds / 2 * k2)
            k4 = self.field(s0 + ds, x + ds * k3)
            x = x + ds / 6 * (k1 + k4) + ds / 3 * (k2 + k3)
        return x

    def odeint(self, x):
        span = torch.tensor([0.0, 1.0])
        return torchdiffeq.odeint(self.field, x, span, method="rk4", options={"step_size": 1.0 / STEPS})[-1]


def bench(integrator, b, min_time, min_reps):
    torch.manual_seed(2026)
    model = Model()
    feed, mask, flux = synthetic_batch(b, 7)
    cs = model.bind(feed, mask, flux)
    target = torch.tensor(0.5 * feed) * model.m / cs
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    run = model.odeint if integrator == "torchdiffeq" else model.rk4

    def loss_of():
        x = run(model.x0)
        return ((x - target) ** 2 * model.m).sum() / model.m.sum()

    if integrator == "rk4-compiled":
        loss_of = torch.compile(loss_of)

    def step():
        opt.zero_grad(set_to_none=False)
        loss = loss_of()
        loss.backward()
        opt.step()
        return loss.item()

    t0 = time.perf_counter()
    step()
    step()
    if integrator == "rk4-compiled":
        print(f"  (torch.compile at batch {b}: {time.perf_counter() - t0:.1f} s for the first two steps)")
    times = []
    start = time.perf_counter()
    while len(times) < min_reps or time.perf_counter() - start < min_time:
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), len(times)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batches", type=int, nargs="+", default=[64, 256, 1024])
    p.add_argument("--min-time", type=float, default=8.0, help="seconds per measurement")
    p.add_argument("--min-reps", type=int, default=10)
    p.add_argument("--threads", type=int, default=1,
                   help="intra-op threads (read by scripts/bench-torch, which sets them up)")
    p.add_argument("--compile", action="store_true",
                   help="also time the hand-written RK4 under torch.compile")
    p.add_argument("--integrators", nargs="+", default=None,
                   choices=["rk4", "torchdiffeq", "rk4-compiled"],
                   help="which integrators to time (default: rk4 torchdiffeq, + rk4-compiled with --compile)")
    a = p.parse_args()
    print(f"torch {torch.__version__}, torchdiffeq {torchdiffeq.__version__}, threads {torch.get_num_threads()}, float64")
    print(f"{matmul_flops(1)} matmul FLOP per sample and step")
    integrators = a.integrators or (["rk4", "torchdiffeq"] + (["rk4-compiled"] if a.compile else []))
    for integrator in integrators:
        for b in a.batches:
            med, n = bench(integrator, b, a.min_time, a.min_reps)
            print(f"train_step torch-{integrator} batch {b}: median {med:.6f} s/step "
                  f"({matmul_flops(b) / med / 1e9:.2f} GFLOP/s, {n} steps)")


if __name__ == "__main__":
    main()
