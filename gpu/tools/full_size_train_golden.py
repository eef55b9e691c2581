"""transformers + PEFT's loss and LoRA gradients of one DFT step on a full-size snapshot, in f32
and in bf16, for lamar's full-size training parity check (gpu/tools/gpu-train-parity.sh).

LAMAR's recipe: PEFT LoRA on every linear layer (`target_modules="all-linear"`, r 256, alpha 32,
rsLoRA, dropout 0), the adapter in f32 (PEFT's `autocast_adapter_dtype`), B set to seeded random
values (a fresh B = 0 makes every A gradient vanish). One sequence of `--tokens` random ids: the
first half is the prompt (no loss), the rest the response. The DFT loss as
make_tiny_train_golden.py defines it: per response token ce_t = logsumexp(z_t) - z_t[y_t],
loss = sum(exp(-ce_t).detach() * ce_t) / N. No gradient checkpointing (it changes nothing in the
result) and no clipping: the raw gradients.

Usage: python3 full_size_train_golden.py SNAPSHOT OUT [--tokens 2048] [--rank 256] [--alpha 32]
Writes OUT/adapter/ (the adapter before the step), OUT/step.safetensors (input_ids,
prompt_tokens), OUT/torch_f32.safetensors and OUT/torch_bf16.safetensors (`loss` and every
gradient under the adapter's tensor names) and prints one JSON line per precision.
"""
import argparse
import json
import os
import time

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import save_file
from transformers.models.qwen3_5 import Qwen3_5ForCausalLM

parser = argparse.ArgumentParser()
parser.add_argument("snapshot")
parser.add_argument("out")
parser.add_argument("--tokens", type=int, default=2048)
parser.add_argument("--rank", type=int, default=256)
parser.add_argument("--alpha", type=float, default=32)
args = parser.parse_args()
os.makedirs(args.out, exist_ok=True)
adapter = os.path.join(args.out, "adapter")

g = torch.Generator().manual_seed(17)
ids = torch.randint(0, 240000, (1, args.tokens), generator=g)
prompt = args.tokens // 2
save_file({"input_ids": ids.to(torch.int64).contiguous(),
           "prompt_tokens": torch.tensor([prompt], dtype=torch.int64)},
          os.path.join(args.out, "step.safetensors"))


def step(model, name):
    """The loss and every LoRA gradient of the sequence, saved as OUT/torch_{name}.safetensors."""
    model.zero_grad(set_to_none=True)
    start = time.time()
    x = ids.cuda()
    logits = model(input_ids=x).logits[0, prompt:-1].float()
    targets = x[0, prompt + 1:]
    ce = torch.nn.functional.cross_entropy(logits, targets, reduction="none")
    loss = (torch.exp(-ce).detach() * ce).sum() / ce.numel()
    loss.backward()
    torch.cuda.synchronize()
    result = {"loss": loss.detach().float().reshape(1).cpu()}
    for key, p in model.named_parameters():
        if "lora_" in key:
            result[key.replace(".default", "")] = p.grad.detach().float().cpu().contiguous()
    save_file(result, os.path.join(args.out, f"torch_{name}.safetensors"))
    print(json.dumps({"precision": name, "loss": result["loss"].item(),
                      "tensors": len(result) - 1, "seconds": time.time() - start,
                      "peak_gib": torch.cuda.max_memory_allocated() / 2**30}), flush=True)


# f32: make the adapter (seeded B), save it, take the step.
torch.manual_seed(2026)
model = Qwen3_5ForCausalLM.from_pretrained(args.snapshot, dtype=torch.float32).cuda()
config = LoraConfig(r=args.rank, lora_alpha=args.alpha, use_rslora=True, lora_dropout=0.0,
                    target_modules="all-linear")
peft_model = get_peft_model(model, config)
with torch.no_grad():
    for key, p in peft_model.named_parameters():
        if "lora_B" in key:
            p.copy_(torch.randn_like(p) * 0.01)
peft_model.save_pretrained(adapter)
step(peft_model, "f32")
del peft_model, model
torch.cuda.empty_cache()
torch.cuda.reset_peak_memory_stats()

# bf16 base, f32 adapter (as the baseline trains): the same adapter loaded.
model = Qwen3_5ForCausalLM.from_pretrained(args.snapshot, dtype=torch.bfloat16).cuda()
peft_model = PeftModel.from_pretrained(model, adapter, is_trainable=True)
dtypes = {p.dtype for k, p in peft_model.named_parameters() if "lora_" in k}
assert dtypes == {torch.float32}, f"adapter dtypes {dtypes}"
step(peft_model, "bf16")
