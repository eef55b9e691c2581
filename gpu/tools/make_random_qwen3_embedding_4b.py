"""A random Qwen3-Embedding-4B-shaped snapshot (the released model's config: 36 layers, hidden
2,560, 32 query and 8 key/value heads of 128, MLP 9,728, vocabulary 151,665) in bf16, saved as
the bare Qwen3Model (no `model.` prefix) like the real one, for the embedding benchmark. Weights
are drawn on the GPU (normal, std 0.02). A tokenizer.json is copied in from the tiny golden
snapshot (the benchmark feeds token ids).

Usage: python3 make_random_qwen3_embedding_4b.py OUT_DIR TOKENIZER_JSON
"""
import os
import shutil
import sys

import torch
import transformers

out, tokenizer = sys.argv[1], sys.argv[2]
config = transformers.Qwen3Config(
    vocab_size=151665, hidden_size=2560, intermediate_size=9728, num_hidden_layers=36,
    num_attention_heads=32, num_key_value_heads=8, head_dim=128, max_position_embeddings=40960,
    rope_theta=1_000_000.0, rms_norm_eps=1e-6, tie_word_embeddings=True)
torch.manual_seed(0)
with torch.device("cuda"):
    model = transformers.Qwen3Model(config).to(torch.bfloat16)
model.save_pretrained(out, safe_serialization=True)
shutil.copy(tokenizer, os.path.join(out, "tokenizer.json"))
print("wrote", out)
