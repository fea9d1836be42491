"""Firmware routes: upload an image, assign a version to models or a group, and how
many phones run each version. Thin over ``provisioning.firmware``; the rollout
routes (waves, pause, resume) are ``phoneprov rollout``'s."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from aiohttp import web

from phoneprov.errors import InputError
from phoneprov.protocols.polycom import ResourceKind
from phoneprov.provisioning.firmware import add_firmware, assign_firmware
from phoneprov.servers.admin.bodies import (
    FirmwareAssign,
    FirmwareAssigned,
    FirmwareImage,
    VersionCount,
)
from phoneprov.servers.admin.call import Call, json
from phoneprov.servers.admin.table import MANAGE, VIEW, Param, Route

FLEET = ResourceKind.FLEET
MAX_IMAGE = 512 * 1024**2  # bytes: a combined VVX sip.ld is a few hundred MB at most
CHUNK = 1024**2
IMAGE_TYPE = "application/octet-stream"


def _split(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


async def _save_body(call: Call, target: Path) -> int:
    """Stream the request body into ``target``; InputError past ``MAX_IMAGE`` bytes."""
    declared = call.request.content_length
    if declared is not None and declared > MAX_IMAGE:
        raise InputError(
            f"the image is {declared} bytes; the API takes at most {MAX_IMAGE}",
            "Copy it to the server and run `phoneprov firmware add FILE --version V`.",
        )
    size = 0
    with target.open("wb") as out:
        while chunk := await call.request.content.read(CHUNK):
            size += len(chunk)
            if size > MAX_IMAGE:
                raise InputError(
                    f"the image is over {MAX_IMAGE} bytes, the most the API takes",
                    "Copy it to the server and run `phoneprov firmware add FILE --version V`.",
                )
            await asyncio.to_thread(out.write, chunk)
    return size


async def upload_image(call: Call) -> web.Response:
    version = call.query("version")
    if not version:
        raise InputError(
            "the image needs a version",
            "Add ?version=6.4.3.1234 (and &models=VVX410 or &part=3111-48400-001).",
        )
    if call.request.content_type != IMAGE_TYPE:
        raise InputError(
            f"the body is {call.request.content_type}, not a firmware image",
            f"Send the sip.ld bytes with Content-Type: {IMAGE_TYPE}.",
        )
    settings = call.services.settings
    folder = settings.site_dir / "firmware"
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder, prefix=".api-upload-") as temp:
        source = Path(temp) / "sip.ld"
        if await _save_body(call, source) == 0:
            raise InputError("the request body is empty", "Send the sip.ld image as the body.")
        added = await call.run(
            add_firmware,
            settings,
            source,
            version,
            models=_split(call.query("models")),
            part=call.query("part") or "",
        )
    image = added.image
    return json(
        FirmwareImage(
            version=image.version,
            part=image.part,
            models=list(image.models),
            sha256=image.sha256,
            size=image.size,
            new=added.new,
        ),
        201,
    )


async def assign(call: Call) -> web.Response:
    body = await call.body(FirmwareAssign)
    targets = await call.run(
        assign_firmware,
        call.services.settings,
        body.version,
        models=body.models,
        group=body.group,
    )
    return json(FirmwareAssigned(version=body.version, targets=targets))


async def versions(call: Call) -> web.Response:
    counts = await call.run(call.services.store.admin.fleet_counts, 0.0)
    by_version = sorted(counts.by_firmware.items(), key=lambda item: (-item[1], item[0]))
    return json([VersionCount(version=v, phones=n) for v, n in by_version])


ROUTES: tuple[Route, ...] = (
    Route(
        "POST",
        "/api/v1/firmware/images",
        "uploadFirmware",
        "Add a firmware image to the catalog (the body is the .ld file)",
        upload_image,
        MANAGE,
        FLEET,
        body=IMAGE_TYPE,
        response=FirmwareImage,
        status=201,
        query=(
            Param("version", {"type": "string"}, "The version it is (6.4.3.1234); required."),
            Param("models", {"type": "string"}, "Models it is for, comma-separated (VVX410)."),
            Param("part", {"type": "string"}, "Or the part number it is for (3111-48400-001)."),
        ),
        tag="firmware",
    ),
    Route(
        "POST",
        "/api/v1/firmware/assign",
        "assignFirmware",
        "Give a version to models site-wide, or to a group",
        assign,
        MANAGE,
        FLEET,
        body=FirmwareAssign,
        response=FirmwareAssigned,
        tag="firmware",
    ),
    Route(
        "GET",
        "/api/v1/firmware/versions",
        "firmwareVersions",
        "How many phones run each version, most first",
        versions,
        VIEW,
        FLEET,
        response=list[VersionCount],
        tag="firmware",
    ),
)
