"""The FTP/FTPS listener: pyftpdlib server, account check, filesystem view, session."""
