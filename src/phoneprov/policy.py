"""The one authorization table. HTTP, HTTPS, FTP and TFTP all ask ``decide()``.

Rows (SPEC §3, issue "secure boot server"), public = bootstrap account or TFTP:

| resource             | public                  | device, own MAC      | other MAC |
|----------------------|-------------------------|----------------------|-----------|
| master, bootstrap,   | read                    | read                 | read      |
| firmware, CA chain   |                         |                      |           |
| shared files         | no (may carry secrets)  | read unless pending  | read      |
| <mac>.cfg, <mac>-*   | no (secret-bearing)     | read unless pending  | as absent |
| upload names         | kinds set in [policy];  | write (pending: logs | as absent |
|                      | TFTP reads none         | only), read, delete  |           |
| <mac>-private.pem    | no                      | over its mTLS only   | as absent |

Every refusal carries a ``Reason`` that goes to the security log. Refusals of
reads are answered like a missing file so nobody can probe which MACs exist.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from phoneprov.model import DeviceStatus, Principal, PrincipalKind, Protocol
from phoneprov.protocols.polycom import Resource, ResourceKind, UploadKind


class Action(enum.StrEnum):
    READ = "read"
    WRITE = "write"
    DELETE = "delete"


class Reason(enum.StrEnum):
    OK = "ok"
    NOT_YOURS = "not-yours"  # another device's file
    SECRET_OVER_BOOTSTRAP = "secret-over-bootstrap"  # secret-bearing file on a public identity
    SECRET_OVER_TFTP = "secret-over-tftp"
    ENROLMENT_DENIED = "enrolment-denied"  # unknown device, enrolment = "deny"
    DEVICE_BLOCKED = "device-blocked"
    QUARANTINED = "quarantined"  # unknown device waiting for approval
    NOT_AN_UPLOAD = "not-an-upload"  # write to a name phones do not upload
    WRONG_FOLDER = "wrong-folder"  # upload name in a folder its kind does not belong to
    UPLOAD_KIND_NOT_ALLOWED = "upload-kind-not-allowed"  # bootstrap may not write this kind
    READ_ONLY = "read-only"  # transport or resource is read-only
    ANONYMOUS = "anonymous"
    KEY_OUTSIDE_MTLS = "key-outside-mtls"  # a phone's private key, asked for without its cert
    UNSAFE_PATH = "unsafe-path"  # traversal, encoded tricks, symlink out of the root
    HIDDEN_FILE = "hidden-file"  # dot files: temporary uploads and the like


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: Reason

    @property
    def hide(self) -> bool:
        """True when the refusal must look like a missing file (reads)."""
        return not self.allowed


ALLOW = Decision(True, Reason.OK)

PUBLIC_KINDS = (
    ResourceKind.MASTER,
    ResourceKind.BOOTSTRAP,
    ResourceKind.FIRMWARE,
    ResourceKind.CA_DOWNLOAD,
)


# What the public accounts may upload and read back by default (decisions/0003):
# logs, core files, call lists and contacts; never overrides, CSRs or keys.
BOOTSTRAP_WRITES = frozenset(
    {
        UploadKind.BOOT_LOG,
        UploadKind.APP_LOG,
        UploadKind.CORE,
        UploadKind.CALLS,
        UploadKind.DIRECTORY,
    }
)
BOOTSTRAP_READS = frozenset({UploadKind.CALLS, UploadKind.DIRECTORY})


@dataclass(frozen=True, slots=True)
class PolicyRules:
    """The settings that shape the table (from phoneprov.toml ``[policy]``)."""

    folders: dict[UploadKind, str]
    bootstrap_writes: frozenset[UploadKind] = BOOTSTRAP_WRITES
    bootstrap_reads: frozenset[UploadKind] = BOOTSTRAP_READS
    tftp_writes: bool = False


def _deny(reason: Reason) -> Decision:
    return Decision(False, reason)


def decide(
    principal: Principal, action: Action, resource: Resource, rules: PolicyRules
) -> Decision:
    """Return whether ``principal`` may perform ``action`` on ``resource``, and why."""
    if principal.kind is PrincipalKind.ANONYMOUS:
        return _deny(Reason.ANONYMOUS)
    status = principal.status
    if status is DeviceStatus.BLOCKED:
        return _deny(Reason.DEVICE_BLOCKED)
    if status is DeviceStatus.DENIED:
        return _deny(Reason.ENROLMENT_DENIED)
    if action is Action.READ:
        return _read(principal, resource, rules)
    if resource.kind is not ResourceKind.UPLOAD or resource.upload_kind is None:
        return _deny(Reason.NOT_AN_UPLOAD)
    # A phone that has not read a master file yet uploads to the root; the upload
    # service files such uploads into their kind's folder.
    if resource.folder not in ("", rules.folders[resource.upload_kind]):
        return _deny(Reason.WRONG_FOLDER)
    if principal.protocol is Protocol.TFTP and not (
        rules.tftp_writes and resource.upload_kind.is_log
    ):
        return _deny(Reason.READ_ONLY)
    if action is Action.DELETE:
        if principal.is_device and principal.mac == resource.owner:
            return ALLOW
        return _deny(Reason.NOT_YOURS if principal.is_device else Reason.UPLOAD_KIND_NOT_ALLOWED)
    return _write(principal, resource, rules)


def _read(principal: Principal, resource: Resource, rules: PolicyRules) -> Decision:
    if resource.kind in PUBLIC_KINDS:
        return ALLOW
    public = principal.kind is PrincipalKind.BOOTSTRAP or principal.protocol is Protocol.TFTP
    if resource.kind is ResourceKind.UPLOAD:
        assert resource.upload_kind is not None
        if principal.protocol is Protocol.TFTP:
            return _deny(Reason.SECRET_OVER_TFTP)  # no authentication at all
        if public:
            if resource.upload_kind in rules.bootstrap_reads:
                return ALLOW
            return _deny(Reason.SECRET_OVER_BOOTSTRAP)
        if principal.is_device and principal.mac != resource.owner:
            return _deny(Reason.NOT_YOURS)
        if (
            resource.upload_kind is UploadKind.KEY
            and principal.kind is not PrincipalKind.DEVICE_CERT
        ):
            # The phone's private key goes back only over its own mutual-TLS session.
            return _deny(Reason.KEY_OUTSIDE_MTLS)
        return ALLOW
    if public:
        return _deny(
            Reason.SECRET_OVER_TFTP
            if principal.protocol is Protocol.TFTP
            else Reason.SECRET_OVER_BOOTSTRAP
        )
    if principal.status is DeviceStatus.PENDING:
        return _deny(Reason.QUARANTINED)
    if (
        resource.kind is ResourceKind.DEVICE_FILE
        and principal.is_device
        and (principal.mac != resource.owner)
    ):
        return _deny(Reason.NOT_YOURS)
    return ALLOW


def _write(principal: Principal, resource: Resource, rules: PolicyRules) -> Decision:
    kind = resource.upload_kind
    assert kind is not None
    if principal.is_device:
        if principal.mac != resource.owner:
            return _deny(Reason.NOT_YOURS)
        if principal.status is DeviceStatus.PENDING and not kind.is_log:
            return _deny(Reason.QUARANTINED)
        return ALLOW
    if principal.kind is PrincipalKind.SITE_ACCOUNT:
        return ALLOW
    if kind in rules.bootstrap_writes:
        return ALLOW
    return _deny(Reason.UPLOAD_KIND_NOT_ALLOWED)
