"""Inbound pipeline speed: a year of a brand with 30 million inbound messages, end to end.

Run:  python tests/benchmarks/bench_inbound.py [--messages 30000000] [--days 365] [--baseline-messages 100000]
      [--classifier hashed|keyword] [--repeat 1]

End to end means find (the non-homogeneous Poisson stream, ground truth and text synthesis), classify (the
core's labels and its batching server), route (the threshold policy) and respond (bot and human pools with
patience and abandonment), measured as simulated messages per wall-clock second. The figure "30 million
customer interactions in a year" is the seed figure quoted in the issue.

The baseline is the same pipeline with one SimPy process per message, on a smaller stream: each message is
a process that waits for its arrival, asks the classifier about itself alone, holds a replica of the core
for ``a + b`` seconds, and, if routed, waits for its pool (and escalation) — the way a per-agent simulator
would. Both run in fresh subprocesses in the same session; the script prints each figure and the ratio. The
machine is shared: repeat with --repeat and quote the median.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

DAY_S = 86_400.0
HOURS_PER_YEAR = 8766.0
# The default six sources sum to 82 mentions an hour; scale them to the wanted volume.
DEFAULT_RATE_PER_HOUR = 82.0


def stream_config(messages: int, days: float):  # type: ignore[no-untyped-def]
    from masssim.model.messages import MentionStreamConfig, _default_sources

    scale = messages / (days * 24.0) / DEFAULT_RATE_PER_HOUR
    sources = [s.model_copy(update={"base_rate_per_hour": s.base_rate_per_hour * scale}) for s in _default_sources()]
    return MentionStreamConfig(sources=sources)


def pipeline(classifier_name: str, cfg, horizon_s: float):  # type: ignore[no-untyped-def]
    """Classifier (fitted on 5,000 separate messages), core, policy and pools sized for the stream."""
    import numpy as np

    from masssim.classify import build_classifier
    from masssim.engine.inbound import CoreServer, PoolSpec
    from masssim.engine.responders import LognormalHandleTime
    from masssim.model.messages import training_corpus
    from masssim.policies.response import build_response_policy

    classifier = build_classifier(classifier_name)
    if hasattr(classifier, "fit"):
        corpus = training_corpus(cfg, 5000, np.random.default_rng(2), needle_share=0.5)
        classifier.fit(corpus.text, corpus.relevant, corpus.intent)
    needles_per_hour = sum(s.base_rate_per_hour for s in cfg.sources) * cfg.needle_share
    humans = max(2, int(needles_per_hour * 6.0 / 60.0 * 1.3))  # about 77% busy at 6-minute answers
    pools = [
        PoolSpec("bot", max(4, humans * 2), LognormalHandleTime(30.0, 0.3), kind="bot"),
        PoolSpec("human", humans, LognormalHandleTime(360.0, 0.6), discipline="priority"),
    ]
    core = CoreServer(batch_size=256, replicas=4, a_s=0.01, b_s=0.0001, max_wait_s=0.5)
    policy = build_response_policy("bot_first")
    return classifier, core, policy, pools


def measure_batched(messages: int, days: float, classifier_name: str) -> dict:
    import numpy as np

    from masssim.engine.inbound import simulate_inbound
    from masssim.model.messages import generate_mentions

    horizon_s = days * DAY_S
    cfg = stream_config(messages, days)
    classifier, core, policy, pools = pipeline(classifier_name, cfg, horizon_s)
    t0 = time.perf_counter()
    mentions = generate_mentions(cfg, horizon_s, np.random.default_rng(1))
    t1 = time.perf_counter()
    result = simulate_inbound(mentions, classifier, core, policy, pools, np.random.default_rng(3), horizon_s)
    t2 = time.perf_counter()
    s = result.summary
    return {
        "messages": len(mentions),
        "find_s": t1 - t0,
        "classify_route_respond_s": t2 - t1,
        "total_s": t2 - t0,
        "messages_per_s": len(mentions) / (t2 - t0),
        "answered": s["n_answered"],
        "abandonment": s["abandonment"],
        "f1": s["f1"],
    }


def measure_per_message(messages: int, days: float, classifier_name: str) -> dict:
    """The same pipeline with one SimPy process per message and a classifier call per message."""
    import numpy as np
    import simpy

    from masssim.classify.base import INTENT_NAMES
    from masssim.engine.responders import DONE, ResponderPool
    from masssim.model.messages import LANGUAGES, generate_mentions

    horizon_s = days * DAY_S
    cfg = stream_config(messages, days)
    classifier, core, policy, pools = pipeline(classifier_name, cfg, horizon_s)
    t0 = time.perf_counter()
    mentions = generate_mentions(cfg, horizon_s, np.random.default_rng(1))
    rng = np.random.default_rng(3)
    env = simpy.Environment()
    replicas = simpy.Resource(env, capacity=core.replicas)
    built = [
        ResponderPool(env, p.name, policy.schedule_for(p.kind, p.agents), p.handle_time, rng.spawn(1)[0]) for p in pools
    ]
    answered = 0

    def one(i: int):  # type: ignore[no-untyped-def]
        nonlocal answered
        yield env.timeout(float(mentions.time_s[i]) - env.now)
        arrived = env.now
        labels = classifier.classify([mentions.text[i]])
        with replicas.request() as req:
            yield req
            yield env.timeout(core.a_s + core.b_s)
        single = mentions.__class__(
            **{
                k: (v if k == "bursts_s" else v[i : i + 1])
                for k, v in vars(mentions).items()
                if k in mentions.__dataclass_fields__
            }
        )
        decision = policy.route(labels, single)
        if not decision.respond[0]:
            return
        patience = 3600.0 * float(np.exp(rng.standard_normal()))
        intent = INTENT_NAMES[int(labels.intent[0])]
        language = LANGUAGES[int(mentions.language[i])]
        first = built[int(decision.pool[0])]
        left = patience - (env.now - arrived)
        if left <= 0:
            return
        cid = yield first.submit(intent, int(decision.priority[0]), left, language)
        if first.status_of(cid) != DONE:
            return
        target = int(decision.escalate_to[0])
        if target >= 0 and rng.random() >= decision.p_resolve[0]:
            left = patience - (env.now - arrived)
            if left <= 0:
                return
            cid = yield built[target].submit(intent, int(decision.priority[0]), left, language)
            if built[target].status_of(cid) != DONE:
                return
        answered += 1

    for i in range(len(mentions)):
        env.process(one(i))
    env.run(until=horizon_s)
    t1 = time.perf_counter()
    return {"messages": len(mentions), "total_s": t1 - t0, "messages_per_s": len(mentions) / (t1 - t0)}


def _subprocess(kind: str, messages: int, days: float, classifier: str) -> dict:
    code = (
        "import json, sys; sys.path.insert(0, 'tests/benchmarks'); import bench_inbound as b; "
        f"print(json.dumps(b.measure_{kind}({messages}, {days}, {classifier!r})))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=30_000_000, help="messages over the horizon (expected)")
    parser.add_argument("--days", type=float, default=365.25)
    parser.add_argument("--baseline-messages", type=int, default=100_000)
    parser.add_argument("--classifier", default="hashed", choices=("hashed", "keyword"))
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    baseline_days = args.days * args.baseline_messages / args.messages
    batched, per_message = [], []
    for _ in range(args.repeat):
        batched.append(_subprocess("batched", args.messages, args.days, args.classifier))
        print("batched:", json.dumps(batched[-1]), flush=True)
        per_message.append(_subprocess("per_message", args.baseline_messages, baseline_days, args.classifier))
        print("one SimPy process per message:", json.dumps(per_message[-1]), flush=True)
    fast = statistics.median(r["messages_per_s"] for r in batched)
    slow = statistics.median(r["messages_per_s"] for r in per_message)
    print(f"batched pipeline: {fast:,.0f} messages/s (median of {args.repeat}; aim >= 100,000)")
    print(f"per-message SimPy baseline: {slow:,.0f} messages/s")
    print(f"ratio: {fast / slow:.1f}x")


if __name__ == "__main__":
    main()
