"""The admin roles as rows of the policy table, the audit trail's masking, the OpenAPI
document (issue 14)."""

from __future__ import annotations

import pytest
from openapi_spec_validator import validate

from phoneprov.model import Principal, PrincipalKind, Protocol
from phoneprov.policy import Action, PolicyRules, Reason, decide
from phoneprov.protocols.polycom import DEFAULT_FOLDERS, Resource, ResourceKind, classify
from phoneprov.provisioning.trail import MASK, diff
from phoneprov.servers.admin.openapi import document

RULES = PolicyRules(folders=dict(DEFAULT_FOLDERS))
K = ResourceKind


def may(role: str, action: Action, kind: ResourceKind) -> bool:
    principal = Principal(PrincipalKind(role), Protocol.HTTPS, role)
    return decide(principal, action, Resource(kind.value, kind), RULES).allowed


@pytest.mark.parametrize(
    "role,action,kind,allowed",
    [
        ("viewer", Action.VIEW, K.FLEET, True),
        ("viewer", Action.VIEW, K.AUDIT, True),
        ("viewer", Action.VIEW, K.SECRETS, False),
        ("viewer", Action.MANAGE, K.FLEET, False),
        ("operator", Action.MANAGE, K.FLEET, True),
        ("operator", Action.VIEW, K.SECRETS, False),
        ("operator", Action.MANAGE, K.CERTIFICATES, False),
        ("operator", Action.MANAGE, K.ADMINISTRATORS, False),
        ("admin", Action.MANAGE, K.CERTIFICATES, True),
        ("admin", Action.MANAGE, K.ACCOUNTS, True),
        ("admin", Action.VIEW, K.SECRETS, True),
        ("admin", Action.MANAGE, K.AUDIT, False),  # append-only, even for admins
    ],
)
def test_ok_role_rows(role: str, action: Action, kind: ResourceKind, allowed: bool) -> None:
    assert may(role, action, kind) is allowed


@pytest.mark.parametrize("role", ["viewer", "operator", "admin"])
def test_attack_admin_principal_never_reads_a_phone_file(role: str) -> None:
    principal = Principal(PrincipalKind(role), Protocol.HTTPS, role)
    for name in ("000000000000.cfg", "0004f2000001-phone-secrets.cfg", "site.cfg"):
        decision = decide(principal, Action.READ, classify(name), RULES)
        assert decision.reason is Reason.NOT_A_PHONE


def test_ok_phone_principal_has_no_admin_action() -> None:
    phone = Principal(PrincipalKind.SITE_ACCOUNT, Protocol.HTTP, "tools")
    assert not decide(phone, Action.VIEW, Resource("fleet", K.FLEET), RULES).allowed


def test_ok_trail_masks_secrets_by_name_and_inside_values() -> None:
    changes = diff(
        {"password": "old-secret", "line1": "ext=1,password=abc"},
        {"password": "new-secret", "line1": "ext=1,password=xyz"},
    )
    assert changes["password"] == [MASK, MASK]
    assert changes["line1"] == [f"ext=1,password={MASK}", f"ext=1,password={MASK}"]
    assert "abc" not in str(changes) and "xyz" not in str(changes)


def test_ok_openapi_document_is_valid_openapi_31() -> None:
    doc = document()
    validate(doc)
    devices = doc["paths"]["/api/v1/devices"]["get"]
    assert {p["name"] for p in devices["parameters"]} >= {"limit", "cursor", "sort", "q"}
    assert "403" in devices["responses"] and "401" in devices["responses"]
