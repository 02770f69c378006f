"""Benchmarks run by `signattn benchmark NAME`; results go to docs/benchmarks.md."""
