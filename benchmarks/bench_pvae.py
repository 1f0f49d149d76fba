"""PVAE training throughput: samples/s of full training steps (forward, backward, Adam step) at
the paper's sizes on random data shaped like the recipe's (80-dim FBank, 28x28 images), with the
speech LSTMs on length groups (skiptool/nn/rnn.py) and, as the reference in the same process, on
the whole padded batch in one call.

Usage: .venv/bin/python benchmarks/bench_pvae.py [--variant pvae] [--batch-size 256]
           [--frames 60 | --lengths-from DUMP/fbank/train/utt2num_frames] [--steps 3] [--warmup 1]
           [--threads N]

With --lengths-from, each step's utterance lengths are a random batch of the real ones (FSDD:
mean 40 frames, a few of 200+ that pad their batch), so padding costs what it costs in training.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time

import torch

from skiptool.models.pvae import PVAE, PVAEConfig
from skiptool.nn.rnn import CPU_GROUP_SIZE, ConditionalLSTMDecoder, LSTMSummary


def random_batch(cfg: PVAEConfig, batch_size: int, frames: int, generator: torch.Generator,
                 real_lengths: torch.Tensor | None = None) -> dict:
    """Padded speech whose lengths spread over [frames/2, frames] (or are drawn from
    `real_lengths`), images in [0, 1]."""
    if real_lengths is not None:
        lengths = real_lengths[torch.randint(len(real_lengths), (batch_size,), generator=generator)]
        frames = int(lengths.max())
    else:
        lengths = torch.randint(frames // 2, frames + 1, (batch_size,), generator=generator)
        lengths[0] = frames  # the batch is padded to `frames`
    return {
        "speech": torch.randn(batch_size, frames, cfg.speech_dim, generator=generator),
        "speech_lengths": lengths,
        "image": torch.rand(batch_size, cfg.image_channels, cfg.image_size, cfg.image_size,
                            generator=generator),
        "label": torch.randint(0, 10, (batch_size,), generator=generator),
    }


def set_group_size(model: torch.nn.Module, group_size: int | None) -> None:
    """The length-group size of every speech LSTM (skiptool/nn/rnn.py; None: its device default)."""
    for module in model.modules():
        if isinstance(module, (LSTMSummary, ConditionalLSTMDecoder)):
            module.group_size = group_size


def time_steps(model: PVAE, batches: list[dict], warmup: int, steps: int) -> tuple[float, float]:
    """Wall and process-CPU seconds per training step (forward, backward, Adam), after `warmup`."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.95, 0.999))

    def step(i: int) -> None:
        optimizer.zero_grad(set_to_none=True)
        loss, _ = model(batches[i % len(batches)])
        loss.backward()
        optimizer.step()

    for i in range(warmup):
        step(i)
    start, cpu_start = time.perf_counter(), time.process_time()
    for i in range(warmup, warmup + steps):
        step(i)
    # CPU seconds of this process: on a shared machine the wall time also counts other jobs' turns
    return (time.perf_counter() - start) / steps, (time.process_time() - cpu_start) / steps


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="pvae",
                        choices=["pvae", "pvae_nocm", "jmvae_kl", "vae_sp", "vae_im"])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--frames", type=int, default=60, help="padded length T of the batch")
    parser.add_argument("--lengths-from", default=None, metavar="UTT2NUM_FRAMES",
                        help="draw each step's utterance lengths from this utt2num_frames")
    parser.add_argument("--steps", type=int, default=3, help="timed training steps")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    cfg = PVAEConfig(variant=args.variant)
    real_lengths = None
    if args.lengths_from:
        with open(args.lengths_from) as f:
            real_lengths = torch.tensor([int(line.split()[1]) for line in f if line.strip()])
    generator = torch.Generator().manual_seed(0)
    batches = [random_batch(cfg, args.batch_size, args.frames, generator, real_lengths)
               for _ in range(args.warmup + args.steps if real_lengths is not None else 1)]
    frames = [int(b["speech_lengths"].sum()) for b in batches]

    command = "python " + " ".join(shlex.quote(a) for a in ["benchmarks/bench_pvae.py", *sys.argv[1:]])
    print(f"command: {command}")
    shape = (f"T=real lengths (mean {sum(frames) / len(frames) / args.batch_size:.1f} frames)"
             if real_lengths is not None else f"T={args.frames}")
    # The reference: each speech LSTM over the whole padded batch in one call (one length group).
    runs = {f"length groups of {CPU_GROUP_SIZE} (skiptool's CPU default)": None,
            "reference: the padded batch in one call": args.batch_size}
    results = {}
    for name, group_size in runs.items():
        torch.manual_seed(0)
        model = PVAE(cfg).train()
        set_group_size(model, group_size)
        results[name] = time_steps(model, batches, args.warmup, args.steps)
    params = sum(p.numel() for p in model.parameters())
    print(f"variant={cfg.variant} params={params} batch={args.batch_size} {shape} "
          f"threads={torch.get_num_threads()} torch={torch.__version__}; "
          f"mean of {args.steps} steps after {args.warmup} warm-up")
    print("| speech LSTMs | s/step | samples/s | CPU s/step | samples per CPU second |")
    print("|---|---:|---:|---:|---:|")
    for name, (seconds, cpu_seconds) in results.items():
        print(f"| {name} | {seconds:.2f} | {args.batch_size / seconds:.1f} | {cpu_seconds:.2f} | "
              f"{args.batch_size / cpu_seconds:.1f} |")
    (grouped, grouped_cpu), (reference, reference_cpu) = results.values()
    print(f"speed-up of the length groups: {reference / grouped:.2f}x wall, {reference_cpu / grouped_cpu:.2f}x CPU "
          f"(process CPU time, all threads: on a shared machine the wall time also counts other jobs' turns)")


if __name__ == "__main__":
    main()
