"""Makes a PEFT LoRA adapter for the tiny Qwen3.5 golden model (`tests/golden/qwen35_tiny`) and
the logits with it applied, for lamar-model's LoRA parity test.

Usage: python3 make_tiny_lora.py MODEL_DIR OUT_DIR
Writes OUT_DIR/adapter_config.json, OUT_DIR/adapter_model.safetensors and
OUT_DIR/expected_lora.safetensors (logits of the golden prompt with the adapter, rsLoRA on).
"""
import os
import sys

import torch
from peft import LoraConfig, get_peft_model
from safetensors.torch import load_file, save_file
from transformers.models.qwen3_5 import Qwen3_5ForCausalLM

model_dir, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
torch.manual_seed(99)
model = Qwen3_5ForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32).eval()
config = LoraConfig(r=4, lora_alpha=8, use_rslora=True, lora_dropout=0.0,
                    target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                    "down_proj", "in_proj_qkv", "in_proj_z", "out_proj"])
peft_model = get_peft_model(model, config)
with torch.no_grad():
    for name, p in peft_model.named_parameters():
        if "lora_" in name:
            p.copy_(torch.randn_like(p) * 0.1)
peft_model.save_pretrained(out)
ids = load_file(os.path.join(model_dir, "expected.safetensors"))["input_ids"]
with torch.no_grad():
    logits = peft_model(input_ids=ids).logits
    base = peft_model.get_base_model()
save_file({"logits": logits.contiguous()}, os.path.join(out, "expected_lora.safetensors"))
print(open(os.path.join(out, "adapter_config.json")).read())
print(list(load_file(os.path.join(out, "adapter_model.safetensors")).keys())[:6])
