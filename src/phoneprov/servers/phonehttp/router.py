"""One listener's handlers in order: the Lync device routes, then the phone handler."""

from __future__ import annotations

from phoneprov.servers.lync import LyncHandler, lync_route
from phoneprov.servers.phonehttp.message import PhoneRequest, PhoneResponse
from phoneprov.servers.phonehttp.phone import PhoneHandler


class PhoneRouter:
    """``handle(request)`` is what a phone listener calls, from a worker thread."""

    def __init__(self, phone: PhoneHandler, lync: LyncHandler) -> None:
        self.phone = phone
        self.lync = lync
        self.secure = phone.secure

    def handle(self, request: PhoneRequest) -> PhoneResponse:
        answer = lync_route(self.lync, request, self.phone.protocol)
        return answer if answer is not None else self.phone.handle(request)
