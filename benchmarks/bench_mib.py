"""MIB speed and memory (issue 4, "Speed and memory"): training samples/s and peak RSS at the
CPU default config (conf/train/mib.yaml), and `skiptool synth --from image --to speech` wall
time for a 3-second utterance, model load included, with its real-time factor.

Usage: .venv/bin/python benchmarks/bench_mib.py [--config conf/train/mib.yaml] [--threads 2]
           [--steps 20] [--warmup 2] [--frames 180] [--seconds 3] [--skip-train] [--skip-synth]

Training: full steps (forward, backward, clip 1.0, Adam) on random batches shaped like the
recipe's data: train.batch_size items, half images with captions of ~60 characters, half
utterances of `--frames` mel/linear frames (espeak sentences: ~180 frames of 12.5 ms) with
~45-character transcripts. Peak RSS is the process's maximum resident set (getrusage).

Synth: an untrained model of the same config is saved as an exp dir; a fresh Python process
runs `skiptool synth`'s library call on a PNG with the decoder forced to the steps of a 3-second
utterance (an untrained model never emits the stop token), timed from interpreter start (imports
and model load included) to the written wav; RTF = wall / audio seconds. The parts (model load,
image -> u -> linear, Griffin-Lim) are timed in-process as well. Targets: wall <= 2 s,
RTF of model + Griffin-Lim <= 0.3, training peak memory < 4 GiB.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from skiptool.train.trainer import load_experiment_config  # noqa: E402


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def random_batch(cfg, batch_size: int, frames: int, g: torch.Generator) -> dict:
    """Half image-text, half text-speech items (a mixed batch), lengths spread below the maximum."""
    from skiptool.models.mib import collate_mib

    def tokens(n: int) -> torch.Tensor:
        return torch.randint(3, cfg.vocab_size, (int(n),), generator=g)

    items = []
    for i in range(batch_size):
        if i % 2 == 0:
            items.append({"image": torch.rand(cfg.image_channels, cfg.image_size, cfg.image_size, generator=g),
                          "image_text": tokens(torch.randint(40, 80, (1,), generator=g))})
        else:
            t = int(torch.randint(frames * 2 // 3, frames + 1, (1,), generator=g))
            items.append({"speech": torch.rand(t, cfg.mel_dim, generator=g),
                          "linear": torch.rand(t, cfg.linear_dim, generator=g),
                          "speech_text": tokens(torch.randint(30, 60, (1,), generator=g))})
    return collate_mib(items)


def bench_train(args) -> None:
    from skiptool.models.mib import MIB

    exp = load_experiment_config(args.config)
    cfg, batch_size = exp.model_conf, exp.train.batch_size
    torch.manual_seed(0)
    model = MIB(cfg).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=exp.train.optim.lr)
    g = torch.Generator().manual_seed(0)
    batches = [random_batch(cfg, batch_size, args.frames, g) for _ in range(4)]
    rss_before = peak_rss_mib()

    def step(i: int) -> None:
        optimizer.zero_grad(set_to_none=True)
        loss, _ = model(batches[i % len(batches)])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), exp.train.grad_clip or 1.0)
        optimizer.step()

    for i in range(args.warmup):
        step(i)
    began = time.perf_counter()
    for i in range(args.steps):
        step(i)
    seconds = time.perf_counter() - began
    params = sum(p.numel() for p in model.parameters())
    print(f"\n## training: {args.config}, {params / 1e6:.2f} M parameters")
    print(f"batch {batch_size} ({batch_size // 2} image-text + {batch_size - batch_size // 2} text-speech items, "
          f"speech up to {args.frames} frames), {args.steps} timed steps after {args.warmup} warm-up, "
          f"{torch.get_num_threads()} threads")
    print(f"| steps/s | samples/s | s/step | peak RSS (MiB) | RSS before training (MiB) |")
    print(f"|---:|---:|---:|---:|---:|")
    print(f"| {args.steps / seconds:.2f} | {args.steps * batch_size / seconds:.1f} | {seconds / args.steps:.2f} | "
          f"{peak_rss_mib():.0f} | {rss_before:.0f} |")
    epoch_items = args.epoch_items
    if epoch_items:
        print(f"an epoch of {epoch_items} items (mixed: 2 x the larger corpus) takes about "
              f"{epoch_items / (args.steps * batch_size / seconds) / 60:.1f} min")
    print(f"peak memory < 4 GiB: {'PASS' if peak_rss_mib() < 4096 else 'FAIL'}")


def make_untrained_exp(config: Path, exp_dir: Path) -> tuple[Path, int]:
    """An exp dir holding an untrained model of `config` with the default feature configs."""
    from skiptool.audio.transforms import TacotronFeatsConfig
    from skiptool.data.image import ImageFeatsConfig
    from skiptool.models.mib import MIB
    from skiptool.train.trainer import CONFIG_FILE
    from skiptool.utils.config import to_yaml

    exp = load_experiment_config(config)
    cfg = exp.model_conf
    cfg.speech_features = dataclasses.asdict(TacotronFeatsConfig())
    cfg.image_features = dataclasses.asdict(ImageFeatsConfig(height=cfg.image_size, width=cfg.image_size,
                                                             channels=cfg.image_channels))
    (exp_dir / "checkpoints").mkdir(parents=True)
    (exp_dir / CONFIG_FILE).write_text(to_yaml(exp))
    torch.manual_seed(0)
    torch.save({"epoch": 0, "model": MIB(cfg).state_dict()}, exp_dir / "checkpoints" / "best.pt")
    return exp_dir, cfg.reduction_factor


SYNTH_CHILD = """
import time; began = time.perf_counter()
import sys, torch
torch.set_num_threads({threads})
from pathlib import Path
from skiptool.decode.synth import synthesize
result = synthesize("image", "speech", [{png!r}], Path({wav!r}), Path({exp!r}), overwrite=True, fixed_steps={steps})
print(f"{{time.perf_counter() - began:.3f}} {{result.audio_seconds:.3f}}")
"""


def bench_synth(args) -> None:
    from PIL import Image

    from skiptool.audio.transforms import TacotronFeatsConfig

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        exp, r = make_untrained_exp(args.config, tmp / "exp")
        feats = TacotronFeatsConfig()
        frames = round(args.seconds * feats.sample_rate / feats.hop_length)
        steps = -(-frames // r)
        png = tmp / "in.png"
        Image.fromarray((np.random.default_rng(0).random((200, 300, 3)) * 255).astype(np.uint8)).save(png)
        code = SYNTH_CHILD.format(threads=args.threads, png=str(png), wav=str(tmp / "out.wav"), exp=str(exp),
                                  steps=steps)
        walls = []
        for _ in range(args.repeats):
            began = time.perf_counter()
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                                 env={**os.environ, "OMP_NUM_THREADS": str(args.threads)})
            process_wall = time.perf_counter() - began
            if out.returncode:
                raise SystemExit(out.stderr)
            inside, audio = map(float, out.stdout.split()[-2:])
            walls.append((process_wall, inside, audio))
        process_wall, inside, audio = min(walls)

        # the parts, in this process
        from skiptool.audio.griffinlim import features_to_wavs
        from skiptool.audio.tacotron import TacotronSpecConfig
        from skiptool.audio.vocoder_config import GriffinLimConfig
        from skiptool.decode.synth import _image_batch, one_thread
        from skiptool.train.trainer import load_trained_model

        began = time.perf_counter()
        model, _ = load_trained_model(exp, "best", "cpu")
        load_s = time.perf_counter() - began
        with torch.no_grad(), one_thread():  # as synth runs the decoder
            began = time.perf_counter()
            speech = model.decode_speech(model.embed("image", _image_batch(model, [png])), fixed_steps=steps)
            model_s = time.perf_counter() - began
        spec = TacotronSpecConfig(**{k: v for k, v in model.cfg.speech_features.items()
                                     if k in TacotronSpecConfig.__dataclass_fields__})
        began = time.perf_counter()
        features_to_wavs([speech.linear[0]], "linear", spec, GriffinLimConfig())
        gl_s = time.perf_counter() - began
    print(f"\n## skiptool synth --from image --to speech: {args.config}, {audio:.2f} s of audio "
          f"({frames} frames, {steps} decoder steps of r={r}), {args.threads} threads, best of {args.repeats}")
    print("| part | seconds | RTF (s / audio s) |")
    print("|---|---:|---:|")
    rows = [("process wall (python start, imports, model load, generation, Griffin-Lim, wav)", process_wall),
            ("inside the process (imports onwards)", inside), ("model load", load_s),
            ("image -> u -> mel -> linear (model, 1 thread as in synth)", model_s), ("Griffin-Lim (60 iterations)", gl_s),
            ("model + Griffin-Lim", model_s + gl_s)]
    for name, seconds in rows:
        print(f"| {name} | {seconds:.2f} | {seconds / audio:.3f} |")
    print(f"wall <= 2 s for a 3-second utterance, model load included: {'PASS' if process_wall <= 2 else 'FAIL'}")
    print(f"RTF of model + Griffin-Lim <= 0.3: {'PASS' if (model_s + gl_s) / audio <= 0.3 else 'FAIL'}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=REPO / "conf" / "train" / "mib.yaml")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--frames", type=int, default=180, help="longest utterance of a batch, mel frames")
    parser.add_argument("--epoch-items", type=int, default=0, help="print the time of an epoch of this many items")
    parser.add_argument("--seconds", type=float, default=3.0, help="synth: utterance length")
    parser.add_argument("--repeats", type=int, default=2, help="synth: runs, the fastest reported")
    parser.add_argument("--skip-train", action="store_true")
    parser.add_argument("--skip-synth", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"machine: {os.uname().machine}, {os.cpu_count()} CPUs, torch {torch.__version__} with {args.threads} "
          f"threads, load average {os.getloadavg()[0]:.2f}")
    if not args.skip_train:  # first: its peak RSS is then training's alone
        bench_train(args)
    if not args.skip_synth:
        bench_synth(args)


if __name__ == "__main__":
    main()
