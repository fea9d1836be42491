"""The simulator's trace, written the way a phone writes its log (SPEC §10).

Lines are ``stamp|module|level|missed|message``: the Updater stamps the time
since boot as ``hhmmss.mmm`` (``011511.006`` is 1 h 15 min 11.006 s; its clock
is not set yet), the application the wall clock as ``MMDDhhmmss``: two of the
three formats the Polycom administrator's guides define (the third,
``YYMMDDhhmm``, is ``wall_stamp``'s other style). The wording follows the
phone's (``Download of 'x' succeeded on attempt 1``) so ``phoneprov logs
analyze`` reads a trace, or the boot log the simulator uploads, like a real
phone's. Pure: times are passed in.
"""

from __future__ import annotations

import datetime as dt

from phoneprov.sim.plan import Outcome, Step

INFO = 3
ERROR = 4


def boot_stamp(seconds: float) -> str:
    """Return the time since boot as the Updater writes it: ``hhmmss.mmm``.

    ``011511.006`` is 1 h 15 min 11.006 s after boot; past 99 h the hours stay at 99.
    """
    millis = min(round(seconds * 1000), (99 * 3600 + 59 * 60 + 59) * 1000 + 999)
    whole, ms = divmod(millis, 1000)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours:02d}{minutes:02d}{secs:02d}.{ms:03d}"


def wall_stamp(moment: dt.datetime, style: str = "MMDDhhmmss") -> str:
    """Return a local time as ``MMDDhhmmss`` (the default) or ``YYMMDDhhmm``."""
    return moment.strftime("%y%m%d%H%M" if style == "YYMMDDhhmm" else "%m%d%H%M%S")


def line(stamp: str, module: str, level: int, message: str) -> str:
    """One log line; the module is padded to five characters like the phone's."""
    return f"{stamp}|{module:<5}|{level}|00|{message}"


def _why(outcome: Outcome) -> str:
    if outcome.status == 0:
        return outcome.error or "no answer"
    if outcome.status in (401, 403, 404):
        return f"HTTP error {outcome.status}"
    return f"server returned status {outcome.status}"


def transfer(step: Step, outcome: Outcome, attempt: int, size: int) -> tuple[int, str]:
    """Return (level, message) for one request, in the phone's words."""
    name = step.path
    if step.method == "HEAD":
        if outcome.ok:
            detail = f"{outcome.size} bytes" if outcome.size is not None else "present"
            return INFO, f"Size check of '{name}' on server: {detail}"
        return INFO, f"Size check of '{name}' on server: not there ({_why(outcome)})"
    verb = "Upload" if step.method == "PUT" else "Download"
    if outcome.ok:
        return INFO, f"{verb} of '{name}' succeeded on attempt {attempt} ({size} bytes)"
    return ERROR, f"{verb} of '{name}' failed on attempt {attempt}: {_why(outcome)}"


def tls_up(host: str, mutual: bool, common_name: str) -> str:
    """The message once a stage's first TLS connection is up."""
    if mutual:
        return (
            f"Mutual TLS established with {host}: server certificate verified, "
            f"device certificate CN={common_name} sent"
        )
    return f"TLS connection established with {host}: server certificate verified"


def stage_start(stage: str, url: str, user_agent: str) -> str:
    return f"{stage} stage: boot server {url} as '{user_agent}'"


def server_moved(url: str) -> str:
    """device.prov.* named another server: the phone restarts against it."""
    return f"Provisioning server changed to {url} by device settings; rebooting"
