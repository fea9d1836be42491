"""What the phone-log analyser can say: finding kinds, signals, observations, severities."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Literal

Severity = Literal["info", "warning", "error"]
SEVERITY_RANK: dict[Severity, int] = {"error": 0, "warning": 1, "info": 2}


class FindingKind(enum.StrEnum):
    TLS_SERVER_VERIFIED = "tls-server-verified"
    MTLS_ESTABLISHED = "mtls-established"
    DOWNLOAD_OK = "download-ok"
    DOWNLOAD_FAILED = "download-failed"
    HTTP_401 = "http-401"
    HTTP_403 = "http-403"
    HTTP_404 = "http-404"
    DEVICE_KEY_TOO_LARGE = "device-key-too-large"
    DEVICE_CERT_TOO_LARGE = "device-cert-too-large"
    PKCS7_WRAPPER_MISSING = "pkcs7-wrapper-missing"
    DEVICE_CERT_INVALID = "device-cert-invalid"
    CUSTOM_CERT_SAVED = "custom-cert-saved"
    DEVICE_CERT_PRESENT = "device-cert-present"
    DEVICE_CERT_ABSENT = "device-cert-absent"
    CLOCK_NOT_SET = "clock-not-set"
    SERVER_CERT_UNTRUSTED = "server-cert-untrusted"
    SERVER_NAME_MISMATCH = "server-name-mismatch"
    TLS_HANDSHAKE_FAILED = "tls-handshake-failed"
    DNS_FAILURE = "dns-failure"
    CONNECT_FAILURE = "connect-failure"
    FIRMWARE_LOOP = "firmware-loop"
    UPLOAD_FAILED = "upload-failed"
    LOG_APPEND_UNSUPPORTED = "log-append-unsupported"
    LOG_TRUNCATED = "log-truncated"


class Signal(enum.StrEnum):
    """Observations that are not findings themselves but feed one."""

    HTTP_STATUS = "http-status"  # becomes http-401/403/404 once its file is known
    SNTP_FAILED = "sntp-failed"  # becomes a clock-not-set warning
    FIRMWARE_UPDATE = "firmware-update"  # feeds firmware-loop
    REBOOT = "reboot"  # the next entry starts a new boot
    CONNECTION = "connection"  # libcurl opened a connection: a new TLS session follows
    HANDSHAKE = "handshake"  # one libcurl handshake step ("Request CERT", "CERT verify" ...)
    CIPHER = "cipher"  # "SSL connection using RC4-SHA"
    CERT_SAVING = "cert-saving"  # "Saving new Custom platform device certificate 1"
    CERT_IDENTITY = "cert-identity"  # the saved certificate's common name and fingerprint
    CERT_NO_PREVIOUS = "cert-no-previous"  # "No previous certificate stored"


Detail = dict[str, str | int | bool]


@dataclass(frozen=True, slots=True)
class Observation:
    """One recognised fact in one log entry."""

    kind: FindingKind | Signal
    detail: Detail = field(default_factory=dict)
