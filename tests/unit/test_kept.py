"""The bounded map a process keeps copies in (application/kept.py): at most its size, the entry
kept longest ago dropped first, a kept-again entry the newest."""

from __future__ import annotations

from application.kept import Kept


def test_the_entry_kept_longest_ago_goes_first_and_a_kept_again_one_is_the_newest() -> None:
    kept: Kept[str, int] = Kept(3)
    for key, value in (("a", 1), ("b", 2), ("c", 3)):
        kept.keep(key, value)
    kept.keep("a", 10)  # now the newest
    kept.keep("d", 4)
    assert len(kept) == 3
    assert [kept.get(k) for k in "abcd"] == [10, None, 3, 4]
    kept.drop("c")
    kept.drop("missing")
    assert [kept.get(k) for k in "abcd"] == [10, None, None, 4]
    assert len(kept) == 2
