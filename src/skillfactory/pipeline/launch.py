"""Where a stage runs: in the pipeline's own process, in a child process, or as N training processes.

Why: on GPUs one process cannot run the whole pipeline. vLLM's in-process engine and GRPO's colocated engine do
not reliably give their GPU memory back, nor does PyTorch's cache, so the second GPU stage of a run would fail for
memory; and TRL's trainers refuse a process that sees several GPUs, so multi-GPU training means ``accelerate
launch``. Here each GPU-heavy stage (sample, reflect, sft, grpo, eval) runs in a child process that exits when the
stage ends, and training stages run as ``launcher.num_processes`` processes (default: the visible GPUs). The
generating stages run once - never once per rank - and batch their work through one engine.

On a CPU with one process the stages run in-process (``isolate: auto``): no GPU memory to give back, and a child
would pay the ~7 s import of TRL again for every stage. ``isolate: always`` forces children anywhere (tests use it).
The child gets the stage's resolved config as JSON and calls the same stage function as the CLI and in-process run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from skillfactory.errors import SkillFactoryError
from skillfactory.generation.runner import ExecutorConfig
from skillfactory.records import atomic_write_text

#: stage kind -> (module, config class, stage function). The child imports only the one it runs.
STAGE_FUNCTIONS: dict[str, tuple[str, str, str]] = {
    "sample": ("skillfactory.sampling", "SampleConfig", "sample"),
    "reflect": ("skillfactory.reflection", "ReflectConfig", "reflect"),
    "sft": ("skillfactory.training.sft", "SFTRunConfig", "run_sft"),
    "grpo": ("skillfactory.training.grpo", "GRPORunConfig", "run_grpo"),
    "eval": ("skillfactory.evaluation.evaluate", "EvalConfig", "evaluate"),
}
TRAINING = ("sft", "grpo")
CONFIG_FILE = ".launch-config.json"


class LauncherSpec(BaseModel):
    """The recipe's ``launcher`` section: how training stages are launched and whether stages get a child."""

    model_config = ConfigDict(extra="forbid")
    num_processes: int | None = Field(None, gt=0)  # training processes; None: the visible GPUs (1 without GPUs)
    config_file: str | None = None  # an accelerate config (configs/accelerate/zero2.yaml, zero3.yaml, fsdp.yaml)
    isolate: Literal["auto", "always", "never"] = "auto"  # child process per stage; auto: on GPUs, or N > 1
    main_process_port: int | None = Field(None, gt=0, lt=65536)  # rendezvous port of the training processes
    # where sample, reflect and eval run their backend: local, or {name: ray, replicas: N, address: auto} (see
    # generation.runner.ExecutorConfig); like the rest of the launcher it is not part of the cache key
    executor: ExecutorConfig = Field(default_factory=ExecutorConfig)


def visible_gpus() -> int:
    """CUDA devices this process may use (without initialising CUDA in the pipeline's process)."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return len([d for d in env.split(",") if d.strip() and d.strip() != "-1"])
    try:
        import torch

        return torch.cuda.device_count()
    except Exception:  # no torch build with CUDA: no GPUs  # noqa: BLE001
        return 0


def num_processes(spec: LauncherSpec) -> int:
    return spec.num_processes or max(1, visible_gpus())


def runs_in_child(spec: LauncherSpec, kind: str) -> bool:
    """Whether a stage of this kind leaves the pipeline's process (see the module docstring)."""
    if spec.isolate != "auto":
        return spec.isolate == "always"
    return visible_gpus() > 0 or (kind in TRAINING and (num_processes(spec) > 1 or spec.config_file is not None))


def child_command(spec: LauncherSpec, kind: str, config_path: Path) -> list[str]:
    """The command line of a stage's child: ``python -m skillfactory.pipeline.child`` or ``accelerate launch``."""
    child = ["-m", "skillfactory.pipeline.child", kind, str(config_path)]
    n = num_processes(spec) if kind in TRAINING else 1
    if kind not in TRAINING or (n == 1 and spec.config_file is None):
        return [sys.executable, *child]
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(n)]
    if spec.config_file is not None:
        cmd += ["--config_file", str(Path(spec.config_file).resolve())]
    else:  # DDP; on CPUs the same launcher gives gloo processes (accelerate's MULTI_CPU)
        cmd += ["--multi_gpu", "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    if spec.main_process_port is not None:
        cmd += ["--main_process_port", str(spec.main_process_port)]
    return [*cmd, *child]


def run_stage(kind: str, config: BaseModel, out: Path, spec: LauncherSpec) -> Any:
    """Run one stage function with ``config``: in this process, or in a child (the child's result is re-read by
    the caller from the stage folder, as every stage writes its outputs there)."""
    module, _, function = STAGE_FUNCTIONS[kind]
    if not runs_in_child(spec, kind):
        import importlib

        return getattr(importlib.import_module(module), function)(config)
    out.mkdir(parents=True, exist_ok=True)
    path = out / CONFIG_FILE
    atomic_write_text(path, json.dumps(config.model_dump(mode="json"), indent=2) + "\n")
    cmd = child_command(spec, kind, path)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if not visible_gpus():  # CPU processes share the cores instead of each taking all of them
        n = num_processes(spec) if kind in TRAINING else 1
        env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // n)))
    rc = subprocess.run(cmd, env=env, check=False).returncode
    if rc != 0:
        raise SkillFactoryError(f"stage {kind} ({out}) failed in its child process with exit status {rc}; its own "
                                f"error is printed above; to repeat it alone: {' '.join(cmd)}")
    return None
