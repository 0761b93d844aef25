"""Benchmarks (not tests) and what only they need: bench/settings.py mounts
the bench's own views and middleware on top of the product's settings."""
