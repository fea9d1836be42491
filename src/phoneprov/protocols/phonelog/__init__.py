"""Polycom phone logs: the documented line format, rules, findings and advice."""
