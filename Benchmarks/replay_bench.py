"""Times `regula replay` on large specs against Python's json.load of the same file.

    python3 Benchmarks/replay_bench.py REGULA [ROUNDS]      (Benchmarks/replay.sh builds and calls this)

Cases (float32, rules momentum > sgd, one parameter):
  - JSON, 1,000,000 elements, 1 step, every number at full precision as torch's .tolist() gives it (~41 MB);
  - JSON, 1,000,000 elements, 3 steps, numbers rounded to 6 decimals (~41 MB);
  - safetensors, the first case's tensors in files named by a small JSON manifest;
  - safetensors, 10,000,000 elements, 3 steps (160 MB of tensors), the result printed as JSON and, with
    --output, written as a safetensors file.
`regula replay` is timed whole (read, replay, print the result to /dev/null or write it to a file); Python
only reads the JSON.
Each command runs ROUNDS times, interleaved; the table gives the median wall time in seconds.
"""
import array
import json
import os
import random
import statistics
import struct
import subprocess
import sys
import tempfile
import time

regula = sys.argv[1]
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
work = tempfile.mkdtemp(prefix="regula-replay-bench-")
rng = random.Random(0)


def float32_values(n):
    """n standard-normal float32 values, as Python floats (what torch's .tolist() returns)."""
    return array.array("f", (rng.gauss(0, 1) for _ in range(n))).tolist()


def safetensors(path, tensors):
    """A safetensors file of F32 tensors, written by hand (8-byte length, JSON header, raw data)."""
    header, offset, blobs = {}, 0, []
    for name, values in tensors.items():
        blob = array.array("f", values).tobytes()
        header[name] = {"dtype": "F32", "shape": [len(values)], "data_offsets": [offset, offset + len(blob)]}
        offset += len(blob)
        blobs.append(blob)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def spec(params, steps):
    return {"dtype": "float32", "rules": ["momentum", "sgd"], "defaults": {"lr": 0.01, "momentum": 0.9},
            "groups": [{"params": ["w"]}], "params": params, "steps": steps}


def json_case(name, n, steps, digits=None):
    round_ = (lambda v: v) if digits is None else (lambda v: [round(x, digits) for x in v])
    path = os.path.join(work, name + ".json")
    with open(path, "w") as f:
        json.dump(spec({"w": round_(float32_values(n))}, [{"grads": {"w": round_(float32_values(n))}} for _ in range(steps)]), f)
    return path


def file_case(name, n, steps):
    folder = os.path.join(work, name)
    os.makedirs(folder)
    safetensors(os.path.join(folder, "params.safetensors"), {"w": float32_values(n)})
    for step in range(steps):
        safetensors(os.path.join(folder, f"grads-{step}.safetensors"), {"w": float32_values(n)})
    path = os.path.join(folder, "spec.json")
    with open(path, "w") as f:
        json.dump(spec("params.safetensors", [{"grads": f"grads-{step}.safetensors"} for step in range(steps)]), f)
    return path, sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder))


def seconds(command):
    start = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


full = json_case("full-precision", 1_000_000, 1)
short = json_case("six-decimals", 1_000_000, 3, digits=6)
files, files_size = file_case("files-1m", 1_000_000, 1)
big, big_size = file_case("files-10m", 10_000_000, 3)
python = [sys.executable, "-c", "import json, sys; json.load(open(sys.argv[1]))"]
result = os.path.join(work, "result.safetensors")
cases = [
    ("JSON, 1M elements, 1 step, full precision", [full], os.path.getsize(full), full),
    ("JSON, 1M elements, 3 steps, 6 decimals", [short], os.path.getsize(short), short),
    ("safetensors, 1M elements, 1 step", [files], files_size, full),
    ("safetensors, 10M elements, 3 steps", [big], big_size, None),
    ("safetensors, 10M elements, 3 steps, `--output` safetensors", [big, "--output", result], big_size, None),
]
times = {case[0]: ([], []) for case in cases}
for _ in range(rounds):
    for name, arguments, _, json_path in cases:
        times[name][0].append(seconds([regula, "replay"] + arguments))
        if json_path:
            times[name][1].append(seconds(python + [json_path]))

print(f"rounds: {rounds}; median wall seconds; regula = read + replay + print, Python = json.load of the JSON form")
print()
print("| case | input size | `regula replay` | Python `json.load` (same data as JSON) |")
print("| --- | --- | --- | --- |")
for name, _, size, json_path in cases:
    ours, theirs = times[name]
    python_time = "%.2f" % statistics.median(theirs) if theirs else "-"
    print(f"| {name} | {size / 1e6:.0f} MB | {statistics.median(ours):.2f} | {python_time} |")
subprocess.run(["rm", "-rf", work])
