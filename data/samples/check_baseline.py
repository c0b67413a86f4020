#!/usr/bin/env python3
"""Measures how the untuned SmolLM2-135M-Instruct answers the validation rows (greedy decoding).

Needs torch and transformers (the reference environment scripts/setup.sh prepares). Prints how many answers are
exact and how many contain every computed figure, which README.md quotes, so that the claim "the base model does not already do
this" is measured rather than assumed.

Usage: python3 check_baseline.py [path/to/SmolLM2-135M-Instruct.Q4_1.gguf] [--rows N]
"""

import argparse
import json
import os
import re
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer


def default_model():
    env = os.environ.get("WHETSTONE_DEFAULT_MODEL")
    if env:
        return Path(env)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "whetstone" / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("model", nargs="?", type=Path, default=default_model())
    parser.add_argument("--rows", type=int, default=60)
    args = parser.parse_args()
    rows = [json.loads(l) for l in open(Path(__file__).parent / "instructions_val.jsonl", encoding="utf-8")]
    rows = rows[: args.rows]
    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(args.model.parent, gguf_file=args.model.name)
    model = AutoModelForCausalLM.from_pretrained(args.model.parent, gguf_file=args.model.name, dtype=torch.float32).eval()
    exact = figure = 0
    for i, row in enumerate(rows):
        ids = tok.apply_chat_template([{"role": "user", "content": row["prompt"]}], add_generation_prompt=True,
                                      return_tensors="pt", return_dict=True)["input_ids"]
        with torch.no_grad():
            out = model.generate(ids, max_new_tokens=96, do_sample=False, eos_token_id=tok.eos_token_id)
        answer = tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True).strip()
        # Computed figures: numbers, dates and quoted phrases of the reference answer that the prompt lacks.
        found = re.findall(r'"[^"]+"|\d{4}-\d{2}-\d{2}|\d[\d,]*(?:\.\d+)?', row["response"])
        computed = {f.rstrip(",") for f in found if f.rstrip(",") not in row["prompt"]}
        exact += answer == row["response"]
        figure += all(c in answer for c in computed)
        print(f"row {i + 1}: exact={answer == row['response']} figures={all(c in answer for c in computed)}", flush=True)
        if i < 5:
            print(f"PROMPT: {row['prompt']}\nMODEL:  {answer}\nWANT:   {row['response']}\n")
    print(f"{len(rows)} rows: exact answers {exact}, answers with every computed figure {figure}")


if __name__ == "__main__":
    main()
