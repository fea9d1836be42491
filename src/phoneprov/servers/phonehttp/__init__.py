"""The phone-facing HTTP(S) requests, apart from the server that carries them.

``message`` is the one request/response model; ``phone`` and ``router`` are the
one set of handlers. The HTTP (digest) listener runs them under aiohttp
(``servers.http``); the HTTPS (mutual TLS) listener runs them in its own
threads (``listener``), with blocking TLS sockets and h11 (decisions/0013).
"""
