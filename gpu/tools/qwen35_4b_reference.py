"""A randomly initialised full-size Qwen3.5-4B text model, and transformers' own numbers for it.

Runs on the GPU machine (transformers >= 5.2 with `qwen3_5`, PyTorch with CUDA; no weights
needed). Builds the 4B text configuration (that of Qwen/Qwen3.5-4B's config.json, written below),
initialises it randomly (seeded; every weight perturbed so zero-initialised norms count too),
saves it as a snapshot lamar can load, and records:

* reference logits of a fixed random prompt, computed in f32 (`logits`) and in bf16
  (`logits_bf16`), and how far transformers' own bf16 is from its f32 (the yardstick for
  lamar's bf16);
* prefill time of a 3,000-token prompt (last-position logits only);
* decode throughput of `generate` (greedy, no stop) at the given batch sizes: the time of
  N new tokens minus the time of 1 (prefill + first token), over N - 1 steps.

Usage: python3 qwen35_4b_reference.py OUT_DIR [--new-tokens 64] [--batches 1,32] [--no-timing]
Writes OUT_DIR/snapshot/ (config.json + safetensors), OUT_DIR/reference.safetensors and prints
one JSON object per measurement.
"""
import argparse
import importlib.util
import json
import os
import time

import torch
import transformers
import transformers.models.qwen3_5 as q35
from safetensors.torch import save_file

parser = argparse.ArgumentParser()
parser.add_argument("out")
parser.add_argument("--new-tokens", type=int, default=64)
parser.add_argument("--prompt-tokens", type=int, default=3000)
parser.add_argument("--batches", default="1,32")
parser.add_argument("--logit-tokens", type=int, default=256)
parser.add_argument("--no-timing", action="store_true", help="only the snapshot and reference logits")
args = parser.parse_args()
os.makedirs(args.out, exist_ok=True)
snapshot = os.path.join(args.out, "snapshot")


def emit(**kv):
    print(json.dumps(kv), flush=True)


emit(transformers=transformers.__version__, torch=torch.__version__,
     gpu=torch.cuda.get_device_name(0))
config = q35.Qwen3_5TextConfig(
    vocab_size=248320, hidden_size=2560, intermediate_size=9216, num_hidden_layers=32,
    num_attention_heads=16, num_key_value_heads=4, head_dim=256,
    linear_num_key_heads=16, linear_num_value_heads=32, linear_key_head_dim=128,
    linear_value_head_dim=128, linear_conv_kernel_dim=4, full_attention_interval=4,
    rms_norm_eps=1e-6, tie_word_embeddings=True, max_position_embeddings=262144,
    rope_parameters={"rope_type": "default", "rope_theta": 1e7, "partial_rotary_factor": 0.25},
    eos_token_id=248044, pad_token_id=248044,
)
torch.manual_seed(0)
t = time.time()
with torch.device("cuda"):
    model = q35.Qwen3_5ForCausalLM(config).to(torch.bfloat16).eval()
with torch.no_grad():
    for name, p in model.named_parameters():
        if name.endswith("A_log"):
            p.copy_(torch.log(torch.rand_like(p, dtype=torch.float32) * 4 + 0.5).to(p.dtype))
        elif p.dim() == 1:
            p.add_(torch.randn_like(p) * 0.05)


def delta_rule_name(mixer):
    """Where the layer's chunked delta rule comes from: flash-linear-attention's module (fla.ops…)
    when transformers picked its Triton kernels, else transformers' own PyTorch fallback."""
    found = [getattr(v, "__module__", type(v).__name__) for k, v in vars(mixer).items()
             if "delta_rule" in k and callable(v)]
    return found[0] if found else ("fla importable" if importlib.util.find_spec("fla") else "transformers fallback")


mixer = next(layer.linear_attn for layer in model.model.layers if hasattr(layer, "linear_attn"))
emit(build_s=time.time() - t, attn_impl=model.config._attn_implementation,
     params=sum(p.numel() for p in model.parameters()),
     # which delta-rule implementation transformers picked: flash-linear-attention's Triton
     # kernels (module fla.ops...) when its wheels are importable, else its PyTorch fallback
     delta_rule=delta_rule_name(mixer))
t = time.time()
model.save_pretrained(snapshot, safe_serialization=True)
emit(save_s=time.time() - t)

g = torch.Generator().manual_seed(7)
ids = torch.randint(0, config.vocab_size, (1, args.logit_tokens), generator=g).cuda()
with torch.no_grad():
    logits_bf16 = model(input_ids=ids).logits.float()
    model.float()  # the same weights (bf16 values are exact in f32), computed in f32
    logits = model(input_ids=ids).logits.float()
    model.to(torch.bfloat16)
diff = (logits_bf16 - logits).abs()
emit(reference_logits=list(logits.shape), transformers_bf16_vs_f32_max_abs=diff.max().item(),
     transformers_bf16_vs_f32_mean_abs=diff.mean().item(),
     transformers_bf16_vs_f32_top1=(logits_bf16.argmax(-1) == logits.argmax(-1)).float().mean().item(),
     reference_rms=logits.pow(2).mean().sqrt().item())
save_file({"input_ids": ids.cpu().contiguous(), "logits": logits.cpu().contiguous(),
           "logits_bf16": logits_bf16.cpu().contiguous()},
          os.path.join(args.out, "reference.safetensors"))


def sync():
    torch.cuda.synchronize()


for batch in [] if args.no_timing else [int(b) for b in args.batches.split(",")]:
    prompt = torch.randint(0, config.vocab_size, (batch, args.prompt_tokens), generator=g).cuda()
    with torch.no_grad():
        model(input_ids=prompt[:1], logits_to_keep=1)  # warm-up at full length
        sync()
        t = time.time()
        for row in range(batch):
            model(input_ids=prompt[row:row + 1], logits_to_keep=1)
        sync()
        prefill = time.time() - t
        timings = {}
        for n in (1, args.new_tokens):
            sync()
            t = time.time()
            out = model.generate(prompt, max_new_tokens=n, min_new_tokens=n, do_sample=False,
                                 eos_token_id=None, pad_token_id=0)
            sync()
            timings[n] = time.time() - t
    assert out.shape[1] == args.prompt_tokens + args.new_tokens
    decode = timings[args.new_tokens] - timings[1]
    emit(system="transformers", batch=batch, prompt_tokens=args.prompt_tokens,
         new_tokens_per_row=args.new_tokens, prefill_s=prefill,
         prefill_tok_s=batch * args.prompt_tokens / prefill,
         time_to_first_token_s=timings[1], generate_s=timings[args.new_tokens],
         decode_tok_s=batch * (args.new_tokens - 1) / decode,
         decode_ms_per_step=1e3 * decode / (args.new_tokens - 1))
