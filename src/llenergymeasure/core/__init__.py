"""Measurement mechanisms: energy, sampling, baseline, warmup, FLOPs. No orchestration."""
