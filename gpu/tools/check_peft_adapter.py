"""Loads an adapter lamar wrote with Python's PEFT and records the logits PEFT computes with
it, for lamar's interoperability test (gpu/tests/peft_interop.rs).

Usage (transformers >= 5.2, torch, peft 0.21):
    python3 gpu/tools/check_peft_adapter.py tests/golden/qwen35_tiny \
        tests/golden/qwen35_tiny_peft_check/adapter OUT_DIR
Writes OUT_DIR/peft_logits.safetensors (`input_ids` (1, 70), `logits` with the adapter and
`base_logits` without, both (1, 70, vocab) f32) and OUT_DIR/report.json (versions, how many
LoRA modules PEFT found, and how far the adapter moves the logits). Fails when PEFT loads no
LoRA module or the adapter changes nothing.
"""
import json
import os
import platform
import sys

import peft
import torch
import transformers
from peft import PeftModel
from safetensors.torch import save_file
from transformers.models.qwen3_5 import Qwen3_5ForCausalLM

model_dir, adapter_dir, out = sys.argv[1], sys.argv[2], sys.argv[3]
os.makedirs(out, exist_ok=True)
model = Qwen3_5ForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
g = torch.Generator().manual_seed(5)
ids = torch.randint(3, 256, (1, 70), generator=g)
with torch.no_grad():
    base_logits = model(input_ids=ids).logits.float()
    adapted = PeftModel.from_pretrained(model, adapter_dir).eval()
    modules = sum(1 for n, _ in adapted.named_modules() if n.endswith("lora_A"))
    logits = adapted(input_ids=ids).logits.float()
moved = (logits - base_logits).abs().max().item()
assert modules > 0, "PEFT found no LoRA module in the adapter"
assert moved > 1e-2, f"the adapter changes the logits by only {moved}"
save_file({"input_ids": ids.to(torch.int64).contiguous(), "logits": logits.contiguous(),
           "base_logits": base_logits.contiguous()},
          os.path.join(out, "peft_logits.safetensors"))
with open(os.path.join(out, "report.json"), "w") as f:
    json.dump({"python": platform.python_version(), "torch": torch.__version__,
               "transformers": transformers.__version__, "peft": peft.__version__,
               "lora_modules": modules, "max_logit_change": moved}, f, indent=1)
    f.write("\n")
print(open(os.path.join(out, "report.json")).read())
