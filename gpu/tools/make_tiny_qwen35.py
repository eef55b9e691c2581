"""Makes the golden files of lamar-model's parity tests with Hugging Face transformers (>= 5.2,
which has `qwen3_5`): a tiny, randomly initialised Qwen3.5 text model (3 Gated DeltaNet layers
and 1 gated full-attention layer, every weight perturbed so that zero-initialised norms count
too), its logits on a fixed prompt longer than one DeltaNet chunk (64), and greedy continuations.

Usage: python3 make_tiny_qwen35.py OUT_DIR
Writes OUT_DIR/config.json, OUT_DIR/model.safetensors, OUT_DIR/expected.safetensors (input_ids,
logits, greedy) and OUT_DIR/report.txt (versions, classes, weight names). f32 on CPU.
"""
import json
import os
import sys

import torch
import transformers
from safetensors.torch import save_file

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
report = [f"transformers {transformers.__version__}", f"torch {torch.__version__}"]
import transformers.models.qwen3_5 as q35  # noqa: E402

report.append("qwen3_5 exports: " + ", ".join(n for n in dir(q35) if n.startswith("Qwen")))
torch.manual_seed(1234)
config = q35.Qwen3_5TextConfig(
    vocab_size=256,
    hidden_size=64,
    intermediate_size=96,
    num_hidden_layers=4,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=16,
    linear_num_key_heads=2,
    linear_num_value_heads=4,
    linear_key_head_dim=16,
    linear_value_head_dim=16,
    linear_conv_kernel_dim=4,
    full_attention_interval=4,
    rms_norm_eps=1e-6,
    tie_word_embeddings=True,
    max_position_embeddings=4096,
    eos_token_id=2,
    pad_token_id=0,
    bos_token_id=1,
)
report.append("config: " + json.dumps(config.to_dict(), default=str))
model = q35.Qwen3_5ForCausalLM(config).eval().to(torch.float32)
with torch.no_grad():
    for name, p in model.named_parameters():
        p.add_(torch.randn_like(p) * 0.05)
        if name.endswith("A_log"):
            p.copy_(torch.log(torch.rand_like(p) * 4 + 0.5))
model.save_pretrained(out, safe_serialization=True)
report.append("weights: " + ", ".join(f"{k} {tuple(v.shape)}" for k, v in model.state_dict().items()))
g = torch.Generator().manual_seed(7)
input_ids = torch.randint(3, 256, (1, 100), generator=g)
with torch.no_grad():
    logits = model(input_ids=input_ids).logits
    # Greedy continuation: the prompt's first 10 tokens, 30 new tokens (decode path: recurrent).
    greedy = model.generate(input_ids[:, :10], max_new_tokens=30, do_sample=False, eos_token_id=None,
                            pad_token_id=0)
    # Logits of the same 100 tokens fed one at a time (the recurrent path) for the record.
    step_logits = []
    past = None
    for t in range(input_ids.shape[1]):
        o = model(input_ids=input_ids[:, t:t + 1], past_key_values=past, use_cache=True)
        past = o.past_key_values
        step_logits.append(o.logits[:, -1])
    step_logits = torch.stack(step_logits, dim=1)
report.append(f"max |prefill - stepwise| = {(logits - step_logits).abs().max().item():.3e}")
save_file({"input_ids": input_ids.to(torch.int64).contiguous(), "logits": logits.contiguous(),
           "step_logits": step_logits.contiguous(), "greedy": greedy.to(torch.int64).contiguous()},
          os.path.join(out, "expected.safetensors"))
with open(os.path.join(out, "report.txt"), "w") as f:
    f.write("\n".join(report) + "\n")
print("\n".join(report))
