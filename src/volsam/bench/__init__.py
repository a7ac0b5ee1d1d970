"""Benchmarks: case sets with 3D ground truth and the protocols that score engines on them."""
