"""Exports for engines that scale past one machine: verl (multi-node GRPO, the engine of the published study),
LLaMA-Factory (SFT), and accelerate configs (DDP / DeepSpeed ZeRO-2 / ZeRO-3 / FSDP) for our own TRL stages.

Each export is one module with a config class and one function that writes a folder and returns a summary.
"""

from skillfactory.training.export.accelerate import AccelerateExportConfig, export_accelerate
from skillfactory.training.export.llamafactory import LlamaFactoryExportConfig, export_llamafactory
from skillfactory.training.export.verl import VerlExportConfig, export_verl

__all__ = [
    "AccelerateExportConfig", "LlamaFactoryExportConfig", "VerlExportConfig",
    "export_accelerate", "export_llamafactory", "export_verl",
]
