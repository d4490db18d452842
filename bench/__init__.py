"""Benchmarks: `make bench`. Each result is a ratio against a baseline measured in the same run on
the same machine, so the numbers compare across machines; nothing here asserts a time."""
