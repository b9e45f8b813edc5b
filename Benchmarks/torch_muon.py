"""torch.optim.Muon for Regula's benchmark: steps of one float32 ROWS x COLUMNS matrix, torch's defaults.

    python3 torch_muon.py ROWS COLUMNS STEPS [float32|bfloat16]   ->  one JSON object

float32 (the default) runs the Newton-Schulz iteration in the parameter's dtype, as the fixtures of
../shared/fixtures/torch-matrix do: torch's own _zeropower_via_newtonschulz with its cast to bfloat16 removed,
the same operations in the same order. bfloat16 is stock torch.optim.Muon, whose iteration runs in bfloat16.
"""
import json
import statistics
import sys
import time

import torch
import torch.optim._muon as muon_module

rows, columns, steps = (int(a) for a in sys.argv[1:4])
ns_dtype = sys.argv[4] if len(sys.argv) > 4 else "float32"
if ns_dtype not in ("float32", "bfloat16"):
    sys.exit("torch_muon.py: the Newton-Schulz dtype is %r; allowed: float32, bfloat16" % ns_dtype)

stock = muon_module._zeropower_via_newtonschulz


def zeropower_in_own_dtype(grad, ns_coefficients, ns_steps, eps):
    """torch's iteration, line for line, without `grad.to(dtype=torch.bfloat16, copy=True)`."""
    if ns_steps >= 100:
        raise ValueError("Number of steps must be less than 100 for computational efficiency")
    a, b, c = ns_coefficients
    ortho_grad = grad.clone()
    if grad.size(0) > grad.size(1):
        ortho_grad = ortho_grad.T
    ortho_grad.div_(ortho_grad.norm().clamp(min=eps))
    for _ in range(ns_steps):
        gram_matrix = ortho_grad @ ortho_grad.T
        gram_update = torch.addmm(gram_matrix, gram_matrix, gram_matrix, beta=b, alpha=c)
        ortho_grad = torch.addmm(ortho_grad, gram_update, ortho_grad, beta=a)
    if grad.size(0) > grad.size(1):
        ortho_grad = ortho_grad.T
    return ortho_grad


if ns_dtype == "float32":
    muon_module._zeropower_via_newtonschulz = zeropower_in_own_dtype
# Refuse to time the wrong thing: the patch must be what the step calls.
assert (muon_module._zeropower_via_newtonschulz is stock) == (ns_dtype == "bfloat16")

torch.manual_seed(0)
param = torch.nn.Parameter(torch.rand(rows, columns) * 2 - 1)
grad = param.detach() * 0.5 + 0.01
optimizer = torch.optim.Muon([param])
times = []
for step in range(steps + 2):
    # A fresh gradient each step, as backward would leave it; not timed.
    param.grad = grad.clone() if param.grad is None else param.grad.copy_(grad)
    start = time.perf_counter_ns()
    optimizer.step()
    if step >= 2:
        times.append(time.perf_counter_ns() - start)
ordered = sorted(times)
print(json.dumps({"name": "torch Muon (Newton-Schulz in %s)" % ns_dtype, "torch": torch.__version__,
                  "threads": torch.get_num_threads(), "rows": rows, "columns": columns,
                  "ms_per_step": statistics.median(times) / 1e6, "min_step_ms": ordered[0] / 1e6,
                  "max_step_ms": ordered[-1] / 1e6}))
