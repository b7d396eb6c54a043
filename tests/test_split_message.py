"""How a long reply is cut into Telegram messages (`handlers.replies.split_message`)."""

from __future__ import annotations

from csp_bot.handlers.replies import split_message


def test_a_text_within_the_limit_is_one_message() -> None:
    assert split_message("one\ntwo", limit=7) == ["one\ntwo"]
    assert split_message("", limit=7) == [""]


def test_lines_fill_each_message_up_to_the_limit() -> None:
    assert split_message("aaa\nbbb\nccc\nddd", limit=7) == ["aaa\nbbb", "ccc\nddd"]
    assert split_message("aaa\nbbb\nccc", limit=8) == ["aaa\nbbb", "ccc"]
    assert split_message("aa\nbb\ncc", limit=5) == ["aa\nbb", "cc"]


def test_a_line_longer_than_the_limit_is_cut_hard() -> None:
    assert split_message("ab\n0123456789\ncd", limit=4) == ["ab", "0123", "4567", "89", "cd"]
    assert split_message("ab\n012345678\ncd", limit=4) == ["ab", "0123", "4567", "8\ncd"]
    assert split_message("01234567\nab", limit=4) == ["0123", "4567", "ab"]


def test_blank_lines_are_kept_inside_a_message_and_dropped_before_its_first_text() -> None:
    assert split_message("aa\n\nbb", limit=10) == ["aa\n\nbb"]
    assert split_message("\n\naa", limit=10) == ["aa"]
    assert split_message("aaaa\n\nbb", limit=5) == ["aaaa\n", "bb"]


def test_a_blank_end_is_not_sent_alone() -> None:
    assert split_message("aaaa\n\n\n", limit=5) == ["aaaa\n"]
    assert split_message("aaaa\n   ", limit=5) == ["aaaa"]


def test_every_message_is_within_the_limit_and_the_lines_are_all_there() -> None:
    lines = [f"<b>A-{n}</b> " + "x" * (n % 37) for n in range(400)]
    parts = split_message("\n".join(lines), limit=300)
    assert all(len(part) <= 300 for part in parts)
    assert "\n".join(parts).split("\n") == lines
