"""The zone a recipient's window is read in: their own attribute, else their number's single zone, else the queue's."""

from __future__ import annotations

import subprocess
import sys
from zoneinfo import available_timezones

import pytest

from wabacast.domain.recipient_zones import phone_number_zone, recipient_zone, valid_zone

NEW_YORK_NUMBER = "+12125550123"
ECUADOR_MOBILE = "+593991234567"  # Guayaquil or Galapagos
SPAIN_MOBILE = "+34612345678"  # Madrid or the Canaries
QUEUE_ZONE = "America/Bogota"


def test_the_contacts_own_time_zone_comes_first() -> None:
    # GIVEN a contact whose attribute says Lima, with a New York number
    # WHEN their zone is chosen
    zone = recipient_zone("America/Lima", NEW_YORK_NUMBER, QUEUE_ZONE)
    # THEN the attribute wins
    assert zone == "America/Lima"


def test_a_number_with_a_single_zone_is_used_when_the_contact_has_none() -> None:
    # GIVEN a contact without a timezone attribute and a Manhattan number
    # WHEN their zone is chosen
    zone = recipient_zone(None, NEW_YORK_NUMBER, QUEUE_ZONE)
    # THEN it is the number's only zone
    assert zone == "America/New_York"


@pytest.mark.parametrize("attribute", ["", "Mars/Olympus_Mons", "../../etc/passwd", "europe/madrid", "America"])
def test_an_invalid_attribute_falls_back_to_the_number(attribute: str) -> None:
    # GIVEN a contact whose timezone attribute is not an IANA zone
    # WHEN their zone is chosen
    zone = recipient_zone(attribute, NEW_YORK_NUMBER, QUEUE_ZONE)
    # THEN the number decides
    assert zone == "America/New_York"


@pytest.mark.parametrize("number", [ECUADOR_MOBILE, SPAIN_MOBILE])
def test_a_number_spanning_several_zones_falls_back_to_the_queue(number: str) -> None:
    # GIVEN a number whose prefix covers two zones, and no attribute
    # WHEN the recipient's zone is chosen
    zone = recipient_zone(None, number, QUEUE_ZONE)
    # THEN the queue's zone is used rather than a guess
    assert zone == QUEUE_ZONE


@pytest.mark.parametrize("number", ["+80012345678", "not a number", ""])
def test_a_number_without_a_known_zone_falls_back_to_the_queue(number: str) -> None:
    # GIVEN a number phonenumbers knows no zone for (an international freephone), or no number at all
    # WHEN the recipient's zone is chosen
    zone = recipient_zone(None, number, QUEUE_ZONE)
    # THEN the queue's zone is used
    assert zone == QUEUE_ZONE


@pytest.mark.parametrize(
    ("number", "zones"),
    [
        (NEW_YORK_NUMBER, "America/New_York"),
        ("+442071838750", "Europe/London"),
        ("+59342123456", "America/Guayaquil"),  # a Guayaquil landline, unlike the mobile ranges
        (ECUADOR_MOBILE, None),
        (SPAIN_MOBILE, None),
        ("+80012345678", None),
    ],
)
def test_a_numbers_zone_is_known_only_when_it_is_single(number: str, zones: str | None) -> None:
    # GIVEN a number
    # WHEN its zone is looked up
    # THEN only a single, known zone is answered
    assert phone_number_zone(number) == zones


def test_every_zone_of_the_database_is_valid() -> None:
    # GIVEN every zone name the tz database lists, less the files that are not zones
    names = available_timezones() - {"Factory", "localtime", "posixrules"}
    # WHEN each is checked
    refused = [name for name in names if not valid_zone(name)]
    # THEN none is refused
    assert names
    assert refused == []


@pytest.mark.parametrize(
    "name",
    [
        "",
        "Europe/Madrid/",
        "Europe/../UTC",
        "../etc/passwd",
        "/usr/share/zoneinfo/UTC",
        "Europe\\Madrid",
        "Europe/Madrid\x00",
        "localtime",
        "Factory",
        "right/Europe/Madrid",
        "posix/UTC",
        "Etc/Unknown",
        "America",
        "+02:00",
    ],
)
def test_names_that_are_not_zones_are_refused(name: str) -> None:
    # GIVEN a name that is not an IANA zone or points outside the database
    # WHEN it is checked
    # THEN it is refused without raising
    assert not valid_zone(name)


def test_importing_the_module_leaves_the_phone_zone_tables_unloaded() -> None:
    # GIVEN a fresh interpreter (this one has loaded the tables already)
    script = (
        "import sys, wabacast.domain.recipient_zones; "
        "sys.exit('phonenumbers.timezone' in sys.modules or 'phonenumbers.tzdata' in sys.modules)"
    )
    # WHEN it imports the module
    finished = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True)  # noqa: S603 (our interpreter)
    # THEN the heavy prefix tables wait for the first lookup
    assert finished.returncode == 0, finished.stderr
