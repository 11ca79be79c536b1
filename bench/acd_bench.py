"""ACD routing benchmark: decision time per event on a loaded floor.

Builds 50 queues (every strategy, relaxation steps adding a neighbour's skill, max wait on
some), 2,000 agents with 1-4 skills at proficiency 1-5, and fills the floor: a simulation
of callers and agents (below) runs with calls arriving faster than they are answered until
10,000 wait and the agents are busy. Then the same simulation, with arrivals balanced to
hold the line near 10,000, drives the engine the way the adapter would: calls queued,
callers hanging up or asking for a callback, offers answered, declined or left ringing,
calls ending, agents back from missed breaks, callback dials answered or not, and
``advance`` at every ``next_deadline`` (ring timeouts, wrap-up ends, relaxation steps, max
waits, announcements). Every ``handle``/``advance`` call is timed: one event in to actions
out. Memory: the process RSS and, with tracemalloc, what the engine's code holds.

Baseline of the same run: a straightforward router that scans every waiting call (agent
becomes free) or every agent (call arrives) for each decision, on the same state, for a
few hundred decisions.

usage: python bench/acd_bench.py [--events 60000] [--seed 7]
"""

from __future__ import annotations

import argparse
import gc
import heapq
import itertools
import random
import sys
import time
import tracemalloc
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from acd import (  # noqa: E402
    Abandoned,
    AcdEngine,
    AcdEvent,
    Action,
    AgentConfig,
    AgentState,
    AgentStateChanged,
    AgentStateRequested,
    Answered,
    CallbackAnswered,
    CallbackCompleted,
    CallbackFailed,
    CallbackGaveUp,
    CallbackRequested,
    CallEnded,
    CallerHungUp,
    CallQueued,
    CancelOffer,
    DialCallback,
    Event,
    Fallback,
    Offer,
    OfferAccepted,
    OfferFailed,
    Overflow,
    QueueConfig,
    Queued,
    RelaxStep,
    Strategy,
)

N_QUEUES = 50
N_AGENTS = 2000
N_WAITING = 10_000
STRATEGIES = [Strategy.LONGEST_IDLE] * 4 + [Strategy.FEWEST_CALLS] * 2 + [Strategy.ROUND_ROBIN] * 2 + [
    Strategy.MOST_PROFICIENT] * 2


def make_queues(rng: random.Random) -> list[QueueConfig]:
    queues = []
    for i in range(N_QUEUES):
        name = f"q{i:02d}"
        strategy = Strategy.RING_ALL if i % 25 == 24 else STRATEGIES[i % len(STRATEGIES)]
        neighbour = f"q{(i + 1) % N_QUEUES:02d}"
        relax = (RelaxStep(60, min_proficiency=1), RelaxStep(180, add_skills=(neighbour,)))
        queues.append(QueueConfig(
            name, strategy=strategy, min_proficiency=rng.choice((1, 2, 3)), relax=relax,
            max_wait=rng.choice((None, None, 900.0)), on_timeout=Fallback("voicemail"), ring_timeout=15,
            wrapup=10, announce_every=30))
    return queues


def make_agents(rng: random.Random) -> list[AgentConfig]:
    weights = [1 / (i + 1) for i in range(N_QUEUES)]  # a few big queues, a long tail
    names = [f"q{i:02d}" for i in range(N_QUEUES)]
    agents = []
    for i in range(N_AGENTS):
        skills: dict[str, int] = {}
        for _ in range(rng.randint(1, 4)):
            skills[rng.choices(names, weights)[0]] = rng.randint(1, 5)
        agents.append(AgentConfig(f"agent{i:04d}", skills))
    return agents


@dataclass
class Floor:
    """The adapter and the people around the engine, as a discrete-event simulation: callers
    arrive and lose patience or ask for a callback, agents answer (or miss) offers, talk and
    come back from breaks; the engine's timers run at every ``next_deadline``."""

    engine: AcdEngine
    published: list[AcdEvent]
    """The engine's bus: events are appended during an input and read after it."""
    rng: random.Random
    queues: list[str]
    queue_weights: list[float]
    t: float = 0.0
    timing: bool = False

    def __post_init__(self) -> None:
        self.future: list[tuple[float, int, str, tuple[str, ...]]] = []
        self.seq = itertools.count()
        self.calls = 0
        self.ringing: set[tuple[str, str]] = set()
        self.waiting: dict[str, tuple[str, int, float, int, float]] = {}  # call -> queue, prio, enq, seq, entered
        self.times: dict[str, list[float]] = defaultdict(list)
        self.without_gc: list[float] = []
        """Times of the events during which the cycle collector did not run."""
        self.collector = CycleCollector()
        self.slowest: list[tuple[float, str, int]] = []
        self.later(0, "arrival")

    def later(self, delay: float, kind: str, *args: str) -> None:
        heapq.heappush(self.future, (self.t + delay, next(self.seq), kind, args))

    def run(self, kind: str, call: Callable[[], list[Action]]) -> None:
        passes = self.collector.passes
        started = time.perf_counter()
        actions = call()
        elapsed = time.perf_counter() - started
        if self.timing:
            self.times[kind].append(elapsed)
            if self.collector.passes == passes:
                self.without_gc.append(elapsed)
            heapq.heappush(self.slowest, (elapsed, kind, len(actions)))
            if len(self.slowest) > 5:
                heapq.heappop(self.slowest)
        self.take(actions)

    def send(self, kind: str, event: Event) -> None:
        self.run(kind, lambda: self.engine.handle(event))

    def take(self, actions: list[Action]) -> None:
        rng = self.rng
        for action in actions:
            if isinstance(action, Offer):
                self.ringing.add((action.call_id, action.agent_id))
                roll = rng.random()
                if roll < 0.92:
                    self.later(rng.uniform(2, 8), "accept", action.call_id, action.agent_id)
                elif roll < 0.96:
                    self.later(rng.uniform(1, 5), "decline", action.call_id, action.agent_id)
                # else: nobody picks up, the ring timeout will fire
            elif isinstance(action, DialCallback):
                self.ringing.add((action.call_id, action.agent_id))
                outcome = "callback answered" if rng.random() < 0.7 else "callback failed"
                self.later(rng.uniform(5, 20), outcome, action.call_id, action.agent_id)
            elif isinstance(action, CancelOffer):
                self.ringing.discard((action.call_id, action.agent_id))
            elif isinstance(action, Overflow):
                self.waiting.pop(action.call_id, None)
        for event in self.published:
            if isinstance(event, Queued):
                if event.call_id not in self.waiting:
                    self.later(rng.expovariate(1 / 3600), "hangup", event.call_id)
                    if rng.random() < 0.05:
                        self.later(rng.uniform(60, 300), "callback", event.call_id)
                self.waiting[event.call_id] = (event.queue, event.priority, event.enqueued_at, self.calls, event.at)
            elif isinstance(event, (Answered, CallbackCompleted)):
                self.waiting.pop(event.call_id, None)
                self.later(rng.expovariate(1 / 180), "end", event.call_id)
            elif isinstance(event, (Abandoned, CallbackGaveUp)):
                self.waiting.pop(event.call_id, None)
            elif isinstance(event, AgentStateChanged) and event.new is AgentState.BREAK:
                self.later(rng.uniform(20, 90), "back", event.agent_id)
        self.published.clear()

    def step(self) -> bool:
        """The next thing to happen: an engine timer (``advance``; False) or a person's input (True)."""
        deadline = self.engine.next_deadline()
        when, _, kind, args = self.future[0]
        if deadline is not None and deadline <= when:
            self.t = deadline
            self.run("timer tick", lambda: self.engine.advance(deadline))
            return False
        heapq.heappop(self.future)
        self.t = when
        self.step_input(kind, args, when)
        return True

    def step_input(self, kind: str, args: tuple[str, ...], t: float) -> None:
        rng = self.rng
        if kind == "arrival":
            self.calls += 1
            queue = rng.choices(self.queues, self.queue_weights)[0]
            self.send("call queued", CallQueued(f"call{self.calls:06d}", queue, rng.choice((0, 0, 0, 1, 5)), t))
            rate = min(40.0, max(2.0, 13 + (N_WAITING - len(self.waiting)) / 50))  # holds the line near 10,000
            self.later(rng.expovariate(rate), "arrival")
        elif kind in ("accept", "decline", "callback answered", "callback failed"):
            if args not in self.ringing:
                return  # cancelled meanwhile
            self.ringing.discard((args[0], args[1]))
            if kind == "accept":
                self.send("offer accepted", OfferAccepted(args[0], args[1], t))
            elif kind == "decline":
                self.send("offer failed", OfferFailed(args[0], args[1], t, "declined"))
            elif kind == "callback answered":
                self.send(kind, CallbackAnswered(args[0], t))
            else:
                self.send(kind, CallbackFailed(args[0], t))
        elif kind == "end":
            self.send("call ended", CallEnded(args[0], t))
        elif kind == "hangup" and args[0] in self.waiting:
            self.send("caller hung up", CallerHungUp(args[0], t))
        elif kind == "callback" and args[0] in self.waiting:
            self.send("callback requested", CallbackRequested(args[0], "5550100", t))
        elif kind == "back":
            self.send("agent available", AgentStateRequested(args[0], "available", t))


def fill(floor: Floor, agents: list[AgentConfig]) -> None:
    """Every agent available, then the simulation runs until 10,000 wait for busy agents."""
    for agent in agents:
        floor.engine.set_agent(agent)
        floor.take(floor.engine.handle(AgentStateRequested(agent.agent_id, "available", 0)))
    while len(floor.waiting) < N_WAITING:
        floor.step()


# -- the naive baseline ---------------------------------------------------------------------------

def eligible(skills: dict[str, int], config: QueueConfig, entered_at: float, now: float) -> bool:
    if skills.get(config.queue_skill, 0) >= config.min_proficiency:
        return True
    for step in config.relax:
        if entered_at + step.after <= now:
            if step.min_proficiency is not None and skills.get(config.queue_skill, 0) >= step.min_proficiency:
                return True
            if any(skills.get(s, 0) >= (step.min_proficiency or 1) for s in step.add_skills):
                return True
    return False


def naive_best_call(floor: Floor, configs: dict[str, QueueConfig], skills: dict[str, int]) -> str | None:
    best, best_key = None, None
    for call_id, (queue, priority, enqueued_at, seq, entered_at) in floor.waiting.items():
        if eligible(skills, configs[queue], entered_at, floor.t):
            key = (-priority, enqueued_at, seq)
            if best_key is None or key < best_key:
                best, best_key = call_id, key
    return best


def naive_best_agent(floor: Floor, configs: dict[str, QueueConfig], agents: dict[str, AgentConfig],
                     free: dict[str, tuple[float, int]], queue: str) -> str | None:
    config = configs[queue]
    best, best_key = None, None
    for agent_id, (last_idle, calls) in free.items():
        skills = agents[agent_id].skills
        if eligible(skills, config, floor.t, floor.t):
            key = (-skills.get(config.queue_skill, 0), last_idle, agent_id) \
                if config.strategy is Strategy.MOST_PROFICIENT else (calls, last_idle, agent_id)
            if best_key is None or key < best_key:
                best, best_key = agent_id, key
    return best


def naive_baseline(floor: Floor, configs: dict[str, QueueConfig], agents: list[AgentConfig],
                   decisions: int) -> dict[str, list[float]]:
    by_id = {a.agent_id: a for a in agents}
    # the same floor, as a scanning router sees it: a fifth of the agents free
    free = {a.agent_id: (floor.t - floor.rng.random() * 60, floor.rng.randint(0, 30))
            for a in floor.rng.sample(agents, N_AGENTS // 5)}
    times: dict[str, list[float]] = defaultdict(list)
    for i in range(decisions):
        started = time.perf_counter()
        if i % 2:
            naive_best_call(floor, configs, floor.rng.choice(agents).skills)
            times["agent available"].append(time.perf_counter() - started)
        else:
            naive_best_agent(floor, configs, by_id, free, floor.rng.choice(list(configs)))
            times["call queued"].append(time.perf_counter() - started)
    return times


# -- report -----------------------------------------------------------------------------------------

def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def row(label: str, values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return (f"  {label:<20} {len(ms):>8} {pct(ms, 0.5):>9.3f} {pct(ms, 0.99):>9.3f} {max(ms):>9.3f}"
            if ms else f"  {label:<20} {0:>8}")


class CycleCollector:
    """Watches CPython's cycle collector: a pass (any generation) stops the whole process, so
    an event during which one ran measures the collector as much as the engine."""

    def __init__(self) -> None:
        self.passes = 0
        self.longest = 0.0
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.passes += 1
            self.longest = max(self.longest, time.perf_counter() - self._started)


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=60_000, help="inputs of the mix to time")
    parser.add_argument("--baseline", type=int, default=400, help="decisions of the scanning baseline")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    queues = make_queues(rng)
    agents = make_agents(rng)
    counts = Counter(skill for a in agents for skill in a.skills)
    names = [q.name for q in queues]

    rss_before = rss_mb()
    tracemalloc.start()
    published: list[AcdEvent] = []
    engine = AcdEngine(on_event=published.append)
    floor = Floor(engine, published, rng, names, [counts[n] for n in names])
    started = time.perf_counter()
    for queue in queues:
        engine.set_queue(queue)
    fill(floor, agents)
    snapshot = tracemalloc.take_snapshot()
    tracemalloc.stop()
    engine_bytes = sum(s.size for s in snapshot.filter_traces(
        [tracemalloc.Filter(True, str(ROOT / "acd" / "*"))]).statistics("filename"))
    del snapshot
    gc.collect()
    states = Counter(v.state for v in engine.agents())
    print(f"floor: {N_QUEUES} queues, {N_AGENTS} agents, {len(engine.waiting())} entries in line, agents "
          + ", ".join(f"{s}: {n}" for s, n in sorted(states.items()))
          + f" (filled in {time.perf_counter() - started:.1f} s)")

    gc.callbacks.append(floor.collector)
    started = time.perf_counter()
    floor.timing = True
    inputs, sim_started = 0, floor.t
    while inputs < args.events:
        inputs += floor.step()
    elapsed = time.perf_counter() - started
    gc.callbacks.remove(floor.collector)
    states = Counter(v.state for v in engine.agents())
    print(f"mix: {args.events} inputs and {len(floor.times['timer tick'])} timer ticks over "
          f"{floor.t - sim_started:.0f} simulated seconds, run in {elapsed:.1f} s; "
          f"at the end {len(engine.waiting())} in line, agents "
          + ", ".join(f"{s}: {n}" for s, n in sorted(states.items())))
    print(f"memory: RSS {rss_mb():.0f} MB (process before the engine: {rss_before:.0f} MB); "
          f"engine heap (tracemalloc, acd/ code): {engine_bytes / 2**20:.1f} MB")

    print(f"\n  {'engine (ms)':<20} {'events':>8} {'p50':>9} {'p99':>9} {'max':>9}")
    everything = [v for values in floor.times.values() for v in values]
    print(row("all", everything))
    for kind in sorted(floor.times):
        print(row(kind, floor.times[kind]))
    print(f"  p99.9 of all: {pct(everything, 0.999) * 1000:.3f} ms; events over 5 ms: "
          f"{sum(v > 0.005 for v in everything)}")
    print(f"  CPython cycle-collector passes during the mix: {floor.collector.passes}, longest "
          f"{floor.collector.longest * 1000:.1f} ms; the {len(floor.without_gc)} events without a pass: "
          f"p99 {pct(floor.without_gc, 0.99) * 1000:.3f} ms, max {max(floor.without_gc) * 1000:.3f} ms")
    print("  slowest: " + ", ".join(f"{kind} {seconds * 1000:.1f} ms ({n} actions)"
                                    for seconds, kind, n in sorted(floor.slowest, reverse=True)))

    configs = {q.name: q for q in queues}
    baseline = naive_baseline(floor, configs, agents, args.baseline)
    print(f"\n  {'scanning baseline':<20} {'decisions':>8} {'p50':>9} {'p99':>9} {'max':>9}")
    for kind in sorted(baseline):
        print(row(kind, baseline[kind]))
    for kind in sorted(baseline):
        print(f"  {kind}: the engine's whole event (routing, state, timers) is "
              f"{pct(baseline[kind], 0.5) / pct(floor.times[kind], 0.5):.0f}x faster at p50 and "
              f"{pct(baseline[kind], 0.99) / pct(floor.times[kind], 0.99):.0f}x at p99 than the scan's decision alone")


if __name__ == "__main__":
    main()
