#!/usr/bin/env python3
"""Reads Whetstone's exports back with the tools people load them with, and prints the differences.

    python scripts/export/check_exports.py --base MODEL --adapter RUN/adapter \
        [--merged DIR] [--gguf FILE ...] [--lora FILE]

- Merged folder: transformers loads it; its logits are compared with transformers' base model plus
  the run's adapter applied by PEFT (the base may be an HF folder or a GGUF file, which transformers
  dequantizes through the `gguf` package).
- GGUF files (model or LoRA adapter): the `gguf` package (llama.cpp's gguf-py) reads every key,
  tensor name, shape and block type; the printout lists them, and for a model file checks the
  architecture keys and that the tokenizer and chat template travelled.

Needs the reference stack of scripts/parity/requirements.txt (torch, transformers, peft, gguf). CI does
not run it: the Rust tests check the same files with our own loader, and this script is how the
figures in the notes are reproduced.
"""

import argparse
import sys
from pathlib import Path

import numpy as np


def base_model(path: Path):
    import torch
    from transformers import AutoModelForCausalLM

    if path.suffix == ".gguf":
        return AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, torch_dtype=torch.float32)
    return AutoModelForCausalLM.from_pretrained(str(path), torch_dtype=torch.float32)


def tokenizer_for(path: Path):
    from transformers import AutoTokenizer

    if path.suffix == ".gguf":
        return AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    return AutoTokenizer.from_pretrained(str(path))


def check_merged(base: Path, adapter: Path, merged: Path) -> float:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(merged))
    messages = [{"role": "user", "content": "Write one sentence about a bright two-bedroom flat near a park."}]
    text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) + "A bright"
    ids = tok(text, return_tensors="pt", add_special_tokens=False).input_ids
    ref_ids = tokenizer_for(base)(text, return_tensors="pt", add_special_tokens=False).input_ids
    print(f"merged: prompt of {ids.shape[1]} tokens; same ids as the base's tokenizer: {torch.equal(ids, ref_ids)}")
    with torch.no_grad():
        peft = PeftModel.from_pretrained(base_model(base), str(adapter)).eval()
        unmerged = peft(ids).logits
        peft_merged = peft.merge_and_unload().eval()
        want = peft_merged(ids).logits
        ours = AutoModelForCausalLM.from_pretrained(str(merged), torch_dtype=torch.float32).eval()
        got = ours(ids).logits
        reference = peft_merged.state_dict()
        weights = max((t - reference[k]).abs().max().item() for k, t in ours.state_dict().items() if k in reference)
    diff = (got - want).abs().max().item()
    scale = want.abs().max().item()
    print(f"merged: weights vs PEFT's merge_and_unload: max |diff| {weights:.3e}")
    print(f"merged: logits vs PEFT's merge_and_unload: max |diff| {diff:.3e} (logits up to {scale:.2f})")
    print(
        f"merged: logits vs base + adapter applied by PEFT unmerged: max |diff| {(got - unmerged).abs().max().item():.3e} "
        f"(the two sums in a different order; PEFT's own merge differs from it by {(want - unmerged).abs().max().item():.3e})"
    )
    diff = max(diff, weights)
    return diff


def check_gguf(path: Path) -> bool:
    from gguf import GGUFReader

    r = GGUFReader(str(path))
    fields = {k: f for k, f in r.fields.items()}

    def value(key):
        f = fields.get(key)
        if f is None:
            return None
        v = f.parts[f.data[0]]
        if f.types and f.types[0].name == "STRING":
            return bytes(v).decode("utf-8")
        return v.tolist()[0] if hasattr(v, "tolist") else v

    kind = value("general.type")
    arch = value("general.architecture")
    types = {}
    for t in r.tensors:
        types[t.tensor_type.name] = types.get(t.tensor_type.name, 0) + 1
    print(f"{path.name}: gguf-py reads {len(r.tensors)} tensors, {len(fields)} keys; type {kind}, architecture {arch}; blocks {types}")
    ok = True
    if kind == "adapter":
        print(f"  adapter.type={value('adapter.type')} adapter.lora.alpha={value('adapter.lora.alpha')}")
        a = next(t for t in r.tensors if t.name.endswith("attn_q.weight.lora_a"))
        b = next(t for t in r.tensors if t.name.endswith("attn_q.weight.lora_b"))
        print(f"  {a.name} shape {list(a.shape)}, {b.name} shape {list(b.shape)}")
        ok &= all(t.name.endswith((".lora_a", ".lora_b")) for t in r.tensors)
    else:
        for key in ["block_count", "embedding_length", "attention.head_count", "attention.head_count_kv", "context_length", "rope.freq_base"]:
            full = f"{arch}.{key}"
            print(f"  {full} = {value(full)}")
            ok &= value(full) is not None
        n_tokens = len(fields["tokenizer.ggml.tokens"].data) if "tokenizer.ggml.tokens" in fields else 0
        template = value("tokenizer.chat_template")
        print(f"  tokenizer: model {value('tokenizer.ggml.model')}, pre {value('tokenizer.ggml.pre')}, {n_tokens} tokens, eos {value('tokenizer.ggml.eos_token_id')}, chat template {'present' if template else 'MISSING'}")
        ok &= n_tokens > 0 and bool(template)
        emb = next(t for t in r.tensors if t.name == "token_embd.weight")
        print(f"  token_embd.weight shape {list(emb.shape)} ({emb.tensor_type.name})")
    return ok


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--base", type=Path)
    p.add_argument("--adapter", type=Path)
    p.add_argument("--merged", type=Path)
    p.add_argument("--gguf", type=Path, nargs="*", default=[])
    p.add_argument("--tolerance", type=float, default=1e-4)
    a = p.parse_args()
    failed = False
    if a.merged:
        if not (a.base and a.adapter):
            p.error("--merged needs --base and --adapter")
        failed |= not (check_merged(a.base, a.adapter, a.merged) < a.tolerance)
    for g in a.gguf:
        failed |= not check_gguf(g)
    print("FAILED" if failed else "all checks passed")
    return 1 if failed else 0


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    sys.exit(main())
