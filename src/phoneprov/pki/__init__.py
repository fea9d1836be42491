"""Certificates: our CA, server and device certificates, CRL, trust anchors, inspection."""
