"""Shared helpers for the benchmark scripts (not run by `./dev bench` themselves)."""
