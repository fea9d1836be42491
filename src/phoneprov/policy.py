"""The one authorization table. HTTP, HTTPS, FTP, TFTP and the Lync update service ask ``decide()``.

``TABLE`` is a list of rows, read top to bottom; the first row whose columns all
match the request gives the decision (like h11's ``_state.py``, a table instead
of an if-chain). A row matches when the principal's kind, the action and the
resource's kind are in the row's sets and every condition the row names holds:
the device's status, the transport, whether the file carries the asking
device's MAC (``Mac``) and what the upload name is (``Upload``, partly shaped by
``PolicyRules`` from ``phoneprov.toml [policy]``). The last row matches
everything and refuses, so every question has an answer.

The docs' tables (docs/boot-server.md, "Who may read and write what") are
rendered from ``TABLE`` and ``Reason.meaning`` by tests/unit/test_policy_table.py,
which fails when they differ.

Every refusal carries a ``Reason`` that goes to the security log. Refusals of
reads are answered like a missing file so nobody can probe which MACs exist.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from phoneprov.model import DeviceStatus, Principal, PrincipalKind, Protocol
from phoneprov.protocols.polycom import Resource, ResourceKind, UploadKind
from phoneprov.reasons import PRE_TABLE_REASONS as PRE_TABLE_REASONS
from phoneprov.reasons import Reason as Reason


class Action(enum.StrEnum):
    """What a principal asks to do."""

    READ = "read"
    WRITE = "write"
    DELETE = "delete"
    CHECK_UPDATE = "check-update"  # a device asks the Lync update service what to run (SPEC §9)
    VIEW = "view"  # an administrator reads through the admin API
    MANAGE = "manage"  # an administrator changes something through the admin API


class Owner(enum.StrEnum):
    """The standing of the phone an upload name belongs to (its MAC), as the gate finds it.

    The public account is shared by every phone, so what it may do with a phone's
    files depends on that phone (docs/decisions/0008-public-account-writes.md).
    """

    UNKNOWN = "owner not enrolled"  # no record, or denied or blocked
    PENDING = "owner quarantined"
    ENROLLED = "owner enrolled"
    OWN_IDENTITY = "owner has proved who it is"  # enrolled, and used its cert or account


@dataclass(frozen=True, slots=True)
class Decision:
    """The table's answer: allowed with ``Reason.OK``, or refused with another reason.

    ``hold``: allowed, but the upload is kept aside until an administrator approves
    the phone (``phoneprov device approve``); never served meanwhile.
    """

    allowed: bool
    reason: Reason
    hold: bool = False

    def __post_init__(self) -> None:
        if self.allowed is not (self.reason is Reason.OK):
            raise ValueError(
                f"Decision(allowed={self.allowed}, reason={self.reason.value}): an allowed "
                "decision carries reason ok and a refusal any other reason"
            )


ALLOW = Decision(True, Reason.OK)
HOLD = Decision(True, Reason.OK, hold=True)


def _deny(reason: Reason) -> Decision:
    """Return the refusal for ``reason``; raises ValueError for ``Reason.OK``."""
    return Decision(False, reason)


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
# What a phone downloads again after uploading it: a forged copy changes the phone.
READ_BACK_KINDS = frozenset(
    {
        UploadKind.CALLS,
        UploadKind.DIRECTORY,
        UploadKind.PHONE_OVERRIDE,
        UploadKind.WEB_OVERRIDE,
    }
)


@dataclass(frozen=True, slots=True)
class PolicyRules:
    """The settings that shape the table (phoneprov.toml ``[policy]``; ``tftp_writes`` is
    ``[tftp] allow_log_uploads``)."""

    folders: dict[UploadKind, str]
    bootstrap_writes: frozenset[UploadKind] = BOOTSTRAP_WRITES
    bootstrap_reads: frozenset[UploadKind] = BOOTSTRAP_READS
    tftp_writes: bool = False


class Mac(enum.StrEnum):
    """Whether a device asks about a file named with its own MAC; never holds for non-devices."""

    OWN = "own MAC"
    OTHER = "other MAC"

    def holds(self, principal: Principal, resource: Resource) -> bool:
        """Return True when ``principal`` is a device and the file's owner is (not) its MAC."""
        if not principal.is_device:
            return False
        return (principal.mac == resource.owner) is (self is Mac.OWN)


class Upload(enum.StrEnum):
    """Conditions on an upload name; the value is how the docs' table writes it."""

    WRONG_FOLDER = "outside its kind's folder and the root"
    BOOTSTRAP_READABLE = "kind in `[policy] bootstrap_reads`"
    BOOTSTRAP_WRITABLE = "kind in `[policy] bootstrap_writes`"
    TFTP_READ_ONLY = "not a log, or `[tftp] allow_log_uploads` off"
    NOT_LOG = "not a log"
    READ_BACK = "a file the phone reads back (calls, contacts, overrides)"
    READ_BACK_WRITABLE = "read back, and kind in `[policy] bootstrap_writes`"
    KEY = "private key"

    def holds(self, resource: Resource, rules: PolicyRules) -> bool:
        """Return True when ``resource`` is an upload name meeting this condition."""
        kind = resource.upload_kind
        if kind is None:
            return False
        match self:
            case Upload.WRONG_FOLDER:
                # A phone that has not read a master file yet uploads to the root; the
                # upload service files such uploads into their kind's folder.
                return resource.folder not in ("", rules.folders[kind])
            case Upload.BOOTSTRAP_READABLE:
                return kind in rules.bootstrap_reads
            case Upload.BOOTSTRAP_WRITABLE:
                return kind in rules.bootstrap_writes
            case Upload.TFTP_READ_ONLY:
                return not (rules.tftp_writes and kind.is_log)
            case Upload.NOT_LOG:
                return not kind.is_log
            case Upload.READ_BACK:
                return kind in READ_BACK_KINDS
            case Upload.READ_BACK_WRITABLE:
                return kind in READ_BACK_KINDS and kind in rules.bootstrap_writes
            case Upload.KEY:
                return kind is UploadKind.KEY


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the table: who, doing what, to which kind of resource, when -> decision.

    An unset condition (None) matches anything, including a principal without a status.
    """

    who: frozenset[PrincipalKind]
    actions: frozenset[Action]
    resources: frozenset[ResourceKind]
    decision: Decision
    status: DeviceStatus | None = None
    protocol: Protocol | None = None
    mac: Mac | None = None
    upload: Upload | None = None
    owner: frozenset[Owner] | None = None

    def matches(
        self,
        principal: Principal,
        action: Action,
        resource: Resource,
        rules: PolicyRules,
        owner: Owner | None = None,
    ) -> bool:
        """Return True when every column of the row holds for this request.

        ``owner`` is the standing of the phone the file belongs to; a row with an
        owner condition never matches when it was not looked up (None).
        """
        return (
            principal.kind in self.who
            and action in self.actions
            and resource.kind in self.resources
            and (self.status is None or principal.status is self.status)
            and (self.protocol is None or principal.protocol is self.protocol)
            and (self.mac is None or self.mac.holds(principal, resource))
            and (self.upload is None or self.upload.holds(resource, rules))
            and (self.owner is None or owner in self.owner)
        )


ANYONE = frozenset(PrincipalKind)
ADMINS = frozenset({PrincipalKind.VIEWER, PrincipalKind.OPERATOR, PrincipalKind.ADMIN})
OPERATORS = frozenset({PrincipalKind.OPERATOR, PrincipalKind.ADMIN})
ADMIN_ROLE = frozenset({PrincipalKind.ADMIN})
ANONYMOUS = frozenset({PrincipalKind.ANONYMOUS})
DEVICES = frozenset({PrincipalKind.DEVICE_CERT, PrincipalKind.DEVICE_ACCOUNT})
IDENTIFIED = DEVICES | {PrincipalKind.SITE_ACCOUNT}
BOOTSTRAP = frozenset({PrincipalKind.BOOTSTRAP})
SITE_ACCOUNT = frozenset({PrincipalKind.SITE_ACCOUNT})
ACCOUNTS = frozenset({PrincipalKind.DEVICE_ACCOUNT, PrincipalKind.SITE_ACCOUNT})  # passwords

ANY_ACTION = frozenset(Action)
FILE_ACTIONS = frozenset({Action.READ, Action.WRITE, Action.DELETE})
READ = frozenset({Action.READ})
WRITE = frozenset({Action.WRITE})
DELETE = frozenset({Action.DELETE})
CHANGE = frozenset({Action.WRITE, Action.DELETE})
CHECK_UPDATE = frozenset({Action.CHECK_UPDATE})
PHONE_ACTIONS = FILE_ACTIONS | CHECK_UPDATE
VIEW = frozenset({Action.VIEW})
MANAGE = frozenset({Action.MANAGE})
ADMIN_ACTIONS = VIEW | MANAGE

ANY_RESOURCE = frozenset(ResourceKind)
ADMIN_RESOURCES = frozenset(
    {
        ResourceKind.FLEET,
        ResourceKind.SECRETS,
        ResourceKind.CERTIFICATES,
        ResourceKind.ACCOUNTS,
        ResourceKind.ADMINISTRATORS,
        ResourceKind.AUDIT,
    }
)
PHONE_RESOURCES = ANY_RESOURCE - ADMIN_RESOURCES
# what lives in the boot directory
FILES = ANY_RESOURCE - ADMIN_RESOURCES - {ResourceKind.LYNC_UPDATE}
PUBLIC_FILES = frozenset(
    {
        ResourceKind.MASTER,
        ResourceKind.BOOTSTRAP,
        ResourceKind.FIRMWARE,
        ResourceKind.CA_DOWNLOAD,
        ResourceKind.SITE_WIDE,  # every phone asks for them on every boot, by the same name
    }
)
SECRET_FILES = frozenset({ResourceKind.DEVICE_FILE, ResourceKind.SHARED})  # may carry secrets
DEVICE_FILES = frozenset({ResourceKind.DEVICE_FILE})
UPLOADS = frozenset({ResourceKind.UPLOAD})
NOT_UPLOADS = FILES - UPLOADS
LYNC_UPDATE = frozenset({ResourceKind.LYNC_UPDATE})

DENIED, BLOCKED, PENDING = DeviceStatus.DENIED, DeviceStatus.BLOCKED, DeviceStatus.PENDING
NOT_ENROLLED = frozenset({Owner.UNKNOWN})
QUARANTINED_OWNER = frozenset({Owner.PENDING})
OWN_IDENTITY = frozenset({Owner.OWN_IDENTITY})
TFTP = Protocol.TFTP

# SPEC §3 and §9; decisions/0003 for the public bootstrap account. Refused reads
# look like a missing file (the caller's business), so the order of the read rows
# decides only which reason the security log gets.
TABLE: tuple[Row, ...] = (
    # Administrators (issue 14) reach the admin listener only; never a phone's files.
    Row(ADMINS, PHONE_ACTIONS, PHONE_RESOURCES, _deny(Reason.NOT_A_PHONE)),
    # The admin API: viewer reads everything but secrets; operator also manages the
    # fleet (approve, quarantine, import, firmware); admin also the CA, accounts and
    # administrators, and reads secrets. Nobody changes the audit trail.
    Row(ADMINS, VIEW, ADMIN_RESOURCES - {ResourceKind.SECRETS}, ALLOW),
    Row(ADMIN_ROLE, VIEW, frozenset({ResourceKind.SECRETS}), ALLOW),
    Row(OPERATORS, MANAGE, frozenset({ResourceKind.FLEET}), ALLOW),
    Row(ADMIN_ROLE, MANAGE, ADMIN_RESOURCES - {ResourceKind.AUDIT}, ALLOW),
    Row(ADMINS, ADMIN_ACTIONS, ADMIN_RESOURCES, _deny(Reason.NOT_IN_ROLE)),
    # The Lync/SfB device update service: only the device's standing matters.
    Row(ANYONE, CHECK_UPDATE, LYNC_UPDATE, _deny(Reason.ENROLMENT_DENIED), status=DENIED),
    Row(ANYONE, CHECK_UPDATE, LYNC_UPDATE, _deny(Reason.DEVICE_BLOCKED), status=BLOCKED),
    Row(ANYONE, CHECK_UPDATE, LYNC_UPDATE, _deny(Reason.QUARANTINED), status=PENDING),
    Row(ANYONE, CHECK_UPDATE, LYNC_UPDATE, ALLOW),
    # Files in the boot directory: who may touch any at all.
    Row(ANONYMOUS, FILE_ACTIONS, FILES, _deny(Reason.ANONYMOUS)),
    Row(ANYONE, FILE_ACTIONS, FILES, _deny(Reason.DEVICE_BLOCKED), status=BLOCKED),
    Row(ANYONE, FILE_ACTIONS, FILES, _deny(Reason.ENROLMENT_DENIED), status=DENIED),
    # Reads. TFTP has no authentication, so it is a public identity whoever claims it.
    Row(ANYONE, READ, PUBLIC_FILES, ALLOW),
    Row(ANYONE, READ, UPLOADS, _deny(Reason.SECRET_OVER_TFTP), protocol=TFTP),
    # The public account reads back only the files of enrolled phones that have never
    # proved who they are (decisions/0008): the others read theirs with their identity.
    Row(BOOTSTRAP, READ, UPLOADS, _deny(Reason.NOT_ENROLLED), owner=NOT_ENROLLED),
    Row(BOOTSTRAP, READ, UPLOADS, _deny(Reason.QUARANTINED), owner=QUARANTINED_OWNER),
    Row(
        BOOTSTRAP,
        READ,
        UPLOADS,
        _deny(Reason.OWN_IDENTITY_ONLY),
        owner=OWN_IDENTITY,
        upload=Upload.READ_BACK,
    ),
    Row(BOOTSTRAP, READ, UPLOADS, ALLOW, upload=Upload.BOOTSTRAP_READABLE),
    Row(BOOTSTRAP, READ, UPLOADS, _deny(Reason.SECRET_OVER_BOOTSTRAP)),
    Row(DEVICES, READ, UPLOADS, _deny(Reason.NOT_YOURS), mac=Mac.OTHER),
    # The phone's private key goes back only over its own mutual-TLS session.
    Row(ACCOUNTS, READ, UPLOADS, _deny(Reason.KEY_OUTSIDE_MTLS), upload=Upload.KEY),
    Row(IDENTIFIED, READ, UPLOADS, ALLOW),
    Row(ANYONE, READ, SECRET_FILES, _deny(Reason.SECRET_OVER_TFTP), protocol=TFTP),
    Row(BOOTSTRAP, READ, SECRET_FILES, _deny(Reason.SECRET_OVER_BOOTSTRAP)),
    Row(IDENTIFIED, READ, SECRET_FILES, _deny(Reason.QUARANTINED), status=PENDING),
    Row(DEVICES, READ, DEVICE_FILES, _deny(Reason.NOT_YOURS), mac=Mac.OTHER),
    Row(IDENTIFIED, READ, SECRET_FILES, ALLOW),
    # Writes and deletes: upload names only, each in its kind's folder.
    Row(ANYONE, CHANGE, NOT_UPLOADS, _deny(Reason.NOT_AN_UPLOAD)),
    Row(ANYONE, CHANGE, UPLOADS, _deny(Reason.WRONG_FOLDER), upload=Upload.WRONG_FOLDER),
    Row(
        ANYONE,
        CHANGE,
        UPLOADS,
        _deny(Reason.READ_ONLY),
        protocol=TFTP,
        upload=Upload.TFTP_READ_ONLY,
    ),
    Row(DEVICES, DELETE, UPLOADS, ALLOW, mac=Mac.OWN),
    Row(DEVICES, DELETE, UPLOADS, _deny(Reason.NOT_YOURS), mac=Mac.OTHER),
    Row(SITE_ACCOUNT | BOOTSTRAP, DELETE, UPLOADS, _deny(Reason.UPLOAD_KIND_NOT_ALLOWED)),
    Row(DEVICES, WRITE, UPLOADS, _deny(Reason.NOT_YOURS), mac=Mac.OTHER),
    # A quarantined phone may still upload its logs, so the administrator sees why.
    Row(DEVICES, WRITE, UPLOADS, _deny(Reason.QUARANTINED), status=PENDING, upload=Upload.NOT_LOG),
    Row(DEVICES, WRITE, UPLOADS, ALLOW),
    Row(SITE_ACCOUNT, WRITE, UPLOADS, ALLOW),
    # The public account writes only for phones in the inventory; what a phone reads
    # back only until it proves who it is, and for a quarantined phone only aside.
    Row(BOOTSTRAP, WRITE, UPLOADS, _deny(Reason.NOT_ENROLLED), owner=NOT_ENROLLED),
    Row(
        BOOTSTRAP,
        WRITE,
        UPLOADS,
        _deny(Reason.OWN_IDENTITY_ONLY),
        owner=OWN_IDENTITY,
        upload=Upload.READ_BACK,
    ),
    Row(
        BOOTSTRAP,
        WRITE,
        UPLOADS,
        HOLD,
        owner=QUARANTINED_OWNER,
        upload=Upload.READ_BACK_WRITABLE,
    ),
    Row(BOOTSTRAP, WRITE, UPLOADS, ALLOW, upload=Upload.BOOTSTRAP_WRITABLE),
    Row(BOOTSTRAP, WRITE, UPLOADS, _deny(Reason.UPLOAD_KIND_NOT_ALLOWED)),
    # Anything else (a file action on an update offer, an update check on a file).
    Row(ANYONE, ANY_ACTION, ANY_RESOURCE, _deny(Reason.NO_RULE)),
)

# The rows that can match each (action, resource kind), in table order: a listing
# asks once per file, and this keeps each question to the few rows that concern it.
_ROWS_FOR: dict[tuple[Action, ResourceKind], tuple[Row, ...]] = {
    (action, kind): tuple(row for row in TABLE if action in row.actions and kind in row.resources)
    for action in Action
    for kind in ResourceKind
}


def decide(
    principal: Principal,
    action: Action,
    resource: Resource,
    rules: PolicyRules,
    owner: Owner | None = None,
) -> Decision:
    """Return the decision of the first row of ``TABLE`` that matches the request.

    ``owner``: the standing of the phone an upload name belongs to (the gate looks
    it up for every upload name with a MAC). The last row matches every request, so
    there is always one. Raises KeyError only when ``rules.folders`` lacks the
    folder of an upload kind written to.
    """
    rows = _ROWS_FOR[action, resource.kind]
    return next(
        row.decision for row in rows if row.matches(principal, action, resource, rules, owner)
    )
