"""When the demo counts a live window as scored by a model of the history (plain functions)."""

from datetime import UTC, datetime, timedelta

from fraudstream.ml.rescoring import VersionSummary
from fraudstream.tooling.demo_watch import settled_windows

LIVE = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
LABELLED_UNTIL = LIVE - timedelta(hours=20)  # the history's newest label known at the start
WINDOWS = [LIVE + timedelta(minutes=10 * i) for i in range(6)]

# A catch-up's first version learned two days; the full fit all the history's labels.
FIRST = VersionSummary(1, LIVE - timedelta(days=12), full_fit=1, seen_frauds=60)
FULL = VersionSummary(2, LABELLED_UNTIL, full_fit=2, seen_frauds=520)


def test_windows_scored_before_training_caught_up_are_not_settled() -> None:
    scored = dict.fromkeys(WINDOWS, 1)
    assert settled_windows(scored, [FIRST], [], LABELLED_UNTIL) == 0
    # The full fit lands: windows still on the first version are due for re-scoring.
    assert settled_windows(scored, [FIRST, FULL], [], LABELLED_UNTIL) == 0
    assert settled_windows(scored | {WINDOWS[0]: 2}, [FIRST, FULL], [], LABELLED_UNTIL) == 1
    assert settled_windows(dict.fromkeys(WINDOWS, 2), [FIRST, FULL], [], LABELLED_UNTIL) == 6


def test_a_window_keeps_a_version_no_newer_one_may_score() -> None:
    # A label of the first live minutes arrived meanwhile: the newest full fit learned it, so it
    # may not score the first window, which stays on the one before.
    newest = VersionSummary(3, WINDOWS[0] + timedelta(minutes=3), full_fit=3, seen_frauds=530)
    scored = {WINDOWS[0]: 2} | dict.fromkeys(WINDOWS[1:], 3)
    assert settled_windows(scored, [FIRST, FULL, newest], [], LABELLED_UNTIL) == 6


def test_an_update_with_a_few_more_frauds_does_not_unsettle_a_window() -> None:
    update = VersionSummary(3, LIVE - timedelta(hours=2), full_fit=2, seen_frauds=530)
    scored = dict.fromkeys(WINDOWS, 2)
    assert settled_windows(scored, [FIRST, FULL, update], [], LABELLED_UNTIL) == 6
