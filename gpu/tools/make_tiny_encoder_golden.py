"""Golden logits, loss and gradients of one step of the encoder baseline (lamar-spec §9),
computed by PyTorch + transformers on tiny randomly initialised token classifiers, for lamar's
encoder parity tests (gpu/src/encoder).

Two models: `BertForTokenClassification` and `RobertaForTokenClassification` (RoBERTa places
positions after the padding index), 2 layers, width 32, 4 heads, exact GELU, dropout 0, 19
labels (B/I of the nine categories and O). One batch of two sequences of 14 tokens, the second
padded at its end (attention mask 0); labels -100 on the first token and the padding (the
reference's label padding). The loss is the mean cross-entropy over labelled tokens
(`CrossEntropyLoss(ignore_index=-100)`), f32 on the CPU.

Usage (torch, transformers >= 5):
    python3 gpu/tools/make_tiny_encoder_golden.py OUT_DIR
Writes OUT_DIR/{bert,roberta}/config.json and model.safetensors (the weights before the step,
under transformers' names) and OUT_DIR/{bert,roberta}/step.safetensors: input_ids,
attention_mask, labels, logits, loss and `grad.NAME` for every parameter; OUT_DIR/report.json
holds the versions.
"""
import json
import os
import platform
import sys

import torch
import transformers
from safetensors.torch import save_file
from transformers import BertConfig, BertForTokenClassification, RobertaConfig, RobertaForTokenClassification

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
common = dict(
    vocab_size=120,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=64,
    hidden_act="gelu",
    hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0,
    initializer_range=0.2,
    num_labels=19,
)
models = {
    "bert": (BertConfig(max_position_embeddings=64, type_vocab_size=2, layer_norm_eps=1e-12, pad_token_id=0, **common),
             BertForTokenClassification),
    "roberta": (RobertaConfig(max_position_embeddings=66, type_vocab_size=1, layer_norm_eps=1e-5, pad_token_id=1,
                              bos_token_id=0, eos_token_id=2, **common),
                RobertaForTokenClassification),
}
for name, (config, cls) in models.items():
    torch.manual_seed(3407)
    model = cls(config).float().train()
    # Non-zero biases and layer-norm parameters, so that their gradients and uses are tested.
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if pname.endswith("bias") or "LayerNorm" in pname:
                p.add_(torch.randn_like(p) * 0.1)
    d = os.path.join(out, name)
    model.save_pretrained(d, safe_serialization=True)
    pad = config.pad_token_id
    ids = torch.randint(3, config.vocab_size, (2, 14))
    mask = torch.ones(2, 14, dtype=torch.long)
    ids[1, 10:] = pad
    mask[1, 10:] = 0
    labels = torch.randint(0, 19, (2, 14))
    labels[:, 0] = -100
    labels[1, 10:] = -100
    model.zero_grad()
    result = model(input_ids=ids, attention_mask=mask, labels=labels)
    result.loss.backward()
    tensors = {
        "input_ids": ids,
        "attention_mask": mask,
        "labels": labels,
        "logits": result.logits.detach().contiguous(),
        "loss": result.loss.detach().reshape(1),
    }
    for pname, p in model.named_parameters():
        if p.grad is not None:
            tensors["grad." + pname] = p.grad.detach().contiguous()
    save_file(tensors, os.path.join(d, "step.safetensors"))
    print(name, "loss", float(result.loss))
with open(os.path.join(out, "report.json"), "w") as f:
    json.dump({"torch": torch.__version__, "transformers": transformers.__version__,
               "python": platform.python_version()}, f, indent=1)
