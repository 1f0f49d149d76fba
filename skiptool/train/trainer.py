"""The one trainer every skiptool model uses.

    exp = load_experiment_config("conf/train/image_classifier.yaml", {"train.max_epochs": 5})
    result = train_experiment(exp, {"image": Path("dump/image/train")}, {"image": Path("dump/image/dev")},
                              Path("exp/image_clf"))
    model, exp = load_trained_model("exp/image_clf")          # best.pt, eval mode

Experiment dir (DESIGN.md): `config.yaml` (the resolved config), `train.log` (a stats line per
epoch), `checkpoints/{N}epoch.pt`, `checkpoints/latest.pt`, `checkpoints/best.pt` (by the dev
metric `train.best_metric`), `images/<stat>.png` (train and dev curves), `.train.done` when
`max_epochs` is reached.

Reproducibility: the run is seeded once from `train.seed`; epoch e's shuffle order derives from
(seed, e) (torch's DistributedSampler, also used with one process); everything else random (model
init, dropout, sampling inside a model, DataLoader worker seeds) comes from the global RNGs whose
states every checkpoint stores. A run killed at any point and rerun with the same command ends
with parameters bit-identical to an uninterrupted run.

Data parallel: under torchrun each process takes `batch_size / world_size` items of every batch
(so `train.batch_size` is the global batch whatever the number of processes), DDP averages the
gradients, and only rank 0 writes files.
"""

from __future__ import annotations

import dataclasses
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Mapping

import torch
import yaml
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from skiptool.train import checkpoint as ckpt
from skiptool.train.distributed import (
    DistContext,
    all_gather_objects,
    barrier,
    broadcast_buffers,
    context_from_env,
    init_distributed,
    resolve_device,
    shutdown_distributed,
    sum_across_ranks,
)
from skiptool.train.reporter import IMAGES_DIR, LOG_FILE, EpochRecord, Reporter
from skiptool.utils import progress
from skiptool.utils.config import from_dict, load_config, read_yaml, to_yaml
from skiptool.utils.errors import SkiptoolError
from skiptool.utils.fileio import atomic_write_text, clear_done, mark_done

CONFIG_FILE = "config.yaml"
DONE_NAME = "train"


# ---------------------------------------------------------------------------------------------
# Configs


@dataclass
class OptimConfig:
    """Optimizer; `betas` for adam/adamw, `momentum` for sgd."""

    name: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = 1e-3
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    weight_decay: float = 0.0
    momentum: float = 0.0

    def __post_init__(self) -> None:
        if not self.lr > 0:
            raise ValueError(f"optim.lr must be positive, got {self.lr}")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ValueError(f"optim.betas must be two numbers in [0, 1), got {self.betas}")
        if self.weight_decay < 0 or self.momentum < 0:
            raise ValueError("optim.weight_decay and optim.momentum must be >= 0")


@dataclass
class TrainConfig:
    """The trainer's options (the `train:` section of a training config)."""

    seed: int = 0
    max_epochs: int = 10
    batch_size: int = 32  # global: split evenly over the processes of a data-parallel run
    optim: OptimConfig = field(default_factory=OptimConfig)
    grad_clip: float = 0.0  # max L2 norm of all gradients; 0 = no clipping
    num_workers: int = 0  # DataLoader worker processes
    log_interval: int = 50  # a train.log line every N batches; 0 = per epoch only
    best_metric: str = "loss"  # a dev stat the model returns (train stat when there is no dev data)
    best_mode: Literal["min", "max"] = "min"
    keep_last_n: int = 3  # {N}epoch.pt files kept, 0 = all; latest.pt and best.pt always stay
    keep_nbest: int = 0  # also keep the epoch files of the N best epochs by best_metric (skiptool average)
    drop_last: bool = False  # drop the last, smaller training batch of every epoch
    find_unused_parameters: bool = False  # DDP option for models that leave parameters unused

    def __post_init__(self) -> None:
        for name in ("max_epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"train.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("num_workers", "log_interval", "keep_last_n", "keep_nbest"):
            if getattr(self, name) < 0:
                raise ValueError(f"train.{name} must be >= 0, got {getattr(self, name)}")
        if self.grad_clip < 0:
            raise ValueError(f"train.grad_clip must be >= 0 (0 = off), got {self.grad_clip}")


@dataclass
class ExperimentConfig:
    """A whole training config file: `model`, `model_conf` (the model's own dataclass once
    resolved by `load_experiment_config`) and `train`."""

    model: str = ""
    model_conf: Any = None
    train: TrainConfig = field(default_factory=TrainConfig)


# Keys of `train` that may change between a run and its resumption without changing its result
# (max_epochs: train longer), so they do not make an exp dir "a different experiment".
RESUMABLE_CHANGES = ("max_epochs", "num_workers", "log_interval", "keep_last_n", "keep_nbest")


def load_experiment_config(path: str | Path | None, overrides: Mapping[str, Any] | None = None,
                           ) -> ExperimentConfig:
    """Read and validate a training config; `overrides` are dotted keys, e.g. train.optim.lr."""
    from skiptool.models import MODELS  # late: the model modules import the data side

    source = str(path) if path else "config"
    cfg = load_config(ExperimentConfig, path, overrides)
    if not cfg.model:
        raise SkiptoolError(f"{source}: no 'model' key; name one of: {', '.join(sorted(MODELS))}")
    if cfg.model not in MODELS:
        raise SkiptoolError(f"{source}: key 'model' is '{cfg.model}', which is not a registered model; "
                            f"use one of: {', '.join(sorted(MODELS))}")
    entry = MODELS[cfg.model]
    model_conf = from_dict(entry.config_cls, cfg.model_conf or {}, source, "model_conf.")
    return dataclasses.replace(cfg, model_conf=model_conf)


def experiment_to_dict(cfg: ExperimentConfig) -> dict:
    """The resolved config as plain YAML data (what `--print-config` and config.yaml show)."""
    return yaml.safe_load(to_yaml(cfg))


# ---------------------------------------------------------------------------------------------
# Trainer


@dataclass
class TrainResult:
    exp_dir: Path
    epochs: int  # last epoch trained
    best_epoch: int
    best_value: float
    history: list[EpochRecord]


def build_optimizer(params, cfg: OptimConfig) -> torch.optim.Optimizer:
    if cfg.name == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    optimizer_cls = torch.optim.AdamW if cfg.name == "adamw" else torch.optim.Adam
    return optimizer_cls(params, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)


def move_to_device(batch: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    """Every tensor of the batch on `device`; other values (e.g. key lists) as they are."""
    return {k: v.to(device, non_blocking=True) if isinstance(v, Tensor) else v for k, v in batch.items()}


def _batch_size(batch: Mapping[str, Any]) -> int:
    """Items in the batch: its `num_items` entry when the collate gives one (a batch mixing two
    corpora, whose tensors each hold only part of it), else the first tensor's length."""
    if "num_items" in batch:
        return int(batch["num_items"])
    for value in batch.values():
        if isinstance(value, Tensor) and value.dim() > 0:
            return int(value.size(0))
    raise SkiptoolError("batch: no tensor in the batch; the dataset's collate must return tensors")


class Trainer:
    """Trains `model` on `train_set` into `exp_dir`, resuming from `checkpoints/latest.pt`."""

    def __init__(self, model: nn.Module, train_set: Dataset, collate: Callable[[list], dict],
                 cfg: TrainConfig, exp_dir: str | Path, *, dev_set: Dataset | None = None,
                 device: str | torch.device = "auto", ctx: DistContext | None = None,
                 experiment: dict | None = None, quiet: bool | None = None):
        self.ctx = ctx or DistContext()
        self.device = device if isinstance(device, torch.device) else resolve_device(device, self.ctx)
        self.cfg = cfg
        self.exp_dir = Path(exp_dir)
        self.model = model.to(self.device)
        self.train_set, self.dev_set, self.collate = train_set, dev_set, collate
        self.experiment = experiment
        self.quiet = (progress.QUIET if quiet is None else quiet) or not self.ctx.is_main
        self.reporter = Reporter(self.exp_dir, enabled=self.ctx.is_main, quiet=quiet)
        if cfg.batch_size % self.ctx.world_size:
            raise SkiptoolError(f"train.batch_size: {cfg.batch_size} does not split evenly over "
                                f"{self.ctx.world_size} processes; use a multiple of {self.ctx.world_size}")
        self.per_rank_batch = cfg.batch_size // self.ctx.world_size
        if len(train_set) == 0:
            raise SkiptoolError("training data: no items to train on; check the --data dirs")
        self.wrapped: nn.Module = self.model
        if self.ctx.distributed:
            self.wrapped = DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=cfg.find_unused_parameters)
        self.optimizer = build_optimizer(self.model.parameters(), cfg.optim)
        self.history: list[EpochRecord] = []
        self.best_epoch, self.best_value = 0, math.nan
        self._metric_checked = False

    # -- data

    def _loader(self, dataset: Dataset, train: bool) -> tuple[DataLoader, DistributedSampler]:
        if hasattr(dataset, "batch_sampler"):
            # A dataset that composes its own batches (e.g. skiptool.data.two_corpora: mixed or
            # alternating corpora) returns a sampler of this rank's share of each global batch,
            # with set_epoch like DistributedSampler's.
            batches = dataset.batch_sampler(self.cfg.batch_size, shuffle=train, seed=self.cfg.seed,
                                            rank=self.ctx.rank, world_size=self.ctx.world_size,
                                            drop_last=train and self.cfg.drop_last)
            return DataLoader(dataset, batch_sampler=batches, collate_fn=self.collate,
                              num_workers=self.cfg.num_workers, pin_memory=self.device.type == "cuda"), batches
        # DistributedSampler with one replica too: epoch e's order is randperm seeded by seed + e.
        # With several processes, a dev set not divisible by their number has its first items
        # repeated to fill the last batches (torch's rule); its stats then count them twice.
        sampler = DistributedSampler(dataset, num_replicas=self.ctx.world_size, rank=self.ctx.rank,
                                     shuffle=train, seed=self.cfg.seed, drop_last=False)
        loader = DataLoader(dataset, batch_size=self.per_rank_batch, sampler=sampler,
                            collate_fn=self.collate, num_workers=self.cfg.num_workers,
                            drop_last=train and self.cfg.drop_last,
                            pin_memory=self.device.type == "cuda")
        return loader, sampler

    # -- state

    def _state(self, epoch: int) -> dict[str, Any]:
        rng_states = all_gather_objects(self.ctx, ckpt.capture_rng_state())
        return {"epoch": epoch, "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "rng": rng_states, "history": [r.to_dict() for r in self.history],
                "best": {"epoch": self.best_epoch, "value": self.best_value},
                "world_size": self.ctx.world_size, "config": self.experiment}

    def _resume(self) -> int:
        """Load latest.pt if there is one; returns the first epoch still to train."""
        path = ckpt.checkpoint_path(self.exp_dir, "latest")
        if not path.exists():
            return 1
        state = ckpt.load_checkpoint(path)  # on CPU: RNG states must stay there; load_state_dict moves the rest
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError) as e:
            raise SkiptoolError(f"{path}: does not fit this model ({str(e).splitlines()[0]}); the exp dir "
                                f"holds another model: use a new --exp-dir or --overwrite") from None
        self.history = [EpochRecord.from_dict(r) for r in state["history"]]
        self.best_epoch, self.best_value = int(state["best"]["epoch"]), float(state["best"]["value"])
        rng = state["rng"]
        if len(rng) == self.ctx.world_size:
            ckpt.restore_rng_state(rng[self.ctx.rank])
        else:  # another number of processes: continue reproducibly, though not bit-identically
            ckpt.seed_everything(self.cfg.seed + 1000 * int(state["epoch"]) + self.ctx.rank)
            self.reporter.log(f"note: {path} was written by {len(rng)} processes, this run has "
                              f"{self.ctx.world_size}; random states re-seeded from (seed, epoch)")
        self.reporter.log(f"resumed from {path} (epoch {state['epoch']})")
        return int(state["epoch"]) + 1

    # -- loops

    def fit(self) -> TrainResult:
        cfg = self.cfg
        start = self._resume()
        if start > cfg.max_epochs:
            self.reporter.log(f"{self.exp_dir}: already trained for {start - 1} epochs "
                              f"(train.max_epochs {cfg.max_epochs}); nothing to do")
            return self._result(start - 1)
        train_loader, train_sampler = self._loader(self.train_set, train=True)
        dev_loader = self._loader(self.dev_set, train=False)[0] if self.dev_set is not None else None
        if start == 1:
            self.reporter.log(f"training {sum(p.numel() for p in self.model.parameters()):,} parameters "
                              f"on {self.device} x {self.ctx.world_size} process(es): {len(self.train_set)} "
                              f"train items" + (f", {len(self.dev_set)} dev items" if self.dev_set else
                                                 "; no dev data: best.pt is chosen by the train stats"))
        for epoch in range(start, cfg.max_epochs + 1):
            train_sampler.set_epoch(epoch)
            if hasattr(self.train_set, "set_epoch"):
                self.train_set.set_epoch(epoch)
            began = time.monotonic()
            train_stats, items = self._train_epoch(train_loader, epoch)
            seconds = time.monotonic() - began
            dev_stats = self._evaluate(dev_loader, epoch) if dev_loader is not None else {}
            record = EpochRecord(epoch, train_stats, dev_stats, seconds, items / max(seconds, 1e-9))
            is_best = self._update_best(record)
            self.history.append(record)
            if self.ctx.is_main and hasattr(self.model, "on_epoch_end"):
                # model-specific pictures (e.g. MIB's attention alignments) into exp_dir/images; the
                # hook must leave the random state alone (a resumed run stays bit-identical)
                self.model.on_epoch_end(self.exp_dir, epoch)
            state = self._state(epoch)  # every rank: it gathers their RNG states
            if self.ctx.is_main:
                nbest = ckpt.nbest_epochs(state["history"], cfg.best_metric, cfg.best_mode, cfg.keep_nbest)
                ckpt.save_checkpoint(self.exp_dir, epoch, state, is_best=is_best, keep_last_n=cfg.keep_last_n,
                                     keep=nbest)
                self.reporter.log(self.reporter.epoch_line(record, cfg.max_epochs,
                                                           self.optimizer.param_groups[0]["lr"], is_best))
                self.reporter.maybe_plot(self.history, final=epoch == cfg.max_epochs)
            barrier(self.ctx)
        self.reporter.log(f"done: best {cfg.best_metric}={self.best_value:.6g} at epoch {self.best_epoch}; "
                          f"{ckpt.checkpoint_path(self.exp_dir, 'best')}")
        return self._result(cfg.max_epochs)

    def _result(self, epochs: int) -> TrainResult:
        return TrainResult(self.exp_dir, epochs, self.best_epoch, self.best_value, list(self.history))

    def _update_best(self, record: EpochRecord) -> bool:
        stats = record.dev if record.dev else record.train
        value = stats[self.cfg.best_metric]
        # Improvements within float rounding are ties (e.g. the same number of correct answers
        # summed over batches in another order); a tie keeps the earlier epoch.
        margin = 1e-6 * max(1.0, abs(self.best_value)) if not math.isnan(self.best_value) else 0.0
        better = (self.best_epoch == 0 or math.isnan(self.best_value)
                  or (value < self.best_value - margin if self.cfg.best_mode == "min"
                      else value > self.best_value + margin))
        if better:
            self.best_epoch, self.best_value = record.epoch, value
        return better

    def _check_best_metric(self, stats: Mapping[str, float]) -> None:
        self._metric_checked = True
        if self.cfg.best_metric not in stats:
            raise SkiptoolError(f"train.best_metric: '{self.cfg.best_metric}' is not a stat of this model "
                                f"(it reports: {', '.join(stats)}); set train.best_metric to one of those")

    def _train_epoch(self, loader: DataLoader, epoch: int) -> tuple[dict[str, float], int]:
        self.wrapped.train()
        sums: dict[str, float] = {}
        count = 0
        description = f"epoch {epoch}/{self.cfg.max_epochs}"
        for step, batch in enumerate(progress.track(loader, total=len(loader), description=description,
                                                    quiet=self.quiet, unit="batch"), start=1):
            batch = move_to_device(batch, self.device)
            loss, stats = self.wrapped(batch)
            if not torch.isfinite(loss):
                raise SkiptoolError(f"epoch {epoch}, batch {step}: the loss is {loss.item()}; lower "
                                    f"train.optim.lr or set train.grad_clip, then rerun to resume from "
                                    f"the last checkpoint")
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            stats = dict(stats)
            if self.cfg.grad_clip > 0:
                norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
                stats["grad_norm"] = float(norm)
            self.optimizer.step()
            if not self._metric_checked and self.dev_set is None:
                self._check_best_metric(stats)
            n = _batch_size(batch)
            count += n
            for k, v in stats.items():
                sums[k] = sums.get(k, 0.0) + float(v) * n
            if self.cfg.log_interval and step % self.cfg.log_interval == 0:
                running = {k: v / count for k, v in sums.items()}
                self.reporter.log(f"epoch {epoch} batch {step}/{len(loader)}: "
                                  + " ".join(f"{k}={v:.4g}" for k, v in running.items()), to_stderr=False)
        return self._mean_over_ranks(sums, count)

    @torch.no_grad()
    def _evaluate(self, loader: DataLoader, epoch: int) -> dict[str, float]:
        broadcast_buffers(self.ctx, self.model)  # then every rank evaluates the model rank 0 saves
        self.model.eval()  # the bare module: ranks hold identical parameters, no DDP sync needed
        sums: dict[str, float] = {}
        count = 0
        for batch in progress.track(loader, total=len(loader), description=f"epoch {epoch} dev",
                                    quiet=self.quiet, unit="batch"):
            batch = move_to_device(batch, self.device)
            _, stats = self.model(batch)
            if not self._metric_checked:
                self._check_best_metric(stats)
            n = _batch_size(batch)
            count += n
            for k, v in stats.items():
                sums[k] = sums.get(k, 0.0) + float(v) * n
        return self._mean_over_ranks(sums, count)[0]

    def _mean_over_ranks(self, sums: dict[str, float], count: int) -> tuple[dict[str, float], int]:
        totals = sum_across_ranks(self.ctx, {**sums, "__count__": float(count)})
        total = totals.pop("__count__")
        return {k: totals[k] / max(total, 1) for k in sums}, int(total)


# ---------------------------------------------------------------------------------------------
# Experiments: config + registry + data dirs -> trained exp dir


def prepare_exp_dir(exp_dir: Path, experiment: ExperimentConfig, overwrite: bool) -> None:
    """Write config.yaml; refuse an exp dir trained with another config unless `overwrite`,
    which removes what the trainer wrote there before."""
    config_file = exp_dir / CONFIG_FILE
    new = experiment_to_dict(experiment)
    if overwrite:
        for name in (ckpt.CHECKPOINT_DIR, IMAGES_DIR):
            shutil.rmtree(exp_dir / name, ignore_errors=True)
        for name in (LOG_FILE, CONFIG_FILE):
            (exp_dir / name).unlink(missing_ok=True)
        clear_done(exp_dir, DONE_NAME)
    elif config_file.exists():
        difference = _config_difference(_resolved(config_file), new)
        if difference:
            raise SkiptoolError(f"{config_file}: this exp dir holds a run with another config ({difference}); "
                                f"use a new --exp-dir, or pass --overwrite to start this one afresh")
    elif ckpt.checkpoint_path(exp_dir, "latest").exists():
        raise SkiptoolError(f"{exp_dir}: has checkpoints but no {CONFIG_FILE}; use a new --exp-dir, "
                            f"or pass --overwrite to start afresh")
    atomic_write_text(config_file, to_yaml(experiment))
    clear_done(exp_dir, DONE_NAME)


def _resolved(config_file: Path) -> dict:
    """A saved config with every key the code knows today: a key added since it was written takes
    its default (which reproduces the old behaviour), so an older exp dir still resumes. As written
    when it no longer validates (the difference then names what changed)."""
    try:
        return experiment_to_dict(load_experiment_config(config_file))
    except SkiptoolError:
        return read_yaml(config_file)


def _config_difference(old: dict, new: dict, prefix: str = "") -> str:
    """'key: old -> new' for the first difference that changes the result, '' if none."""
    for key in sorted(set(old) | set(new)):
        dotted = f"{prefix}{key}"
        if dotted in {f"train.{k}" for k in RESUMABLE_CHANGES}:
            continue
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            inner = _config_difference(a, b, dotted + ".")
            if inner:
                return inner
        elif a != b:
            return f"{dotted}: {a!r} -> {b!r}"
    return ""


def train_experiment(experiment: ExperimentConfig, data: Mapping[str, Path],
                     dev_data: Mapping[str, Path] | None, exp_dir: str | Path, *, device: str = "auto",
                     overwrite: bool = False, quiet: bool | None = None) -> TrainResult:
    """Build the model and datasets of `experiment` from the registry and train them in
    `exp_dir` (resuming if it holds a run of the same config). Works alike in one process and
    under torchrun."""
    from skiptool.models import MODELS

    exp_dir = Path(exp_dir)
    entry = MODELS[experiment.model]
    ctx = context_from_env()
    torch_device = resolve_device(device, ctx)
    ctx = init_distributed(torch_device)
    try:
        seed = experiment.train.seed
        train_set = entry.dataset(experiment.model_conf, dict(data), True, seed)
        dev_set = entry.dataset(experiment.model_conf, dict(dev_data), False, seed) if dev_data else None
        if ctx.is_main:
            prepare_exp_dir(exp_dir, experiment, overwrite)
        barrier(ctx)
        ckpt.seed_everything(seed)
        model = entry.build(experiment.model_conf)
        trainer = Trainer(model, train_set, entry.collate, experiment.train, exp_dir, dev_set=dev_set,
                          device=torch_device, ctx=ctx, experiment=experiment_to_dict(experiment), quiet=quiet)
        result = trainer.fit()
        if ctx.is_main:
            mark_done(exp_dir, DONE_NAME)
        return result
    finally:
        shutdown_distributed()


def load_experiment(exp_dir: str | Path) -> ExperimentConfig:
    """The resolved config of a trained exp dir."""
    config_file = Path(exp_dir) / CONFIG_FILE
    if not config_file.is_file():
        raise SkiptoolError(f"{config_file}: not found; {exp_dir} is not an exp dir written by skiptool train")
    return load_experiment_config(config_file)


def load_trained_model(exp_dir: str | Path, which: str = "best", device: str | torch.device = "cpu",
                       ) -> tuple[nn.Module, ExperimentConfig]:
    """The model of `exp_dir` with the weights of checkpoint `which` (best, latest, an epoch
    number or ave_<N>best), in eval mode on `device`, and its config."""
    from skiptool.models import MODELS

    experiment = load_experiment(exp_dir)
    path = ckpt.checkpoint_path(exp_dir, which)
    state = ckpt.load_checkpoint(path)
    model = MODELS[experiment.model].build(experiment.model_conf)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as e:
        raise SkiptoolError(f"{path}: does not fit the model of {Path(exp_dir) / CONFIG_FILE} "
                            f"({str(e).splitlines()[0]})") from None
    torch_device = device if isinstance(device, torch.device) else resolve_device(str(device))
    return model.to(torch_device).eval(), experiment
