"""The transformers baseline of cli/src/bin/embed-bench.rs: the same snapshot as Qwen3Model in
bf16 on the GPU (sdpa attention; the reference used flash_attention_2, not installed here),
batches of random ids of the same shape, last-token pooling and L2 normalisation as
sentence-transformers does; one warm-up batch, then tokens per second. With --compare DUMP
(embed-bench's --dump) it also embeds lamar's ids and reports the cosine of each pair.

Usage: python3 transformers_qwen3_embedding.py SNAPSHOT [--batch 8] [--tokens 2048]
       [--batches 4] [--compare DUMP]
"""
import argparse
import json
import time

import torch
import transformers

p = argparse.ArgumentParser()
p.add_argument("snapshot")
p.add_argument("--batch", type=int, default=8)
p.add_argument("--tokens", type=int, default=2048)
p.add_argument("--batches", type=int, default=4)
p.add_argument("--compare")
a = p.parse_args()
model = transformers.Qwen3Model.from_pretrained(
    a.snapshot, dtype=torch.bfloat16, attn_implementation="sdpa").cuda().eval()
vocab = model.config.vocab_size


def embed(ids):
    with torch.no_grad():
        hidden = model(input_ids=ids).last_hidden_state
    return torch.nn.functional.normalize(hidden[:, -1].float(), p=2, dim=1)


g = torch.Generator(device="cuda").manual_seed(0)
embed(torch.randint(0, vocab, (a.batch, a.tokens), device="cuda", generator=g))
seconds = 0.0
for _ in range(a.batches):
    ids = torch.randint(0, vocab, (a.batch, a.tokens), device="cuda", generator=g)
    torch.cuda.synchronize()
    started = time.perf_counter()
    embed(ids)
    torch.cuda.synchronize()
    seconds += time.perf_counter() - started
row = {"path": f"transformers {transformers.__version__} sdpa", "batch": a.batch,
       "tokens": a.tokens, "batches": a.batches, "seconds": seconds,
       "tok_per_s": a.batch * a.tokens * a.batches / seconds,
       "peak_gib": torch.cuda.max_memory_allocated() / 2**30}
if a.compare:
    dump = json.load(open(a.compare))
    ours = torch.tensor(dump["embeddings"], device="cuda")
    theirs = embed(torch.tensor(dump["ids"], device="cuda"))
    row["cosine_with_lamar_min"] = (ours * theirs).sum(1).min().item()
print(json.dumps(row), flush=True)
