"""What SFT and GRPO share: the run config, model/tokenizer loading, the chat template for assistant-only loss,
TRL trainer arguments, resume, and saving the final model.

Why one module: open-r1's sft.py and grpo.py are mostly the same lines; here each stage module keeps only what
differs (its data and its trainer). Torch/transformers/trl are imported inside functions so that importing a
config class (for ``--help`` or a recipe check) stays instant.

Defaults worth knowing (checked against TRL 1.16):
- TRL turns on ``bf16`` and ``gradient_checkpointing`` by default; on CPU both make training 6x slower, so we
  set them from the device: fp32 and no checkpointing on CPU, bf16 *mixed* precision (fp32 master weights) on
  a bf16-capable GPU - pure bf16 weights would swallow the published 1e-6 learning-rate updates.
- ``use_cpu=True`` is the only CPU switch left (``no_cuda`` was removed).
"""

from __future__ import annotations

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
    gradient_accumulation_steps: int | None = Field(None, gt=0)
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
        for key, value in presets[self.preset].items():
            if getattr(self, key) is None:
                setattr(self, key, value)
        return self


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
    """The causal LM in fp32: mixed precision, when on, keeps fp32 master weights (see module docstring)."""
    import torch
    from transformers import AutoModelForCausalLM

    check_model_dir(model)
    return AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32)


def peft_config(lora: LoraSettings | None):
    if lora is None:
        return None
    from peft import LoraConfig

    return LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                      target_modules=lora.target_modules, task_type="CAUSAL_LM")


# ---- chat template for assistant-only loss -------------------------------------------------------------------
#: Plain ChatML (Qwen2.5-style without tools/system default): the assistant turn, end token included, is wrapped in
#: generation markers so TRL masks the loss to it and the model learns to stop.
CHATML_TRAINING_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}"
    "{{ '<|im_start|>assistant\n' }}{% generation %}{{ message['content'] }}{{ '<|im_end|>' }}{% endgeneration %}"
    "{{ '\n' }}"
    "{% else %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def _renders_like(tok, template: str, reference: str | None = None) -> bool:
    """Whether ``template`` renders a user/assistant chat exactly as the tokenizer's own template does."""
    msgs = [{"role": "user", "content": "u"}, {"role": "assistant", "content": "a"}]
    try:
        ours = tok.apply_chat_template(msgs, tokenize=False, chat_template=template)
        theirs = tok.apply_chat_template(msgs, tokenize=False, chat_template=reference)
    except Exception:  # a template that cannot render plain chats is not a match  # noqa: BLE001
        return False
    return ours == theirs


def training_chat_template(tok) -> str:
    """A chat template with ``{% generation %}`` markers around the assistant turn (end token inside).

    Order: the tokenizer's own template when it already has markers; TRL's patched template for known families
    (Qwen2.5, Qwen3, Llama 3, Gemma, Phi, ...); our ChatML template when the tokenizer's template renders plain
    chats exactly like ChatML. Anything else fails with one line: masking the loss needs the markers.
    """
    from trl.chat_template_utils import get_training_chat_template, has_generation_markers

    template = tok.chat_template
    if isinstance(template, dict):
        template = template.get("default", "")
    if has_generation_markers(template):
        chosen = template
    else:
        try:
            chosen = get_training_chat_template(tok) or template
        except ValueError:
            chosen = CHATML_TRAINING_TEMPLATE if _renders_like(tok, CHATML_TRAINING_TEMPLATE) else None
    if chosen is None:
        raise TrainingError(
            "the model's chat template has no {% generation %} markers and is not a known family (ChatML/Qwen, "
            "Llama 3, Gemma, Phi, ...); add the markers around the assistant turn, end-of-turn token included"
        )
    if not _stop_token_in_mask(tok, chosen):
        raise TrainingError(
            "the chat template's {% generation %} block does not include the end-of-turn token, so the model would "
            "never learn to stop; move the end token inside {% generation %}...{% endgeneration %}"
        )
    return chosen


def _stop_token_in_mask(tok, template: str) -> bool:
    msgs = [{"role": "user", "content": "u"}, {"role": "assistant", "content": "a"}]
    out = tok.apply_chat_template(msgs, tokenize=True, return_dict=True, return_assistant_tokens_mask=True,
                                  chat_template=template)
    mask, ids = out["assistant_masks"], out["input_ids"]
    masked = [i for i, m in enumerate(mask) if m]
    if not masked:
        return False
    last = ids[masked[-1]]
    stops = {tok.eos_token_id, tok.convert_tokens_to_ids("<|im_end|>")} - {None, tok.unk_token_id}
    return last in stops


# ---- trainer arguments, resume, final save -----------------------------------------------------------------------
def trainer_kwargs(cfg: TrainRunConfig) -> dict[str, Any]:
    """Keyword arguments shared by ``SFTConfig`` and ``GRPOConfig`` (device, precision, schedule, saving)."""
    out = Path(cfg.out)
    cuda = use_cuda()
    kw: dict[str, Any] = dict(
        output_dir=str(out / CHECKPOINTS_DIR),
        seed=cfg.seed,
        data_seed=cfg.seed,
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type=cfg.lr_scheduler,
        warmup_steps=cfg.warmup_ratio,  # transformers 5: a float < 1 is a ratio (warmup_ratio was removed)
        per_device_train_batch_size=cfg.per_device_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
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
        gradient_checkpointing=cuda if cfg.gradient_checkpointing is None else cfg.gradient_checkpointing,
        dataloader_num_workers=0,
        disable_tqdm=False,
    )
    return kw


def last_checkpoint(cfg: TrainRunConfig) -> str | None:
    """The newest ``checkpoint-N`` folder to resume from, or None (no checkpoint, or ``resume`` is off)."""
    ckpt = Path(cfg.out) / CHECKPOINTS_DIR
    if not cfg.resume or not ckpt.is_dir():
        return None
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(str(ckpt))


def save_final(trainer, tok, out: str | Path, chat_template: str | None = None) -> Path:
    """Save weights + tokenizer to ``OUT/final`` via a temp folder and a rename (never a half-written model).

    ``trainer.save_model`` gathers sharded weights (ZeRO-3, FSDP) onto the main process; LoRA adapters are merged
    first, so ``from_pretrained(OUT/final)`` always gives a plain model. ``chat_template`` restores the model's
    own template (training may have used one with generation markers).
    """
    out = Path(out)
    final, tmp = out / FINAL_DIR, out / f".{FINAL_DIR}.tmp"
    main = trainer.is_world_process_zero()
    if main:
        shutil.rmtree(tmp, ignore_errors=True)
    trainer.accelerator.wait_for_everyone()
    model = trainer.accelerator.unwrap_model(trainer.model)
    if hasattr(model, "merge_and_unload"):  # PEFT
        model = model.merge_and_unload()
        if main:
            model.save_pretrained(str(tmp))
    else:
        trainer.save_model(str(tmp))
    if main:
        if chat_template is not None:
            tok.chat_template = chat_template
        tok.save_pretrained(str(tmp))
        (tmp / "training_args.bin").unlink(missing_ok=True)
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
    trainer.accelerator.wait_for_everyone()
    return final


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
    return trainer.train(resume_from_checkpoint=last_checkpoint(cfg))


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
