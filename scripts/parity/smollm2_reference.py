"""Reference outputs of the bundled SmolLM2-135M-Instruct Q4_1 GGUF, as HF transformers + PEFT see it.

How to run (CI never runs this; the outputs are committed):

    ~/.cache/whetstone/refenv/bin/pip install -r scripts/parity/requirements.txt
    ~/.cache/whetstone/refenv/bin/python scripts/parity/smollm2_reference.py \
        [--model ~/.cache/whetstone/models/SmolLM2-135M-Instruct.Q4_1.gguf]

The model path defaults to $WHETSTONE_DEFAULT_MODEL, then to the cache path above.  It writes:

  crates/whetstone-engine/tests/fixtures/smollm2/
    reference.safetensors  input_ids, labels, base logits at the last 4 positions, argmax at every
                           position, base loss, loss and argmax with the initial adapter, LoRA gradients
                           for layers 0 and 29, and the first rows of a few dequantized weights.
    adapter_init/          the initial PEFT adapter (all 30 layers, r=8).
    meta.json              text, conventions, versions, sha256 of the GGUF.
  crates/whetstone-data/tests/fixtures/smollm2_reference.json
                           tokenizer encodings and rendered chat templates.

transformers dequantizes the GGUF to float32 and un-permutes attn_q/attn_k back to HF's rotate-half
layout (see meta.json "conventions"); every number here is for that layout.
"""

import argparse
import hashlib
import json
import os
import shutil
from importlib.metadata import version

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import load_file, save_file
from tokenizers import Tokenizer, pre_tokenizers
from transformers import AutoModelForCausalLM, AutoTokenizer

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENGINE_OUT = os.path.join(REPO, "crates", "whetstone-engine", "tests", "fixtures", "smollm2")
DATA_OUT = os.path.join(REPO, "crates", "whetstone-data", "tests", "fixtures", "smollm2_reference.json")
DEFAULT_MODEL = os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")),
                             "whetstone", "models", "SmolLM2-135M-Instruct.Q4_1.gguf")

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
LORA_R, LORA_ALPHA = 8, 16
SEED_A, SEED_B = 2024, 2025

CONVERSATION = [
    {"role": "user", "content": "What is the capital of France?"},
    {"role": "assistant", "content": "The capital of France is Paris."},
]

ENCODE_TEXTS = [
    "Hello, world! This is a plain ASCII sentence.",
    "Café naïve résumé — Zürich, São Paulo, Ångström, Straße",
    "Emoji: 👍🏽 🎉 👨‍👩‍👧 🇫🇷 ❤️",
    "中文测试：你好，世界。日本語のテキスト、한국어 문장",
    "def add(a, b):\n    return a + b\n\n\tif x  ==  1:\r\n        pass   ",
    "Pi is 3.14159, year 2024, 1,000,000 and -42e10; call +1-555-0100 at 09:30",
    "<|im_start|>user\nHi<|im_end|>\n<|endoftext|> then <file_sep>x and <|im_start|nope>",
    "I'm sure they'll say WE'RE done, can't they?  \n\n\n  trailing spaces   ",
    "Columns:  1   22    333\n  4",
]

CHATS = [
    ([{"role": "user", "content": "Hi there!"},
      {"role": "assistant", "content": "Hello! How can I help you today?"}], False),
    ([{"role": "system", "content": "You answer in one short sentence."},
      {"role": "user", "content": "Why is the sky blue?"},
      {"role": "assistant", "content": "Air scatters blue light more than red light."}], False),
    ([{"role": "user", "content": "Give me a number."},
      {"role": "assistant", "content": "42"},
      {"role": "user", "content": "Another one, please."},
      {"role": "assistant", "content": "7, and café ☕ too."}], False),
    ([{"role": "system", "content": "Be brief."},
      {"role": "user", "content": "Name a prime number."}], True),
]

# First rows of a few dequantized weights, so a loader can be checked tensor by tensor.
WEIGHT_ROWS = [
    "model.embed_tokens.weight",               # Q8_0 in the file
    "model.layers.0.self_attn.q_proj.weight",  # Q4_1, un-permuted
    "model.layers.0.self_attn.k_proj.weight",  # Q4_1, un-permuted with 3 kv heads
    "model.layers.0.self_attn.v_proj.weight",  # Q4_1
    "model.layers.0.mlp.down_proj.weight",     # Q4_1, in 1536
    "model.layers.0.input_layernorm.weight",   # F32
    "model.norm.weight",                       # F32
]
WEIGHT_ROW_COUNT = 8


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def adapter_key(param_name):
    return param_name.replace(".lora_A.default.", ".lora_A.").replace(".lora_B.default.", ".lora_B.")


def smollm2_tokenizer(tok):
    """SmolLM2's own tokenizer pipeline, built from the GGUF's vocabulary and merges.

    The GGUF says `tokenizer.ggml.pre = smollm`.  llama.cpp maps that to "split every digit, then the
    GPT-2 regex", which is also what SmolLM2's tokenizer.json does (Digits(individual_digits) then
    ByteLevel).  transformers (like candle's TokenizerFromGguf) has no mapping for "smollm" and falls
    back to plain GPT-2 ByteLevel splitting, which differs where a run of spaces precedes a digit:
    "a  1" is ['a', 'ĠĠ', '1'] for the model but ['a', 'Ġ', 'Ġ', '1'] in transformers.
    """
    ref = Tokenizer.from_str(tok.backend_tokenizer.to_str())
    ref.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    return ref


def encode_both(tok, ref, text):
    """(ids of SmolLM2's pipeline, ids of transformers' GGUF tokenizer)."""
    return ref.encode(text, add_special_tokens=False).ids, tok(text, add_special_tokens=False).input_ids


def tokenizer_fixture(tok, ref):
    encode = []
    for t in ENCODE_TEXTS:
        ids, hf_ids = encode_both(tok, ref, t)
        entry = {"text": t, "ids": ids}
        if hf_ids != ids:
            entry["ids_transformers_gguf"] = hf_ids
        encode.append(entry)
    assert any("ids_transformers_gguf" in e for e in encode), "the divergent case is expected to be covered"
    chats = []
    for messages, gen in CHATS:
        text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=gen)
        ids, hf_ids = encode_both(tok, ref, text)
        assert ids == hf_ids, f"chat text tokenizes differently in the two pipelines: {text!r}"
        chats.append({"messages": messages, "add_generation_prompt": gen, "text": text, "ids": ids})
    special = sorted(((tid, t.content) for tid, t in tok.added_tokens_decoder.items() if t.special))
    return {
        "source": "SmolLM2-135M-Instruct.Q4_1.gguf vocabulary and merges; chat text from transformers "
                  "AutoTokenizer.from_pretrained(dir, gguf_file=...).apply_chat_template(tokenize=False)",
        "encode_options": {"add_special_tokens": False},
        "bos_token": tok.bos_token,
        "eos_token": tok.eos_token,
        "pad_token": tok.pad_token,
        "unk_token": tok.unk_token,
        "add_bos_token": False,
        "special_tokens": [{"id": tid, "content": c} for tid, c in special],
        "pre_tokenizer": "Sequence[Digits(individual_digits=true), ByteLevel(add_prefix_space=false, "
                         "trim_offsets=true, use_regex=true)] (SmolLM2 tokenizer.json; llama.cpp 'smollm')",
        "notes": [
            "`ids` come from SmolLM2's own pipeline (digits split one by one, then the GPT-2 regex, no prefix "
            "space), which is what the model was trained with and what llama.cpp uses for pre='smollm'.",
            "`ids_transformers_gguf`, present only where it differs, is what transformers' GGUF tokenizer "
            "gives: it does not know pre='smollm' and uses plain GPT-2 ByteLevel splitting, so a run of "
            "spaces before a digit is split as ' '*(n-1) + ' '+digit. candle's TokenizerFromGguf also "
            "falls back for 'smollm', to ByteLevel::default(), which in addition sets add_prefix_space=true "
            "(a leading 'Ġ' on text that starts without a space): replace its pre-tokenizer.",
            "bos_token is <|im_start|> (id 1) and eos_token is <|im_end|> (id 2), as the GGUF states; "
            "nothing is prepended or appended when encoding (tokenizer.ggml.add_bos_token = false).",
            "All 17 tokens with GGUF token_type 3 (ids 0-16) are matched whole anywhere in the text, "
            "before pre-tokenization; '<|im_start|nope>' is not one of them and is split normally.",
            "The chat template inserts a default system message when the first message is not a system one.",
        ],
        "chat_template": tok.chat_template,
        "encode": encode,
        "chat": chats,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=os.environ.get("WHETSTONE_DEFAULT_MODEL", DEFAULT_MODEL))
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)

    model_dir, model_file = os.path.split(os.path.abspath(args.model))
    tok = AutoTokenizer.from_pretrained(model_dir, gguf_file=model_file)
    ref_tok = smollm2_tokenizer(tok)
    model = AutoModelForCausalLM.from_pretrained(model_dir, gguf_file=model_file, dtype=torch.float32,
                                                 attn_implementation="eager").eval()
    cfg = model.config
    tied = model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    assert tied, "expected lm_head tied to embed_tokens (the GGUF has no output.weight)"

    os.makedirs(os.path.dirname(DATA_OUT), exist_ok=True)
    with open(DATA_OUT, "w") as f:
        json.dump(tokenizer_fixture(tok, ref_tok), f, indent=1, ensure_ascii=False)
        f.write("\n")

    text = tok.apply_chat_template(CONVERSATION, tokenize=False)
    prompt = tok.apply_chat_template(CONVERSATION[:1], tokenize=False, add_generation_prompt=True)
    assert text.startswith(prompt)
    ids, hf_ids = encode_both(tok, ref_tok, text)
    assert ids == hf_ids, "the reference conversation must tokenize the same in both pipelines"
    prompt_ids = encode_both(tok, ref_tok, prompt)[0]
    assert ids[:len(prompt_ids)] == prompt_ids, "prompt tokens are not a prefix of the full encoding"
    input_ids = torch.tensor([ids], dtype=torch.int64)
    labels = input_ids.clone()
    labels[:, :len(prompt_ids)] = -100
    T = input_ids.shape[1]

    ref = {"input_ids": input_ids, "labels": labels}
    with torch.no_grad():
        out = model(input_ids=input_ids, labels=labels)
    ref["logits_rows"] = out.logits[0, -4:].contiguous()
    ref["logits_argmax"] = out.logits[0].argmax(-1).to(torch.int64)
    ref["loss"] = out.loss.reshape(1)
    state = model.state_dict()
    for name in WEIGHT_ROWS:
        w = state[name]
        ref["weight_rows." + name] = (w[:WEIGHT_ROW_COUNT] if w.dim() == 2 else w).clone().contiguous()

    if os.path.exists(ENGINE_OUT):
        shutil.rmtree(ENGINE_OUT)
    os.makedirs(ENGINE_OUT)

    lora_cfg = LoraConfig(r=LORA_R, lora_alpha=LORA_ALPHA, lora_dropout=0.0, target_modules=TARGETS,
                          use_rslora=False, task_type="CAUSAL_LM")
    torch.manual_seed(SEED_A)
    peft_model = get_peft_model(model, lora_cfg).eval()
    g = torch.Generator().manual_seed(SEED_B)
    with torch.no_grad():
        for pname, p in sorted(peft_model.named_parameters()):
            if ".lora_B." in pname:
                p.copy_(torch.randn(p.shape, generator=g) * 0.02)
    adapter_dir = os.path.join(ENGINE_OUT, "adapter_init")
    peft_model.save_pretrained(adapter_dir)
    os.remove(os.path.join(adapter_dir, "README.md"))
    with open(os.path.join(adapter_dir, "adapter_config.json")) as f:
        acfg = json.load(f)
    acfg["target_modules"] = sorted(acfg["target_modules"])  # a set in PEFT; fix the order
    # PEFT records the local directory; name the published base model instead.
    acfg["base_model_name_or_path"] = "HuggingFaceTB/SmolLM2-135M-Instruct"
    with open(os.path.join(adapter_dir, "adapter_config.json"), "w") as f:
        json.dump(acfg, f, indent=2, sort_keys=True)
        f.write("\n")

    out_lora = peft_model(input_ids=input_ids, labels=labels)
    out_lora.loss.backward()
    ref["loss_lora"] = out_lora.loss.detach().reshape(1)
    ref["logits_argmax_lora"] = out_lora.logits[0].detach().argmax(-1).to(torch.int64)
    last = cfg.num_hidden_layers - 1
    wanted = (f".layers.0.", f".layers.{last}.")
    params = [(n, p) for n, p in peft_model.named_parameters() if p.requires_grad]
    for n, p in params:
        if any(w in n for w in wanted):
            ref["grad." + adapter_key(n)] = p.grad.detach().clone()
    assert sum(k.startswith("grad.") for k in ref) == 2 * 2 * len(TARGETS)
    saved = load_file(os.path.join(adapter_dir, "adapter_model.safetensors"))
    assert set(saved) == {adapter_key(n) for n, _ in params}

    # The files alone (GGUF + adapter dir) must give the same loss.
    base = AutoModelForCausalLM.from_pretrained(model_dir, gguf_file=model_file, dtype=torch.float32,
                                                attn_implementation="eager")
    with torch.no_grad():
        again = PeftModel.from_pretrained(base, adapter_dir).eval()(input_ids=input_ids, labels=labels).loss
    assert torch.equal(again.reshape(1), ref["loss_lora"]), (again, ref["loss_lora"])

    ref = {k: v.contiguous() for k, v in ref.items()}
    save_file(ref, os.path.join(ENGINE_OUT, "reference.safetensors"), metadata={"format": "pt"})

    meta = {
        "model_file": model_file,
        "model_sha256": sha256(args.model),
        "messages": CONVERSATION,
        "text": text,
        "prompt_text": prompt,
        "T": T,
        "prompt_len": len(prompt_ids),
        "labels": "input_ids with -100 on the first prompt_len positions (everything up to and including "
                  "'<|im_start|>assistant\\n'); the answer, its <|im_end|> and the final '\\n' are trained",
        "loss": "HF causal-LM loss: logits at t predict labels at t+1, mean over non-ignored targets",
        "tensors": {k: {"dtype": str(v.dtype).replace("torch.", ""), "shape": list(v.shape)}
                    for k, v in sorted(ref.items())},
        "tensor_notes": {
            "logits_rows": "base model (no adapter) logits at positions T-4..T-1",
            "logits_argmax": "base model argmax at every position",
            "loss": "base model loss",
            "loss_lora": "loss with adapter_init applied",
            "logits_argmax_lora": "argmax with adapter_init applied",
            "grad.*": "gradient of loss_lora for the layer-0 and layer-%d LoRA tensors; key after 'grad.' is "
                      "the key in adapter_model.safetensors" % last,
            "weight_rows.*": "first %d rows (whole tensor for 1-D) of the dequantized HF-layout weight"
                             % WEIGHT_ROW_COUNT,
        },
        "lora": {"r": LORA_R, "lora_alpha": LORA_ALPHA, "scale": LORA_ALPHA / LORA_R, "lora_dropout": 0.0,
                 "use_rslora": False, "target_modules": TARGETS, "layers": "all %d" % cfg.num_hidden_layers,
                 "init": "A: PEFT default kaiming_uniform_(a=sqrt(5)) after torch.manual_seed(%d); "
                         "B: randn*0.02 from a generator seeded %d, sorted parameter-name order" % (SEED_A, SEED_B)},
        "model_config": {
            "hidden_size": cfg.hidden_size, "intermediate_size": cfg.intermediate_size,
            "num_hidden_layers": cfg.num_hidden_layers, "num_attention_heads": cfg.num_attention_heads,
            "num_key_value_heads": cfg.num_key_value_heads, "head_dim": cfg.head_dim,
            "vocab_size": cfg.vocab_size, "rms_norm_eps": cfg.rms_norm_eps,
            "rope_parameters": dict(cfg.rope_parameters), "tie_word_embeddings": tied,
        },
        "conventions": {
            "dequantization": "transformers' own dequantizer (float32): Q4_1 block of 32 = f16 d, f16 m, 16 "
                              "bytes; value j<16 = d*(byte[j]&15)+m, value j>=16 = d*(byte[j-16]>>4)+m; "
                              "Q8_0 block of 32 = f16 d, 32 int8; value = d*q. Same as ggml.",
            "qk_permutation": "llama.cpp's converter permutes q_proj/k_proj rows for interleaved (GPT-J) rope. "
                              "transformers undoes it on load: W_hf = W_gguf.reshape(n_head, head_dim/2, 2, in)"
                              ".swapaxes(1, 2).reshape(out, in), n_head = 9 for attn_q and 3 for attn_k; i.e. "
                              "HF row h*head_dim + c*head_dim/2 + i is GGUF row h*head_dim + 2*i + c "
                              "(c in {0,1}, i < head_dim/2). "
                              "All logits, gradients and LoRA B rows of q_proj/k_proj here are in HF "
                              "(rotate-half) row order. An engine that keeps the GGUF order and uses "
                              "interleaved rope gets the same logits but must permute q_proj/k_proj lora_B "
                              "rows (and their gradients) to compare or to save a PEFT adapter.",
            "tied_embeddings": "the GGUF has no output.weight; lm_head = token_embd (Q8_0 dequantized)",
            "tokenizer": "see crates/whetstone-data/tests/fixtures/smollm2_reference.json notes",
        },
        "versions": {"torch": torch.__version__, "transformers": version("transformers"), "peft": version("peft"),
                     "gguf": version("gguf"), "tokenizers": version("tokenizers")},
    }
    with open(os.path.join(ENGINE_OUT, "meta.json"), "w") as f:
        json.dump(meta, f, indent=2, ensure_ascii=False)
        f.write("\n")
    print(f"T={T} prompt_len={len(prompt_ids)} loss={ref['loss'].item():.6f} loss_lora={ref['loss_lora'].item():.6f}")


if __name__ == "__main__":
    main()
