"""Silver traces: a model's own attempts and true reflections rearranged into verify-and-retry
examples for SFT.

phrases.py  glue phrase pools          formats.py  one selection function per format + rendering
sources.py  our samples/reflections     raw.py      the published raw layout
build.py    TraceConfig, build_traces   outputs.py  JSONL, LLaMA-Factory export, reading traces back
parallel.py forked workers, in order   hf_dataset.py  the HF dataset in save_to_disk's layout
summary.py  counts and token lengths    show.py     terminal pretty-printer
clean.py    what text may enter a trace (leading <think> unwrapped, chat special tokens refused)
"""
