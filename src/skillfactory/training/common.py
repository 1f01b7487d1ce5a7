"""What SFT and GRPO share: the run config, model/tokenizer loading, the batch over any number of processes,
TRL trainer arguments, resume, and saving the final model.

Why one module: open-r1's sft.py and grpo.py are mostly the same lines; here each stage module keeps only what
differs (its data and its trainer). Torch/transformers/trl are imported inside functions so that importing a
config class (for ``--help`` or a recipe check) stays instant.

Chat templates: SFT trains on (generation prompt, assistant text + end-of-turn token) pairs built by
``skillfactory.chat``, for every family alike; no template is patched and the saved model keeps its own.

Defaults worth knowing (checked against TRL 1.16):
- TRL turns on ``bf16`` and ``gradient_checkpointing`` by default; on CPU both make training 6x slower, so we
  set them from the device: fp32 and no checkpointing on CPU, bf16 *mixed* precision (fp32 master weights) on
  a bf16-capable GPU - pure bf16 weights would swallow the published 1e-6 learning-rate updates.
- ``use_cpu=True`` is the only CPU switch left (``no_cuda`` was removed).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from skillfactory.errors import SkillFactoryError

#: File names inside a training stage's output folder.
FINAL_DIR = "final"
CHECKPOINTS_DIR = "checkpoints"
TRAIN_LOG = "train_log.jsonl"
SUMMARY = "summary.json"

_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json")


class TrainingError(SkillFactoryError, ValueError):
    """A training input that cannot work (missing tokenizer, bad traces, unsupported chat template, ...)."""


class LoraSettings(BaseModel):
    """Optional LoRA adapters (PEFT). The final model is saved merged, so later stages load it like any model."""

    model_config = ConfigDict(extra="forbid")
    r: int = Field(16, gt=0)  # adapter rank
    alpha: int = Field(32, gt=0)  # scaling numerator (alpha / r)
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: list[str] | str = "all-linear"  # PEFT's shortcut for every linear layer except the head


class TrainRunConfig(BaseModel):
    """Fields common to the SFT and GRPO stages. Fields left ``None`` are filled from the stage's ``preset``."""

    model_config = ConfigDict(extra="forbid")

    model: str  # a model folder in Hugging Face format (weights + tokenizer), or a Hub id already cached
    out: str  # output folder: final/, checkpoints/, train_log.jsonl, summary.json, manifest.json
    preset: str = "published"
    seed: int = 0
    epochs: float | None = Field(None, gt=0)
    max_steps: int = -1  # > 0 overrides epochs (TRL semantics)
    learning_rate: float | None = Field(None, gt=0)
    lr_scheduler: str | None = None  # cosine | linear | constant | constant_with_warmup | ...
    warmup_ratio: float | None = Field(None, ge=0, lt=1)
    per_device_batch_size: int | None = Field(None, gt=0)
    #: examples per optimizer step over all processes (SFT: traces; GRPO: completions = prompts x generations).
    #: When set, accumulation is derived from it and the world size, so the batch is the same on 1 or 64 GPUs.
    global_batch_size: int | None = Field(None, gt=0)
    gradient_accumulation_steps: int | None = Field(None, gt=0)  # explicit; only when global_batch_size is unset
    chat_template_kwargs: dict[str, Any] = Field(default_factory=dict)  # e.g. {enable_thinking: false} (Qwen3)
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    logging_steps: int = Field(1, gt=0)  # every step: the train log is the stage's main diagnostic
    save_steps: int = Field(50, gt=0)  # checkpoint every N optimizer steps (resume point)
    save_total_limit: int | None = 2
    precision: Literal["auto", "fp32", "bf16"] = "auto"  # auto: bf16 mixed on a bf16 GPU, else fp32
    gradient_checkpointing: bool | None = None  # None: on for GPU, off for CPU
    lora: LoraSettings | None = None
    report_to: list[str] | str = "none"  # passed to TRL: "trackio", "wandb", "tensorboard", ...
    resume: bool = True  # continue from the last checkpoint in OUT/checkpoints/ when there is one
    trainer_overrides: dict[str, Any] = Field(default_factory=dict)  # extra TRL config fields, verbatim

    #: preset name -> field values used where the config leaves a field None. Set by each stage.
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {}

    @field_validator("model", "out")
    @classmethod
    def _not_empty(cls, v: str) -> str:
        if not str(v).strip():
            raise ValueError("must not be empty")
        return v

    @model_validator(mode="after")
    def _fill_from_preset(self) -> TrainRunConfig:
        presets = type(self).PRESETS
        if self.preset not in presets:
            raise ValueError(f"unknown preset {self.preset!r}; choose one of {', '.join(presets)}")
        explicit_accumulation = self.gradient_accumulation_steps is not None
        for key, value in presets[self.preset].items():
            if key == "global_batch_size" and explicit_accumulation:
                continue  # the user chose accumulation by hand: the preset's global batch does not override it
            if getattr(self, key) is None:
                setattr(self, key, value)
        return self

    def batch_plan(self, world_size: int) -> tuple[int, int, int]:
        """(per-device batch, accumulation steps, global batch) for ``world_size`` processes.

        With ``global_batch_size`` the accumulation is derived (the published GRPO step is 256 prompts x 16
        rollouts whatever the GPU count); a per-device batch larger than a process's share is lowered to it.
        """
        per_device = self.per_device_batch_size or 1
        if self.global_batch_size is None:
            accumulation = self.gradient_accumulation_steps or 1
            return per_device, accumulation, per_device * accumulation * world_size
        share, rest = divmod(self.global_batch_size, world_size)
        if rest or share == 0:
            raise TrainingError(f"global_batch_size {self.global_batch_size} cannot be split over {world_size} "
                                f"processes; make it a multiple of {world_size}")
        per_device = min(per_device, share)
        while share % per_device:
            per_device -= 1
        return per_device, share // per_device, self.global_batch_size


# ---- model and tokenizer -------------------------------------------------------------------------------------
def check_model_dir(model: str) -> None:
    """Fail with one line when a local model folder cannot be trained (missing, or without a tokenizer)."""
    path = Path(model)
    if not path.exists():
        if path.is_absolute() or model.startswith(".") or model.count("/") != 1:
            raise TrainingError(f"model folder {model} does not exist; pass a Hugging Face model folder with --model")
        return  # looks like a Hub id: let transformers resolve it from the local cache
    if not path.is_dir() or not (path / "config.json").exists():
        raise TrainingError(f"{model}: not a model folder (no config.json); pass a Hugging Face model folder")
    if not any((path / f).exists() for f in _TOKENIZER_FILES):
        raise TrainingError(
            f"{model}: no tokenizer in the model folder (expected tokenizer.json or tokenizer_config.json); "
            "save the tokenizer next to the weights (tokenizer.save_pretrained(folder))"
        )


def load_tokenizer(model: str):
    """The model's tokenizer via AutoTokenizer, with a pad token (TRL pads batches)."""
    from transformers import AutoTokenizer

    check_model_dir(model)
    tok = AutoTokenizer.from_pretrained(model)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    if not tok.chat_template:
        raise TrainingError(f"{model}: the tokenizer has no chat template; use an instruct model or add a template")
    return tok


def use_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def use_bf16(cfg: TrainRunConfig) -> bool:
    if cfg.precision == "fp32":
        return False
    import torch

    capable = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if cfg.precision == "bf16" and not capable:
        raise TrainingError("precision=bf16 needs a GPU with bf16 support (bf16 on CPU is 15-25x slower); use fp32")
    return capable


def load_model(model: str):
    """The causal LM in fp32: mixed precision, when on, keeps fp32 master weights (see module docstring).

    Call it only after the TRL config exists: building ``TrainingArguments`` with a DeepSpeed ZeRO-3 config is what
    makes ``from_pretrained`` initialise the weights already partitioned over the ranks (otherwise every rank
    holds the full fp32 model in memory first)."""
    import torch
    from transformers import AutoModelForCausalLM

    from skillfactory.console import no_weight_loading_bar

    check_model_dir(model)
    with no_weight_loading_bar():
        return AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32)


def peft_config(lora: LoraSettings | None):
    if lora is None:
        return None
    from peft import LoraConfig

    return LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                      target_modules=lora.target_modules, task_type="CAUSAL_LM")


# ---- trainer arguments, resume, final save -----------------------------------------------------------------------
def world_size() -> int:
    """Processes in this training run (``accelerate launch`` / torchrun set ``WORLD_SIZE``)."""
    import os

    return max(1, int(os.environ.get("WORLD_SIZE", "1")))


def trainer_kwargs(cfg: TrainRunConfig) -> dict[str, Any]:
    """Keyword arguments shared by ``SFTConfig`` and ``GRPOConfig`` (device, precision, schedule, saving)."""
    out = Path(cfg.out)
    cuda = use_cuda()
    processes = world_size()
    per_device, accumulation, _ = cfg.batch_plan(processes)
    kw: dict[str, Any] = dict(
        output_dir=str(out / CHECKPOINTS_DIR),
        seed=cfg.seed,
        data_seed=cfg.seed,
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type=cfg.lr_scheduler,
        warmup_steps=cfg.warmup_ratio,  # transformers 5: a float < 1 is a ratio (warmup_ratio was removed)
        per_device_train_batch_size=per_device,
        gradient_accumulation_steps=accumulation,
        weight_decay=cfg.weight_decay,
        max_grad_norm=cfg.max_grad_norm,
        logging_steps=cfg.logging_steps,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit,
        report_to=cfg.report_to,
        use_cpu=not cuda,
        bf16=use_bf16(cfg),
        fp16=False,
        dataloader_num_workers=0,
        disable_tqdm=True,  # no tqdm bar writing every step's logs dict: callbacks.show_progress draws ours
        ddp_backend=None if cuda or processes == 1 else "gloo",  # CPU processes talk over gloo
    )
    kw[checkpointing_argument()] = cuda if cfg.gradient_checkpointing is None else cfg.gradient_checkpointing
    return kw


def checkpointing_argument() -> str:
    """The ``TrainingArguments`` name of activation (gradient) checkpointing: transformers >= 5.24 renamed
    ``gradient_checkpointing`` to ``activation_checkpointing`` and warns on the old name; older ones lack the new."""
    from transformers import TrainingArguments

    fields = TrainingArguments.__dataclass_fields__
    return "activation_checkpointing" if "activation_checkpointing" in fields else "gradient_checkpointing"


def batch_record(trainer) -> dict[str, Any]:
    """What the manifest records of the batch actually used: world size, per-device batch, accumulation, global."""
    args = trainer.args
    n = trainer.accelerator.num_processes
    return {"world_size": n, "per_device_batch_size": args.per_device_train_batch_size,
            "gradient_accumulation_steps": args.gradient_accumulation_steps,
            "global_batch_size": args.per_device_train_batch_size * args.gradient_accumulation_steps * n}


def write_results(trainer, cfg: TrainRunConfig, stage: str, inputs: dict[str, str], summary: dict[str, Any],
                  counts: dict[str, Any]) -> dict[str, Any]:
    """Add the batch actually used to ``summary``; the main process writes summary.json and the manifest."""
    from skillfactory.artifacts import write_manifest
    from skillfactory.records import atomic_write_text

    batch = batch_record(trainer)
    summary.update(batch)
    if trainer.is_world_process_zero():
        out = Path(cfg.out)
        atomic_write_text(out / SUMMARY, json.dumps(summary, indent=2) + "\n")
        write_manifest(out, stage, config=cfg, inputs=inputs, seed=cfg.seed, extra=batch, counts=counts)
    return summary


def last_checkpoint(cfg: TrainRunConfig) -> str | None:
    """The newest ``checkpoint-N`` folder to resume from, or None (no checkpoint, or ``resume`` is off)."""
    ckpt = Path(cfg.out) / CHECKPOINTS_DIR
    if not cfg.resume or not ckpt.is_dir():
        return None
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(str(ckpt))


def save_final(trainer, tok, out: str | Path, base_model: str) -> Path:
    """Save weights + tokenizer to ``OUT/final`` via a temp folder and a rename (never a half-written model).

    ``trainer.save_model`` gathers sharded weights (ZeRO-3, FSDP) onto the main process. LoRA runs save their
    gathered adapter first, then the main process merges it into a fresh copy of ``base_model`` on the CPU: merging
    in place would touch weights that ZeRO-3 has partitioned. ``from_pretrained(OUT/final)`` always gives a plain
    model, and the tokenizer (with the model's own chat template) is saved beside it.
    """
    out = Path(out)
    final, tmp, adapter = out / FINAL_DIR, out / f".{FINAL_DIR}.tmp", out / ".adapter.tmp"
    main = trainer.is_world_process_zero()
    if main:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(adapter, ignore_errors=True)
    trainer.accelerator.wait_for_everyone()
    lora = hasattr(trainer.accelerator.unwrap_model(trainer.model), "peft_config")
    trainer.save_model(str(adapter if lora else tmp))
    if main:
        if lora:
            _merge_adapter(base_model, adapter, tmp)
            shutil.rmtree(adapter, ignore_errors=True)
        tok.save_pretrained(str(tmp))
        (tmp / "training_args.bin").unlink(missing_ok=True)
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
    trainer.accelerator.wait_for_everyone()
    return final


def _merge_adapter(base_model: str, adapter: Path, dest: Path) -> None:
    from peft import PeftModel

    merged = PeftModel.from_pretrained(load_model(base_model), str(adapter)).merge_and_unload()
    merged.save_pretrained(str(dest))


def finished_summary(cfg: TrainRunConfig, stage: str, inputs: dict[str, str]) -> dict[str, Any] | None:
    """The saved summary when OUT already holds a finished run of this exact config (re-runs skip), else None."""
    import json

    from skillfactory.artifacts import cache_key, read_manifest

    out = Path(cfg.out)
    manifest = read_manifest(out)
    key = cache_key({"stage": stage, "config": cfg.model_dump(mode="json"), "inputs": inputs})
    if manifest is None or manifest.get("cache_key") != key or not (out / FINAL_DIR / "config.json").exists():
        return None
    try:
        return json.loads((out / SUMMARY).read_text())
    except (OSError, ValueError):
        return None


def train(trainer, cfg: TrainRunConfig) -> Any:
    """Run ``trainer.train``, resuming from the last checkpoint when there is one; returns TRL's TrainOutput."""
    from skillfactory.training.callbacks import close_progress

    try:
        return trainer.train(resume_from_checkpoint=last_checkpoint(cfg))
    finally:
        close_progress(trainer)  # a crashed run still clears its bar (and gives the terminal its cursor back)


def final_loss_figures(log_path: Path) -> dict[str, float | None]:
    """First and last logged training loss (from the train log), for the summary."""
    import json

    losses = []
    if log_path.exists():
        for line in log_path.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if row.get("loss") is not None:
                losses.append(float(row["loss"]))
    return {"first_loss": losses[0] if losses else None, "last_loss": losses[-1] if losses else None}
