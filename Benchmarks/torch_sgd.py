"""torch's fastest CPU path for the seed's arithmetic: a foreach pass adding weight_decay1 * sign(p) to the
gradients, then torch.optim.SGD(fused=True) with Nesterov momentum and weight_decay = weight_decay2.

    python3 torch_sgd.py ELEMENTS TENSORS STEPS   ->  one JSON object, median ns per element
"""
import json
import statistics
import sys
import time

import torch

elements, tensors, steps = (int(a) for a in sys.argv[1:4])
lr, momentum, wd1, wd2 = 0.01, 0.9, 1e-4, 1e-4
sizes = [elements // tensors + (1 if t < elements % tensors else 0) for t in range(tensors)]
params = [torch.nn.Parameter(torch.rand(n) * 2 - 1) for n in sizes]
grads = [p.detach() * 0.5 + 0.01 for p in params]
optimizer = torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=wd2, nesterov=True, fused=True)
times = []
for step in range(steps + 2):
    # Fresh gradients each step, as backward would leave them; not timed (Regula and the C loop reuse theirs).
    for p, g in zip(params, grads):
        p.grad = g.clone() if p.grad is None else p.grad.copy_(g)
    start = time.perf_counter_ns()
    torch._foreach_add_([p.grad for p in params], torch._foreach_sign([p.detach() for p in params]), alpha=wd1)
    optimizer.step()
    if step >= 2:
        times.append(time.perf_counter_ns() - start)
median = statistics.median(times)


def spread(times, elements):
    """The fastest step, the 90th percentile (nearest rank) and the slowest, per element, as regula bench gives them."""
    ordered = sorted(times)
    return {"min_ns_per_element": ordered[0] / elements, "p90_ns_per_element": ordered[(len(ordered) * 9 + 9) // 10 - 1] / elements,
            "max_ns_per_element": ordered[-1] / elements}


print(json.dumps({"name": "torch fused SGD + foreach L1", "torch": torch.__version__, "threads": torch.get_num_threads(),
                  "elements": elements, "tensors": tensors, "ns_per_element": median / elements, **spread(times, elements),
                  "gb_per_s": 20 * elements / median}))
