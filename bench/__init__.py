"""Chatsite's benchmarks (not tests): `make bench` or `python -m bench [--only NAME] [--quick]`."""
