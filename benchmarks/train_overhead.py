"""Overhead of ``dlcourse.train.fit`` over a bare PyTorch training loop.

The same MLP (784-256-128-10) on Fashion-MNIST-sized in-memory data (random
images, so no data files are needed), the same batch size, epochs, seeds and
shuffling (a fresh ``randperm`` per epoch, batches cut by slicing). ``fit``
runs without validation data, so both loops do exactly the training passes;
``fit`` additionally accumulates loss and accuracy (as tensors, read once per
epoch) and, in the ``fit (progress)`` variant, drives its tqdm bar.
Variants run in rotating order, several repetitions; the median wall time of
each is reported.

    flock /tmp/dlcourse-cpu.lock python benchmarks/train_overhead.py [--reps 7]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import io
import os
import platform
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import torch  # noqa: E402

from dlcourse import train  # noqa: E402


def make_data(n: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 784, generator=g)
    y = torch.randint(0, 10, (n,), generator=g)
    return x, y


def make_model(seed: int):
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10)
    )


def bare_loop(x, y, *, epochs: int, batch_size: int, seed: int) -> float:
    model = make_model(seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    torch.manual_seed(seed)
    start = time.perf_counter()
    model.train()
    for _ in range(epochs):
        generator = torch.Generator().manual_seed(int(torch.randint(0, 2**62, (1,)).item()))
        order = torch.randperm(len(x), generator=generator)
        for i in range(0, len(x), batch_size):
            index = order[i : i + batch_size]
            xb, yb = x[index], y[index]
            loss = loss_fn(model(xb), yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return time.perf_counter() - start


def fit_loop(x, y, *, epochs: int, batch_size: int, seed: int, progress: bool) -> float:
    model = make_model(seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    torch.manual_seed(seed)
    sink = io.StringIO()  # the bar's output is measured but not shown
    start = time.perf_counter()
    with contextlib.redirect_stdout(sink):
        train.fit(model, (x, y), epochs=epochs, optimizer=optimizer, batch_size=batch_size, progress=progress)
    return time.perf_counter() - start


def bookkeeping_per_batch_us(batch_size: int, repeats: int = 3000) -> float:
    """Microseconds per batch of what fit adds to a step: loss/accuracy accumulation, batch unpacking.

    Timed in isolation, so it is far less sensitive to other jobs on the machine
    than the end-to-end medians.
    """
    from dlcourse.batching import split_batch
    from dlcourse.train import Meter

    output, target, loss = torch.randn(batch_size, 10), torch.randint(0, 10, (batch_size,)), torch.tensor(1.0)
    meter = Meter()
    timings = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(repeats):
            xb, yb = split_batch((output, target), "train_data")
            xb, yb = xb.to("cpu"), yb.to("cpu")
            meter.update(loss, output, target)
        timings.append((time.perf_counter() - start) / repeats * 1e6)
    return min(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="training images")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--reps", type=int, default=15)
    args = parser.parse_args()

    x, y = make_data(args.n)
    common = dict(epochs=args.epochs, batch_size=args.batch_size, seed=0)
    variants = {
        "bare loop": lambda: bare_loop(x, y, **common),
        "fit (progress=False)": lambda: fit_loop(x, y, progress=False, **common),
        "fit (progress bar)": lambda: fit_loop(x, y, progress=True, **common),
    }
    for run in variants.values():  # warm-up: allocator, thread pool, lazy imports
        run()
    times: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    for rep in range(args.reps):
        shift = rep % len(names)
        for name in names[shift:] + names[:shift]:  # rotate the order every repetition
            times[name].append(variants[name]())

    base = statistics.median(times["bare loop"])
    print(f"date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC")
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}")
    print(f"torch {torch.__version__}, python {platform.python_version()}")
    print(f"data: {args.n} x 784 float32, batch {args.batch_size}, {args.epochs} epochs, {args.reps} repetitions")
    print()
    print("| variant | median s | min s | max s | ratio to bare (median) |")
    print("| --- | --- | --- | --- | --- |")
    for name in names:
        values = times[name]
        median = statistics.median(values)
        print(f"| {name} | {median:.3f} | {min(values):.3f} | {max(values):.3f} | {median / base:.3f} |")
    steps = args.epochs * -(-args.n // args.batch_size)
    extra_us = bookkeeping_per_batch_us(args.batch_size)
    step_us = min(times["bare loop"]) / steps * 1e6
    print()
    print(f"fit's per-batch bookkeeping: {extra_us:.1f} us; a bare training step: {step_us:.0f} us (fastest run)")
    print(f"-> estimated overhead {100 * extra_us / step_us:.1f} % of the training time")


if __name__ == "__main__":
    main()
