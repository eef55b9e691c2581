"""Golden files for lamar's tokenizer and chat-template rendering.

Trains a small byte-level BPE tokenizer (Qwen-style pre-tokenizer, Qwen's chat special
tokens) on the synthetic corpus, saves it with `gpu/assets/tiny-chat/chat_template.jinja`
as a snapshot folder (the tokenizer lamar's tests and demo use), then records what transformers' `apply_chat_template` makes of a set of
conversations: the rendered text, the token ids, and the decoded ids.

Usage (transformers >= 5.2, tokenizers, jinja2):
    python gpu/tools/make_chat_golden.py RAW_TEXT_DIR   # folder of synthetic *.txt notes
Writes gpu/assets/tiny-chat/{tokenizer.json, tokenizer_config.json} and
tests/golden/chat/expected.json.

    python gpu/tools/make_chat_golden.py RAW_TEXT_DIR --snapshot DIR
Uses a real snapshot's tokenizer and chat template instead (nothing trained) and writes
DIR/expected.json; then `LAMAR_CHAT_GOLDEN_DIR=DIR cargo test -p lamar-model --test chat_golden`
checks lamar against it (e.g. a Qwen tokenizer.json with fancy-regex against Python's onig).
"""

import json
import pathlib
import sys

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoTokenizer

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "gpu" / "assets" / "tiny-chat"
GOLDEN = ROOT / "tests" / "golden" / "chat"
PROMPT = pathlib.Path(__file__).resolve().parents[2] / "core" / "assets" / "prompts" / "lamar-tagging-v1.txt"
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
ADDED = ["<think>", "</think>"]
# The Qwen2/Qwen3 pre-tokenizer pattern (letters, single digits, punctuation runs, newlines).
PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def train(texts):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=1200,
        special_tokens=SPECIAL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    tok.add_tokens(ADDED)
    return tok


def main():
    notes = sorted(pathlib.Path(sys.argv[1]).glob("*.txt"))
    texts = [p.read_text(encoding="utf-8") for p in notes]
    if "--snapshot" in sys.argv:
        out = pathlib.Path(sys.argv[sys.argv.index("--snapshot") + 1])
    else:
        out = OUT
        texts = texts[:60]
        out.mkdir(parents=True, exist_ok=True)
        train(texts).save(str(out / "tokenizer.json"))
        (out / "tokenizer_config.json").write_text(json.dumps({
            "tokenizer_class": "PreTrainedTokenizerFast",
            "eos_token": "<|im_end|>",
            "pad_token": "<|endoftext|>",
            "model_max_length": 262144,
        }, indent=2) + "\n")
    tok = AutoTokenizer.from_pretrained(str(out))
    prompt = PROMPT.read_text(encoding="utf-8")
    tricky = [
        texts[0],
        texts[1] + "\n\n",
        "\x1c  Braces {raw_text} {{ x }} {% if y %}z{% endif %} stay text.\r\nLine two\t \x1f",
        "Unicode: é, ß, 心房颤动, 😀 and </think> inside the note.",
        "",
    ]
    cases = []
    for k, doc in enumerate(tricky):
        user = prompt.format(raw_text=doc)
        cases.append({"name": f"inference_{k}", "document": doc,
                      "messages": [{"role": "user", "content": user}],
                      "add_generation_prompt": True, "enable_thinking": False})
    cases.append({"name": "training_pair", "document": texts[2],
                  "messages": [{"role": "user", "content": prompt.format(raw_text=texts[2])},
                               {"role": "assistant", "content": " <drug_decision>Tagged</drug_decision> copy\n"}],
                  "add_generation_prompt": False, "enable_thinking": False})
    cases.append({"name": "thinking_on", "document": texts[3],
                  "messages": [{"role": "user", "content": prompt.format(raw_text=texts[3])}],
                  "add_generation_prompt": True, "enable_thinking": True})
    cases.append({"name": "system_and_reasoning", "document": None,
                  "messages": [{"role": "system", "content": "  Be brief.  "},
                               {"role": "user", "content": "Q1"},
                               {"role": "assistant", "content": "<think>\nhmm\n</think>\n\nA1"},
                               {"role": "user", "content": "Q2"},
                               {"role": "assistant", "content": "<think>\nwhy\n</think>\n\nA2"}],
                  "add_generation_prompt": False, "enable_thinking": False})
    for case in cases:
        kwargs = dict(add_generation_prompt=case["add_generation_prompt"],
                      enable_thinking=case["enable_thinking"])
        text = tok.apply_chat_template(case["messages"], tokenize=False, **kwargs)
        ids = tok.apply_chat_template(case["messages"], tokenize=True, return_dict=False, **kwargs)
        if isinstance(ids, dict):
            ids = ids["input_ids"]
        case["text"] = text
        case["ids"] = list(ids)
        case["decoded"] = tok.decode(ids, skip_special_tokens=True)
    # With a real snapshot: every note of the corpus through the tokenizer as well.
    if out != OUT:
        for k, doc in enumerate(texts[4:]):
            cases.append({"name": f"note_{k}", "document": doc,
                          "messages": [{"role": "user", "content": prompt.format(raw_text=doc)}],
                          "add_generation_prompt": True, "enable_thinking": False})
            c = cases[-1]
            c["text"] = tok.apply_chat_template(c["messages"], tokenize=False,
                                                add_generation_prompt=True, enable_thinking=False)
            c["ids"] = list(tok(c["text"], add_special_tokens=False)["input_ids"])
            c["decoded"] = tok.decode(c["ids"], skip_special_tokens=True)
    (GOLDEN if out == OUT else out).joinpath("expected.json").write_text(json.dumps(cases, ensure_ascii=False, indent=1) + "\n")
    print(f"{len(cases)} cases, vocabulary {len(tok)}")


if __name__ == "__main__":
    main()
