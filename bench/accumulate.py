"""Gradient accumulation of slices (`accumulate_slices`), A/B in one process: the compiled training
step's calls and time with the pass and without it (`compile(accumulate=False)`), on workloads that
slice in a loop: a tanh RNN unrolled over 50 steps taking h[:, t], the issue's LSTM (unrolled, not the
fused scan) and the Transformer encoder (heads by slicing).

Run: `python bench/accumulate.py [threads]` (prints a Markdown table; below 1 is faster).
"""
import harness  # noqa: F401  (sets the thread count before numpy loads)

from collections import Counter  # noqa: E402

import numpy as np  # noqa: E402

import avalon  # noqa: E402
import avalon.nn as nn  # noqa: E402
import avalon.nn.functional as F  # noqa: E402

STEPS, BATCH, FEATURES, HIDDEN = 50, 32, 128, 256


class UnrolledRNN(nn.Module):
    """h_t = tanh(x[:, t] W + h_{t-1} U), the last state → Linear 10: the loop a user writes."""

    def __init__(self):
        super().__init__()
        self.inp, self.rec, self.fc = nn.Linear(FEATURES, HIDDEN), nn.Linear(HIDDEN, HIDDEN), nn.Linear(HIDDEN, 10)

    def forward(self, x):
        h = 0
        for t in range(x.shape[1]):
            h = np.tanh(self.inp(x[:, t]) + (self.rec(h) if t else 0))
        return self.fc(h)


class LSTMClassifier(nn.Module):
    """The issue's LSTM 128→256, batch_first, last step → Linear 10, unrolled (not the fused scan):
    one set of calls per time step, as the issue measured it."""

    def __init__(self):
        super().__init__()
        self.lstm, self.fc = nn.LSTM(FEATURES, HIDDEN, batch_first=True), nn.Linear(HIDDEN, 10)
        self.lstm.fused = False

    def forward(self, x):
        return self.fc(self.lstm(x)[0][:, -1])


class Encoder(nn.Module):
    """The issue's Transformer encoder: d 256, 4 heads, ff 1024, 2 layers, dropout 0; mean → Linear 10."""

    def __init__(self):
        super().__init__()
        layer = nn.TransformerEncoderLayer(256, 4, dim_feedforward=1024, dropout=0.0, batch_first=True)
        self.encoder, self.fc = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False), nn.Linear(256, 10)

    def forward(self, x):
        return self.fc(self.encoder(x).mean(1))


CASES = {
    "RNN loop, h[:, t] × 50": (UnrolledRNN, (STEPS, FEATURES), BATCH),
    "LSTM 128→256 (unrolled)": (LSTMClassifier, (STEPS, FEATURES), BATCH),
    "Transformer encoder": (Encoder, (128, 256), 16),
}


def step_tape(make, shape, batch):
    rng = np.random.default_rng(0)
    model = make()
    x = rng.standard_normal((batch,) + shape).astype(np.float32)
    y = rng.integers(0, 10, batch)
    tape = avalon.grad_tape(lambda m, x, y: F.cross_entropy(m(x), y), model, x, y)
    return tape, [n.value for n in tape.inputs]


def main():
    print("| workload | calls without → with | add | scatter_add | scatter_sum | ms without | ms with | ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for name, (make, shape, batch) in CASES.items():
        tape, inputs = step_tape(make, shape, batch)
        plain, fast = tape.compile(accumulate=False), tape.compile()
        for a, b in zip(plain(*inputs), fast(*inputs)):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
        before, after = (Counter(n.prim.name for n in c.tape.calls) for c in (plain, fast))
        t_plain, t_fast = harness.median_ms(lambda: plain(*inputs), lambda: fast(*inputs))
        print(f"| {name} | {len(plain.tape.calls)} → {len(fast.tape.calls)} | {before['add']} → {after['add']} | "
              f"{before['scatter_add']} → {after['scatter_add']} | {after['scatter_sum']} | {t_plain:.1f} | "
              f"{t_fast:.1f} | {t_fast / t_plain:.2f} |")


if __name__ == "__main__":
    main()
