"""Records a small training run in the form `regula replay` reads without JSON tensors: the initial
parameters and each step's gradients as safetensors files, and a small JSON manifest naming them.

    python3 Docs/examples/record_sgd.py /tmp/recording      # needs numpy and safetensors
    swift run regula replay /tmp/recording/spec.json

The run is SGD with momentum on a linear model, written out in numpy (float32) the way torch.optim.SGD
computes it, so Regula's replay can be checked against /tmp/recording/expected.json. With torch, record
the same files with safetensors.torch.save_file:
    save_file({n: p.detach().clone() for n, p in model.named_parameters()}, "params.safetensors")
    save_file({n: p.grad for n, p in model.named_parameters() if p.grad is not None}, f"grads/{step}.safetensors")
"""
import json
import os
import sys

import numpy as np
from safetensors.numpy import save_file

out = sys.argv[1] if len(sys.argv) > 1 else "recording"
os.makedirs(os.path.join(out, "grads"), exist_ok=True)

rng = np.random.default_rng(0)
x = rng.standard_normal((64, 3)).astype(np.float32)
y = x @ np.array([1.5, -2.0, 0.5], dtype=np.float32) + np.float32(0.25)
params = {"w": rng.standard_normal(3).astype(np.float32), "b": np.zeros(1, dtype=np.float32)}
save_file(params, os.path.join(out, "params.safetensors"))

lr, momentum = 0.1, 0.9
buffers, steps = {}, []
for step in range(20):
    error = x @ params["w"] + params["b"] - y
    grads = {"w": (np.float32(2) * x.T @ error / np.float32(len(x))).astype(np.float32),
             "b": np.array([np.float32(2) * error.mean()], dtype=np.float32)}
    path = f"grads/{step}.safetensors"            # relative to the manifest's folder
    save_file(grads, os.path.join(out, path))
    steps.append({"grads": path})
    for name, grad in grads.items():              # torch.optim.SGD(lr, momentum), dampening 0
        buffers[name] = grad.copy() if name not in buffers else buffers[name] * np.float32(momentum) + grad
        params[name] = params[name] - np.float32(lr) * buffers[name]

spec = {"dtype": "float32", "rules": ["momentum", "sgd"], "defaults": {"lr": lr, "momentum": momentum},
        "groups": [{"params": ["w", "b"]}], "params": "params.safetensors", "steps": steps}
with open(os.path.join(out, "spec.json"), "w") as f:
    json.dump(spec, f, indent=1)
with open(os.path.join(out, "expected.json"), "w") as f:
    json.dump({name: value.tolist() for name, value in params.items()}, f)
print(f"recorded {len(steps)} steps in {out}; replay with: regula replay {os.path.join(out, 'spec.json')}")
