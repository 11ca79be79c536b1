"""The dialing pacer: each mode's decisions, and predictive pacing held under the abandon cap
over simulated days (campaigns/simulation.py)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from campaigns.pacer import Pacer, PacerView
from campaigns.simulation import Day, simulate


def view(*, free: int = 0, busy: int = 0, dialing: int = 0, lines: int = 100, now: float = 100.0) -> PacerView:
    return PacerView(now=now, agents_free=free, agents_busy=busy, dialing=dialing, max_lines=lines)


def warm_up(pacer: Pacer, *, persons: int, others: int, abandoned: int = 0, ring: float = 10.0,
            handle: float = 118.0, at: float = 50.0) -> None:
    """Feed a history: ``persons`` bridged, ``abandoned``, ``others`` no answer; one handle each."""
    for _ in range(persons):
        pacer.observe_attempt("person", ring_seconds=ring, at=at)
        pacer.observe_handle(handle, at)
    for _ in range(abandoned):
        pacer.observe_attempt("abandoned", ring_seconds=ring, at=at)
    for _ in range(others):
        pacer.observe_attempt("no_answer", ring_seconds=30.0, at=at)


# -- the simple modes ------------------------------------------------------------------------------

def test_preview_never_dials() -> None:
    assert Pacer("preview").to_dial(view(free=5)) == 0


def test_agentless_fills_the_lines_left() -> None:
    pacer = Pacer("agentless")
    assert pacer.to_dial(view(dialing=7, lines=10)) == 3
    assert pacer.to_dial(view(dialing=10, lines=10)) == 0


def test_progressive_covers_each_free_agent_once() -> None:
    pacer = Pacer("progressive")
    assert pacer.to_dial(view(free=5, busy=3)) == 5
    assert pacer.to_dial(view(free=5, busy=3, dialing=2)) == 3
    assert pacer.to_dial(view(free=2, dialing=4)) == 0


def test_progressive_stays_within_the_lines() -> None:
    assert Pacer("progressive").to_dial(view(free=9, dialing=1, lines=4)) == 3


def test_unknown_mode_and_outcome_are_refused() -> None:
    with pytest.raises(ValueError, match="pacing mode"):
        Pacer("blast")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="attempt outcome"):
        Pacer("predictive").observe_attempt("hung_up", ring_seconds=3.0, at=0.0)


# -- predictive ------------------------------------------------------------------------------------

def test_predictive_without_measurements_is_progressive() -> None:
    pacer = Pacer("predictive")
    assert pacer.to_dial(view(free=4, busy=20, dialing=1)) == 3
    warm_up(pacer, persons=3, others=10)  # under min_samples (20)
    assert pacer.to_dial(view(free=4, busy=20, dialing=1)) == 3


def test_skipped_contacts_are_not_measured_as_calls() -> None:
    pacer = Pacer("predictive")
    for _ in range(50):
        pacer.observe_attempt("dnc", ring_seconds=0.0, at=1.0)
        pacer.observe_attempt("invalid", ring_seconds=0.0, at=1.0)
    assert pacer.to_dial(view(free=2, busy=20)) == 2
    assert pacer.abandon_rate == 0.0


def test_predictive_dials_ahead_from_answer_rate_ring_and_handle_time() -> None:
    pacer = Pacer("predictive")
    warm_up(pacer, persons=1000, others=3000)  # p = 0.25, ring 10 s, handle 118 s, no abandons
    # 20 busy agents, each free within the next 12 s (ring + 2 s grace) with probability 12/118:
    # 2.03 agents expected; 8 calls bring 2 persons expected (k = 0 with no abandons).
    assert pacer.to_dial(view(busy=20)) == 8
    assert pacer.to_dial(view(busy=20, dialing=5)) == 3
    assert pacer.to_dial(view(free=1, busy=20)) == 12


def test_predictive_widens_its_margin_as_abandons_approach_the_cap() -> None:
    calm, pressed = Pacer("predictive"), Pacer("predictive")
    warm_up(calm, persons=1000, others=3000)
    warm_up(pressed, persons=980, abandoned=20, others=3000)  # 2 % of 3 %: k = 2
    assert 0 < pressed.to_dial(view(busy=20)) < calm.to_dial(view(busy=20))
    assert pressed.abandon_rate == pytest.approx(0.02)


def test_predictive_dials_ahead_only_as_far_as_the_abandon_budget() -> None:
    pacer = Pacer("predictive")
    warm_up(pacer, persons=100, others=300)  # 3 % of 100 persons: 3 calls may be uncovered
    assert pacer.to_dial(view(busy=20)) == 3
    assert pacer.to_dial(view(free=1, busy=20)) == 4
    assert pacer.to_dial(view(busy=20, dialing=2)) == 1


def test_predictive_backs_off_to_progressive_once_the_budget_is_spent() -> None:
    pacer = Pacer("predictive")
    warm_up(pacer, persons=97, abandoned=3, others=300)
    assert pacer.abandon_rate == pytest.approx(0.03)
    assert pacer.to_dial(view(busy=20)) == 0
    assert pacer.to_dial(view(free=2, busy=20)) == 2


def test_predictive_never_uses_more_than_the_lines_left() -> None:
    pacer = Pacer("predictive", max_abandon_rate=1.0)
    warm_up(pacer, persons=1000, others=3000)
    assert pacer.to_dial(view(busy=20, dialing=3, lines=6)) == 3


def test_measurements_older_than_the_window_are_forgotten() -> None:
    pacer = Pacer("predictive", window=600.0)
    warm_up(pacer, persons=1000, others=3000, at=0.0)
    assert pacer.to_dial(view(busy=20, now=600.0)) == 8
    assert pacer.to_dial(view(busy=20, now=601.0)) == 0  # back to progressive: no recent calls


def test_the_abandon_rate_restarts_with_each_period() -> None:
    pacer = Pacer("predictive", period=3600.0)
    warm_up(pacer, persons=90, abandoned=10, others=0, at=10.0)
    assert pacer.abandon_rate == pytest.approx(0.1)
    pacer.observe_attempt("person", ring_seconds=5.0, at=3700.0)
    assert pacer.abandon_rate == 0.0


# -- simulated days --------------------------------------------------------------------------------

def test_a_simulated_day_is_reproducible_from_its_seed() -> None:
    day = Day(agents=5, answer_rate=0.3, machine_rate=0.1, busy_rate=0.05, hours=0.5, seed=3)
    assert simulate(Pacer("predictive"), day) == simulate(Pacer("predictive"), day)


def test_progressive_never_abandons_and_predictive_keeps_agents_busier() -> None:
    day = Day(agents=20, answer_rate=0.3, machine_rate=0.1, hours=2, seed=1)
    progressive = simulate(Pacer("progressive"), day)
    predictive = simulate(Pacer("predictive"), day)
    assert progressive.abandoned == 0
    assert predictive.occupancy > progressive.occupancy + 0.1
    assert predictive.abandon_rate <= 0.03
    assert predictive.max_calls_per_contact == progressive.max_calls_per_contact == 1


@settings(max_examples=40, deadline=None, database=None)
@given(
    agents=st.integers(1, 30),
    answer_rate=st.floats(0.1, 0.7),
    machine_rate=st.sampled_from([0.0, 0.1, 0.2]),
    talk_min=st.floats(5.0, 120.0),
    talk_spread=st.floats(0.0, 200.0),
    wrap=st.floats(0.0, 30.0),
    max_lines=st.sampled_from([None, 1, 3, 10]),
    contacts=st.sampled_from([None, 30, 300]),
    retry_after=st.sampled_from([30.0, 600.0]),
    cap=st.sampled_from([0.01, 0.03, 0.05]),
    seed=st.integers(0, 2**32 - 1),
)
def test_predictive_days_stay_under_the_abandon_cap_and_call_no_contact_twice_at_once(
        agents: int, answer_rate: float, machine_rate: float, talk_min: float, talk_spread: float,
        wrap: float, max_lines: int | None, contacts: int | None, retry_after: float, cap: float,
        seed: int) -> None:
    day = Day(agents=agents, answer_rate=answer_rate, machine_rate=machine_rate, busy_rate=0.05, hours=0.75,
              talk_seconds=(talk_min, talk_min + talk_spread), wrap_seconds=wrap, max_lines=max_lines,
              contacts=contacts, retry_after=retry_after, seed=seed)
    report = simulate(Pacer("predictive", max_abandon_rate=cap), day)
    assert report.abandoned <= cap * report.persons + 1e-9
    assert report.max_calls_per_contact <= 1
