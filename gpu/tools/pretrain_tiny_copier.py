"""Pre-trains the tiny Qwen3.5 of `tests/golden/qwen35_tiny_copier` to copy: given the task
prompt filled with a window of a synthetic note, answer with the window itself, untagged. A
random tiny model cannot learn to copy in a CI-sized run (it learns the notes' language and
ignores the prompt), so lamar's test of "training teaches tagging" starts from this one: it can
copy but writes no tags, and lamar's LoRA training must teach it where tags go.

Full-parameter training with PyTorch and transformers (no PEFT), f32, on the GPU machine:
    LAMAR_COPIER_DIR=DIR cargo test -p lamar-model --test training -- --ignored   (here)
    python3 gpu/tools/pretrain_tiny_copier.py DIR OUT [seconds]                    (GPU machine)
DIR/start is the random start (config and tokenizer from lamar), DIR/copy.jsonl the sequences
(`ids`, `response_start`); OUT gets the trained snapshot (transformers' save_pretrained, with
DIR/start's tokenizer and chat template) and report.json (steps, losses, held-out copy accuracy,
versions).
"""
import json
import os
import platform
import random
import shutil
import sys
import time

import torch
import transformers
from transformers.models.qwen3_5 import Qwen3_5ForCausalLM

data_dir, out = sys.argv[1], sys.argv[2]
budget = float(sys.argv[3]) if len(sys.argv) > 3 else 240.0
torch.manual_seed(0)
random.seed(0)
rows = [json.loads(line) for line in open(os.path.join(data_dir, "copy.jsonl"))]
random.shuffle(rows)
held_out, rows = rows[:100], rows[100:]
model = Qwen3_5ForCausalLM.from_pretrained(os.path.join(data_dir, "start"), dtype=torch.float32).cuda()
model.train()
opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
BATCH, WARMUP, MAX_STEPS = 32, 100, 20000


def batch_of(examples):
    n = max(len(e["ids"]) for e in examples)
    ids = torch.zeros(len(examples), n, dtype=torch.long)
    labels = torch.full((len(examples), n), -100, dtype=torch.long)
    mask = torch.zeros(len(examples), n, dtype=torch.long)
    for k, e in enumerate(examples):
        t = torch.tensor(e["ids"])
        ids[k, : len(t)] = t
        mask[k, : len(t)] = 1
        labels[k, e["response_start"] : len(t)] = t[e["response_start"] :]
    return ids.cuda(), labels.cuda(), mask.cuda()


def held_out_accuracy():
    model.eval()
    hits = total = 0
    with torch.no_grad():
        for k in range(0, len(held_out), 25):
            ids, labels, mask = batch_of(held_out[k : k + 25])
            logits = model(input_ids=ids, attention_mask=mask).logits
            pred = logits[:, :-1].argmax(-1)
            target = labels[:, 1:]
            valid = target != -100
            hits += (pred[valid] == target[valid]).sum().item()
            total += valid.sum().item()
    model.train()
    return hits / total


started, step, losses = time.time(), 0, []
schedule_end = None
while step < MAX_STEPS and time.time() - started < budget:
    batch = random.sample(rows, BATCH)
    ids, labels, mask = batch_of(batch)
    lr = 3e-3 * min(1.0, (step + 1) / WARMUP)
    for group in opt.param_groups:
        group["lr"] = lr
    loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    opt.zero_grad(set_to_none=True)
    losses.append(loss.item())
    step += 1
    if step % 250 == 0:
        print(json.dumps({"step": step, "loss": sum(losses[-250:]) / 250,
                          "seconds": round(time.time() - started, 1)}), flush=True)
accuracy = held_out_accuracy()
model.save_pretrained(out, safe_serialization=True)
for name in ["tokenizer.json", "tokenizer_config.json", "chat_template.jinja"]:
    shutil.copy(os.path.join(data_dir, "start", name), os.path.join(out, name))
report = {"python": platform.python_version(), "torch": torch.__version__,
          "transformers": transformers.__version__, "steps": step, "batch": BATCH,
          "final_loss": sum(losses[-100:]) / min(100, len(losses)),
          "held_out_next_token_accuracy": accuracy, "sequences": len(rows),
          "seconds": round(time.time() - started, 1)}
with open(os.path.join(out, "report.json"), "w") as f:
    json.dump(report, f, indent=1)
    f.write("\n")
print(json.dumps(report))
