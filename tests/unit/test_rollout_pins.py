"""What a rollout makes the server offer each phone, in the render path (SQLite store).

A phone asks for the image named by ``APP_FILE_PATH`` (per model:
``APP_FILE_PATH_<model>`` in the master file) and reads ``sip.ver`` beside it
(SPEC §2), so a per-phone version is per-phone master files and per-phone
answers to the plain ``sip.ld`` / ``sip.ver`` names.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from phoneprov.model import DeviceStatus, MacAddress
from phoneprov.protocols.rollout_plan import PhoneState, RolloutState
from phoneprov.provisioning.firmware import FirmwareCatalog
from phoneprov.records import ActionRecord, RolloutPhone, RolloutRecord, Sighting
from phoneprov.store import Store, open_database

OLD, NEW = "5.9.5.0614", "6.4.0.1000"
MOVED, HELD = MacAddress("0004f2000010"), MacAddress("0004f2000011")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_database(f"sqlite:///{tmp_path / 'pins.db'}")
    yield opened
    opened.close()


@pytest.fixture
def catalog(store: Store, tmp_path: Path) -> FirmwareCatalog:
    found = FirmwareCatalog(
        tmp_path / "firmware", store.firmware, store.inventory, store.fleet_actions
    )
    for version in (OLD, NEW):
        image = tmp_path / f"{version}.ld"
        image.write_bytes(os.urandom(256))
        found.add(image, version, models=["VVX410"])
    found.assign(OLD, models=["VVX410"])
    return found


def _rollout(store: Store, state: RolloutState, finished: float | None = None) -> None:
    record = RolloutRecord("r1", NEW, state.value, "{}", 1.0, wave=1, finished=finished)
    phones = [
        RolloutPhone("r1", MOVED.value, 1, OLD, PhoneState.MOVED.value),
        RolloutPhone("r1", HELD.value, 2, OLD, PhoneState.HELD.value),
    ]
    assert store.fleet_actions.put_rollout(record, phones)


def test_ok_running_rollout_offers_target_to_moved_phones_only(
    store: Store, catalog: FirmwareCatalog
) -> None:
    _rollout(store, RolloutState.HALTED)
    assert catalog.app_file_paths("", mac=MOVED, model="VVX410") == {
        "VVX410": f"firmware/{NEW}/sip.ld"
    }
    assert catalog.app_file_paths("", mac=HELD, model="VVX410") == {
        "VVX410": f"firmware/{OLD}/sip.ld"
    }
    assert catalog.app_file_paths("") == {"VVX410": f"firmware/{OLD}/sip.ld"}
    moved = catalog.resolve("sip.ver", "VVX410", "", MOVED)
    assert moved is not None and moved.body == f"{NEW}\n".encode()
    held = catalog.resolve("sip.ld", "VVX410", "", HELD)
    assert held is not None and held.version == OLD and held.path is not None


def test_ok_completed_rollout_holds_until_a_later_assignment(
    store: Store, catalog: FirmwareCatalog
) -> None:
    _rollout(store, RolloutState.COMPLETED, finished=2.0)  # assignments were made later
    assert catalog.version_for("VVX410", "", MOVED) == OLD
    store.fleet_actions.update_rollout("r1", finished=4e9)  # finished after them
    assert catalog.version_for("VVX410", "", MOVED) == NEW
    catalog.assign(NEW, group="floor")
    assert catalog.version_for("VVX410", "lobby", MOVED) == NEW
    assert store.fleet_actions.rollout_pins([(MOVED.value, "VVX410", "floor")]) != {}
    store.fleet_actions.update_rollout("r1", state=RolloutState.ABORTED.value)
    assert catalog.version_for("VVX410", "", MOVED) == OLD


def test_ok_a_wave_is_claimed_once(store: Store, catalog: FirmwareCatalog) -> None:
    _rollout(store, RolloutState.RUNNING)
    store.fleet_actions.update_rollout("r1", wave=1)
    assert store.fleet_actions.claim_wave("r1", 2, 10.0)
    assert not store.fleet_actions.claim_wave("r1", 2, 11.0)
    record = store.fleet_actions.rollout("r1")
    assert record is not None and (record.wave, record.wave_started) == (2, 10.0)


def test_ok_accepted_action_is_confirmed_when_the_phone_proves_itself_again(
    store: Store,
) -> None:
    store.fleet_actions.add_actions([ActionRecord(0, 100.0, MOVED.value, "resync", "accepted", "")])
    seen = Sighting(MOVED, 90.0, "10.0.0.5", "https", DeviceStatus.KNOWN, own_identity=True)
    store.record([seen], [])
    assert store.fleet_actions.actions(MOVED)[0].confirmed is None  # older than the request
    store.record([Sighting(MOVED, 120.0, "10.0.0.5", "https", DeviceStatus.KNOWN)], [])
    assert store.fleet_actions.actions(MOVED)[0].confirmed is None  # did not prove who it is
    store.record(
        [Sighting(MOVED, 130.0, "10.0.0.5", "https", DeviceStatus.KNOWN, own_identity=True)], []
    )
    assert store.fleet_actions.actions(MOVED)[0].confirmed == 130.0
    kinds = [(e.kind, e.detail) for e in store.events_for(MOVED)]
    assert ("fleet-resync", "confirmed: the phone fetched its files again") in kinds
