"""torch's fastest CPU AdamW, for Regula's benchmark: torch.optim.AdamW(fused=True), optionally after
torch.nn.utils.clip_grad_norm_ over every parameter (foreach).

    python3 torch_adamw.py ELEMENTS TENSORS STEPS [clip]   ->  one JSON object, median ns per element
"""
import json
import statistics
import sys
import time

import torch

elements, tensors, steps = (int(a) for a in sys.argv[1:4])
clip = len(sys.argv) > 4 and sys.argv[4] == "clip"
sizes = [elements // tensors + (1 if t < elements % tensors else 0) for t in range(tensors)]
params = [torch.nn.Parameter(torch.rand(n) * 2 - 1) for n in sizes]
grads = [p.detach() * 0.5 + 0.01 for p in params]
optimizer = torch.optim.AdamW(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, fused=True)
times = []
for step in range(steps + 2):
    # Fresh gradients each step, as backward would leave them; not timed (Regula and the C loop reuse theirs).
    for p, g in zip(params, grads):
        p.grad = g.clone() if p.grad is None else p.grad.copy_(g)
    start = time.perf_counter_ns()
    if clip:
        torch.nn.utils.clip_grad_norm_(params, 1.0, foreach=True)
    optimizer.step()
    if step >= 2:
        times.append(time.perf_counter_ns() - start)
median = statistics.median(times)


def spread(times, elements):
    """The fastest step, the 90th percentile (nearest rank) and the slowest, per element, as regula bench gives them."""
    ordered = sorted(times)
    return {"min_ns_per_element": ordered[0] / elements, "p90_ns_per_element": ordered[(len(ordered) * 9 + 9) // 10 - 1] / elements,
            "max_ns_per_element": ordered[-1] / elements}


print(json.dumps({"name": "torch AdamW(fused=True)" + (" after clip_grad_norm_" if clip else ""),
                  "torch": torch.__version__, "threads": torch.get_num_threads(), "elements": elements,
                  "tensors": tensors, "ns_per_element": median / elements, **spread(times, elements), "gb_per_s": (7 + clip) * 4 * elements / median}))
