"""When reminders may go: offsets, quiet hours, weekends, bank holidays, the clock changes."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from csp_bot.models.localtime import parse_offsets, parse_quiet_hours, wall_clock
from csp_bot.scheduler.timing import WorkingCalendar

LONDON = ZoneInfo("Europe/London")
CALENDAR = WorkingCalendar(parse_quiet_hours("20:00-08:00"), LONDON)


def uk(text: str) -> datetime:
    """A UK wall-clock time as UTC."""
    return wall_clock(datetime.fromisoformat(text), LONDON)


def shown(moment: datetime) -> str:
    return f"{moment.astimezone(LONDON):%a %Y-%m-%d %H:%M %Z}"


def test_offsets_parse_longest_first() -> None:
    offsets = parse_offsets("2h, 7d,1d")
    assert [offset.label for offset in offsets] == ["7d", "1d", "2h"]


@pytest.mark.parametrize("text", ["", "7", "7x", "0d", "1d,1d", "24h,1d", "d7"])
def test_bad_offsets_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_offsets(text)


@pytest.mark.parametrize("text", ["8-20", "25:00-08:00", "20:00-20:00", "evenings"])
def test_bad_quiet_hours_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_quiet_hours(text)


def test_days_keep_the_wall_clock_across_the_spring_change() -> None:
    # The clocks went forward on Sunday 28 March 2021.
    meeting = uk("2021-04-01T10:00")
    seven_days, _, two_hours = parse_offsets("7d,1d,2h")
    assert shown(seven_days.before(meeting, LONDON)) == "Thu 2021-03-25 10:00 GMT"
    assert shown(two_hours.before(meeting, LONDON)) == "Thu 2021-04-01 08:00 BST"


def test_days_keep_the_wall_clock_across_the_autumn_change() -> None:
    # The clocks went back on Sunday 31 October 2021.
    meeting = uk("2021-11-04T10:00")
    seven_days = parse_offsets("7d")[0]
    assert shown(seven_days.before(meeting, LONDON)) == "Thu 2021-10-28 10:00 BST"


@pytest.mark.parametrize(
    ("fire", "goes"),
    [
        ("2021-06-08T10:00", "Tue 2021-06-08 10:00 BST"),  # working hours: at once
        ("2021-06-08T19:59", "Tue 2021-06-08 19:59 BST"),
        ("2021-06-08T20:00", "Wed 2021-06-09 08:00 BST"),  # quiet from 20:00
        ("2021-06-09T07:59", "Wed 2021-06-09 08:00 BST"),
        ("2021-06-11T21:30", "Mon 2021-06-14 08:00 BST"),  # Friday night: Monday morning
        ("2021-06-12T12:00", "Mon 2021-06-14 08:00 BST"),  # Saturday
        ("2021-05-28T20:30", "Tue 2021-06-01 08:00 BST"),  # Spring bank holiday Monday 31 May
        ("2021-12-24T21:00", "Wed 2021-12-29 08:00 GMT"),  # Christmas: 27, 28 in lieu
        ("2021-03-29T07:30", "Mon 2021-03-29 08:00 BST"),  # first morning of summer time
        ("2021-11-01T07:30", "Mon 2021-11-01 08:00 GMT"),  # first morning of winter time
        ("2022-09-19T10:00", "Tue 2022-09-20 08:00 BST"),  # the Queen's funeral, a one-off
    ],
)
def test_quiet_times_move_to_the_next_working_morning(fire: str, goes: str) -> None:
    assert shown(CALENDAR.next_open(uk(fire))) == goes


def test_quiet_hours_are_in_local_time_on_both_sides_of_a_change() -> None:
    # 19:30 is allowed in summer and in winter, although it is 18:30 and 19:30 UTC.
    assert CALENDAR.is_open(uk("2021-03-26T19:30"))
    assert CALENDAR.is_open(uk("2021-03-29T19:30"))
    assert not CALENDAR.is_open(uk("2021-03-29T20:00"))
    assert uk("2021-03-29T20:00") == datetime(2021, 3, 29, 19, 0, tzinfo=UTC)


def test_a_reminder_held_past_its_event_goes_at_the_last_working_moment_before() -> None:
    # A 2-hour reminder for a Monday 08:00 meeting would fall at 06:00, and the next working
    # morning is the meeting itself: it goes on Friday evening instead.
    meeting = uk("2021-06-14T08:00")
    fire = parse_offsets("2h")[0].before(meeting, LONDON)
    assert shown(CALENDAR.send_time(fire, meeting)) == "Fri 2021-06-11 19:59 BST"


def test_a_reminder_held_to_the_morning_still_goes_if_the_event_is_later() -> None:
    meeting = uk("2021-06-14T09:30")
    fire = parse_offsets("2h")[0].before(meeting, LONDON)
    assert shown(CALENDAR.send_time(fire, meeting)) == "Mon 2021-06-14 08:00 BST"


def test_off_turns_off_quiet_hours_weekends_and_bank_holidays() -> None:
    always = WorkingCalendar(parse_quiet_hours("off"), LONDON)
    for moment in ("2021-06-12T03:00", "2021-12-25T23:00", "2021-05-31T21:00"):
        assert always.next_open(uk(moment)) == uk(moment)


def test_quiet_hours_within_one_day() -> None:
    lunch = WorkingCalendar(parse_quiet_hours("12:00-13:00"), LONDON)
    assert shown(lunch.next_open(uk("2021-06-08T12:30"))) == "Tue 2021-06-08 13:00 BST"
    assert shown(lunch.next_open(uk("2021-06-08T23:30"))) == "Tue 2021-06-08 23:30 BST"
