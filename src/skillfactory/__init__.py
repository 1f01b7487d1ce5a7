"""skillfactory: teach language models to verify, retry and backtrack (SkillFactory), then sharpen with GRPO."""
__version__ = "0.1.0"
