"""Evaluation: explanation methods, deletion/insertion metrics, statistics, reports, sweeps."""
