"""What a training run is told (`TrainConfig`, saved with its checkpoint) and what it gives."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mdrnn.pipelines.preprocess_config import PreprocessConfig
from mdrnn.pipelines.schedule import check_schedule


@dataclass
class TrainConfig:
    """How to train; stored in the checkpoint so that a resumed run continues alike.

    Args:
        spec: a preset name (see `mdrnn.presets.PRESETS`) or a model spec dict.
        preprocessing: the preprocessing config as a dict.
        epochs: maximum number of epochs.
        batch_size: lines per step (over all devices).
        optimizer: "adam", "sgd" with momentum (Graves: lr 1e-4, momentum 0.9), or
            "hf": Hessian-free (`mdrnn.pipelines.train_hf`; the learning rate is the
            share of each step taken, 1 by default; the log's learning_rate column
            holds the damping λ after each epoch).
        learning_rate: default 1e-3 for adam, 1e-4 for sgd, 1 for hf; the rate of the
            first epoch.
        schedule: "constant", "cosine" (to 0 over `epochs`, or over `time_limit` if
            that comes first) or "plateau" (times `lr_factor` after `lr_patience`
            epochs without a better validation CER); see `mdrnn.pipelines.schedule`.
        lr_factor, lr_patience: the plateau schedule's cut and its patience.
        momentum: for sgd.
        clip_norm: gradients are clipped to this global norm (RNNs explode).
        patience: stop after this many epochs without a better validation CER.
        augment: distort training lines (geometric and photometric).
        buckets: padded line widths per data set; each is one XLA compilation.
        epoch_lines: lines per epoch (a random subset, new each epoch); None: all.
        time_limit: stop after the epoch during which this many seconds passed.
        seed: seeds data order, augmentation and weight initialisation.
        xla: compile the forward/backward pass with XLA.
        mixed_precision: float16 compute with loss scaling (for GPUs).
        initial_model: a trained model file to fine-tune: its network, preprocessing
            and weights are used, its charset extended by the training data's new
            symbols (see `start_from`); `spec` and `preprocessing` are then its own.
        dropout: the dropout rate after the feed-forward layers, replacing the
            spec's (or, with `initial_model`, the model's); None keeps it.
        strict: stop before training if any line cannot be used (unreadable, too
            wide, too dense for the network) instead of skipping it.
        hf_batches: for hf, batches per step (gradient on all, curvature on the first).
        hf_damping: for hf, the initial damping λ.
        hf_max_cg: for hf, conjugate-gradient iterations per step at most.
        hf_average: for hf, the decay of the weights' moving average over steps, which
            validation reads and the model saves (0: none; see `mdrnn.pipelines.train_hf`).
        hf_precondition: for hf, the exponent of Martens' diagonal CG preconditioner
            (0: none; see `mdrnn.optimizers.HessianFree`).
        hf_clip: for hf, each variable's part of a batch gradient is scaled down to
            at most this many times its median norm over the last 200 batch gradients
            (0: never; `mdrnn.batch_gradients.GradientClip`).
        hf_structural: for hf, μ of Martens & Sutskever's structural damping of the
            recurrent layers' outputs (0: none; see `mdrnn.pipelines.train_hf`).
    """

    spec: str | dict = "graves2009"
    preprocessing: PreprocessConfig = field(default_factory=PreprocessConfig)
    epochs: int = 100
    batch_size: int = 16
    optimizer: str = "adam"
    learning_rate: float | None = None
    momentum: float = 0.9
    schedule: str = "constant"
    lr_factor: float = 0.3
    lr_patience: int = 8
    clip_norm: float = 5.0
    patience: int = 20
    augment: bool = False
    buckets: int = 4
    epoch_lines: int | None = None
    time_limit: float | None = None
    seed: int = 0
    xla: bool = True
    mixed_precision: bool = False
    initial_model: str | None = None
    dropout: float | None = None
    strict: bool = False
    hf_batches: int = 4
    hf_damping: float = 1.0
    hf_max_cg: int = 50
    hf_average: float = 0.0
    hf_precondition: float = 0.0
    hf_clip: float = 0.0
    hf_structural: float = 0.0

    def __post_init__(self):
        if isinstance(self.preprocessing, dict):  # as stored in a checkpoint
            self.preprocessing = PreprocessConfig.from_dict(self.preprocessing)
        if self.dropout is not None and not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must lie in [0, 1), got {self.dropout!r}")
        if self.optimizer not in ("adam", "sgd", "hf"):
            raise ValueError(f"optimizer must be 'adam', 'sgd' or 'hf', got "
                             f"{self.optimizer!r}")
        check_schedule(self.schedule, self.lr_factor, self.lr_patience)
        if self.hf_damping <= 0:
            raise ValueError(f"hf_damping must be > 0, got {self.hf_damping!r}")
        if not 0 <= self.hf_average < 1:
            raise ValueError(f"hf_average must lie in [0, 1), got {self.hf_average!r}")
        if self.hf_clip != 0 and not self.hf_clip >= 1:
            raise ValueError(f"hf_clip must be 0 or >= 1, got {self.hf_clip!r}")
        if not self.hf_structural >= 0:
            raise ValueError(f"hf_structural must be >= 0, got {self.hf_structural!r}")
        if not 0 <= self.hf_precondition <= 1:
            raise ValueError(f"hf_precondition must lie in [0, 1], got "
                             f"{self.hf_precondition!r}")
        for name in ("epochs", "batch_size", "patience", "hf_batches", "hf_max_cg"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        """The config as `dataclasses.asdict` stored it in a checkpoint (older ones too)."""
        data = dict(data)
        if "initial_dropout" in data:  # its name before `dropout` covered new runs too
            data["dropout"] = data.pop("initial_dropout")
        return cls(**data)


@dataclass
class TrainResult:
    """What a run gave: the best score and where, and what it trained on (`summary`:
    lines used and skipped by kind, for training and validation; symbols; weights)."""

    best_cer: float
    best_epoch: int
    epochs_run: int
    model_path: Path
    history: list[dict]
    summary: dict = field(default_factory=dict)


def base_learning_rate(config: TrainConfig) -> float:
    default = {"sgd": 1e-4, "hf": 1.0}.get(config.optimizer, 1e-3)
    return config.learning_rate or default
