"""Every configuration key, its default and what it means: the one defaults file.

An experiment's YAML only overrides these (PySlowFast's ``defaults.py``). Each pipeline stage
reads its own section; they all live here, importing nothing but pydantic, so that
:mod:`optplan.config` (loading, overrides, error messages) and every stage can import them
without an arrow from the configuration back into the pipeline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

GridRule = Literal["monotone_lr", "monotone_clip", "one_change", "adjacent"]
Count = Annotated[int, Field(ge=1)]
"""A whole number of at least 1 (frames, clips, steps)."""
PositiveFinite = Annotated[float, Field(gt=0.0, allow_inf_nan=False)]
"""A float above 0 that is neither inf nor NaN (learning rates, multipliers, stds)."""


FrozenBN = Literal["stats", "all"]
"""How a state with ``frozen_bn`` freezes BatchNorm (``train.frozen_bn``; see
:func:`optplan.models.layers.set_frozen_bn`)."""


def _admits_bool(annotation: Any) -> bool:
    return annotation is bool or annotation is Any or any(_admits_bool(a) for a in get_args(annotation))


def _holds_bool(value: Any) -> bool:
    if isinstance(value, (list, tuple)):
        return any(isinstance(v, bool) for v in value)
    return isinstance(value, bool)


class Section(BaseModel):
    """A config section: unknown keys are refused, and so is true/false where a number is meant
    (pydantic's lax mode would read ``knee.patience: true`` as a patience of 1), also inside
    lists; the error names the field like any other."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_a_number(cls, value: Any, info: ValidationInfo) -> Any:
        if _holds_bool(value) and not _admits_bool(cls.model_fields[info.field_name].annotation):
            raise ValueError("true/false given where a number or a name is expected")
        return value


class AugmentConfig(Section):
    """Colour augmentation of training clips (``optplan.data.augment``). Off by default: colour
    can be what tells classes apart (the built-in dataset's appearance classes are coloured
    shapes). The reference's: ``jitter: 0.8, grayscale: 0.2, blur: 0.5`` (``configs/reference.yaml``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    jitter: float = Field(0.0, ge=0.0, le=1.0, description="Probability of colour jitter per clip (reference: 0.8).")
    brightness: float = Field(0.4, ge=0.0, description="Jitter: brightness factor in [1 - b, 1 + b].")
    contrast: float = Field(0.4, ge=0.0, description="Jitter: contrast factor in [1 - c, 1 + c].")
    saturation: float = Field(0.4, ge=0.0, description="Jitter: saturation factor in [1 - s, 1 + s].")
    hue: float = Field(0.1, ge=0.0, le=0.5, description="Jitter: hue turned by up to this share of the wheel.")
    grayscale: float = Field(0.0, ge=0.0, le=1.0, description="Probability of a grey clip (reference: 0.2).")
    blur: float = Field(0.0, ge=0.0, le=1.0, description="Probability of a Gaussian blur (reference: 0.5).")
    blur_sigma: tuple[float, float] = Field(
        (0.1, 2.0), description="Blur sigma range in pixels of the training crop (reference: 0.1..2 at 224).")

    @field_validator("blur_sigma")
    @classmethod
    def _ordered(cls, sigma: tuple[float, float]) -> tuple[float, float]:
        if not 0.0 < sigma[0] <= sigma[1]:
            raise ValueError(f"needs 0 < low <= high, got {list(sigma)}")
        return sigma

    @property
    def strengths(self) -> tuple[float, float, float]:
        """Jitter strengths of brightness, contrast and saturation, in that order."""
        return self.brightness, self.contrast, self.saturation

    @property
    def active(self) -> bool:
        """Whether any colour operation can happen."""
        return max(self.jitter, self.grayscale, self.blur) > 0.0


class DataConfig(Section):
    """Videos and annotations. Defaults point at the built-in dataset (``optplan data synth``)."""

    root: Path = Field(Path("data/synth"), description="Directory the annotation paths are relative to.")
    format: Literal["auto", "ucf101", "hmdb51", "kinetics", "csv", "ssv2", "rawframes"] = Field(
        "auto", description="Annotation format; 'auto' detects it from the files in root. 'rawframes': "
                            "MMAction2 rawframe lists ('frame_dir total_frames label'), each folder "
                            "holding img_00001.jpg... (or 00001.jpg, image_00001.jpg) read as one video.")
    split: int = Field(1, ge=1, le=3, description="Official split (1-3) of UCF101 / HMDB51 whose lists "
                                                  "are looked for when train_list is None.")
    class_names: Path | list[str] | None = Field(
        None, description="Label map: a file with one class name per line, line 1 = label 0 (MMAction2's "
                          "label_map), or the list of names; names the integer labels of 'path label' and "
                          "rawframe lists (else they are called '0', '1', ...) and fixes the class order.")
    train_list: Path | None = Field(None, description="Training annotation file (None: found in root).")
    val_list: Path | None = Field(
        None, description="Validation list. None: hold out val_fraction of the training list.")
    test_list: Path | None = Field(None, description="Test list used only for final evaluation.")
    allow_outside_root: bool = Field(
        False, description="Accept listed video paths outside root ('../x.avi', absolute paths "
                           "elsewhere). Off: such a list is refused naming its line, since it is more "
                           "often another dataset's list or a slip than a wish.")
    val_fraction: float = Field(0.2, gt=0.0, lt=1.0, description="Share of training videos held out.")
    crop_size: int = Field(56, ge=8, description="Training and validation crop side in pixels.")
    short_side: int = Field(64, ge=8, description="Test-time resize of the shorter side in pixels.")
    scale: tuple[PositiveFinite, PositiveFinite] = Field(
        (0.5, 1.0), description="Random-resized-crop area range (shares of the frame, low <= high <= 1).")
    flip: bool = Field(False, description="Horizontal flip in training (off when labels depend on direction).")
    augment: AugmentConfig = Field(default_factory=AugmentConfig,
                                   description="Colour jitter, grayscale and blur of training clips.")
    mean: tuple[float, float, float] = Field((0.45, 0.45, 0.45), description="Normalisation mean (RGB, 0..1).")
    std: tuple[PositiveFinite, PositiveFinite, PositiveFinite] = Field(
        (0.225, 0.225, 0.225), description="Normalisation std (RGB).")
    num_workers: int = Field(1, ge=0, description="DataLoader worker processes (0: main process).")
    cache: bool = Field(True, description="Keep decoded uint8 frames in a memory-mapped cache.")
    cache_dir: Path | None = Field(
        None, description="Folder of the frame cache and probe results (None: a folder per dataset under "
                          "$OPTPLAN_CACHE, else ~/.cache/optplan/frames; never inside the dataset, since "
                          "decoded frames take tens of times the videos' size). Earlier versions used "
                          "ROOT/.cache: point here to keep using such a cache.")
    decode_short_side: int | None = Field(
        None, ge=8, description="Resize frames to this shorter side while decoding, before the cache "
                                "(e.g. 128 for Kinetics); None keeps the stored size.")
    max_bad_fraction: float = Field(
        0.1, ge=0.0, le=1.0, description="Refuse to train when more than this share of files is bad.")
    val_position: float = Field(
        0.5, ge=0.0, le=1.0, description="Where the one validation clip lies in a video: 0 the first "
                                         "clip (the reference's), 0.5 the centre, 1 the last.")
    val_short_side: int | None = Field(
        None, ge=8, description="Validation resize of the shorter side (None: short_side); the "
                                "reference resizes to crop_size before its centre crop.")
    test_clips: int = Field(10, ge=1, description="Clips per video in the multi-view test.")
    test_crops: int = Field(3, ge=1, le=3, description="Spatial crops per clip in the multi-view test.")
    test_crop_size: int | None = Field(
        None, ge=8, description="Crop side of the multi-view test (None: crop_size). The reference "
                                "trains on 224 crops and tests 256 crops of a 256 short side.")
    test_average: Literal["softmax", "logits"] = Field(
        "softmax", description="What the multi-view test averages over a video's views: class "
                               "probabilities, or raw logits (the reference's).")

    @property
    def test_crop(self) -> int:
        """The crop side of the multi-view test in pixels."""
        return self.test_crop_size or self.crop_size

    @field_validator("test_crop_size")
    @classmethod
    def _test_crop_fits(cls, test_crop_size: int | None, info: ValidationInfo) -> int | None:
        short = info.data.get("short_side")
        if test_crop_size is not None and short is not None and short < test_crop_size:
            raise ValueError(f"larger than data.short_side = {short}, so the test crop does not fit; "
                             "raise short_side or lower test_crop_size")
        return test_crop_size

    @field_validator("scale")
    @classmethod
    def _ordered(cls, scale: tuple[float, float]) -> tuple[float, float]:
        if not scale[0] <= scale[1] <= 1.0:
            raise ValueError("the area range must be low <= high <= 1, e.g. [0.5, 1.0]")
        return scale

    @field_validator("short_side", "val_short_side")
    @classmethod
    def _crop_fits(cls, side: int | None, info: ValidationInfo) -> int | None:
        """A resized short side must hold the centre crop taken from it."""
        crop = info.data.get("crop_size")
        if side is not None and crop is not None and side < crop:
            use = "test" if info.field_name == "short_side" else "validation"
            raise ValueError(f"smaller than data.crop_size = {crop}, so the {use} crop does not fit; "
                             f"raise {info.field_name} or lower crop_size")
        return side


class ModelConfig(Section):
    """A registry name plus overrides; see ``optplan models`` for the names."""

    name: str = Field("dg_p3d_tiny", description="Registered model name (optplan models lists them).")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="Overrides passed to the builder.")
    head_weight: float = Field(1.0, gt=0.0, description="Weight of the summed dual-head cross-entropy.")
    dropout: float = Field(0.5, ge=0.0, lt=1.0, description="Dropout before each classifier.")
    pretrained_2d: Path | None = Field(None, description="Local 2D ResNet state dict to inflate from.")
    pretrained: Path | None = Field(
        None, description="Video weights to start from (fine-tuning): an optplan checkpoint, MMAction2 "
                          "{'state_dict'}, PySlowFast {'model_state'} or a plain state dict; a "
                          "classifier of another class count is re-created.")


class TrainConfig(Section):
    """Optimiser and loop settings shared by every state (the state sets lr, clip and batch)."""

    seed: int = Field(0, ge=0, description="Seed for the validation hold-out, model init, sampling and "
                                           "augmentation.")
    draw: int = Field(
        0, ge=0, description="Which draw of the training randomness (initial weights, clip order, "
                             "augmentation, dropout) a run trains; the validation hold-out stays "
                             "train.seed's. 0: the seed's own draw, so replaying a planned path rebuilds "
                             "the searched model (bit for bit on CPU); another value trains an independent "
                             "run of the same schedule on the same split, as a replay on other hardware does.")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="'auto': cuda when available.")
    amp: Literal["off", "bf16", "fp16"] = Field("off", description="Mixed precision on GPU.")
    channels_last: bool = Field(True, description="channels_last_3d memory format on GPU.")
    threads: int | None = Field(
        None, ge=1, description="torch intra-op threads (None: the cores idle when training starts, "
                                "so a shared machine is not oversubscribed; the thread count can change "
                                "the last bits of CPU results, so set it for bit-exact replays).")
    warmup_epochs: int = Field(
        0, ge=0, description="Linear lr warm-up over the first epochs of a model trained from scratch: in a "
                             "state run with no source (a plan's start edges) and in the first stage of a "
                             "replay (at least this much; a stage's own lr_schedule.warmup may ask for more). "
                             "High learning rates from a fresh initialisation otherwise can wreck a run.")
    average_last: float = Field(
        0.0, ge=0.0, le=1.0, description="Share of a replayed schedule's epochs, at its end and within its "
                                         "last stage, whose weights are averaged into its final model "
                                         "(stochastic weight averaging, with BatchNorm statistics measured again "
                                         "on one pass of training clips, counted as training GFLOPs), kept "
                                         "where it scores at least as well on validation as the last epoch's "
                                         "model; 0: the last epoch's model. Replays only (optplan train "
                                         "--schedule, the benchmark's schedule rows): a plan's search is the "
                                         "same (see optplan.train.average).")
    momentum: float = Field(0.9, ge=0.0, lt=1.0, description="SGD momentum.")
    nesterov: bool = Field(True, description="Nesterov momentum.")
    weight_decay: float = Field(1e-4, ge=0.0, description="L2 weight decay.")
    grad_clip: float | None = Field(40.0, gt=0.0, description="Gradient-norm clip (None: off).")
    frozen_bn: FrozenBN = Field(
        "stats", description="How states with frozen_bn freeze BatchNorm: 'stats' (the reference: running "
                             "statistics fixed, affine weights still trained, the stem's BN not frozen) or "
                             "'all' (every BN, statistics and affine weights).")
    drop_last: bool = Field(
        True, description="Drop each epoch's last training batch when it is short of batch_size (the "
                          "reference), rather than train on a small batch.")
    drop_last_accumulation: bool = Field(
        True, description="Discard the gradients of an epoch's last accumulation group when it has fewer "
                          "than accumulation batches (the reference), rather than step on a smaller batch.")
    eval_batch_size: int = Field(16, ge=1, description="Clips per validation/test step (per process).")
    tensorboard: bool = Field(True, description="Write TensorBoard scalars next to the JSONL log.")
    progress: bool = Field(True, description="Progress bars on the terminal.")


class KneeConfig(Section):
    """When a state has given what it can (see ``optplan.knee``)."""

    method: Literal["paper", "stable", "kneedle", "gain", "plateau"] = Field(
        "paper", description="Stopping rule: paper, stable, kneedle, gain or plateau (see optplan.knee).")
    metric: Literal["auto", "top1", "top135", "loss"] = Field(
        "auto", description="What validation curves measure: 'top135' (the paper's mean of top-1/3/5), "
                            "'top1', 'loss' (as exp(-cross-entropy), rising in 0..1), or 'auto' "
                            "(top1 under 50 classes, where top-1/3/5 saturates; top135 otherwise).")
    score_clip: Literal["state", "longest"] = Field(
        "state", description="Clip setting the curves are scored with: each state's own ('state') or, as "
                             "the reference, the longest one of the state space ('longest'; see "
                             "optplan.train.scoring).")
    patience: int = Field(10, ge=1, description="T: epochs past the knee before stopping.")
    max_epochs: int | None = Field(None, ge=1, description="Hard cap of epochs per state (None: paper rule).")
    refits: int | None = Field(
        None, ge=2, description="'stable' rule: refits whose knee must agree (None: 40% of patience, >= 2).")
    min_gain: float = Field(
        0.01, ge=0.0, description="'gain' rule: stop once the fit promises less than this over the next T epochs.")
    clip_score: bool = Field(
        False, description="Limit a knee's fitted score to the range of scores its curve reached, so a fit "
                           "that extrapolates above the best epoch cannot outrank measured scores in the "
                           "DP (the paper keeps the fitted value; the other rules always limit it).")
    chance_guard: bool = Field(
        False, description="Train on while no score of an edge's curve, its start included, is above "
                           "chance (1/classes for top-1, plus a 2-point margin): a model that has not "
                           "started learning has no knee yet, "
                           "and a rule would stop it on its flat start. Needs knee.max_epochs, which "
                           "still ends an edge that never leaves chance. Inactive for knee.metric=loss.")

    @model_validator(mode="after")
    def _guard_with_a_cap(self) -> "KneeConfig":
        if self.chance_guard and self.max_epochs is None:
            raise ValueError("knee.chance_guard=true needs knee.max_epochs (the cap that ends an edge "
                             "which never leaves chance), e.g. knee.max_epochs=15")
        return self


class SimulationConfig(Section):
    """The response surface of :class:`~optplan.plan.SimulatedTrainer` (``--simulate``).

    An edge into state v started from a model of score ``s0`` follows
    ``y(x) = e - (e - s0) * exp(-speed * x) - overfit * x`` (x in epochs) with
    ``e = min(0.99, ceiling(v) + transfer * s0)``, plus Gaussian noise of std ``noise``.
    ``ceiling(v) = ceiling + clip_gain * log2(clip / ref_clip) + lr_gain * log10(ref_lr / lr)``
    and ``speed(v) = speed * (lr / ref_lr) ** 0.5``; ``states`` overrides any of ceiling, speed,
    overfit per state name. A state with ``lr > diverge_lr`` returns NaN from epoch
    ``diverge_after`` on. With ``noise = 0`` and ``0 <= transfer <= 1`` an edge's score grows
    with its source's, so the dynamic programme is exact. An epoch costs
    ``epoch_gflops_per_frame * clip_length`` training GFLOPs (compute grows with the frames of a clip).
    """

    seed: int = Field(0, description="Seed of the noise (curves are deterministic given it).")
    noise: float = Field(0.0, ge=0.0, description="Std of the Gaussian noise added to each score.")
    ceiling: float = Field(0.5, description="Ceiling of a state at ref_clip and ref_lr (score units).")
    clip_gain: float = Field(0.08, description="Ceiling gained per doubling of the clip length.")
    lr_gain: float = Field(0.05, description="Ceiling gained per 10x lower learning rate.")
    transfer: float = Field(0.4, ge=0.0, le=1.0, description="Share of the source's score added to the ceiling.")
    speed: float = Field(0.3, gt=0.0, description="Convergence rate at ref_lr (1/epochs).")
    overfit: float = Field(0.002, ge=0.0, description="Score lost per epoch past saturation.")
    ref_clip: int = Field(4, ge=1, description="Clip length (frames) of the reference ceiling.")
    ref_lr: float = Field(0.1, gt=0.0, description="Learning rate of the reference ceiling and speed.")
    diverge_lr: float | None = Field(None, gt=0.0, description="States above this lr diverge (None: never).")
    diverge_after: int = Field(2, ge=1, description="First NaN epoch of a diverging state.")
    epoch_seconds: float = Field(0.0, ge=0.0, description="Sleep per epoch (to time executors).")
    epoch_gflops_per_frame: float = Field(
        1.0, gt=0.0, description="Training GFLOPs of one epoch per frame of the state's clip.")
    states: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="Per-state overrides: {name: {ceiling|speed|overfit: value}}.")

    @field_validator("states")
    @classmethod
    def _known_overrides(cls, states: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        for name, values in states.items():
            unknown = set(values) - {"ceiling", "speed", "overfit"}
            if unknown:
                raise ValueError(f"state {name!r}: unknown keys {sorted(unknown)}; "
                                 "use ceiling, speed or overfit")
        return states


class PlanConfig(Section):
    """States and moves. A preset builds the paper's graph from clip settings and lr multipliers;
    'grid' crosses the values of ``grid`` and links them by ``rules``; 'custom' takes ``states``
    and ``edges`` as written."""

    preset: Literal["paper", "paper-ext", "auto", "grid", "custom"] = Field(
        "paper", description="Graph family: paper, paper-ext, auto (paper with the start linked to "
                             "every clip setting), grid (grid + rules) or custom.")
    clip_lengths: list[Count] = Field([4, 8, 16], description="Clip settings, shortest first (frames).")
    batch_sizes: list[Count] = Field([16, 8, 4], description="Per-step batch per clip setting.")
    frame_steps: list[Count] | None = Field(
        None, description="Frame step per clip setting (None: 1); a clip spans clip x step frames.")
    frames_per_segment: list[Count] | None = Field(
        None, description="Uniform sampling: frames taken in a row from each segment, per clip setting "
                          "(None: 4 each, the reference's, so 16 frames are 4 segments of 4; 1: one frame "
                          "per segment).")
    accumulation: list[Count] = Field([1, 2, 4], description="Gradient accumulation per clip setting.")
    base_lrs: list[PositiveFinite] = Field([0.1, 0.1, 0.1], description="Base learning rate per clip setting.")
    lr_multipliers: list[PositiveFinite] = Field([1.0, 0.1, 0.01], description="Learning-rate levels.")
    sampling: Literal["consecutive", "uniform", "both"] = Field(
        "consecutive", description="Presets: 'both' builds two subgraphs sharing the start, the better "
                                   "final wins; under grid/custom each state's own sampling field says it.")
    frozen_bn_longest: bool = Field(True, description="Freeze BatchNorm in the longest-clip states.")
    start_lr_levels: Count = Field(
        1, description="Presets: lr levels the start links to at each clip setting it starts (1: the "
                       "first level only, as the paper; 3 of x1/x0.3/x0.1: training from scratch at any); refused "
                       "under grid/custom, where plan.grid or plan.edges say it.")
    grid: dict[str, list[Any]] = Field(
        default_factory=dict,
        description="grid: values per State field, e.g. {lr: [0.1, 0.01], clip_length: [4, 8]}.")
    grid_base: dict[str, Any] = Field(default_factory=dict, description="grid: State fields shared by all states.")
    rules: list[GridRule] = Field(
        ["monotone_lr", "monotone_clip", "one_change", "adjacent"],
        description="grid: allowed moves (lr never rises, clip never shrinks, one field at a time, "
                    "one level at a time).")
    states: list[dict[str, Any]] = Field(default_factory=list, description="custom: State fields each.")
    edges: list[tuple[str, str]] = Field(default_factory=list, description="custom: [source, target].")
    start: str = Field("start", description="custom: name of the start node.")
    final: str | None = Field(
        None, description="Where the chosen path ends: 'best' (the best-scoring node of all; a graph "
                          "with several end states needs no final one then), or "
                          "custom/grid: the name of the final node (None: the graph's final node, the "
                          "only sink or the preset's last state, as the paper).")
    executor: Literal["inprocess", "process", "ray"] = Field("inprocess", description="Edge execution.")
    workers: int = Field(2, ge=1, description="Parallel edges for the process/ray executors.")
    ray_address: str | None = Field(None, description="Ray cluster address (None: local ray.init).")
    beam: int = Field(1, ge=1, description="Checkpoints kept per node (1: the paper's DP).")
    budget_epochs: int | None = Field(
        None, ge=1, description="Also report the best searched path whose replay fits this many epochs.")
    objective: Literal["score", "score_at_budget"] = Field(
        "score", description="What the DP maximises: 'score' (the paper: the best final score) or "
                             "'score_at_budget' (the best path whose replay fits plan.budget_gflops).")
    budget_gflops: float | None = Field(
        None, gt=0.0, description="score_at_budget: training GFLOPs a replay of the chosen path may spend.")
    replay_lr: Literal["constant", "linear", "budget"] = Field(
        "constant", description="How the chosen path's schedule varies lr: 'constant' (the paper: the "
                                "replay rebuilds the searched model), 'linear' (each stage decays towards "
                                "the next stage's lr, the last to zero) or 'budget' (one linear decay from "
                                "the first stage's lr to zero over the whole replay; it starves a long-clip "
                                "stage that comes last, bench/RESULTS.md). The search is the "
                                "same; only schedule.yaml and its replay change.")
    racing: bool = Field(False, description="Stop an edge once it cannot beat a finished edge into "
                                            "the same state (see optplan.plan.racing).")
    race_margin: float = Field(
        0.01, ge=0.0, description="racing: score units added to an edge's optimistic bound.")
    race_after: int | None = Field(
        None, ge=1, description="racing: epochs an edge trains before it can be judged (None: knee.patience).")
    climb_limit: float | None = Field(
        None, gt=1.0, description="Drop an edge from scratch whose training loss in epochs "
                                  "2..plan.climb_epochs exceeds this many times epoch 1's (a start at an lr "
                                  "it does not train stably at; see optplan.plan.climb); None: never.")
    climb_epochs: int = Field(4, ge=2, description="climb_limit: the last epoch of an edge from scratch it judges.")
    simulate: SimulationConfig = Field(
        default_factory=SimulationConfig, description="Response surface of the simulated trainer.")

    @model_validator(mode="after")
    def _budget_with_its_objective(self) -> "PlanConfig":
        problem = objective_problem(self.objective, self.budget_gflops, self.beam)
        if problem:
            raise ValueError(problem)
        return self

    @model_validator(mode="after")
    def _preset_keys_with_a_preset(self) -> "PlanConfig":
        """Keys that only shape a preset's graph would be ignored under grid/custom, and a run
        would plan another graph than the one asked for: refuse them where they differ from
        their defaults (the other clip-setting lists also size the benchmark's hand-tuned rows,
        so they stay allowed)."""
        if self.preset in ("grid", "custom"):
            ignored = [f"{k}={getattr(self, k)!r}" for k in PRESET_ONLY
                       if getattr(self, k) != type(self).model_fields[k].default]
            if ignored:
                where = "plan.grid (e.g. {lr: [0.1, 0.01]})" if self.preset == "grid" else "plan.states and plan.edges"
                raise ValueError(f"{', '.join('plan.' + i for i in ignored)} shapes only the presets' graphs "
                                 f"(paper, paper-ext, auto), not plan.preset={self.preset}; write those "
                                 f"choices into {where}, or drop the key")
        return self


PRESET_ONLY = ("start_lr_levels", "sampling")
"""PlanConfig keys read only by the presets' graph builder."""


def objective_problem(objective: str, budget_gflops: float | None, beam: int = 1) -> str | None:
    """What is wrong with an objective and its budget (None: nothing); the one check behind
    the config's validation and :class:`~optplan.plan.objective.Objective`."""
    if objective == "score_at_budget" and (budget_gflops is None or budget_gflops <= 0):
        return ("plan.objective=score_at_budget needs a positive plan.budget_gflops (the training "
                "GFLOPs a replay of the chosen path may spend), e.g. plan.budget_gflops=5000")
    if objective == "score" and budget_gflops is not None:
        return ("plan.budget_gflops is used only by plan.objective=score_at_budget; set that "
                "objective or drop the budget")
    if objective == "score_at_budget" and beam > 1:
        return ("plan.objective=score_at_budget keeps every Pareto-optimal model of a node; "
                "leave plan.beam at 1")
    return None


class OptplanConfig(BaseModel):
    """Everything one run needs. Every key has a default; experiment files only override."""

    model_config = ConfigDict(extra="forbid")

    data: DataConfig = Field(default_factory=DataConfig, description="Videos, annotations, clips.")
    model: ModelConfig = Field(default_factory=ModelConfig, description="Backbone and heads.")
    train: TrainConfig = Field(default_factory=TrainConfig, description="Optimiser and loop.")
    knee: KneeConfig = Field(default_factory=KneeConfig, description="When a state is spent.")
    plan: PlanConfig = Field(default_factory=PlanConfig, description="States and moves.")
    out: Path = Field(Path("runs/default"), description="Run directory: store, logs, checkpoints.")
