"""Makes the golden files of lamar's Qwen3-Embedding parity test (gpu/tests/qwen3_embedding.rs)
with Hugging Face transformers: a tiny, randomly initialised Qwen3 model saved as Qwen3-Embedding
snapshots are (the bare Qwen3Model, weights without the `model.` prefix, every weight perturbed
so that norms initialised to one count too), a word-level tokenizer whose post-processor appends
<|endoftext|> as Qwen3-Embedding's does, and the embeddings sentence-transformers would compute
with the model's own settings: left padding, the last token's hidden state, L2-normalised, no
instruction (LAMAR §8.2).

Usage: python3 make_tiny_qwen3_embedding.py OUT_DIR
Writes OUT_DIR/{config.json, model.safetensors, tokenizer.json, tokenizer_config.json,
expected.json (texts, token ids, embeddings, truncated ids), report.txt}. f32 on the CPU.
"""
import json
import os
import sys

import torch
import transformers
from tokenizers import Tokenizer, models, pre_tokenizers, processors

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
torch.manual_seed(2026)

words = ("the patient was started on heparin for dvt and discharged home with follow up "
         "we decided to stop metoprolol given bradycardia continue aspirin plan").split()
vocab = {"[UNK]": 0}
for w in words:
    vocab.setdefault(w, len(vocab))
eos = "<|endoftext|>"
vocab[eos] = len(vocab)
tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
tokenizer.post_processor = processors.TemplateProcessing(
    single=f"$A:0 {eos}:0", pair=f"$A:0 {eos}:0 $B:1 {eos}:1",
    special_tokens=[(eos, vocab[eos])])
tokenizer.save(os.path.join(out, "tokenizer.json"))
fast = transformers.PreTrainedTokenizerFast(
    tokenizer_file=os.path.join(out, "tokenizer.json"), eos_token=eos, pad_token=eos,
    unk_token="[UNK]", padding_side="left")
fast.save_pretrained(out)

config = transformers.Qwen3Config(
    vocab_size=64, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
    num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=256,
    rope_theta=1_000_000.0, rms_norm_eps=1e-6, tie_word_embeddings=False,
    attn_implementation="eager")
model = transformers.Qwen3Model(config).eval()
with torch.no_grad():
    for p in model.parameters():
        p.add_(torch.randn_like(p) * 0.05)
model.save_pretrained(out, safe_serialization=True)

texts = [
    "the patient was started on heparin for dvt",
    "we decided to stop metoprolol given bradycardia",
    "continue aspirin",
    "plan discharged home with follow up and continue aspirin the patient was started on heparin",
    "unknown words map to the unknown token",
]
batch = fast(texts, padding=True, truncation=True, max_length=256, return_tensors="pt")
with torch.no_grad():
    hidden = model(**batch).last_hidden_state
pooled = torch.nn.functional.normalize(hidden[:, -1].float(), p=2, dim=1)
ids = [fast(t, truncation=True, max_length=256)["input_ids"] for t in texts]
truncated = [fast(t, truncation=True, max_length=6)["input_ids"] for t in texts]
with open(os.path.join(out, "expected.json"), "w") as f:
    json.dump({"texts": texts, "ids": ids, "truncated_6": truncated,
               "embeddings": pooled.tolist()}, f)
with open(os.path.join(out, "report.txt"), "w") as f:
    f.write(f"transformers {transformers.__version__}\ntorch {torch.__version__}\n"
            f"weights: {sorted(model.state_dict())}\n")
print("wrote", out)
