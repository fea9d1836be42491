"""DHCP option values: encoders, decoders and one renderer per DHCP server syntax."""
