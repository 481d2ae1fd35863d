"""Where a training step's time goes: perf samples with call graphs, sorted into op categories.

Usage (docs/benchmarks.md, "Profile"):

    perf record -F 300 --delay=5000 --call-graph dwarf,32768 -o step.perf \
        target/release/xtask bench --rows unet --skip-candle --large-warmup 2 --large-steps 6 \
        --out /dev/null
    perf script -i step.perf -F ip,sym | python3 xtask/profile/breakdown.py

`--delay` leaves out the set-up and the first steps (whose page faults are a one-off).
Each sample goes to the first category, in the list's order, that one of its frames matches
(so the GEMM inside a convolution's kernel gradient counts as "conv: kernel grad"); samples whose innermost frames
are in the allocator or the kernel's page-fault path are also counted as allocation, per
category. Categories follow the function names of crates/mtcool-models/src/ops/.
"""

import collections
import re
import sys

ALLOCATION = re.compile(
    r"page_fault|clear_page|mi_malloc|_mi_|mi_heap|mi_theap|zeros_impl|__memset|mi_page"
    r"|mi_arena|do_huge_pmd|folio"
)
CATEGORIES = [
    ("conv: Winograd kernel grad", r"winograd::kernel_grad"),
    ("conv: Winograd input grad", r"winograd::input_grad"),
    ("conv: Winograd forward", r"winograd::forward|winograd::correlate"),
    ("conv: Winograd transforms (worker threads)",
     r"winograd::transform|winograd::untransform|winograd::output_transform|winograd::grad_transform"),
    ("conv: direct kernel grad", r"direct::kernel_grad|direct::grad_"),
    ("conv: direct input grad", r"direct::input_grad"),
    ("conv: direct forward", r"direct::forward|direct::correlate|direct::Padded"),
    ("conv: kernel grad (im2col + GEMM)", r"conv::kernel_grad"),
    ("conv: input grad (GEMM + col2im)", r"conv::input_grad|conv::col2im"),
    ("conv: backward, rest (bias grad, partial sums)",
     r"ops::conv::\{impl#\d+\}::bwd|conv::backward_task|conv::gather_dy|conv::sum_in_order"),
    ("conv: forward (im2col + GEMM)",
     r"ops::conv::\{impl#\d+\}::cpu_fwd|conv::convolve|conv::forward_task|conv::forward_items"),
    ("BatchNorm+ReLU forward", r"batch_norm::\{impl#\d+\}::cpu_fwd|batch_norm::channel_stats"),
    ("BatchNorm+ReLU backward", r"batch_norm::\{impl#\d+\}::bwd"),
    ("max pooling", r"ops::pool::"),
    ("upsampling", r"ops::upsample::"),
    ("loss", r"mtcool_optim::loss::"),
    ("optimiser (SGD)", r"mtcool_optim::sgd::|mtcool_optim::optimizer::"),
    ("concatenation", r"Tensor::cat|cat_contiguous|copy2d"),
    ("autograd: gradient sums and copies", r"candle_core::backprop"),
    ("candle element-wise ops (its own thread pool)",
     r"binary_map_vec_par|candle_core::utils::\{impl#\d+\}::new|candle_core::cpu::kernels"),
    ("forward: other candle ops", r"mtcool_models::unet::|mtcool_models::partitioned::"),
]
CATEGORIES = [(name, re.compile(pattern)) for name, pattern in CATEGORIES]


def category(frames):
    # The first category (in list order) any frame matches: the specific parts of an op
    # (its kernel gradient) before the op, ops before the autograd and model code around them.
    for name, pattern in CATEGORIES:
        if any(pattern.search(frame) for frame in frames):
            return name
    return "other (rayon, idle, unattributed)"


def samples(lines):
    frames = []
    for line in lines:
        line = line.rstrip("\n")
        if not line.strip():
            if frames:
                yield frames
            frames = []
        elif line.startswith((" ", "\t")):
            frames.append(line.strip())
        else:
            frames = []
    if frames:
        yield frames


def main():
    time = collections.Counter()
    allocation = collections.Counter()
    for frames in samples(sys.stdin):
        name = category(frames)
        time[name] += 1
        if any(ALLOCATION.search(f) for f in frames[:12]):
            allocation[name] += 1
    total = sum(time.values())
    print("| part of the step | share | of which allocation |")
    print("|---|---:|---:|")
    for name, n in time.most_common():
        print(f"| {name} | {100 * n / total:.1f} % | {100 * allocation[name] / total:.1f} % |")
    print(f"\n{total} samples; allocation in all: {100 * sum(allocation.values()) / total:.1f} %")


if __name__ == "__main__":
    main()
