"""phoneprov: a provisioning server for Polycom/Poly IP phones."""

__version__ = "0.2.0"
