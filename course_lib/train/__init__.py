"""Training: ``TrainConfig``, the recipes, ``fit``, ``evaluate``, checkpoints, seeding and device selection."""

from course_lib.train.checkpoint import CheckpointError, load_checkpoint, load_state_dict_strict, save_checkpoint
from course_lib.train.config import TrainConfig
from course_lib.train.loop import (EpochRecord, Evaluation, History, TrainingTooSlow, evaluate, fit, lr_factor,
                                   train_one_epoch)
from course_lib.train.recipes import RECIPES, Recipe, get_recipe
from course_lib.train.runtime import is_grading, progress_enabled, seed_everything, select_device, training_seed

__all__ = [
    "TrainConfig", "Recipe", "RECIPES", "get_recipe", "fit", "evaluate", "train_one_epoch", "lr_factor", "History",
    "EpochRecord", "Evaluation", "TrainingTooSlow", "save_checkpoint", "load_checkpoint", "load_state_dict_strict",
    "CheckpointError", "seed_everything", "select_device", "is_grading", "progress_enabled",
    "training_seed",
]
