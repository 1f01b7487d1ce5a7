"""accelerate configs for running our TRL stages on several GPUs: DDP, DeepSpeed ZeRO-2, ZeRO-3, FSDP.

Which to pick: DDP when the model, its gradients and Adam state fit on one GPU (<= ~1.5B in bf16 on 80 GB);
ZeRO-2 shards optimizer state and gradients (the usual choice for 1.5B-7B); ZeRO-3 and FSDP also shard the
weights (7B+ full fine-tunes). The same files live in ``configs/accelerate/`` of the repository (a test keeps
them equal to what this module writes), so an installed package can write them anywhere.

    accelerate launch --config_file configs/accelerate/zero2.yaml $(which skillfactory) sft --model M --traces T --out O
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from skillfactory.locking import locks_folder
from skillfactory.records import atomic_write_text

_COMMON: dict[str, Any] = {
    "compute_environment": "LOCAL_MACHINE",
    "debug": False,
    "downcast_bf16": "no",
    "machine_rank": 0,
    "main_training_function": "main",
    "mixed_precision": "bf16",
    "num_machines": 1,
    "num_processes": 8,  # GPUs per machine: override with --num_processes
    "rdzv_backend": "static",
    "same_network": True,
    "tpu_env": [],
    "tpu_use_cluster": False,
    "tpu_use_sudo": False,
    "use_cpu": False,
}


def _deepspeed(stage: int) -> dict[str, Any]:
    ds: dict[str, Any] = {"deepspeed_multinode_launcher": "standard", "offload_optimizer_device": "none",
                          "offload_param_device": "none", "zero_stage": stage}
    if stage == 3:
        ds["zero3_init_flag"] = True
        ds["zero3_save_16bit_model"] = True
    return {**_COMMON, "distributed_type": "DEEPSPEED", "deepspeed_config": ds}


#: file stem -> accelerate config.
CONFIGS: dict[str, dict[str, Any]] = {
    "ddp": {**_COMMON, "distributed_type": "MULTI_GPU", "gpu_ids": "all"},
    "zero2": _deepspeed(2),
    "zero3": _deepspeed(3),
    "fsdp": {**_COMMON, "distributed_type": "FSDP", "fsdp_config": {
        "fsdp_activation_checkpointing": False,  # our stages turn gradient checkpointing on for GPUs already
        "fsdp_auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
        "fsdp_cpu_ram_efficient_loading": True,
        "fsdp_offload_params": False,
        "fsdp_reshard_after_forward": True,
        "fsdp_state_dict_type": "FULL_STATE_DICT",  # OUT/final must be a plain from_pretrained folder
        "fsdp_version": 2,
    }},
}

HEADER = "# accelerate config for skillfactory's TRL stages (written by `skillfactory export accelerate`).\n"


class AccelerateExportConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    out: str
    num_processes: int | None = Field(None, gt=0)  # None: 8 (edit per machine, or pass --num_processes)


def config_text(name: str, num_processes: int | None = None) -> str:
    cfg = dict(CONFIGS[name])
    if num_processes is not None:
        cfg["num_processes"] = num_processes
    return HEADER + yaml.safe_dump(cfg, sort_keys=True)


def launch_commands(folder: str | Path) -> list[str]:
    """Example launch lines, one per config (SFT for DDP/ZeRO-2, GRPO for the sharded ones)."""
    folder = Path(folder)
    sft = "$(which skillfactory) sft --model M --traces T --out O"
    grpo = "$(which skillfactory) grpo --model M --task countdown --param num_args=3 --out O"
    return [f"accelerate launch --config_file {folder / name}.yaml {cmd}"
            for name, cmd in (("ddp", sft), ("zero2", sft), ("zero3", grpo), ("fsdp", grpo))]


@locks_folder("export accelerate")
def export_accelerate(cfg: AccelerateExportConfig) -> dict[str, Any]:
    """Write OUT/{ddp,zero2,zero3,fsdp}.yaml and OUT/launch.txt; returns the file list and launch commands."""
    out = Path(cfg.out)
    for name in CONFIGS:
        atomic_write_text(out / f"{name}.yaml", config_text(name, cfg.num_processes))
    commands = launch_commands(out)
    atomic_write_text(out / "launch.txt", "\n".join(commands) + "\n")
    summary = {"stage": "export_accelerate", "files": [f"{n}.yaml" for n in CONFIGS], "commands": commands}
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary
