"""LeNet-MT Joint training step in PyTorch: the reference row of `cargo xtask bench`.

Same network as crates/mtcool-models/src/lenet.rs (hard-shared encoder):
conv 1->10 (k5) -> max-pool 2 -> ReLU -> conv 10->20 (k5) -> max-pool 2 -> ReLU ->
flatten (320) -> linear 320->50 -> ReLU, then one linear 50->5 head per task.
One step = both tasks' forward on their own batch, backward of the summed cross-entropy,
SGD (lr 0.01, momentum 0.9, weight decay 5e-4), as the Rust Joint step.

Usage: bench_lenet.py THREADS BATCH STEPS REPEATS
Prints one JSON object: {"images_per_s": ..., "torch": "...", "threads": ...}.
"""

import json
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def main():
    threads, batch, steps, repeats = (int(a) for a in sys.argv[1:5])
    torch.manual_seed(0)
    torch.set_num_threads(threads)
    encoder = nn.Sequential(
        nn.Conv2d(1, 10, 5), nn.MaxPool2d(2), nn.ReLU(),
        nn.Conv2d(10, 20, 5), nn.MaxPool2d(2), nn.ReLU(),
        nn.Flatten(), nn.Linear(320, 50), nn.ReLU(),
    )
    heads = nn.ModuleList([nn.Linear(50, 5), nn.Linear(50, 5)])
    params = list(encoder.parameters()) + list(heads.parameters())
    opt = torch.optim.SGD(params, lr=0.01, momentum=0.9, weight_decay=5e-4)
    # same value range as the Rust rows' random batches
    xs = [torch.rand(batch, 1, 28, 28) * 3.3 - 0.5 for _ in range(2)]
    ys = [torch.randint(0, 5, (batch,)) for _ in range(2)]

    def step():
        opt.zero_grad()
        loss = sum(F.cross_entropy(heads[t](encoder(xs[t])), ys[t]) for t in range(2))
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            step()
        rates.append(2 * batch * steps / (time.perf_counter() - start))
    rates.sort()
    print(json.dumps({
        "images_per_s": rates[len(rates) // 2],
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }))


if __name__ == "__main__":
    main()
