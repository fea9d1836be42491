"""Routes of the site CA: one certificate, issuing a server certificate, revoking,
the CRL, and the queue of phone CSRs (list, sign, reject). Thin over
``provisioning.certificates`` and ``provisioning.signing``."""

from __future__ import annotations

from aiohttp import web

from phoneprov.errors import CertificateError, InputError
from phoneprov.protocols.polycom import ResourceKind
from phoneprov.provisioning import signing
from phoneprov.provisioning.certificates import issue_server_certificate, revoke_certificates
from phoneprov.servers.admin.bodies import (
    CertificateDetail,
    Csr,
    CsrReject,
    CsrSigned,
    Revoked,
    RevokeRequest,
    ServerCertIssued,
    ServerCertRequest,
)
from phoneprov.servers.admin.call import Call, json
from phoneprov.servers.admin.table import MANAGE, VIEW, Route

CERTIFICATES = ResourceKind.CERTIFICATES
CRL_TYPE = "application/pkix-crl"  # RFC 2585 §4.2: a DER CRL


async def certificate(call: Call) -> web.Response:
    serial = call.request.match_info["serial"]
    issued = await call.run(signing.certificate, call.services.settings, serial)
    return json(CertificateDetail.of(issued))


async def issue_server(call: Call) -> web.Response:
    body = await call.body(ServerCertRequest)
    issued = await call.run(
        issue_server_certificate, call.services.settings, body.names, key=body.key, days=body.days
    )
    return json(
        ServerCertIssued(
            serial=issued.facts.serial_hex,
            subject=issued.facts.subject,
            not_after=issued.facts.not_after.isoformat(),
            installed=issued.cert_path.name,
            pem=issued.cert_pem.decode("ascii"),
        ),
        201,
    )


async def revoke(call: Call) -> web.Response:
    serial = call.request.match_info["serial"]
    body = await call.body(RevokeRequest)
    await call.run(signing.certificate, call.services.settings, serial)
    done = await call.run(
        revoke_certificates, call.services.settings, serial=serial, reason=body.reason
    )
    return json(Revoked(serials=[r.serial_hex for r in done.records], crl=done.crl_path.name))


async def crl(call: Call) -> web.Response:
    data = await call.run(signing.crl_der, call.services.settings)
    return web.Response(body=data, content_type=CRL_TYPE)


async def csr_queue(call: Call) -> web.Response:
    queued = await call.run(signing.queued_csrs, call.services.settings)
    return json([Csr.of(q) for q in queued])


async def sign_csr(call: Call) -> web.Response:
    name = call.request.match_info["name"]
    try:
        signed = await call.run(signing.sign_queued_csr, call.services.settings, name)
    except CertificateError as error:
        raise InputError(
            f"{name}: {error}",
            f"{error.hint} Or reject it: POST /api/v1/csrs/{name}/reject.",
        ) from None
    return json(
        CsrSigned(
            name=name,
            serial=signed.facts.serial_hex,
            subject=signed.facts.subject,
            not_after=signed.facts.not_after.isoformat(),
            slot=signed.slot,
            pem=signed.cert_pem.decode("ascii"),
        )
    )


async def reject_csr(call: Call) -> web.Response:
    name = call.request.match_info["name"]
    body = await call.body(CsrReject)
    queued = await call.run(signing.reject_csr, call.services.settings, name, body.reason)
    return json(Csr.of(queued))


ROUTES: tuple[Route, ...] = (
    Route(
        "GET",
        "/api/v1/certificates/{serial}",
        "getCertificate",
        "One certificate the site CA issued: what it says, its revocation, its PEM",
        certificate,
        VIEW,
        CERTIFICATES,
        response=CertificateDetail,
        tag="certificates",
    ),
    Route(
        "POST",
        "/api/v1/certificates/server",
        "issueServerCertificate",
        "Issue and install a server certificate (used after `phoneprov serve` restarts)",
        issue_server,
        MANAGE,
        CERTIFICATES,
        body=ServerCertRequest,
        response=ServerCertIssued,
        status=201,
        tag="certificates",
    ),
    Route(
        "POST",
        "/api/v1/certificates/{serial}/revoke",
        "revokeCertificate",
        "Revoke a certificate: the HTTPS listeners refuse it, the CRL is re-signed",
        revoke,
        MANAGE,
        CERTIFICATES,
        body=RevokeRequest,
        response=Revoked,
        tag="certificates",
    ),
    Route(
        "GET",
        "/api/v1/crl",
        "getCrl",
        "The site CA's current CRL (DER)",
        crl,
        VIEW,
        CERTIFICATES,
        response=CRL_TYPE,
        errors=frozenset({404}),
        tag="certificates",
    ),
    Route(
        "GET",
        "/api/v1/csrs",
        "listCsrs",
        "Phone CSRs waiting for a signature ([policy] csr_policy = manual)",
        csr_queue,
        VIEW,
        CERTIFICATES,
        response=list[Csr],
        tag="certificates",
    ),
    Route(
        "POST",
        "/api/v1/csrs/{name}/sign",
        "signCsr",
        "Sign a queued CSR for [policy] csr_slot and take it out of the queue",
        sign_csr,
        MANAGE,
        CERTIFICATES,
        response=CsrSigned,
        tag="certificates",
    ),
    Route(
        "POST",
        "/api/v1/csrs/{name}/reject",
        "rejectCsr",
        "Delete a queued CSR unsigned",
        reject_csr,
        MANAGE,
        CERTIFICATES,
        body=CsrReject,
        response=Csr,
        tag="certificates",
    ),
)
