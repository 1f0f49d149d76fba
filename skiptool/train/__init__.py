"""The shared trainer: configs, checkpoints, loss curves, data-parallel launch (see trainer.py)."""

from skiptool.train.trainer import (
    ExperimentConfig,
    OptimConfig,
    TrainConfig,
    Trainer,
    TrainResult,
    load_experiment,
    load_experiment_config,
    load_trained_model,
    train_experiment,
)

__all__ = ["ExperimentConfig", "OptimConfig", "TrainConfig", "Trainer", "TrainResult", "load_experiment",
           "load_experiment_config", "load_trained_model", "train_experiment"]
