"""What decides a sweep's results (`EvalSettings`) and how it runs (`RunOptions`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

SWEEP_FORMAT = 2  # 2: points stored as grid.GridPoint (1: PointSpec, migrated on read)
DEFAULT_TASKS = ("gsm8k_passk",)
DEFAULT_SEED = 1234
DEFAULT_MODEL = "hf-passk"
# lm_eval models --in-memory can run: those that accept a transformers model object as
# pretrained=, and vllm-passk, whose running engine takes new weights in place.
IN_MEMORY_MODELS = ("hf", "hf-passk", "vllm-passk")
VLLM_MODELS = ("vllm", "vllm-passk")
# Models that take their sampling seed as a model argument.
SEEDED_MODELS = ("hf-passk",)


class EvalSettings(BaseModel):
    """Everything that decides a point's results. Stored in sweep.json; a rerun must agree."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tasks: list[str] = Field(default_factory=lambda: list(DEFAULT_TASKS))
    n: int | None = None  # samples per problem; None: the task's default
    k: str | None = None  # "1,2,4,8"; None: the task's default
    gen_kwargs: dict[str, Any] = Field(default_factory=dict)
    model: str = DEFAULT_MODEL
    model_args: dict[str, Any] = Field(default_factory=dict)
    limit: int | float | None = None
    seed: int = DEFAULT_SEED
    num_fewshot: int | None = None
    apply_chat_template: bool | str = False
    system_instruction: str | None = None
    include_paths: list[str] = Field(default_factory=list)
    # Local problems (the PASSK_DATA_DIR layout), handed to the tasks as metadata.
    data_dir: str | None = None

    @model_validator(mode="after")
    def _check(self) -> EvalSettings:
        if not self.tasks:
            raise ValueError("no tasks given: name at least one, e.g. --tasks gsm8k_passk")
        if self.n is not None and self.n < 1:
            raise ValueError(f"--n must be at least 1, got {self.n}")
        if self.k is not None and self.n is not None:
            from passk_plugin.metrics import parse_ks

            parse_ks(self.k, self.n)
        if "pretrained" in self.model_args:
            raise ValueError(
                "--model-args must not set pretrained=: the sweep fills it with each "
                "point's merged checkpoint"
            )
        return self


class RunOptions(BaseModel):
    """How a sweep runs; none of these change its results, so they may differ on rerun."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    batch_size: int | str | None = None
    device: str | None = None  # None: CUDA when torch sees it, else CPU
    keep_merged: bool = False
    confirm_run_unsafe_code: bool = False
    in_memory: bool = False


class SweepContext(BaseModel):
    """What every point of a run shares: where it is stored and how it is evaluated."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    run_dir: str
    settings: EvalSettings
    options: RunOptions = Field(default_factory=RunOptions)


class PointResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    status: Literal["done", "skipped"]
    merge_s: float = 0.0
    eval_s: float = 0.0
    metrics: dict[str, dict[str, float]] = Field(default_factory=dict)
