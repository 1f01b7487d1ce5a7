"""Tiny random models of real instruct families (Qwen2.5, Qwen3, Llama 3.x, Gemma 3, Phi-3.5, R1-Distill).

``family_specs`` holds what each family's real files say; ``family_models`` builds a folder from a spec and
can fit a scripted behaviour into it; ``conftest`` caches the folders once per test session.
"""
