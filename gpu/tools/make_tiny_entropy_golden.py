"""Golden "entropy" of greedy generation, computed by transformers on the tiny Qwen3.5 of the
parity tests (tests/golden/qwen35_tiny, made by make_tiny_qwen35.py).

LAMAR's inference reports per document the mean negative log-probability of the generated tokens
(`-sum(logprob(token_t)) / T`, the log-probability of each greedily chosen token under the
model's untempered distribution; scripts/inference.py of github.com/biodatlab/medexact-lamar).
This script makes the same from transformers: a greedy continuation of the golden prompt's first
12 tokens, each step a full forward pass in f32 on the CPU, the chosen token's log-softmax.

Usage (transformers >= 5.2, torch):
    python3 gpu/tools/make_tiny_entropy_golden.py tests/golden/qwen35_tiny OUT.json
Writes OUT.json: versions, prompt, tokens, log_probs, mean_nll (lamar's test reads it as
tests/golden/qwen35_tiny/entropy.json).
"""
import json
import platform
import sys

import torch
import transformers
from safetensors.torch import load_file

folder, out = sys.argv[1], sys.argv[2]
model = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
prompt = load_file(f"{folder}/expected.safetensors")["input_ids"][0, :12].tolist()
ids = list(prompt)
tokens, log_probs = [], []
with torch.no_grad():
    for _ in range(24):
        logits = model(torch.tensor([ids])).logits[0, -1].float()
        token = int(torch.argmax(logits))
        tokens.append(token)
        log_probs.append(float(torch.log_softmax(logits, dim=-1)[token]))
        ids.append(token)
mean_nll = -sum(log_probs) / len(log_probs)
with open(out, "w") as f:
    json.dump({
        "python": platform.python_version(),
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "prompt": prompt,
        "tokens": tokens,
        "log_probs": log_probs,
        "mean_nll": mean_nll,
    }, f, indent=1)
    f.write("\n")
print(f"{len(tokens)} tokens, mean NLL {mean_nll:.6f} -> {out}")
