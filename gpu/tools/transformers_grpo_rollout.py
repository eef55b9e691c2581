"""The rollout half of a GRPO step in transformers + PEFT (what TRL's GRPOTrainer does without
vLLM): `generate` of G completions of one prompt, sampled as LAMAR asks (temperature 1.0,
min-p 0.1, top-p 1.0), with a fresh LoRA adapter on every linear layer (r 2, alpha 2), the model
in bf16. The baseline of `gpu/tools/gpu-grpo-bench.sh`.

Usage: python3 transformers_grpo_rollout.py SNAPSHOT [--prompt-tokens 3000] [--new-tokens 2048]
       [--generations 8]
Prints one JSON object: the rollout's seconds and new tokens per second (after a short warm-up
generate), and PyTorch's peak memory.
"""
import argparse
import json
import time

import torch
import transformers
from peft import LoraConfig, get_peft_model

parser = argparse.ArgumentParser()
parser.add_argument("snapshot")
parser.add_argument("--prompt-tokens", type=int, default=3000)
parser.add_argument("--new-tokens", type=int, default=2048)
parser.add_argument("--generations", type=int, default=8)
args = parser.parse_args()

model = transformers.AutoModelForCausalLM.from_pretrained(args.snapshot, dtype=torch.bfloat16).cuda()
config = LoraConfig(r=2, lora_alpha=2, lora_dropout=0.0, bias="none", target_modules="all-linear")
model = get_peft_model(model, config)
model.eval()
vocab = model.config.vocab_size
g = torch.Generator().manual_seed(args.prompt_tokens)
prompt = torch.randint(0, vocab, (1, args.prompt_tokens), generator=g).cuda()
batch = prompt.repeat(args.generations, 1)
mask = torch.ones_like(batch)


def rollout(n):
    torch.cuda.synchronize()
    t = time.time()
    with torch.no_grad():
        out = model.generate(input_ids=batch, attention_mask=mask, max_new_tokens=n,
                             min_new_tokens=n, do_sample=True, temperature=1.0, top_p=1.0,
                             min_p=0.1, top_k=0, pad_token_id=0)
    torch.cuda.synchronize()
    return time.time() - t, out.shape[1] - args.prompt_tokens


rollout(4)  # warm-up
torch.cuda.reset_peak_memory_stats()
seconds, new = rollout(args.new_tokens)
print(json.dumps({
    "transformers": transformers.__version__, "torch": torch.__version__,
    "prompt_tokens": args.prompt_tokens, "generations": args.generations,
    "new_tokens": new * args.generations, "rollout_s": seconds,
    "rollout_tok_per_s": new * args.generations / seconds,
    "peak_gib": torch.cuda.max_memory_allocated() / 2**30,
}), flush=True)
