"""Export a task as verl GRPO data: train/test parquet, a reward module, and a ready launch script.

verl is the engine the published study ran GRPO with; it scales to many nodes with vLLM/SGLang rollouts. We
hand it (1) parquet rows in its RL format - ``data_source``, ``prompt`` (chat messages), ``ability``,
``reward_model: {style: rule, ground_truth}``, ``extra_info`` (the Question JSON the verifier needs) - (2) a
``reward.py`` whose ``compute_score`` calls our verifier, and (3) ``run_grpo.sh`` with the published settings.

KL: in verl, ``algorithm.kl_ctrl.kl_coef`` does nothing unless ``use_kl_in_reward`` is on; the published
coefficient 0.001 is applied as an actor loss term (``actor.use_kl_loss=True``, ``kl_loss_coef=0.001``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from skillfactory.prompting import VARIANTS
from skillfactory.records import atomic_write_text

#: What OUT/reward.py holds: a thin shim so that verl loads it by path while the logic stays tested here.
REWARD_MODULE = '''"""verl custom reward for skillfactory tasks (written by `skillfactory export verl`).

Use with:  reward.custom_reward_function.path=<this file> reward.custom_reward_function.name=compute_score
(batch reward manager of older verl: custom_reward_function.name=compute_score_batch reward_model.reward_manager=batch)
Needs skillfactory importable in verl's Python environment (pip install skillfactory, or the repo with -e).
"""

from skillfactory.training.export.verl_reward import compute_score, compute_score_batch

__all__ = ["compute_score", "compute_score_batch"]
'''

#: The published GRPO recipe (SPEC 2.5) as verl overrides. Micro-batch sizes and memory share are our choices.
PUBLISHED = {
    "algorithm.adv_estimator": "grpo",
    "algorithm.use_kl_in_reward": "False",
    "data.train_batch_size": 256,
    "data.max_prompt_length": 512,
    "data.max_response_length": 4096,
    "data.filter_overlong_prompts": "True",
    "actor_rollout_ref.actor.optim.lr": "1e-6",
    "actor_rollout_ref.actor.ppo_mini_batch_size": 64,
    "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu": 4,
    "actor_rollout_ref.actor.use_kl_loss": "True",
    "actor_rollout_ref.actor.kl_loss_coef": 0.001,
    "actor_rollout_ref.actor.kl_loss_type": "low_var_kl",
    "actor_rollout_ref.actor.entropy_coeff": 0,
    "actor_rollout_ref.model.use_remove_padding": "True",
    "actor_rollout_ref.model.enable_gradient_checkpointing": "True",
    "actor_rollout_ref.rollout.name": "vllm",
    "actor_rollout_ref.rollout.n": 16,
    "actor_rollout_ref.rollout.temperature": 1.0,
    "actor_rollout_ref.rollout.gpu_memory_utilization": 0.6,
    "actor_rollout_ref.rollout.tensor_model_parallel_size": 1,
    "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu": 8,
    "actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu": 8,
    "trainer.critic_warmup": 0,
    "trainer.logger": "['console']",
    "trainer.save_freq": 50,
    "trainer.test_freq": 25,
    "trainer.total_epochs": 1,
}


class VerlExportConfig(BaseModel):
    """``n`` training and ``n_test`` test questions of one task, for verl."""

    model_config = ConfigDict(extra="forbid")
    task: str
    params: dict[str, Any] = Field(default_factory=dict)
    n: int = Field(1000, gt=0)  # training questions
    n_test: int | None = Field(None, ge=0)  # None: n // 10 (at least 1)
    seed: int = 0
    variant: str = "original"
    out: str
    ability: str = "reasoning"  # verl groups metrics by data_source; ability is a free label
    model: str = "Qwen/Qwen2.5-1.5B-Instruct"  # default MODEL in run_grpo.sh (overridable by env)


def rows(task: Any, questions: list, variant: str, data_source: str, ability: str) -> list[dict[str, Any]]:
    """verl RL rows for questions (one per question)."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown prompt variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    return [{
        "data_source": data_source,
        "prompt": [{"role": "user", "content": task.prompt(q, variant)}],
        "ability": ability,
        "reward_model": {"style": "rule", "ground_truth": q.gold},
        "extra_info": {"question": q.model_dump_json(), "question_id": q.id, "index": i, "split": q.split},
    } for i, q in enumerate(questions)]


def launch_script(cfg: VerlExportConfig) -> str:
    """``run_grpo.sh``: ``python -m verl.trainer.main_ppo`` with the published settings and our data/reward."""
    lines = [
        "#!/usr/bin/env bash",
        "# GRPO with verl on the exported data, published SkillFactory settings (written by skillfactory export verl).",
        "# Needs: verl (>= 0.7 config layout) with vLLM, and skillfactory importable (the reward calls its verifiers).",
        "# Older verl: replace reward.custom_reward_function.* by custom_reward_function.* (top level).",
        "set -euo pipefail",
        'HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"',
        f'MODEL="${{MODEL:-{cfg.model}}}"',
        'N_GPUS="${N_GPUS:-8}"',
        'NNODES="${NNODES:-1}"',
        "python3 -m verl.trainer.main_ppo \\",
        '    data.train_files="$HERE/train.parquet" \\',
        '    data.val_files="$HERE/test.parquet" \\',
        '    actor_rollout_ref.model.path="$MODEL" \\',
        '    reward.custom_reward_function.path="$HERE/reward.py" \\',
        "    reward.custom_reward_function.name=compute_score \\",
    ]
    lines += [f"    {k}={v} \\" for k, v in PUBLISHED.items()]
    lines += [
        "    trainer.project_name=skillfactory \\",
        f"    trainer.experiment_name=grpo-{cfg.task} \\",
        '    trainer.n_gpus_per_node="$N_GPUS" \\',
        '    trainer.nnodes="$NNODES" \\',
        '    "$@"',
    ]
    return "\n".join(lines) + "\n"


def export_verl(cfg: VerlExportConfig) -> dict[str, Any]:
    """Write OUT/train.parquet, OUT/test.parquet, OUT/reward.py, OUT/run_grpo.sh, OUT/summary.json."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from skillfactory.artifacts import write_manifest
    from skillfactory.tasks import get_task

    task = get_task(cfg.task, **cfg.params)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    data_source = f"skillfactory/{task.name}"
    n_test = cfg.n_test if cfg.n_test is not None else max(1, cfg.n // 10)
    counts = {}
    for split, n in (("train", cfg.n), ("test", n_test)):
        table = pa.Table.from_pylist(rows(task, task.generate(n, seed=cfg.seed, split=split), cfg.variant,
                                          data_source, cfg.ability))
        tmp = out / f".{split}.parquet.tmp"
        pq.write_table(table, tmp)
        tmp.replace(out / f"{split}.parquet")
        counts[split] = n
    atomic_write_text(out / "reward.py", REWARD_MODULE)
    script = out / "run_grpo.sh"
    atomic_write_text(script, launch_script(cfg))
    script.chmod(0o755)
    summary = {"stage": "export_verl", "task": task.name, "params": cfg.params, "data_source": data_source,
               **counts, "files": ["train.parquet", "test.parquet", "reward.py", "run_grpo.sh"]}
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    write_manifest(out, "export_verl", config=cfg, counts=counts, seed=cfg.seed)
    return summary
