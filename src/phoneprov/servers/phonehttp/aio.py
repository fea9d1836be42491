"""The phone handlers under aiohttp: the HTTP (digest) listener.

aiohttp parses the request; the router runs in a worker thread (as under the
HTTPS listener), reading an upload's body from aiohttp's stream through the
event loop; the answer goes back as aiohttp's response (``FileResponse`` sends
a file with ranges and HEAD).
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Future, ThreadPoolExecutor

from aiohttp import ClientPayloadError, StreamReader, web

from phoneprov.servers.phonehttp.message import PhoneRequest, PhoneResponse
from phoneprov.servers.phonehttp.router import PhoneRouter


class _StreamBody:
    """aiohttp's request stream, read from a worker thread."""

    def __init__(self, stream: StreamReader, loop: asyncio.AbstractEventLoop) -> None:
        self.stream = stream
        self.loop = loop

    def read(self, size: int) -> bytes:
        future: Future[bytes] = asyncio.run_coroutine_threadsafe(self.stream.read(size), self.loop)
        try:
            return future.result()
        except ClientPayloadError as error:
            raise ConnectionError(str(error)) from error


def phone_request(request: web.Request, loop: asyncio.AbstractEventLoop) -> PhoneRequest:
    return PhoneRequest(
        method=request.method,
        target=request.raw_path,
        headers={name.lower(): value for name, value in request.headers.items()},
        ip=request.remote or "-",
        body=_StreamBody(request.content, loop),
    )


def aiohttp_response(response: PhoneResponse) -> web.StreamResponse:
    if response.file is not None:
        return web.FileResponse(response.file, status=response.status, headers=response.headers)
    headers = response.headers
    if response.size and not response.body:
        # A HEAD answer: the size of what a GET (or the next append) would see.
        headers = {**headers, "Content-Length": str(response.size)}
    return web.Response(status=response.status, body=response.body, headers=headers)


class AioPhoneApp:
    """The aiohttp handler of one listener: every request goes to ``router``."""

    def __init__(self, router: PhoneRouter, threads: int) -> None:
        self.router = router
        # A thread per request being handled: an upload holds one while its body arrives.
        self.workers = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="http")

    async def handle(self, request: web.Request) -> web.StreamResponse:
        loop = asyncio.get_running_loop()
        answer = await loop.run_in_executor(
            self.workers, self.router.handle, phone_request(request, loop)
        )
        return aiohttp_response(answer)

    def close(self) -> None:
        self.workers.shutdown(wait=False, cancel_futures=True)
