"""A consumer's retries and what it reports: only failures while the dependency answers count
towards quarantine; stuck, quarantining and behind are judged on an injected clock."""

from __future__ import annotations

import threading

from application.consumer_state import QUARANTINE, RETRY, ConsumerState, Policy
from domain.values import rfc3339
from tests.clock import ManualClock


def state(clock: ManualClock, attempts: int = 3) -> ConsumerState:
    policy = Policy(max_attempts=attempts, backoff=1, max_backoff=4)
    consumer = ConsumerState("relay", policy, clock=clock)
    consumer.running = True
    return consumer


def test_an_event_is_quarantined_after_the_attempts_counted_while_the_dependency_answers():
    clock = ManualClock()
    consumer = state(clock)
    verdicts = [consumer.failed(9, ValueError("bad"), answers=True) for _ in range(3)]
    assert verdicts == [RETRY, RETRY, QUARANTINE]
    assert consumer.status(12)["attempts"] == 3 and consumer.quarantining


def test_an_outage_is_retried_for_ever_and_counts_nothing():
    clock = ManualClock()
    consumer = state(clock)
    for _ in range(50):
        assert consumer.failed(9, OSError("down"), answers=False) == RETRY
    status = consumer.status(12)
    assert status["attempts"] == 0 and not status["quarantining"]
    assert status["last_error"] == "OSError: down" and status["failing_position"] == 9


def test_the_backoff_doubles_up_to_its_bound():
    clock = ManualClock()
    consumer = state(clock, attempts=100)
    waits = []
    for _ in range(5):
        consumer.failed(9, ValueError("bad"), answers=True)
        waits.append(consumer.remaining())
    assert waits == [1, 2, 4, 4, 4]
    clock.advance(4)
    assert consumer.remaining() == 0


def test_waiting_out_the_backoff_follows_the_injected_clock():
    clock = ManualClock()
    consumer = state(clock)
    consumer.failed(9, ValueError("bad"), answers=True)
    done = threading.Event()
    waiter = threading.Thread(target=lambda: (consumer.wait(threading.Event()), done.set()))
    waiter.start()
    assert not done.wait(0.2)
    clock.advance(1)
    assert done.wait(10)
    waiter.join()


def test_a_failure_on_another_position_starts_the_count_again():
    clock = ManualClock()
    consumer = state(clock)
    consumer.failed(9, ValueError("bad"), answers=True)
    consumer.failed(9, ValueError("bad"), answers=True)
    assert consumer.failed(10, ValueError("bad"), answers=True) == RETRY
    assert consumer.attempts == 1


def test_passing_the_position_ends_the_failure():
    clock = ManualClock()
    consumer = state(clock)
    consumer.failed(9, ValueError("bad"), answers=True)
    consumer.passed(8)
    assert consumer.attempts == 1
    consumer.passed(9)
    status = consumer.status(9)
    assert status["attempts"] == 0 and status["failing_since"] is None and status["lag"] == 0


def test_ready_problems_stuck_quarantining_and_behind():
    clock = ManualClock()
    consumer = state(clock)
    assert consumer.problems(10, stuck_seconds=30, max_lag=100) == []
    consumer.failed(None, OSError("down"), answers=False)
    assert consumer.problems(10, 30, 100) == []
    clock.advance(31)
    assert consumer.problems(10, 30, 100) == ["relay stuck at 1"]
    consumer.succeeded()
    assert consumer.problems(10, 30, 100) == []
    consumer.failed(4, ValueError("bad"), answers=True)
    assert consumer.problems(10, 30, 100) == ["relay quarantining position 4"]
    consumer.was_quarantined(4)
    assert consumer.problems(10, 30, 100) == [] and consumer.quarantined == 1
    assert consumer.problems(200, 30, 100) == ["relay 196 positions behind"]
    assert consumer.problems(200, 30, 0) == []  # 0: no limit


def test_a_consumer_is_stuck_once_the_clock_has_passed_the_threshold_since_it_began_failing():
    clock = ManualClock()
    consumer = state(clock)
    began = clock.now()
    consumer.failed(7, OSError("down"), answers=False)  # an outage: retried, never quarantined
    clock.advance(29.5)
    consumer.failed(7, OSError("down"), answers=False)
    assert consumer.problems(10, stuck_seconds=30, max_lag=100) == []
    clock.advance(1)
    assert consumer.problems(10, stuck_seconds=30, max_lag=100) == ["relay stuck at 7"]
    assert consumer.status(10)["failing_since"] == rfc3339(began)  # the first failure's time


def test_a_consumer_not_running_is_never_a_reason_to_be_unready():
    clock = ManualClock()
    consumer = state(clock)
    consumer.running = False
    consumer.failed(4, ValueError("bad"), answers=True)
    assert consumer.problems(10**9, 30, 100) == []
