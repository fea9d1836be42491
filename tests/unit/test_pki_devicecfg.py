"""Config snippets installing a custom device certificate: parameters, wrapper, limits."""

from __future__ import annotations

import base64
import re

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7
from tests.pkitools import DeviceCert, FactoryPki, make_device

from phoneprov.errors import InputError
from phoneprov.pki.devicecfg import device_cert_config

MAC = "0004f2abcdef"


@pytest.fixture(scope="module")
def device(factory: FactoryPki) -> DeviceCert:
    return make_device(factory.issuing, MAC, kind="rsa")


def pems(device: DeviceCert) -> tuple[bytes, bytes]:
    cert = device.cert.public_bytes(serialization.Encoding.PEM)
    key = device.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert, key


def test_ok_platform_slot_ucs5(device: DeviceCert) -> None:
    cert, key = pems(device)
    config = device_cert_config(cert, key, "platform2", ucs="5", profile=1)
    params = config.as_dict()
    assert params["device.set"] == "1"
    assert params["device.sec.TLS.customDeviceCert2.set"] == "1"
    p7 = params["device.sec.TLS.customDeviceCert2.publicCert"]
    assert p7.startswith("-----BEGIN PKCS7-----") and p7.endswith("-----END PKCS7-----")
    assert pkcs7.load_pem_pkcs7_certificates(p7.encode()) == [device.cert]
    assert params["device.sec.TLS.customDeviceCert2.privateKey"] == key.decode().strip()
    assert params["device.sec.TLS.profile.deviceCert1"] == "Platform2"
    xml = config.xml().decode()
    assert xml.startswith('<?xml version="1.0"') and "<device\n" in xml
    assert 'device.sec.TLS.customDeviceCert2.publicCert="-----BEGIN PKCS7-----\n' in xml


def test_ok_ucs33_single_platform_slot(device: DeviceCert) -> None:
    cert, key = pems(device)
    names = list(device_cert_config(cert, key, "platform1", ucs="3.3").as_dict())
    assert names == [
        "device.set",
        "device.sec.SSL.customDeviceCert.set",
        "device.sec.SSL.customDeviceCert.publicCert",
        "device.sec.SSL.customDeviceCert.privateKey",
    ]
    with pytest.raises(InputError, match="one platform certificate slot"):
        device_cert_config(cert, key, "platform2", ucs="3.3")


def test_ok_application_slot(device: DeviceCert) -> None:
    cert, key = pems(device)
    config = device_cert_config(cert, key, "app3")
    assert list(config.as_dict()) == ["sec.TLS.customDeviceCert.3", "sec.TLS.customDeviceKey.3"]
    assert "<sec\n" in config.xml().decode()


def test_ok_certificate_without_key_for_phone_csr(device: DeviceCert) -> None:
    cert, _ = pems(device)
    assert (
        "device.sec.TLS.customDeviceCert1.privateKey"
        not in device_cert_config(cert, None, "platform1").as_dict()
    )


def test_fail_key_over_4096_bytes_for_platform_slot(device: DeviceCert) -> None:
    """A 4677-byte key (as seen in phone logs) is refused with both sizes and the fix."""
    cert, _ = pems(device)
    header, footer = b"-----BEGIN PRIVATE KEY-----\n", b"-----END PRIVATE KEY-----\n"
    body_len = 4677 - len(header) - len(footer)
    raw = base64.encodebytes(b"\x00" * 4000)[:body_len]
    key = header + raw[:-1] + b"\n" + footer
    assert len(key) == 4677
    with pytest.raises(InputError) as caught:
        device_cert_config(cert, key, "platform1")
    assert str(caught.value) == (
        "private key for platform slot 1 is 4677 bytes; the phone accepts at most 4096"
    )
    assert "2048-bit RSA key or an application slot" in caught.value.hint


def test_fail_certificate_without_pkcs7_wrapper(device: DeviceCert) -> None:
    _, key = pems(device)
    wrapped = pkcs7.serialize_certificates([device.cert], serialization.Encoding.PEM)
    bare = re.sub(rb"-----(BEGIN|END) PKCS7-----\n?", b"", wrapped)
    with pytest.raises(InputError, match="without its -----BEGIN PKCS7----- wrapper"):
        device_cert_config(bare, key, "platform1")
    assert (
        device_cert_config(wrapped, key, "platform1").as_dict()[
            "device.sec.TLS.customDeviceCert1.publicCert"
        ]
        == wrapped.decode().strip()
    )


def test_fail_key_of_another_certificate(factory: FactoryPki, device: DeviceCert) -> None:
    cert, _ = pems(device)
    _, other_key = pems(make_device(factory.issuing, "0004f2000001", kind="rsa"))
    with pytest.raises(InputError, match="does not belong"):
        device_cert_config(cert, other_key, "platform1")


def test_fail_profile_for_application_slot(device: DeviceCert) -> None:
    cert, key = pems(device)
    with pytest.raises(InputError, match="Builtin, Platform1, Platform2"):
        device_cert_config(cert, key, "app1", profile=2)


def test_fail_certificate_over_8192_bytes(factory: FactoryPki, device: DeviceCert) -> None:
    """A leaf bundled with a long chain overflows the platform slot."""
    _, key = pems(device)
    chain = [factory.issuing.cert, factory.policy.cert, factory.root.cert] * 3
    bundle = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in [device.cert, *chain])
    with pytest.raises(InputError, match=r"certificate for platform slot 1 is \d+ bytes"):
        device_cert_config(bundle, key, "platform1")
    assert device_cert_config(bundle, key, "app1").slot == "app1"
