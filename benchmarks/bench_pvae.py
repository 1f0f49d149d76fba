"""PVAE training throughput: samples/s of full training steps (forward, backward, Adam step) at
the paper's sizes on random data shaped like the recipe's (80-dim FBank, 28x28 images).

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

    torch.manual_seed(0)
    cfg = PVAEConfig(variant=args.variant)
    model = PVAE(cfg).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.95, 0.999))
    real_lengths = None
    if args.lengths_from:
        with open(args.lengths_from) as f:
            real_lengths = torch.tensor([int(line.split()[1]) for line in f if line.strip()])
    generator = torch.Generator().manual_seed(0)
    batches = [random_batch(cfg, args.batch_size, args.frames, generator, real_lengths)
               for _ in range(args.warmup + args.steps if real_lengths is not None else 1)]
    frames = [int(b["speech_lengths"].sum()) for b in batches]

    def step() -> float:
        batch = batches[len(frames_done) % len(batches)]
        frames_done.append(1)
        optimizer.zero_grad(set_to_none=True)
        loss, _ = model(batch)
        loss.backward()
        optimizer.step()
        return loss.item()

    frames_done: list[int] = []
    for _ in range(args.warmup):
        step()
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(args.steps):
        step()
    seconds = (time.perf_counter() - start) / args.steps
    # CPU seconds of this process: on a shared machine the wall time also counts other jobs' turns
    cpu_seconds = (time.process_time() - cpu_start) / args.steps

    command = "python " + " ".join(shlex.quote(a) for a in ["benchmarks/bench_pvae.py", *sys.argv[1:]])
    params = sum(p.numel() for p in model.parameters())
    print(f"command: {command}")
    shape = (f"T=real lengths (mean {sum(frames) / len(frames) / args.batch_size:.1f} frames)"
             if real_lengths is not None else f"T={args.frames}")
    print(f"variant={cfg.variant} params={params} batch={args.batch_size} {shape} "
          f"threads={torch.get_num_threads()} torch={torch.__version__}")
    print(f"{seconds:.2f} s/step  {args.batch_size / seconds:.1f} samples/s "
          f"(mean of {args.steps} steps after {args.warmup} warm-up)")
    print(f"{cpu_seconds:.2f} CPU s/step  {args.batch_size / cpu_seconds:.1f} samples per CPU second "
          f"(process CPU time, all threads: what the step costs; on a shared machine the wall time "
          f"above also counts other jobs' turns)")


if __name__ == "__main__":
    main()
