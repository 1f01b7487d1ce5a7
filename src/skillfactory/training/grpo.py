"""GRPO stage: reinforce a model on a task's training questions with TRL's GRPOTrainer and a binary verifier reward.

Differences from TRL's defaults, each deliberate:
- ``beta`` (KL coefficient) is 0.001 as published; TRL's default is 0.0 (no KL term and no reference model).
- 16 rollouts per prompt as published (TRL: 8). ``per_device_batch_size`` counts *completions*, so the batch
  (x accumulation) must be divisible by ``num_generations``: checked here with a one-line error.
- Generation: vLLM in colocate mode when vLLM is importable and a GPU is present (``use_vllm: auto``), else
  Hugging Face ``generate`` (CPU, or GPUs without vLLM).
- Every logged step goes to ``OUT/train_log.jsonl`` with reward mean, completion length, clipped ratio and the
  mean number of attempts/reflections/verdicts per completion (see ``rewards.VerifierReward``).

The dataset: ``task.generate(n_questions, seed, split="train")``; each row's prompt is the chat
``[user: task.prompt(q, variant)]`` and its ``question`` column carries the Question JSON for the verifier.
"""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from skillfactory.locking import locks_folder
from skillfactory.prompting import VARIANTS
from skillfactory.training.common import (
    TRAIN_LOG, TrainingError, TrainRunConfig, batch_record, final_loss_figures, finished_summary,
    load_model, load_tokenizer, peft_config, save_final, train, trainer_kwargs, use_cuda, write_results,
)
from skillfactory.training.rewards import QUESTION_COLUMN, VerifierReward


class GRPORunConfig(TrainRunConfig):
    """GRPO on a registered task (or a dotted path to a Task class) with the verifier as reward."""

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        # published recipe: 256 prompts x 16 rollouts = 4096 completions per optimizer step on any
        # number of GPUs (16 per device; accumulation = 4096 / (16 x GPUs)). Raise per_device_batch_size on big GPUs.
        "published": dict(learning_rate=1e-6, lr_scheduler="constant", warmup_ratio=0.0, epochs=1,
                          per_device_batch_size=16, global_batch_size=256 * 16, num_generations=16,
                          max_completion_length=4096),
        # toy model on CPU: 8 prompts x 4 rollouts per step, short completions
        "tiny": dict(learning_rate=5e-4, lr_scheduler="constant", warmup_ratio=0.0, epochs=1,
                     per_device_batch_size=32, global_batch_size=8 * 4, num_generations=4,
                     max_completion_length=128),
    }

    task: str
    params: dict[str, Any] = Field(default_factory=dict)  # task knobs, e.g. {"num_args": 3}
    n_questions: int = Field(1000, gt=0)  # training questions drawn from the task's train split
    variant: str = "original"  # prompt variant of the user turn (see prompting.VARIANTS)
    num_generations: int | None = Field(None, ge=2)  # rollouts per prompt (group size)
    max_completion_length: int | None = Field(None, gt=0)  # tokens; longer completions are cut (clipped_ratio)
    temperature: float = Field(1.0, gt=0)
    top_p: float = Field(1.0, gt=0, le=1)
    beta: float = Field(0.001, ge=0)  # KL coefficient; published 0.001 (TRL's default is 0 = no KL)
    use_vllm: bool | Literal["auto"] = "auto"  # auto: vLLM colocate when importable and a GPU is present
    vllm_gpu_memory_utilization: float = Field(0.3, gt=0, le=1)  # colocate shares the GPU with training
    mask_truncated_completions: bool = False  # True: cut completions do not contribute to the loss

    @model_validator(mode="after")
    def _check(self) -> GRPORunConfig:
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown prompt variant {self.variant!r}; choose one of {', '.join(VARIANTS)}")
        if self.global_batch_size is not None:
            batch, what = self.global_batch_size, "global_batch_size"
        else:
            batch = self.per_device_batch_size * (self.gradient_accumulation_steps or 1)
            what = "per_device_batch_size x gradient_accumulation_steps"
        if batch % self.num_generations:
            raise ValueError(
                f"{what} = {batch} completions is not divisible by num_generations = {self.num_generations}; "
                "make the batch a multiple of the group size (prompts per step x rollouts per prompt)"
            )
        return self

    @property
    def prompts_per_step(self) -> int | None:
        """Distinct prompts per optimizer step (the published recipe: 256)."""
        return self.global_batch_size // self.num_generations if self.global_batch_size else None


def vllm_enabled(cfg: GRPORunConfig) -> bool:
    """Whether to generate with vLLM: forced by config, or auto-detected (importable and a GPU present)."""
    available = importlib.util.find_spec("vllm") is not None and use_cuda()
    if cfg.use_vllm is True and not available:
        raise TrainingError("use_vllm=true needs vLLM installed and a GPU; set use_vllm=auto to fall back to HF")
    return available if cfg.use_vllm == "auto" else bool(cfg.use_vllm)


def build_dataset(cfg: GRPORunConfig):
    """The GRPO training rows (chat prompt + the question JSON the verifier reads), and the task."""
    from datasets import Dataset

    from skillfactory.tasks import get_task

    task = get_task(cfg.task, **cfg.params)
    questions = task.generate(cfg.n_questions, seed=cfg.seed, split="train")
    return Dataset.from_dict({
        "prompt": [[{"role": "user", "content": task.prompt(q, cfg.variant)}] for q in questions],
        QUESTION_COLUMN: [q.model_dump_json() for q in questions],
        "question_id": [q.id for q in questions],
    }), task


@locks_folder("grpo", rank_zero_only=True)  # the other ranks run under rank 0's lock
def run_grpo(cfg: GRPORunConfig) -> dict[str, Any]:
    """Train, save ``OUT/final`` (model + tokenizer), the train log, summary.json and the manifest."""
    out = Path(cfg.out)
    inputs = {"model": cfg.model, "task": cfg.task}
    done = finished_summary(cfg, "grpo", inputs)
    if done is not None:
        return done
    dataset, task = build_dataset(cfg)  # first: an unknown task fails before anything heavy is imported
    tok = load_tokenizer(cfg.model)

    from trl import GRPOConfig, GRPOTrainer

    from skillfactory.training.callbacks import TrainLogCallback, show_progress

    tok.padding_side = "left"  # generation pads prompts on the left
    vllm = vllm_enabled(cfg)
    args = GRPOConfig(
        **trainer_kwargs(cfg),
        num_generations=cfg.num_generations,
        max_completion_length=cfg.max_completion_length,
        temperature=cfg.temperature,
        top_p=cfg.top_p,
        beta=cfg.beta,
        mask_truncated_completions=cfg.mask_truncated_completions,
        use_vllm=vllm,
        chat_template_kwargs=cfg.chat_template_kwargs or None,  # the same template arguments as sampling and eval
        **(dict(vllm_mode="colocate", vllm_gpu_memory_utilization=cfg.vllm_gpu_memory_utilization) if vllm else {}),
        **cfg.trainer_overrides,
    )
    model = load_model(cfg.model)  # after the config: ZeRO-3 then initialises the weights partitioned
    out.mkdir(parents=True, exist_ok=True)
    trainer = GRPOTrainer(model=model, reward_funcs=[VerifierReward([task])], args=args, train_dataset=dataset,
                          processing_class=tok, peft_config=peft_config(cfg.lora),
                          callbacks=[TrainLogCallback(out / TRAIN_LOG, "grpo")])
    show_progress(trainer, "grpo", metric="reward")  # one bar on the console; every step in TRAIN_LOG
    t0 = time.time()
    result = train(trainer, cfg)
    final = save_final(trainer, tok, out, base_model=cfg.model)
    rewards = _reward_curve(out / TRAIN_LOG)
    summary = {
        "stage": "grpo",
        "final_model": str(final),
        "task": cfg.task,
        "params": cfg.params,
        "questions": len(dataset),
        "steps": trainer.state.global_step,
        "train_loss": result.training_loss,
        "generation": "vllm-colocate" if vllm else "hf",
        "first_reward": rewards[0] if rewards else None,
        "last_reward": rewards[-1] if rewards else None,
        "mean_reward": sum(rewards) / len(rewards) if rewards else None,
        **final_loss_figures(out / TRAIN_LOG),
        "seconds": round(time.time() - t0, 1),
    }
    summary["prompts_per_step"] = batch_record(trainer)["global_batch_size"] // cfg.num_generations
    return write_results(trainer, cfg, "grpo", inputs, summary, {"questions": len(dataset), "steps": summary["steps"]})


def _reward_curve(log_path: Path) -> list[float]:
    if not log_path.exists():
        return []
    rows = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    return [r["reward_mean"] for r in rows if r.get("reward_mean") is not None]
