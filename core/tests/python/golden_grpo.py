"""Golden GRPO arithmetic computed by PyTorch, for lamar-core's `grpo` module
(core/tests/grpo_parity.rs): GDPO / GRPO advantages and DAPO's loss with its gradient per token
log-probability, on seeded random batches, in float64.

The formulas are lamar-spec.md §6.3's (TRL 0.28's GRPOTrainer):
  normalize_then_sum: r̂_k = (r_k − nanmean_G r_k) / (nanstd_G r_k + 1e-4)   (nanstd: TRL's,
      the mean square deviation × n/(n−1), then the root); R = nansum_k w_k r̂_k;
      A = (R − mean R) / (std R + 1e-4)   (torch.std, unbiased, over the batch)
  sum_then_normalize: R = nansum_k w_k r_k; A = R − mean_G R, divided by std_G R + 1e-4 (scale
      "group"), std_batch R + 1e-4 ("batch") or nothing ("none")
  DAPO: c = exp(logp − logp_old); l = −min(c·A, clamp(c, 1 − 0.2, 1 + 0.28)·A);
      loss = Σ l · mask / Σ mask  (mask: 0 for every token of a completion out of the loss)
Missing rewards are NaN (TRL's None). The gradient is autograd's of the loss w.r.t. logp.

Usage (PyTorch; the committed goldens were made with torch 2.15.0 from PyPI, on the CPU):
    python3 core/tests/python/golden_grpo.py tests/golden/grpo
Writes tests/golden/grpo/advantages.jsonl and tests/golden/grpo/dapo.jsonl.
"""
import json
import os
import sys

import torch

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
torch.manual_seed(2026)
EPS = 1e-4


def nanstd(x, dim):
    mean = torch.nanmean(x, dim=dim, keepdim=True)
    variance = torch.nanmean((x - mean) ** 2, dim=dim, keepdim=True)
    count = (~torch.isnan(x)).sum(dim=dim, keepdim=True)
    return torch.sqrt(variance * count / (count - 1))


def advantages(rewards, weights, g, aggregation, scale):
    n, k = rewards.shape
    w = torch.tensor(weights, dtype=torch.float64)
    if aggregation == "normalize_then_sum":
        grouped = rewards.view(-1, g, k)
        mean = torch.nanmean(grouped, dim=1, keepdim=True)
        std = nanstd(grouped, 1) if g > 1 else torch.zeros_like(mean)
        normalised = ((grouped - mean) / (std + EPS)).view(-1, k)
        summed = torch.nansum(normalised * w.unsqueeze(0), dim=1)
        sd = summed.std() if summed.numel() > 1 else torch.zeros(())
        return (summed - summed.mean()) / (sd + EPS)
    summed = torch.nansum(rewards * w.unsqueeze(0), dim=1)
    mean = summed.view(-1, g).mean(dim=1).repeat_interleave(g)
    if scale == "group":
        sd = summed.view(-1, g).std(dim=1).repeat_interleave(g) if g > 1 else torch.zeros_like(summed)
    elif scale == "batch":
        sd = summed.std().expand_as(summed) if summed.numel() > 1 else torch.zeros_like(summed)
    advantage = summed - mean
    if scale != "none":
        advantage = advantage / (sd + EPS)
    return advantage


def rewards_case(groups, g, k, kind):
    r = torch.rand(groups * g, k, dtype=torch.float64)
    if kind == "binary":
        r = (r > 0.5).double()
    if kind == "missing":
        r[torch.rand(groups * g, k) < 0.2] = float("nan")
    if kind == "flat_group":
        r.view(groups, g, k)[0] = r.view(groups, g, k)[0, :1]  # the first group all equal
    if kind == "one_present":
        r[:, 0] = float("nan")
        r[0, 0] = 0.7  # one present value of reward 0 in the first group
    return r


with open(os.path.join(out, "advantages.jsonl"), "w") as f:
    case = 0
    for kind in ["uniform", "binary", "missing", "flat_group", "one_present"]:
        for groups, g in [(1, 8), (3, 8), (2, 4), (4, 1)]:
            for aggregation, scale in [("normalize_then_sum", "group"), ("sum_then_normalize", "group"),
                                       ("sum_then_normalize", "batch"), ("sum_then_normalize", "none")]:
                k = 3
                r = rewards_case(groups, g, k, kind)
                weights = [1.0, 1.0, 1.0] if case % 2 == 0 else [0.5, 2.0, 1.25]
                a = advantages(r, weights, g, aggregation, scale)
                f.write(json.dumps({
                    "case": case, "kind": kind, "group_size": g, "aggregation": aggregation,
                    "scale": scale, "weights": weights,
                    "rewards": [[None if v != v else v for v in row] for row in r.tolist()],
                    "advantages": [None if v != v else v for v in a.tolist()],
                }) + "\n")
                case += 1

with open(os.path.join(out, "dapo.jsonl"), "w") as f:
    for case in range(24):
        completions = []
        n = [1, 2, 8][case % 3]
        for c in range(n):
            length = int(torch.randint(1, 40, ()).item())
            old = -torch.rand(length, dtype=torch.float64) * 3
            if case % 4 == 0:
                new = old.clone()  # on-policy: every ratio 1
            else:
                new = old + torch.randn(length, dtype=torch.float64) * 0.3
            completions.append({
                "logprobs": new.tolist(), "old_logprobs": old.tolist(),
                "advantage": float(torch.randn(()).item()),
                "in_loss": bool(c != 1 or case % 5 != 0),
            })
        logps = [torch.tensor(c["logprobs"], dtype=torch.float64, requires_grad=True) for c in completions]
        total = torch.zeros((), dtype=torch.float64)
        tokens = sum(len(c["logprobs"]) for c in completions if c["in_loss"])
        for c, lp in zip(completions, logps):
            old = torch.tensor(c["old_logprobs"], dtype=torch.float64)
            ratio = torch.exp(lp - old)
            a = c["advantage"]
            per_token = -torch.min(ratio * a, torch.clamp(ratio, 1 - 0.2, 1 + 0.28) * a)
            mask = 1.0 if c["in_loss"] else 0.0
            total = total + (per_token * mask).sum()
        loss = total / max(tokens, 1)
        loss.backward()
        f.write(json.dumps({
            "case": case, "completions": completions, "loss": loss.item(),
            "tokens": tokens, "logprob_grads": [lp.grad.tolist() for lp in logps],
        }) + "\n")
print("wrote", out)
