"""ingest.restarts: the back-off after worker crashes, and that it never gives up."""

from __future__ import annotations

from ingest.restarts import Restart, RestartPolicy


def test_back_off_then_a_slow_retry_that_never_ends() -> None:
    now = [0.0]
    policy = RestartPolicy(max_restarts=3, window=60.0, failing_retry=10.0, clock=lambda: now[0])
    seen = []
    for _ in range(6):
        seen.append(policy.crashed())
        now[0] += 1.0
    assert seen[:2] == [Restart(0.1, False, False, 1), Restart(0.2, False, False, 2)]
    assert seen[2] == Restart(10.0, True, True, 3)  # logged once, as it starts
    assert seen[3:] == [Restart(10.0, True, False, n) for n in (4, 5, 6)]
    assert policy.failing


def test_crashes_out_of_the_window_are_forgotten() -> None:
    now = [0.0]
    policy = RestartPolicy(max_restarts=3, window=60.0, failing_retry=10.0, clock=lambda: now[0])
    for _ in range(3):
        policy.crashed()
    assert policy.failing
    now[0] = 200.0
    assert policy.crashed() == Restart(0.1, False, False, 1)
    assert not policy.failing


def test_the_back_off_is_capped() -> None:
    policy = RestartPolicy(max_restarts=100, window=60.0, failing_retry=10.0, clock=lambda: 0.0)
    delays = [policy.crashed().delay for _ in range(10)]
    assert delays[-1] == 2.0 and delays == sorted(delays)
