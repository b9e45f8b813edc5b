"""torch's Adafactor for Regula's benchmark, on float32 matrices of ROWS x COLUMNS, with torch's defaults.

    python3 torch_adafactor.py MATRICES ROWS COLUMNS STEPS [foreach|single]   ->  one JSON object

foreach (the default) is torch's multi-tensor path, single its for-loop path (foreach=False).
"""
import json
import statistics
import sys
import time

import torch

matrices, rows, columns, steps = (int(a) for a in sys.argv[1:5])
foreach = not (len(sys.argv) > 5 and sys.argv[5] == "single")
torch.manual_seed(0)
params = [torch.nn.Parameter(torch.rand(rows, columns) * 2 - 1) for _ in range(matrices)]
grads = [p.detach() * 0.5 + 0.01 for p in params]
optimizer = torch.optim.Adafactor(params, foreach=foreach)
times = []
for step in range(steps + 2):
    # Fresh gradients each step, as backward would leave them; not timed.
    for p, g in zip(params, grads):
        p.grad = g.clone() if p.grad is None else p.grad.copy_(g)
    start = time.perf_counter_ns()
    optimizer.step()
    if step >= 2:
        times.append(time.perf_counter_ns() - start)
elements = matrices * rows * columns
ordered = sorted(times)
median = statistics.median(times)
print(json.dumps({"name": "torch Adafactor(foreach=%s)" % foreach, "torch": torch.__version__,
                  "threads": torch.get_num_threads(), "matrices": matrices, "rows": rows, "columns": columns,
                  "ns_per_element": median / elements, "min_ns_per_element": ordered[0] / elements,
                  "p90_ns_per_element": ordered[(len(ordered) * 9 + 9) // 10 - 1] / elements,
                  "max_ns_per_element": ordered[-1] / elements, "ms_per_step": median / 1e6}))
