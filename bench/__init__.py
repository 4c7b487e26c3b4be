"""Benchmarks: Flowhook measured against baselines in the same run (`make bench`)."""
