"""U-Net-MT and Psi-Net Joint training steps in PyTorch: reference rows of `cargo xtask bench`.

The same layers as crates/mtcool-models/src/unet.rs (and psinet.rs, which builds on it):

- encoder: per level a block of two (conv 3x3 pad 1 -> BatchNorm -> ReLU), then 2x2 max
  pooling, and a bottom block; widths w_0..w_depth;
- per dense task a decoder: per level nearest x2 up-sampling -> conv 3x3 -> BN -> ReLU,
  concatenation [skip, up] -> block of two conv-BN-ReLU; then a 1x1 convolution;
- per vector task a dense head: global average pooling of the bottom -> linear 128 -> ReLU ->
  linear 64 -> ReLU -> linear k.

A partitioned encoder computes exactly what a shared one of the same widths computes (its
slices only decide who owns which kernels), so the reference is a plain shared network.
One step = every task's forward on the same batch (one encoder pass), backward of the summed
loss (cross-entropy for class maps and labels, MSE for the box and the reconstruction), SGD
(lr 0.01, momentum 0.9, weight decay 5e-4), as the Rust Joint step.

Usage: bench_large.py NET THREADS WARMUP STEPS   (NET: unet or psinet)
Prints one JSON object: {"images_per_s": ..., "torch": "...", "threads": ...}.
"""

import json
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

SIDE = 256


def conv_bn_relu(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU())


def block(cin, cout):
    return nn.Sequential(conv_bn_relu(cin, cout), conv_bn_relu(cout, cout))


class Encoder(nn.Module):
    def __init__(self, cin, widths):
        super().__init__()
        chans = [cin] + widths[:-1]
        self.downs = nn.ModuleList(block(a, b) for a, b in zip(chans, widths[:-1]))
        self.bottom = block(widths[-2], widths[-1])

    def forward(self, x):
        skips = []
        for down in self.downs:
            y = down(x)
            skips.append(y)
            x = F.max_pool2d(y, 2)
        return skips, self.bottom(x)


class Up(nn.Module):
    def __init__(self, cin, cskip, cout):
        super().__init__()
        self.up = conv_bn_relu(cin, cout)
        self.block = block(cskip + cout, cout)

    def forward(self, x, skip):
        up = self.up(F.interpolate(x, scale_factor=2, mode="nearest"))
        return self.block(torch.cat([skip, up], 1))


class Decoder(nn.Module):
    def __init__(self, widths, outputs):
        super().__init__()
        self.ups = nn.ModuleList(
            Up(widths[l + 1], widths[l], widths[l]) for l in range(len(widths) - 1)
        )
        self.out = nn.Conv2d(widths[0], outputs, 1)

    def forward(self, skips, bottom):
        x = bottom
        for up, skip in reversed(list(zip(self.ups, skips))):
            x = up(x, skip)
        return self.out(x)


class Dense(nn.Module):
    def __init__(self, cin, outputs, hidden=(128, 64)):
        super().__init__()
        dims = [cin, *hidden, outputs]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims, dims[1:]))

    def forward(self, skips, bottom):
        x = bottom.mean((2, 3))
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i + 1 < len(self.layers):
                x = F.relu(x)
        return x


def setup(net):
    """Model parts, batch size, and the (head, target, loss) of every task."""
    g = torch.Generator().manual_seed(0)
    if net == "unet":
        n, widths = 4, [16, 32, 64, 128, 256]
        heads = [Decoder(widths, 2), Decoder(widths, 3)]
        targets = [torch.randint(0, c, (n, SIDE, SIDE), generator=g) for c in (2, 3)]
        losses = [F.cross_entropy, F.cross_entropy]
    elif net == "psinet":
        n, widths = 5, [64, 128, 256, 512, 1024]
        heads = [Decoder(widths, 2), Dense(widths[-1], 2), Dense(widths[-1], 4), Decoder(widths, 3)]
        targets = [
            torch.randint(0, 2, (n, SIDE, SIDE), generator=g),
            torch.randint(0, 2, (n,), generator=g),
            torch.rand(n, 4, generator=g),
            None,  # the input itself
        ]
        losses = [F.cross_entropy, F.cross_entropy, F.mse_loss, F.mse_loss]
    else:
        raise SystemExit(f"unknown net {net!r} (expected unet or psinet)")
    x = (torch.arange(n * 3 * SIDE * SIDE, dtype=torch.float32) * 0.013).sin() * 0.5 + 0.5
    x = x.reshape(n, 3, SIDE, SIDE)
    targets = [x if t is None else t for t in targets]
    return Encoder(3, widths), nn.ModuleList(heads), n, x, list(zip(heads, targets, losses))


def main():
    net = sys.argv[1]
    threads, warmup, steps = (int(a) for a in sys.argv[2:5])
    torch.manual_seed(0)
    torch.set_num_threads(threads)
    encoder, heads, n, x, tasks = setup(net)
    params = list(encoder.parameters()) + list(heads.parameters())
    opt = torch.optim.SGD(params, lr=0.01, momentum=0.9, weight_decay=5e-4)

    def step():
        opt.zero_grad()
        skips, bottom = encoder(x)
        loss = sum(f(head(skips, bottom), t) for head, t, f in tasks)
        loss.backward()
        opt.step()

    for _ in range(warmup):
        step()
    seconds = []
    for _ in range(max(steps, 1)):
        start = time.perf_counter()
        step()
        seconds.append(time.perf_counter() - start)
    seconds.sort()
    mid = len(seconds) // 2
    median = seconds[mid] if len(seconds) % 2 else (seconds[mid - 1] + seconds[mid]) / 2
    print(json.dumps({
        "images_per_s": n / median,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }))


if __name__ == "__main__":
    main()
