import sys, heapq, itertools; sys.path.insert(0, "tests/algo")
import numpy as np
from test_stream import sampler, Rollouts, WEIGHTS
from openrlhf_mt.algo.stream import StreamingBuild
def run(steps, **kw):
    s, rollouts, keys, clock = sampler(**kw), Rollouts(seed=1), itertools.count(), 0.0
    quota_lat, drain_lat, gen, ideal = [], [], 0, 0
    for step in range(steps):
        start = clock; build, events = StreamingBuild(s, WEIGHTS), []
        while True:
            for task, count in build.requests().items():
                for _ in range(count):
                    g, key = rollouts.group(task), next(keys)
                    build.submitted(task, key); heapq.heappush(events, (clock + g.payload, key, g))
            if build.done() or not events: break
            clock, key, g = heapq.heappop(events); build.completed(key, g)
        t_quota = clock
        while events:
            clock, key, g = heapq.heappop(events); build.completed(key, g)
        groups, info = build.finish()
        if step >= 10:
            quota_lat.append(t_quota - start); drain_lat.append(clock - start)
            gen += sum(info.generated.values()); ideal += info.ideal_generated
    return np.mean(quota_lat), np.mean(drain_lat), gen / ideal
for conf in (0.5, 0.9, 0.99):
    print(conf, "quota-met %.0f drained %.0f overgen %.2f" % run(200, request_confidence=conf))
