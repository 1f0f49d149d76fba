"""PVAE training throughput: samples/s of full training steps (forward, backward, Adam step) at
the paper's sizes on random data shaped like the recipe's (80-dim FBank, 28x28 images).

Usage: .venv/bin/python benchmarks/bench_pvae.py [--variant pvae] [--batch-size 256]
           [--frames 60] [--steps 3] [--warmup 1] [--threads N]
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time

import torch

from skiptool.models.pvae import PVAE, PVAEConfig


def random_batch(cfg: PVAEConfig, batch_size: int, frames: int, generator: torch.Generator) -> dict:
    """Padded speech whose lengths spread over [frames/2, frames], images in [0, 1]."""
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
    batch = random_batch(cfg, args.batch_size, args.frames, torch.Generator().manual_seed(0))

    def step() -> float:
        optimizer.zero_grad(set_to_none=True)
        loss, _ = model(batch)
        loss.backward()
        optimizer.step()
        return loss.item()

    for _ in range(args.warmup):
        step()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    seconds = (time.perf_counter() - start) / args.steps

    command = "python " + " ".join(shlex.quote(a) for a in ["benchmarks/bench_pvae.py", *sys.argv[1:]])
    params = sum(p.numel() for p in model.parameters())
    print(f"command: {command}")
    print(f"variant={cfg.variant} params={params} batch={args.batch_size} T={args.frames} "
          f"threads={torch.get_num_threads()} torch={torch.__version__}")
    print(f"{seconds:.2f} s/step  {args.batch_size / seconds:.1f} samples/s "
          f"(mean of {args.steps} steps after {args.warmup} warm-up)")


if __name__ == "__main__":
    main()
