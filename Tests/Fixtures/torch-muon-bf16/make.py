"""Makes the torch-muon-bf16 fixtures: stock torch.optim.Muon (its Newton-Schulz iteration in bfloat16).

Run with PyTorch 2.15 on a CPU: `python make.py` writes muon-bf16-float32.json and muon-bf16-float64.json here,
in the format of ../torch-matrix (see its README), with `ns_dtype: "bfloat16"` in the spec's defaults.
"""
import json
import os

import torch

STEPS = 6
SHAPES = {"Wide": [24, 40], "Tall": [40, 24]}
OPTIONS = {"lr": 0.02, "weight_decay": 0.1, "momentum": 0.95}


def case(dtype_name):
    dtype = getattr(torch, dtype_name)
    generator = torch.Generator().manual_seed(15)
    params = {name: torch.randn(shape, generator=generator, dtype=torch.float64).to(dtype)
              for name, shape in SHAPES.items()}
    start = {name: p.flatten().tolist() for name, p in params.items()}
    tensors = {name: p.clone().requires_grad_(False) for name, p in params.items()}
    optimizer = torch.optim.Muon(list(tensors.values()), **OPTIONS)  # stock: bfloat16 Newton-Schulz
    steps = []
    for _ in range(STEPS):
        grads = {name: torch.randn(shape, generator=generator, dtype=torch.float64).to(dtype)
                 for name, shape in SHAPES.items()}
        for name, tensor in tensors.items():
            tensor.grad = grads[name].clone()
        optimizer.step()
        steps.append({"grads": {name: g.flatten().tolist() for name, g in grads.items()}})
    state = {name: {"momentum_buffer": optimizer.state[t]["momentum_buffer"].flatten().tolist()}
             for name, t in tensors.items()}
    return {
        "name": f"muon-bf16-{dtype_name}",
        "spec": {"dtype": dtype_name, "rules": ["muon"], "defaults": {**OPTIONS, "ns_dtype": "bfloat16"},
                 "groups": [{"params": list(SHAPES)}], "shapes": SHAPES, "params": start, "steps": steps},
        "expect": {"params": {name: t.flatten().tolist() for name, t in tensors.items()}, "state": state,
                   "state_shapes": {name: {"momentum_buffer": shape} for name, shape in SHAPES.items()}},
    }


if __name__ == "__main__":
    torch.set_num_threads(1)
    here = os.path.dirname(os.path.abspath(__file__))
    for dtype_name in ("float32", "float64"):
        with open(os.path.join(here, f"muon-bf16-{dtype_name}.json"), "w") as file:
            json.dump(case(dtype_name), file)
            file.write("\n")
