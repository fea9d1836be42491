"""Sans-IO protocol cores: bytes and values in, bytes and values out; no sockets, files or clock."""
