"""Export a task as verl GRPO data: train/test parquet, a reward module, and a ready launch script.

verl is the engine the published study ran GRPO with; it scales to many nodes with vLLM/SGLang rollouts. We
hand it (1) parquet rows in its RL format - ``data_source``, ``prompt`` (chat messages), ``ability``,
``reward_model: {style: rule, ground_truth}``, ``extra_info`` (the Question JSON the verifier needs) - (2) a
``reward.py`` whose ``compute_score`` calls our verifier, and (3) ``run_grpo.sh`` with the published settings.

KL: in verl, ``algorithm.kl_ctrl.kl_coef`` does nothing unless ``use_kl_in_reward`` is on; the published
coefficient 0.001 is applied as an actor loss term (``actor.use_kl_loss=True``, ``kl_loss_coef=0.001``).

Steps: verl's train dataloader drops the last partial batch, so a run is ``n // train_batch_size x epochs``
steps; with fewer rows than one batch it has 0 steps and ``fit()`` divides by zero - refused here at export.
The script's overrides were checked to compose and validate on verl 0.7.1 to 0.9.1 (0.7.0 and older reject
``reward.custom_reward_function.*``); ``run_grpo.sh`` checks the installed version before it starts.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from skillfactory.locking import locks_folder
from skillfactory.prompting import VARIANTS
from skillfactory.records import atomic_write_text

#: verl versions the launch script was checked against (inclusive): older fail at start, newer warn.
VERL_CHECKED = ("0.7.1", "0.9.1")

#: What OUT/reward.py holds: a thin shim so that verl loads it by path while the logic stays tested here.
REWARD_MODULE = '''"""verl custom reward for skillfactory tasks (written by `skillfactory export verl`).

Use with:  reward.custom_reward_function.path=<this file> reward.custom_reward_function.name=compute_score
(run_grpo.sh does; per-response scoring with verl's default reward manager, checked on verl 0.7.1-0.9.1).
compute_score_batch is the batch form, for verl versions that have a `batch` reward manager (0.9.x does not).
Needs skillfactory importable in verl's Python environment (pip install skillfactory, or the repo with -e).
"""

from skillfactory.training.export.verl_reward import compute_score, compute_score_batch

__all__ = ["compute_score", "compute_score_batch"]
'''

PUBLISHED_BATCH = 256  # prompts per GRPO step (x 16 rollouts)
MINI_BATCH = 64  # prompts per actor update; verl requires it <= train_batch_size

#: The published GRPO recipe as verl overrides. Micro-batch sizes and memory share are our choices;
#: ``overrides`` replaces the batch, mini-batch and epochs by the export's own.
PUBLISHED = {
    "algorithm.adv_estimator": "grpo",
    "algorithm.use_kl_in_reward": "False",
    "data.train_batch_size": PUBLISHED_BATCH,
    "data.max_prompt_length": 512,
    "data.max_response_length": 4096,
    "data.filter_overlong_prompts": "True",
    "actor_rollout_ref.actor.optim.lr": "1e-6",
    "actor_rollout_ref.actor.ppo_mini_batch_size": MINI_BATCH,
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
    "trainer.logger": "[console]",  # Hydra list of one string; one quoted shell word in the script
    "trainer.save_freq": 50,
    "trainer.test_freq": 25,
    "trainer.total_epochs": 1,
}


class VerlExportConfig(BaseModel):
    """``n`` training and ``n_test`` test questions of one task, for verl."""

    model_config = ConfigDict(extra="forbid")
    task: str
    params: dict[str, Any] = Field(default_factory=dict)
    n: int = Field(10240, gt=0)  # training questions: 40 steps of 256 per epoch (published scale: ~10k questions)
    n_test: int | None = Field(None, ge=0)  # None: n // 10 (at least 1)
    train_batch_size: int = Field(PUBLISHED_BATCH, gt=0)  # prompts per step (data.train_batch_size)
    epochs: int = Field(1, gt=0)  # trainer.total_epochs
    seed: int = 0
    variant: str = "original"
    out: str
    ability: str = "reasoning"  # verl groups metrics by data_source; ability is a free label
    model: str = "Qwen/Qwen2.5-1.5B-Instruct"  # default MODEL in run_grpo.sh (overridable by env)

    @model_validator(mode="after")
    def _check(self) -> VerlExportConfig:
        if self.n < self.train_batch_size:
            raise ValueError(
                f"-n {self.n} training questions is fewer than one verl batch (--train-batch-size "
                f"{self.train_batch_size}): verl would run 0 steps and fail in fit(); pass -n >= "
                f"{self.train_batch_size} or --train-batch-size <= {self.n}"
            )
        return self

    @property
    def steps(self) -> int:
        """GRPO steps the export implies: verl drops the last partial batch of each epoch."""
        return self.n // self.train_batch_size * self.epochs


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


def overrides(cfg: VerlExportConfig) -> dict[str, Any]:
    """Every fixed Hydra override of run_grpo.sh (the paths, model and GPU counts are added by the script)."""
    return {
        **PUBLISHED,  # keys below that PUBLISHED has keep their place, with this export's values
        "data.train_batch_size": cfg.train_batch_size,
        "actor_rollout_ref.actor.ppo_mini_batch_size": min(MINI_BATCH, cfg.train_batch_size),
        "trainer.total_epochs": cfg.epochs,
        "reward.custom_reward_function.name": "compute_score",
        "trainer.project_name": "skillfactory",
        "trainer.experiment_name": f"grpo-{cfg.task}",
    }


#: Run before verl: a version outside the checked range, or a missing module, fails in one line instead of deep
#: in Hydra or Ray. Set SKILLFACTORY_SKIP_VERL_CHECK=1 to skip (e.g. a patched verl fork).
_PREFLIGHT = '''\
if [ -z "${{SKILLFACTORY_SKIP_VERL_CHECK:-}}" ]; then
"$PYTHON" - <<'PY'
import importlib.metadata as md
import importlib.util
import re
import sys

LO, HI = "{lo}", "{hi}"
def key(v):
    m = re.match(r"(\\d+)\\.(\\d+)\\.(\\d+)", v)
    return tuple(int(x) for x in m.groups()) if m else (0, 0, 0)
try:
    v = md.version("verl")
except md.PackageNotFoundError:
    sys.exit(f"run_grpo.sh: verl is not installed for {{sys.executable}}; pip install 'verl[vllm]=={hi}' "
             f"(this script was checked on verl {{LO}} to {{HI}})")
if key(v) < key(LO):
    sys.exit(f"run_grpo.sh: verl {{v}} is too old: it rejects reward.custom_reward_function.*; "
             f"pip install 'verl[vllm]=={hi}' (checked on verl {{LO}} to {{HI}})")
if key(v) > key(HI):
    print(f"run_grpo.sh: warning: verl {{v}} is newer than the versions this script was checked on "
          f"({{LO}} to {{HI}}); if an override is rejected, pin verl=={hi}", file=sys.stderr)
for mod, hint in (("vllm", "the rollout engine: pip install 'verl[vllm]=={hi}'"),
                  ("skillfactory", "reward.py calls its verifiers: pip install skillfactory (or the repo with -e)")):
    if importlib.util.find_spec(mod) is None:
        sys.exit(f"run_grpo.sh: {{mod}} is not importable for {{sys.executable}}; {{hint}}")
if importlib.util.find_spec("transfer_queue") is None:
    print("run_grpo.sh: warning: transfer_queue is not importable; verl's default trainer imports it (it comes "
          "with verl[vllm], not plain verl)", file=sys.stderr)
PY
fi
'''


def launch_script(cfg: VerlExportConfig) -> str:
    """``run_grpo.sh``: ``python -m verl.trainer.main_ppo`` with the published settings and our data/reward.

    Every override is one shell word quoted with ``shlex.quote`` (``trainer.logger=['console']`` unquoted is a
    glob); the ones that read a shell variable are double-quoted instead.
    """
    lo, hi = VERL_CHECKED
    lines = [
        "#!/usr/bin/env bash",
        "# GRPO with verl on the exported data, published SkillFactory settings (written by skillfactory export verl).",
        f"# Checked on verl {lo} to {hi}: every override below composes and validates there; verl <= 0.7.0 rejects",
        "# reward.custom_reward_function.* and is refused by the check below. Install verl with its vllm extra:",
        f"#   pip install 'verl[vllm]=={hi}'   (plain verl lacks transfer_queue, which its default trainer imports)",
        "# skillfactory must be importable in the same Python (reward.py calls its verifiers).",
        f"# {cfg.steps} GRPO steps: {cfg.n} rows // data.train_batch_size {cfg.train_batch_size} x "
        f"trainer.total_epochs {cfg.epochs}",
        "# Env: MODEL, N_GPUS (per node), NNODES, PYTHON; extra Hydra overrides go after the script name.",
        "set -euo pipefail",
        'HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"',
        f"DEFAULT_MODEL={shlex.quote(cfg.model)}",
        'MODEL="${MODEL:-$DEFAULT_MODEL}"',
        'N_GPUS="${N_GPUS:-8}"',
        'NNODES="${NNODES:-1}"',
        'PYTHON="${PYTHON:-python3}"',
        _PREFLIGHT.format(lo=lo, hi=hi).rstrip("\n"),
        '"$PYTHON" -m verl.trainer.main_ppo \\',
        '    "data.train_files=$HERE/train.parquet" \\',
        '    "data.val_files=$HERE/test.parquet" \\',
        '    "actor_rollout_ref.model.path=$MODEL" \\',
        '    "reward.custom_reward_function.path=$HERE/reward.py" \\',
    ]
    lines += [f"    {shlex.quote(f'{k}={v}')} \\" for k, v in overrides(cfg).items()]
    lines += [
        '    "trainer.n_gpus_per_node=$N_GPUS" \\',
        '    "trainer.nnodes=$NNODES" \\',
        '    "$@"',
    ]
    return "\n".join(lines) + "\n"


@locks_folder("export verl")
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
               **counts, "train_batch_size": cfg.train_batch_size, "epochs": cfg.epochs, "steps": cfg.steps,
               "verl_checked": f"{VERL_CHECKED[0]}-{VERL_CHECKED[1]}",
               "files": ["train.parquet", "test.parquet", "reward.py", "run_grpo.sh"]}
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    write_manifest(out, "export_verl", config=cfg, counts=counts, seed=cfg.seed)
    return summary
