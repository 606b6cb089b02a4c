"""coord's benchmarks (``python -m benchmarks.suite`` from the repository root)."""
