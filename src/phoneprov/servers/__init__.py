"""Edges: sockets and wire protocols, each translating into provisioning services."""
