"""Per-family harnesses of ``tools/benchmark/parity.py`` (reference side and ours)."""
