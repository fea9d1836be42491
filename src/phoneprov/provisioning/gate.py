"""The path and policy gate every phone request passes: resolve, classify, decide.

Given a Principal (who, over which protocol) and a raw path from the wire, the
gate refuses unsafe paths, classifies the file, asks ``policy.decide`` and, on
refusal, writes the security line and an event on the phone. Reads, uploads and
listings (``reads.py``, ``uploads.py``, ``listings.py``) call it first; servers
only translate the outcome into their wire codes (HTTP 404/400/403, FTP 550,
TFTP error 2).
"""

from __future__ import annotations

import time

from phoneprov.config import Settings
from phoneprov.errors import PhoneprovError, UnsafePathError
from phoneprov.model import Principal, PrincipalKind, Protocol
from phoneprov.policy import Action, Decision, Owner, PolicyRules, Reason, decide
from phoneprov.protocols.paths import safe_relative
from phoneprov.protocols.polycom import Resource, ResourceKind, canonical_name, classify
from phoneprov.provisioning.audit import Audit
from phoneprov.provisioning.bootdir import BootDir
from phoneprov.provisioning.identity import Identity
from phoneprov.records import Event
from phoneprov.store import Recorder


class Refused(PhoneprovError):
    """Policy or path safety said no. ``hide``: answer as if the file were missing."""

    def __init__(self, reason: Reason, path: str, *, hide: bool) -> None:
        super().__init__(f"refused {path!r}: {reason.value}")
        self.reason = reason
        self.path = path
        self.hide = hide


class NotFound(PhoneprovError):
    """The file does not exist (a normal answer for optional files)."""


def is_public(principal: Principal) -> bool:
    """True for identities anyone may hold: the bootstrap account and TFTP."""
    return principal.kind is PrincipalKind.BOOTSTRAP or principal.protocol is Protocol.TFTP


class Gate:
    """Resolves paths and applies the policy table for one site."""

    def __init__(
        self, settings: Settings, audit: Audit, recorder: Recorder, identity: Identity
    ) -> None:
        self.settings = settings
        self.identity = identity
        self.audit = audit
        self.recorder = recorder
        self.boot = BootDir(settings.boot_dir)
        self.rules = PolicyRules(
            folders=settings.policy.folders,
            bootstrap_writes=settings.policy.bootstrap_writes,
            bootstrap_reads=settings.policy.bootstrap_reads,
            tftp_writes=settings.tftp.allow_log_uploads,
        )

    def classify(self, relative: str) -> Resource:
        """The resource a relative path names, with this site's bootstrap files."""
        return classify(relative, self.settings.policy.bootstrap_files)

    def owner(self, resource: Resource) -> Owner | None:
        """The standing of the phone an upload name belongs to; None for other files."""
        if resource.kind is not ResourceKind.UPLOAD or resource.owner is None:
            return None
        if resource.owner.is_wildcard:
            return Owner.UNKNOWN
        return self.identity.owner_standing(resource.owner)

    def decide(self, principal: Principal, action: Action, resource: Resource) -> Decision:
        """The table's decision, with the owner's standing looked up; no logging."""
        return decide(principal, action, resource, self.rules, self.owner(resource))

    def allows(self, principal: Principal, action: Action, resource: Resource) -> bool:
        """Whether the table allows it, without logging (listings, master filtering)."""
        return self.decide(principal, action, resource).allowed

    def resolve(self, principal: Principal, raw: str, *, ip: str, decoded: bool) -> Resource:
        """Safe relative path -> classified Resource. Raises Refused (UNSAFE_PATH: 400)."""
        try:
            relative = safe_relative(raw, already_decoded=decoded)
            if any(part.startswith(".") for part in relative.split("/") if part):
                self.refuse(principal, ip, Reason.HIDDEN_FILE, raw, hide=True)
            self.boot.locate(relative)
        except UnsafePathError as error:
            self.audit.refused(
                protocol=principal.protocol.value,
                ip=ip,
                identity=principal.label(),
                reason=Reason.UNSAFE_PATH.value,
                path=raw,
                detail=str(error),
            )
            raise Refused(Reason.UNSAFE_PATH, raw, hide=False) from None
        folder, _, name = relative.rpartition("/")
        relative = f"{folder}/{canonical_name(name)}" if folder else canonical_name(name)
        return self.classify(relative)

    def check(
        self, principal: Principal, action: Action, resource: Resource, *, ip: str
    ) -> Decision:
        """The table's decision; raise Refused (logged) unless it allows ``action``."""
        decision = self.decide(principal, action, resource)
        if not decision.allowed:
            self.refuse(principal, ip, decision.reason, resource.path, hide=action is Action.READ)
        return decision

    def refuse(
        self, principal: Principal, ip: str, reason: Reason, path: str, *, hide: bool
    ) -> None:
        """Log the refusal (security line, event on the phone) and raise Refused."""
        self.audit.refused(
            protocol=principal.protocol.value,
            ip=ip,
            identity=principal.label(),
            reason=reason.value,
            path=path,
        )
        if principal.mac is not None:
            self.recorder.event(
                Event(time.time(), principal.mac.value, "refused", f"{reason.value} {path}")
            )
        raise Refused(reason, path, hide=hide)
