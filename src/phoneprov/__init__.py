"""phoneprov: a provisioning server for Polycom/Poly IP phones."""

__version__ = "0.1.0"
