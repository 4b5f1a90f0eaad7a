"""Which time zone a recipient's sending window is read in when a queue sends in recipient local time.

In order: the contact's own `timezone` attribute when it names a real IANA zone; else the zone the phone number's
prefix maps to, when it maps to exactly one (+1 212 is New York, but +34 6 is both Madrid and the Canaries and
+593 9 both Guayaquil and Galapagos); else the queue's zone.
"""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# Area/Location names of the tz database: letters, digits, "_", "+", "-", never "." segments or a leading "/", so a
# name can never point ZoneInfo at a file outside the database.
_ZONE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9][A-Za-z0-9_+-]*)*$")
# Files of the system's zoneinfo directory that are not zones: "localtime" follows the machine, "posix/" and
# "right/" are copies of the database (the latter counting leap seconds).
_NOT_ZONES = frozenset({"localtime", "posixrules", "Factory"})
_NOT_ZONE_PREFIXES = ("posix/", "right/")
# What phonenumbers answers when it knows no zone for a number.
_UNKNOWN_ZONE = "Etc/Unknown"


def valid_zone(name: str) -> bool:
    """Whether `name` is an IANA time zone that ZoneInfo can load (cheaper than scanning available_timezones())."""
    if not _ZONE_NAME.fullmatch(name) or name in _NOT_ZONES or name.startswith(_NOT_ZONE_PREFIXES):
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        # OSError: a name that is a directory of the database ("America") rather than a zone file.
        return False
    return True


def phone_number_zone(phone_number: str) -> str | None:
    """The one time zone the number's prefix maps to, or None when it maps to none or to several."""
    import phonenumbers

    # Deferred: the timezone prefix tables take a noticeable share of a cold start and only this path needs them.
    from phonenumbers import timezone as phone_timezones

    try:
        parsed = phonenumbers.parse(phone_number, None)
    except phonenumbers.NumberParseException:
        return None
    zones = phone_timezones.time_zones_for_number(parsed)
    if len(zones) != 1 or zones[0] == _UNKNOWN_ZONE or not valid_zone(zones[0]):
        return None
    return str(zones[0])


def recipient_zone(contact_timezone: str | None, phone_number: str, queue_zone: str) -> str:
    if contact_timezone is not None and valid_zone(contact_timezone):
        return contact_timezone
    return phone_number_zone(phone_number) or queue_zone
