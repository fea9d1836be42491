"""The cause and the fix for each phone-log finding, in the administrator's words.

Templates take ``{name}`` fields from the finding's detail (file, attempt, slot,
size, limit, host, cn, fingerprint ...); a missing field renders as ``?``.
docs/troubleshooting.md ("Phone log findings") shows the same table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from phoneprov.protocols.phonelog.kinds import FindingKind, Severity

NO_ACTION = "No action needed."


@dataclass(frozen=True, slots=True)
class Advice:
    severity: Severity
    cause: str
    fix: str


_TRUST_FIX = (
    "Put the Polycom Root CA, Equipment Policy CA and Equipment Issuing CA 1 and 2 (and your own "
    "CA, for phones with a custom device certificate) in the HTTPS trust store; check that the "
    "certificate's common name is the MAC in the file name and that the device is approved; the "
    "server's security log names the reason for each refusal."
)

_FIRMWARE_FIX = (
    "Put the application image for this model in the boot directory (sip.ld or "
    "<part number>.sip.ld, with sip.ver naming its version), or ignore this if this server "
    "does not manage firmware."
)

# Keyed by kind, or "kind:variant" where the same kind has a different meaning
# (an optional file missing is normal; a retried download that then worked is a warning).
ADVICE: dict[str, Advice] = {
    FindingKind.TLS_SERVER_VERIFIED: Advice(
        "info",
        "The phone verified the server certificate of {host_name} (one-way TLS: it chains to a CA "
        "the phone trusts and names the server){cipher_text}.",
        NO_ACTION,
    ),
    FindingKind.MTLS_ESTABLISHED: Advice(
        "info",
        "The server ({host_name}) asked the phone for its certificate ({handshake_text}: "
        "Request CERT) and the phone sent its device certificate and proved it holds the key (CERT "
        "verify): mutual TLS is established.",
        NO_ACTION,
    ),
    FindingKind.DOWNLOAD_OK: Advice(
        "info", "The phone downloaded '{file}' on attempt {attempt}{address_text}.", NO_ACTION
    ),
    FindingKind.DOWNLOAD_FAILED: Advice(
        "error",
        "The phone could not download '{file}': {failures} failed attempt(s), the last was "
        "attempt {attempt}{status_text}, and no later attempt succeeded.",
        "Read the findings on the lines around it (http-403, http-404, dns-failure, "
        "connect-failure, TLS) for the reason; check that '{file}' is in the site's boot "
        "directory and that the server's access log shows the request.",
    ),
    f"{FindingKind.DOWNLOAD_FAILED}:recovered": Advice(
        "warning",
        "The phone failed to download '{file}' {failures} time(s){status_text} before a later "
        "attempt succeeded.",
        "Nothing is broken now; if it happens at every boot, look for an overloaded or "
        "flapping server, or a slow DNS answer.",
    ),
    f"{FindingKind.DOWNLOAD_FAILED}:optional": Advice(
        "info",
        "The phone did not get the optional file '{file}'{status_text}; it boots without it.",
        "Normal. Create the file only if you want what it carries.",
    ),
    f"{FindingKind.DOWNLOAD_FAILED}:firmware": Advice(
        "warning",
        "The phone did not get '{file}'{status_text}: it keeps the software it runs and "
        "cannot be updated from this server.",
        _FIRMWARE_FIX,
    ),
    FindingKind.HTTP_401: Advice(
        "error",
        "The server refused the phone's credentials for '{file}' (401 Unauthorized: HTTP "
        "digest, the first phase of the secure bootstrap).",
        "Give the phone and the server the same user and password (device.prov.user and "
        "device.prov.password, or user:password@ in the DHCP option 160/66 URL); the "
        "server's security log says whether the user or the password was wrong.",
    ),
    FindingKind.HTTP_403: Advice(
        "error",
        "The server refused '{file}' with 403 Forbidden{substatus_text}. Over HTTPS this is "
        "the mutual-TLS refusal: the device certificate was not sent, does not chain to a CA "
        "the server trusts (IIS says 403.16 when the Polycom intermediates are missing and "
        "403.7 when no client certificate came), is not mapped to an account, or its common "
        "name (the MAC) is not the MAC of the file asked for.",
        _TRUST_FIX,
    ),
    FindingKind.HTTP_404: Advice(
        "error",
        "The phone asked for '{file}' and the boot server does not have it (404 Not Found).",
        "Put '{file}' in the site's boot directory, or correct the name in CONFIG_FILES or "
        "APP_FILE_PATH of 000000000000.cfg (names are case-sensitive on Linux servers).",
    ),
    f"{FindingKind.HTTP_404}:optional": Advice(
        "info",
        "The phone asked for the optional file '{file}' and the server does not have it "
        "(404 Not Found); the phone carries on without it.",
        "Normal. Provide the file only if you want what it carries.",
    ),
    f"{FindingKind.HTTP_404}:firmware": Advice(
        "warning",
        "The boot server has no '{file}' (404 Not Found): the phone keeps the software it runs.",
        _FIRMWARE_FIX,
    ),
    FindingKind.DEVICE_KEY_TOO_LARGE: Advice(
        "error",
        "The private key for custom device key {slot} is {size} bytes, bigger than the "
        "{limit} bytes the phone can store, so it did not install the custom device certificate.",
        "Use a 2048-bit RSA key for device.sec.TLS.customDeviceCert{slot}.privateKey, or use an "
        "application slot (sec.TLS.customDeviceCert.x and sec.TLS.customDeviceKey.x) if the "
        "certificate is not needed for provisioning, 802.1X or syslog.",
    ),
    FindingKind.DEVICE_CERT_TOO_LARGE: Advice(
        "error",
        "The certificate for custom device certificate {slot} is {size} bytes, bigger than the "
        "{limit} bytes the phone can store, so it did not install it.",
        "Send only the device certificate in device.sec.TLS.customDeviceCert{slot}.publicCert "
        "(not the whole chain); install CA certificates in device.sec.TLS.customCaCert1..3 "
        "instead, and prefer a 2048-bit key.",
    ),
    FindingKind.PKCS7_WRAPPER_MISSING: Advice(
        "error",
        "The phone could not decode the certificate chain of a custom device certificate in "
        "its configuration (Could not decode cert chain): the certificate is not wrapped in "
        "'-----BEGIN PKCS7-----' and '-----END PKCS7-----' markers.",
        "Export the certificate in PKCS#7 PEM form (for example `openssl crl2pkcs7 -nocrl "
        "-certfile device.pem`) and paste the whole block, both markers included, into the "
        "parameter.",
    ),
    FindingKind.DEVICE_CERT_INVALID: Advice(
        "error",
        "The phone rejected the device credential as invalid ({reason}) and did not save it "
        "(the phone shows 'Failed to save certificate'): the certificate or key is too big, "
        "or not proper (not PKCS#7 PEM, or not the pair of its key).",
        "Check that certificate and key belong together (`openssl x509 -noout -modulus` and "
        "`openssl rsa -noout -modulus` print the same value), that the certificate is valid "
        "today, and that it is PKCS#7 PEM; then push it again.",
    ),
    FindingKind.CUSTOM_CERT_SAVED: Advice(
        "info",
        "The phone saved a new custom platform device certificate {slot} (common name {cn}, "
        "fingerprint {fingerprint}){previous_text}.",
        "No action needed. If the server binds certificates to MACs, the common name must be "
        "the phone's MAC.",
    ),
    FindingKind.DEVICE_CERT_PRESENT: Advice(
        "info",
        "At boot the phone has its {which_text} (length {length} bytes, {algorithm} "
        "fingerprint {fingerprint}, common name {cn}{key_text}).",
        "No action needed. A server that binds certificates to MACs refuses this phone if the "
        "common name is not its MAC.",
    ),
    FindingKind.DEVICE_CERT_ABSENT: Advice(
        "info",
        "At boot the phone reports its {which_text} as not available: none is installed.",
        "No action needed unless the phone should use it (mutual TLS, 802.1X, syslog): "
        "install it with device.sec.TLS.customDeviceCert{slot}.publicCert and .privateKey.",
    ),
    FindingKind.CLOCK_NOT_SET: Advice(
        "error",
        "The phone refused a certificate as not yet valid: its clock is earlier than the "
        "certificate's start date, usually because it never got the time from SNTP{clock_text}.",
        "Give the phone a reachable time server (DHCP option 42 with option 2 for the offset, "
        "or tcpIpApp.sntp.address) and let UDP port 123 through; if the server certificate "
        "was issued minutes ago, issue it with a start date in the past.",
    ),
    f"{FindingKind.CLOCK_NOT_SET}:sntp": Advice(
        "warning",
        "The phone could not get the time from SNTP; certificate checks fail while its clock "
        "is wrong.",
        "Give the phone a reachable time server (DHCP option 42, or tcpIpApp.sntp.address) and "
        "let UDP port 123 through.",
    ),
    FindingKind.SERVER_CERT_UNTRUSTED: Advice(
        "error",
        "The phone does not trust the server certificate ({reason}): its issuer is not in the "
        "phone's CA list, or the server does not send its intermediate certificates.",
        "Send the full chain from the server, and install your root CA on the phone in the "
        "first phase (initial.cfg: device.sec.TLS.customCaCert1 with the provisioning TLS "
        "profile).",
    ),
    FindingKind.SERVER_NAME_MISMATCH: Advice(
        "error",
        "The server certificate does not name the host the phone connected to{host_at}.",
        "Issue a server certificate whose common name and subjectAltName include the FQDN (or "
        "IP address) in the provisioning URL.",
    ),
    FindingKind.TLS_HANDSHAKE_FAILED: Advice(
        "error",
        "The TLS handshake failed ({reason}): no protocol version or cipher in common, or the "
        "server refused the device certificate when it asked for it.",
        "Allow TLS 1.2 with RSA ciphers the phone's software supports "
        "(device.sec.TLS.protocol.prov), and check that the server trusts the CA of the "
        "device certificate.",
    ),
    FindingKind.DNS_FAILURE: Advice(
        "error",
        "The phone could not resolve the name{host_text} of the provisioning server.",
        "Check the DNS servers DHCP gives the phone (option 6) and that the name in the "
        "provisioning URL (option 160 or 66) resolves from the phone's VLAN; or put an IP "
        "address in the URL and in the server certificate's subjectAltName.",
    ),
    FindingKind.CONNECT_FAILURE: Advice(
        "error",
        "The phone could not open a connection to {host_name}{port_text}: nothing listens there, "
        "or a firewall drops it.",
        "Check that the server is running (`phoneprov serve`), the port in the provisioning "
        "URL, and the firewalls between the phone's VLAN and the server.",
    ),
    FindingKind.FIRMWARE_LOOP: Advice(
        "error",
        "The phone installed software in {boots} separate boots ({what}): two sources "
        "disagree on the version, so it updates and reboots again and again (for example "
        "APP_FILE_PATH and the Lync/SfB device update service, or sip.ld and sip.ver).",
        "Serve one version: point APP_FILE_PATH (per model) at the image you want, keep "
        "sip.ver in step with it, and align or turn off the device update service for these "
        "phones.",
    ),
    FindingKind.UPLOAD_FAILED: Advice(
        "warning",
        "The phone could not upload {file_name} to the server{status_text}{code_text}: the "
        "server has no current copy of it.",
        "Check the server's access log for the PUT and its status: the phone may write only "
        "its own file names, in the folder of their kind (logs/, overrides/, contacts/), "
        "within the size limits. The phone keeps its copy and uploads again later.",
    ),
    FindingKind.LOG_APPEND_UNSUPPORTED: Advice(
        "warning",
        "The server answered the phone's HEAD for {file_name} without a Content-Length, so "
        "the phone cannot set the Content-Range of an append and cannot add to the log it "
        "uploaded before ({reason}).",
        "Serve HEAD with the exact Content-Length of the stored log (phoneprov does; a proxy "
        "in front of it must pass the header through), or set "
        "log.render.file.upload.append=0 so the phone uploads its whole log each time.",
    ),
    FindingKind.LOG_TRUNCATED: Advice(
        "warning",
        "The log ends in the middle of a line: the upload was cut off or the file is still "
        "being written, so the end of the story may be missing.",
        "Let the phone upload its log again (it uploads at every boot), then analyse it again.",
    ),
}


class _Blank(dict[str, object]):
    """Format mapping that renders a missing detail as ``?`` rather than raising."""

    def __missing__(self, key: str) -> str:
        return "?"


def advice_for(kind: FindingKind, variant: str = "") -> Advice:
    """Return the advice for ``kind`` (and ``variant`` when the table has one)."""
    return ADVICE.get(f"{kind}:{variant}", ADVICE[kind]) if variant else ADVICE[kind]


def render(template: str, detail: Mapping[str, object]) -> str:
    """Fill an advice template from a finding's detail, with derived phrases."""
    values = _Blank(detail)
    host = detail.get("host")
    values["host_at"] = f" to {host}" if host else ""
    values["host_text"] = f" '{host}'" if host else ""
    values["host_name"] = str(host) if host else "the server"
    port = detail.get("port")
    values["port_text"] = f" port {port}" if port else ""
    status = detail.get("status")
    values["status_text"] = f" (HTTP {status})" if status else ""
    sub = detail.get("substatus")
    values["substatus_text"] = f" ({sub})" if sub else ""
    values["cipher_text"] = f", cipher {detail['cipher']}" if detail.get("cipher") else ""
    values["handshake_text"] = (
        "in a second handshake, after its Hello request"
        if detail.get("renegotiated")
        else "in its handshake"
    )
    values["address_text"] = f" (address {detail['address']})" if detail.get("address") else ""
    values["file_name"] = f"'{detail['file']}'" if detail.get("file") else "its log"
    values["code_text"] = f" (result code {detail['code']})" if "code" in detail else ""
    slot = detail.get("slot", "?")
    values["which_text"] = (
        "factory (Polycom) device certificate"
        if detail.get("which") == "factory"
        else f"custom platform device certificate {slot}"
    )
    values["key_text"] = (
        f", private key {detail['key_length']} bytes" if detail.get("key_length") else ""
    )
    values["previous_text"] = (
        "; no certificate was stored there before" if detail.get("previous") == "none" else ""
    )
    clock = detail.get("clock")
    values["clock_text"] = f" (the log's own clock reads {clock})" if clock else ""
    return template.format_map(values)
