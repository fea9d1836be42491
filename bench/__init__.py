"""Benchmarks: phoneprov against nginx on the same machine, same certificates and files."""
