"""Stock torch.optim.Muon (its Newton-Schulz iteration in bfloat16) for Regula's benchmark, on one float32
matrix of ROWS x COLUMNS with torch's defaults.

    python3 torch_muon.py ROWS COLUMNS STEPS   ->  one JSON object (median_step_ms, min_step_ms, threads)
"""
import json
import statistics
import sys
import time

import torch

rows, columns, steps = (int(a) for a in sys.argv[1:4])
torch.manual_seed(0)
param = torch.nn.Parameter(torch.rand(rows, columns) * 2 - 1)
grad = param.detach() * 0.5 + 0.01
optimizer = torch.optim.Muon([param])
times = []
for step in range(steps + 2):
    param.grad = grad.clone()  # as backward would leave it; not timed
    start = time.perf_counter_ns()
    optimizer.step()
    if step >= 2:
        times.append(time.perf_counter_ns() - start)
print(json.dumps({"name": "torch.optim.Muon", "torch": torch.__version__, "threads": torch.get_num_threads(),
                  "rows": rows, "columns": columns, "median_step_ms": statistics.median(times) / 1e6,
                  "min_step_ms": min(times) / 1e6}))
