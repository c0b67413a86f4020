#!/usr/bin/env python3
"""Loads Whetstone's GGUF exports into llama.cpp (through llama-cpp-python, which builds it from
source) and compares its next-token logits and greedy answers with the exported merged model run
by transformers, which `check_exports.py` shows equal to PEFT's own merge of the same adapter.

    python scripts/export/llama_cpp_check.py --merged DIR --gguf FILE [FILE ...] \
        [--base BASE.gguf --lora adapter-lora.gguf]

With --base and --lora, llama.cpp also applies the exported LoRA GGUF over the base file, and those
logits are compared with transformers' base + PEFT adapter (--adapter DIR).
"""

import argparse
import sys
from pathlib import Path

import numpy as np

PROMPTS = [
    "Write one sentence about a bright two-bedroom flat near a park.",
    "The house at 84 Maple Drive, Clearwater is listed at $734,000 for 1,440 sq ft. What is the price per square foot?",
]


def chat_text(tok, prompt: str) -> str:
    return tok.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True)


def reference_logits(model, tok, text: str):
    import torch

    ids = tok(text, return_tensors="pt", add_special_tokens=False).input_ids
    with torch.no_grad():
        return ids[0].tolist(), model(ids).logits[0, -1].numpy()


def reference_greedy(model, tok, text: str, n: int) -> str:
    import torch

    ids = tok(text, return_tensors="pt", add_special_tokens=False).input_ids
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=n, do_sample=False)
    return tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True)


def llama_logits(llm, ids):
    llm.reset()
    llm.eval(ids)
    return np.array(llm.scores[len(ids) - 1], dtype=np.float32)


def llama_greedy(llm, ids, n: int) -> str:
    llm.reset()
    out = []
    for tok in llm.generate(ids, temp=0.0, top_k=1, reset=True):
        if tok == llm.token_eos() or len(out) >= n:
            break
        out.append(tok)
    return llm.detokenize(out).decode("utf-8", errors="replace")


def main() -> int:
    from llama_cpp import Llama
    from transformers import AutoModelForCausalLM, AutoTokenizer

    p = argparse.ArgumentParser()
    p.add_argument("--merged", type=Path, required=True)
    p.add_argument("--gguf", type=Path, nargs="+", required=True)
    p.add_argument("--base", type=Path)
    p.add_argument("--lora", type=Path)
    p.add_argument("--adapter", type=Path)
    p.add_argument("--tokens", type=int, default=24)
    a = p.parse_args()

    tok = AutoTokenizer.from_pretrained(str(a.merged))
    ref = AutoModelForCausalLM.from_pretrained(str(a.merged), dtype="float32").eval()
    texts = [chat_text(tok, q) for q in PROMPTS]
    refs = [reference_logits(ref, tok, t) for t in texts]
    answers = [reference_greedy(ref, tok, t, a.tokens) for t in texts]
    failed = False
    for g in a.gguf:
        llm = Llama(model_path=str(g), n_ctx=512, logits_all=True, verbose=False, seed=0)
        for text, (ids, want), answer in zip(texts, refs, answers):
            ours = llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
            same_ids = ours == ids
            got = llama_logits(llm, ids)
            diff = float(np.abs(got - want).max())
            same_top = int(got.argmax()) == int(want.argmax())
            llama_answer = llama_greedy(llm, ids, a.tokens)
            print(f"{g.name}: llama.cpp tokenizes the prompt like transformers: {same_ids}; next-token logits max |diff| {diff:.3e} (logits up to {np.abs(want).max():.1f}); same top token: {same_top}")
            print(f"    transformers: {answer.strip()!r}")
            print(f"    llama.cpp:    {llama_answer.strip()!r}")
            failed |= not same_ids or not same_top
        del llm
    if a.base and a.lora:
        if not a.adapter:
            p.error("--lora needs --adapter (the PEFT adapter it was exported from)")
        import torch
        from peft import PeftModel

        base = AutoModelForCausalLM.from_pretrained(str(a.base.parent), gguf_file=a.base.name, dtype=torch.float32)
        peft = PeftModel.from_pretrained(base, str(a.adapter)).eval()
        llm = Llama(model_path=str(a.base), lora_path=str(a.lora), n_ctx=512, logits_all=True, verbose=False, seed=0)
        plain = Llama(model_path=str(a.base), n_ctx=512, logits_all=True, verbose=False, seed=0)
        for text in texts:
            ids, want = reference_logits(peft, tok, text)
            with_lora = llama_logits(llm, ids)
            without = llama_logits(plain, ids)
            print(
                f"{a.lora.name} over {a.base.name} in llama.cpp vs transformers base + PEFT: max |diff| {np.abs(with_lora - want).max():.3e}; "
                f"without the LoRA it is {np.abs(without - want).max():.3e}; same top token: {int(with_lora.argmax()) == int(want.argmax())}"
            )
            failed |= int(with_lora.argmax()) != int(want.argmax())
    print("FAILED" if failed else "all checks passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
