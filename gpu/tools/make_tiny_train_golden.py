"""Golden loss and LoRA gradients of one DFT step, computed by PyTorch + PEFT on the tiny
Qwen3.5 of the parity tests (tests/golden/qwen35_tiny), for lamar's training parity test.

LAMAR's recipe on a small scale: PEFT LoRA on every linear layer (`target_modules="all-linear"`,
r 4, alpha 8, rsLoRA, dropout 0), f32 on the CPU; B set to seeded random values (a fresh B = 0
makes every A gradient vanish). One sequence of 150 tokens (two DeltaNet chunks and a part):
the first 40 are the prompt (no loss), the other 110 the response. The DFT loss (LAMAR's
`unsloth/kernels/cross_entropy_loss.py`): per response token ce_t = logsumexp(z_t) - z_t[y_t],
loss = sum(exp(-ce_t).detach() * ce_t) / N; plain cross-entropy too.

Usage (transformers >= 5.2, torch, peft 0.21.2):
    python3 gpu/tools/make_tiny_train_golden.py tests/golden/qwen35_tiny OUT_DIR
Writes OUT_DIR/adapter_config.json, OUT_DIR/adapter_model.safetensors (the adapter before the
step), OUT_DIR/train_step.safetensors (input_ids, prompt_tokens, and the loss value and every
LoRA gradient under the adapter's tensor names, prefixed `dft.` / `ce.`) and OUT_DIR/report.json
(versions).
"""
import json
import os
import platform
import sys

import peft
import torch
import transformers
from peft import LoraConfig, get_peft_model
from safetensors.torch import save_file
from transformers.models.qwen3_5 import Qwen3_5ForCausalLM

model_dir, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
torch.manual_seed(2026)
model = Qwen3_5ForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
config = LoraConfig(r=4, lora_alpha=8, use_rslora=True, lora_dropout=0.0, target_modules="all-linear")
peft_model = get_peft_model(model, config)
with torch.no_grad():
    for name, p in peft_model.named_parameters():
        if "lora_B" in name:
            p.copy_(torch.randn_like(p) * 0.05)
peft_model.save_pretrained(out)

g = torch.Generator().manual_seed(11)
ids = torch.randint(3, 256, (1, 150), generator=g)
prompt = 40
targets = ids[0, prompt + 1:]                      # the next token of each response position
result = {"input_ids": ids.to(torch.int64).contiguous(),
          "prompt_tokens": torch.tensor([prompt], dtype=torch.int64)}
for kind in ["dft", "ce"]:
    peft_model.zero_grad()
    logits = peft_model(input_ids=ids).logits[0, prompt:-1].float()   # positions predicting targets
    ce = torch.nn.functional.cross_entropy(logits, targets, reduction="none")
    weight = torch.exp(-ce).detach() if kind == "dft" else torch.ones_like(ce)
    loss = (weight * ce).sum() / ce.numel()
    loss.backward()
    result[f"{kind}.loss"] = loss.detach().reshape(1).contiguous()
    for name, p in peft_model.named_parameters():
        if "lora_" in name:
            key = name.replace(".default", "")
            result[f"{kind}.{key}"] = p.grad.detach().contiguous()
save_file(result, os.path.join(out, "train_step.safetensors"))
with open(os.path.join(out, "report.json"), "w") as f:
    json.dump({"python": platform.python_version(), "torch": torch.__version__,
               "transformers": transformers.__version__, "peft": peft.__version__,
               "lora_modules": sum(1 for n, _ in peft_model.named_parameters() if "lora_A" in n),
               "dft_loss": result["dft.loss"].item(), "ce_loss": result["ce.loss"].item()}, f, indent=1)
    f.write("\n")
print(open(os.path.join(out, "report.json")).read())
