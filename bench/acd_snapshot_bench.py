"""Size and time of a live snapshot (``snapshot(live=True)``) for a busy tenant: 200 agents
(most of them busy: ringing, talking, wrapping up), 500 callers waiting in 10 queues with
relaxation, max wait and announcement timers, some callbacks. Prints figures; asserts
nothing (not a test).

usage: .venv/bin/python bench/acd_snapshot_bench.py [--agents 200] [--waiting 500] [--runs 20]
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import statistics
import time
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from acd import (  # noqa: E402
    AcdEngine,
    AgentConfig,
    AgentStateRequested,
    CallbackRequested,
    CallEnded,
    CallQueued,
    Fallback,
    Offer,
    OfferAccepted,
    QueueConfig,
    RelaxStep,
    Strategy,
)

QUEUES = 10


def busy_tenant(agents: int, waiting: int, seed: int = 7) -> AcdEngine:
    rng = random.Random(seed)
    engine = AcdEngine()
    skills = [f"skill{q}" for q in range(QUEUES)]
    for q, skill in enumerate(skills):
        engine.set_queue(QueueConfig(
            f"queue{q}", skill=skill, strategy=list(Strategy)[q % len(Strategy)], min_proficiency=3,
            relax=(RelaxStep(30, 2), RelaxStep(60, 1, (skills[(q + 1) % QUEUES],))), max_wait=600,
            on_timeout=Fallback("voicemail"), wrapup=30, announce_every=45))
    for a in range(agents):
        engine.set_agent(AgentConfig(f"agent{a:03}", {s: rng.randint(1, 5) for s in rng.sample(skills, 3)}))
        engine.handle(AgentStateRequested(f"agent{a:03}", "available", 0))
    t, n = 1.0, 0
    while len(engine.waiting()) < waiting:
        # Callers arrive faster than agents finish (no timer falls due while filling): most
        # offers are answered at once, some ring on, some answered calls end (wrap-up).
        t += 0.01
        actions = engine.handle(CallQueued(f"call{n}", f"queue{rng.randrange(QUEUES)}", rng.randrange(3), t,
                                           caller=f"+8613{rng.randrange(10**9):09}", variables={"lang": "zh"}))
        n += 1
        for offer in (a for a in actions if isinstance(a, Offer)):
            if rng.random() < 0.85:
                engine.handle(OfferAccepted(offer.call_id, offer.agent_id, t))
                if rng.random() < 0.25:
                    engine.handle(CallEnded(offer.call_id, t))
        if rng.random() < 0.05:
            engine.handle(CallbackRequested(f"call{rng.randrange(n)}", "+861300000000", t))
    return engine


def timed(runs: int, work: Callable[[], object]) -> float:
    """Median wall time of ``work`` in milliseconds."""
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--waiting", type=int, default=500)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    engine = busy_tenant(args.agents, args.waiting)
    live = engine.snapshot(live=True)
    text = json.dumps(live)
    by_state: dict[str, int] = {}
    for agent in live["agents"]:
        by_state[agent["state"]] = by_state.get(agent["state"], 0) + 1
    print(f"tenant: {len(live['agents'])} agents {by_state}, {len(engine.waiting())} waiting "
          f"({sum(w.is_callback for w in engine.waiting())} callbacks), {len(live['calls'])} calls held, "
          f"{len(live['timers'])} timers")
    print(f"live snapshot: {len(text):,} bytes JSON, {len(gzip.compress(text.encode())):,} gzipped "
          f"(restart snapshot: {len(json.dumps(engine.snapshot())):,} bytes)")
    print(f"snapshot(live=True): {timed(args.runs, lambda: engine.snapshot(live=True)):.2f} ms, "
          f"+ json.dumps: {timed(args.runs, lambda: json.dumps(engine.snapshot(live=True))):.2f} ms")
    print(f"restore_live: {timed(args.runs, lambda: AcdEngine.restore_live(live)):.2f} ms, "
          f"json.loads + restore_live: {timed(args.runs, lambda: AcdEngine.restore_live(json.loads(text))):.2f} ms")
    print(f"(median of {args.runs} runs each)")


if __name__ == "__main__":
    main()
