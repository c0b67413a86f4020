"""Reference fixtures for the engine's parity tests, produced with HF transformers + PEFT.

How to run (CI never runs this; the outputs are committed):

    python3 -m venv ~/.cache/whetstone/refenv
    ~/.cache/whetstone/refenv/bin/pip install -r scripts/parity/requirements.txt
    ~/.cache/whetstone/refenv/bin/python scripts/parity/make_fixtures.py
    ~/.cache/whetstone/refenv/bin/python scripts/parity/check_fixtures.py   # independent re-derivation

It writes crates/whetstone-engine/tests/fixtures/parity/<name>/ for tiny random float32 models
(`llama`, `qwen2`, `llama3_rope`, `mistral`, `gemma`, `gemma2`).  Every run with the same library versions writes the same numbers:
all randomness comes from fixed seeds and torch runs single-threaded.

Per model directory:
  config.json          HF config; besides transformers 5's `rope_parameters` it also carries the
                       hub-style top-level `rope_theta` and `rope_scaling` (null for default rope),
                       because that is what configs on the hub look like.
  model.safetensors    base weights under HF names, saved before PEFT wraps the model; tied models
                       have no `lm_head.weight` (use `model.embed_tokens.weight`).
  adapter_init/        PEFT adapter before training (A: PEFT's Kaiming-uniform, B: randn*0.02).
  adapter_final/       PEFT adapter after the 20 training steps.
  io.safetensors       batch, logits, loss, gradients and the training trace (names in train.json).
  train.json           hyperparameters and every convention the Rust side must follow.
  model.gguf           (gemma, gemma2) the same base as llama.cpp's convert_hf_to_gguf.py writes it: its
                       tensor names and metadata keys, every norm weight stored with 1 added, f32 tensors,
                       no output.weight (tied).  query_pre_attn_scalar is not in it: llama.cpp derives the
                       attention scale from the head size (or hidden/heads for the 46-layer 27B).
"""

import argparse
import json
import math
import os
import shutil
from importlib.metadata import version

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import load_file, save_file
from transformers import (AutoModelForCausalLM, Gemma2Config, GemmaConfig, LlamaConfig, MistralConfig, Qwen2Config,
                          get_linear_schedule_with_warmup)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(REPO, "crates", "whetstone-engine", "tests", "fixtures", "parity")

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
SIZES = dict(
    vocab_size=128,
    hidden_size=64,
    intermediate_size=160,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=64,
)
B, T, PAD, PROMPT_LEN, PAD_ID = 2, 12, 3, 5, 0
LORA_R, LORA_ALPHA = 4, 8
LR, BETAS, EPS, WD = 2e-3, (0.9, 0.999), 1e-8, 0.01
WARMUP, STEPS, MAX_NORM = 3, 20, 1.0


def model_specs():
    llama3_scaling = {
        "rope_type": "llama3",
        "factor": 8.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 16,
    }
    return [
        ("llama", 1001, LlamaConfig(**SIZES, rope_theta=10000.0, rms_norm_eps=1e-5, tie_word_embeddings=False),
         False, None),
        ("qwen2", 1002, Qwen2Config(**SIZES, rope_theta=10000.0, rms_norm_eps=1e-6, tie_word_embeddings=True),
         True, None),
        ("llama3_rope", 1003,
         LlamaConfig(**SIZES, rope_theta=500000.0, rms_norm_eps=1e-5, tie_word_embeddings=True,
                     rope_scaling=dict(llama3_scaling)),
         False, llama3_scaling),
        # Every layer attends to the last `sliding_window` positions only; T exceeds it so the window cuts.
        ("mistral", 1004,
         MistralConfig(**SIZES, rope_theta=10000.0, rms_norm_eps=1e-5, tie_word_embeddings=False, sliding_window=5),
         False, None),
        # Multi-query attention, and a head size that is not hidden/heads.
        ("gemma", 1005,
         GemmaConfig(**{**SIZES, "num_key_value_heads": 1}, head_dim=24, hidden_act="gelu_pytorch_tanh",
                     rope_theta=10000.0, rms_norm_eps=1e-6, tie_word_embeddings=True),
         False, None),
        # Layer 0 slides (window 4 < T), layer 1 sees everything. The soft caps are set near the tiny model's
        # own score and logit sizes (about 0.5 and 1) so that tanh bends them, and query_pre_attn_scalar
        # differs from head_dim so that the scale taken from the wrong one shows.
        ("gemma2", 1006,
         Gemma2Config(**SIZES, head_dim=24, hidden_activation="gelu_pytorch_tanh", rope_theta=10000.0,
                      rms_norm_eps=1e-6, tie_word_embeddings=True, query_pre_attn_scalar=20, sliding_window=4,
                      attn_logit_softcapping=0.5, final_logit_softcapping=1.0),
         False, None),
    ]


def write_gguf(out, name, config):
    """The base as llama.cpp's convert_hf_to_gguf.py (GemmaModel / Gemma2Model) writes it."""
    import gguf

    arch = {"gemma": gguf.MODEL_ARCH.GEMMA, "gemma2": gguf.MODEL_ARCH.GEMMA2}[name]
    weights = load_file(os.path.join(out, "model.safetensors"))
    n_layers = config.num_hidden_layers
    tmap = gguf.get_tensor_name_map(arch, n_layers)
    w = gguf.GGUFWriter(os.path.join(out, "model.gguf"), gguf.MODEL_ARCH_NAMES[arch])
    w.add_name("tiny-" + name)
    w.add_context_length(config.max_position_embeddings)
    w.add_embedding_length(config.hidden_size)
    w.add_block_count(n_layers)
    w.add_feed_forward_length(config.intermediate_size)
    w.add_head_count(config.num_attention_heads)
    w.add_head_count_kv(config.num_key_value_heads)
    w.add_layer_norm_rms_eps(config.rms_norm_eps)
    w.add_key_length(config.head_dim)
    w.add_value_length(config.head_dim)
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    if name == "gemma2":
        w.add_attn_logit_softcapping(config.attn_logit_softcapping)
        w.add_final_logit_softcapping(config.final_logit_softcapping)
        w.add_sliding_window(config.sliding_window)
    # A stand-in sentencepiece vocabulary: the loader takes the vocabulary size from it, as from a real file.
    w.add_tokenizer_model("llama")
    w.add_token_list([f"<t{i}>" for i in range(config.vocab_size)])
    w.add_token_scores([0.0] * config.vocab_size)
    w.add_token_types([1] * config.vocab_size)
    w.add_bos_token_id(config.bos_token_id)
    w.add_eos_token_id(config.eos_token_id)
    for hf_name in sorted(weights):
        t = weights[hf_name].float()
        if hf_name.endswith("norm.weight"):
            t = t + 1
        gname = tmap.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        assert gname is not None, hf_name
        w.add_tensor(gname, t.numpy())
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def make_batch(seed):
    g = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(3, SIZES["vocab_size"], (B, T), generator=g, dtype=torch.int64)
    attention_mask = torch.ones(B, T, dtype=torch.int64)
    input_ids[1, T - PAD:] = PAD_ID
    attention_mask[1, T - PAD:] = 0
    labels = input_ids.clone()
    labels[:, :PROMPT_LEN] = -100
    labels[attention_mask == 0] = -100
    return input_ids, attention_mask, labels


def adapter_key(param_name):
    # PEFT names parameters `...lora_A.default.weight` but saves them without the adapter name.
    return param_name.replace(".lora_A.default.", ".lora_A.").replace(".lora_B.default.", ".lora_B.")


def save_adapter(peft_model, path):
    peft_model.save_pretrained(path)
    # PEFT's generated model card is boilerplate; the fixture needs only the config and the weights.
    card = os.path.join(path, "README.md")
    if os.path.exists(card):
        os.remove(card)
    # PEFT keeps target_modules as a set, so its written order changes with the hash seed.
    cfg_path = os.path.join(path, "adapter_config.json")
    with open(cfg_path) as f:
        cfg = json.load(f)
    cfg["target_modules"] = sorted(cfg["target_modules"])
    with open(cfg_path, "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")


_INIT_LOGITS = {}


def check_saved_adapter(out, adapter, input_ids, attention_mask, expected):
    """Base files + adapter files alone must give the stored logits."""
    base = AutoModelForCausalLM.from_pretrained(out, attn_implementation="eager", dtype=torch.float32)
    model = PeftModel.from_pretrained(base, os.path.join(out, adapter)).eval()
    with torch.no_grad():
        logits = model(input_ids=input_ids, attention_mask=attention_mask).logits
    if expected is None:
        _INIT_LOGITS[out] = logits
    else:
        assert torch.equal(logits, expected), f"{out}/{adapter}: reloaded adapter gives other logits"


def write_hub_style_config(path, rope_theta, rope_scaling):
    with open(path) as f:
        cfg = json.load(f)
    cfg["rope_theta"] = rope_theta
    cfg["rope_scaling"] = rope_scaling
    with open(path, "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")


def lr_lambda(step):
    # Same formula as transformers.get_linear_schedule_with_warmup, written out for train.json.
    if step < WARMUP:
        return step / max(1, WARMUP)
    return max(0.0, (STEPS - step) / max(1, STEPS - WARMUP))


def build(name, seed, config, use_rslora, rope_scaling):
    out = os.path.join(OUT, name)
    if os.path.exists(out):
        shutil.rmtree(out)
    os.makedirs(out)

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, attn_implementation="eager", dtype=torch.float32)
    model.eval()
    with torch.no_grad():
        for pname, p in model.named_parameters():
            # Default init leaves norms at 1 and biases at 0, which would hide mistakes in either.
            if pname.endswith("norm.weight"):
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
            elif pname.endswith(".bias"):
                p.copy_(0.1 * torch.randn_like(p))
    model.save_pretrained(out, safe_serialization=True)
    for extra in ("generation_config.json",):
        if os.path.exists(os.path.join(out, extra)):
            os.remove(os.path.join(out, extra))
    write_hub_style_config(os.path.join(out, "config.json"), config.rope_parameters["rope_theta"], rope_scaling)
    if name in ("gemma", "gemma2"):
        write_gguf(out, name, config)

    # The written files must reproduce the model exactly, hub-style keys included.
    reloaded = AutoModelForCausalLM.from_pretrained(out, attn_implementation="eager", dtype=torch.float32).eval()

    input_ids, attention_mask, labels = make_batch(seed + 1)
    with torch.no_grad():
        check = model(input_ids=input_ids, attention_mask=attention_mask).logits
        again = reloaded(input_ids=input_ids, attention_mask=attention_mask).logits
    assert torch.equal(check, again), f"{name}: reloaded model differs from the saved one"
    del reloaded

    lora_cfg = LoraConfig(r=LORA_R, lora_alpha=LORA_ALPHA, lora_dropout=0.0, target_modules=TARGETS,
                          use_rslora=use_rslora, task_type="CAUSAL_LM")
    torch.manual_seed(seed + 2)
    peft_model = get_peft_model(model, lora_cfg)
    g = torch.Generator().manual_seed(seed + 3)
    with torch.no_grad():
        for pname, p in sorted(peft_model.named_parameters()):
            if ".lora_B." in pname:
                p.copy_(torch.randn(p.shape, generator=g) * 0.02)
    save_adapter(peft_model, os.path.join(out, "adapter_init"))
    check_saved_adapter(out, "adapter_init", input_ids, attention_mask, None)

    params = [(n, p) for n, p in peft_model.named_parameters() if p.requires_grad]
    saved_keys = set(load_file(os.path.join(out, "adapter_init", "adapter_model.safetensors")).keys())
    assert {adapter_key(n) for n, _ in params} == saved_keys, f"{name}: trainable set != saved adapter keys"

    io = {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}
    peft_model.eval()
    with torch.no_grad():
        with peft_model.disable_adapter():
            io["logits_base"] = peft_model(input_ids=input_ids, attention_mask=attention_mask).logits
        assert torch.equal(io["logits_base"], check), f"{name}: disabled adapter != base model"

    out_init = peft_model(input_ids=input_ids, attention_mask=attention_mask, labels=labels)
    io["logits_init"] = out_init.logits.detach()
    assert torch.equal(io["logits_init"], _INIT_LOGITS.pop(out)), f"{name}: reloaded adapter_init differs"
    io["loss_init"] = out_init.loss.detach().reshape(1)
    out_init.loss.backward()
    for n, p in params:
        io["grad." + adapter_key(n)] = p.grad.detach().clone()
    peft_model.zero_grad(set_to_none=True)

    opt = torch.optim.AdamW([p for _, p in params], lr=LR, betas=BETAS, eps=EPS, weight_decay=WD)
    sched = get_linear_schedule_with_warmup(opt, WARMUP, STEPS)
    losses, grad_norms, lrs = [], [], []
    peft_model.train()
    for step in range(STEPS):
        loss = peft_model(input_ids=input_ids, attention_mask=attention_mask, labels=labels).loss
        loss.backward()
        total_norm = torch.nn.utils.clip_grad_norm_([p for _, p in params], MAX_NORM)
        lr = opt.param_groups[0]["lr"]
        assert math.isclose(lr, LR * lr_lambda(step), rel_tol=1e-12, abs_tol=1e-15), (step, lr)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
        grad_norms.append(total_norm.item())
        lrs.append(lr)
    assert losses[0] == io["loss_init"].item(), f"{name}: step-0 loss differs from loss_init"
    peft_model.eval()
    with torch.no_grad():
        io["logits_final"] = peft_model(input_ids=input_ids, attention_mask=attention_mask).logits
    save_adapter(peft_model, os.path.join(out, "adapter_final"))
    check_saved_adapter(out, "adapter_final", input_ids, attention_mask, io["logits_final"])

    io["losses"] = torch.tensor(losses, dtype=torch.float32)
    io["grad_norms"] = torch.tensor(grad_norms, dtype=torch.float32)
    io["lrs"] = torch.tensor(lrs, dtype=torch.float32)
    io = {k: v.contiguous() for k, v in io.items()}
    save_file(io, os.path.join(out, "io.safetensors"), metadata={"format": "pt"})

    scale = LORA_ALPHA / math.sqrt(LORA_R) if use_rslora else LORA_ALPHA / LORA_R
    train = {
        "model": name,
        "seeds": {"model": seed, "batch": seed + 1, "lora_A_init": seed + 2, "lora_B": seed + 3},
        "dtype": "float32",
        "attn_implementation": "eager",
        "init": {
            "weights": "normal(0, 0.02) (transformers default init, initializer_range 0.02)",
            "rms_norm_weights": "1 + 0.1*randn" + (" (Gemma's norms multiply by 1 + weight, so by about 2 here)"
                                                   if name.startswith("gemma") else ""),
            "biases": "0.1*randn (Qwen2 q/k/v biases; default init would leave them at 0)",
        },
        "batch": {
            "B": B, "T": T, "input_ids_range": [3, SIZES["vocab_size"]],
            "padding": "right; row 1 has the last %d positions padded with id %d, attention_mask 0" % (PAD, PAD_ID),
            "labels": "input_ids with -100 on the first %d positions (prompt) and on padding" % PROMPT_LEN,
            "position_ids": "0..T-1 for every row (not derived from attention_mask)",
            "attention": "causal; attention_mask removes padded KEY positions only. Padded query positions "
                         "still get logits (they attend to the earlier real tokens), so logits_* are "
                         "defined at every position; compare only attention_mask==1 rows if the engine "
                         "treats padded queries differently.",
        },
        "lora": {
            "r": LORA_R, "lora_alpha": LORA_ALPHA, "lora_dropout": 0.0, "target_modules": TARGETS,
            "use_rslora": use_rslora, "scale": scale,
            "scale_formula": "lora_alpha/sqrt(r)" if use_rslora else "lora_alpha/r",
            "forward": "y = x W^T (+ b) + scale * (x A^T) B^T; A [r,in], B [out,r]",
            "init": "A: PEFT default (kaiming_uniform_(a=sqrt(5)), seeded by torch.manual_seed(seeds.lora_A_init) "
                    "before get_peft_model); B: randn(shape, generator seeded seeds.lora_B)*0.02, filled in "
                    "sorted parameter-name order",
        },
        "loss": {
            "formula": "cross_entropy(logits[:, t], labels[:, t+1]) for t in 0..T-2, ignore_index -100, "
                       "mean over the non-ignored targets of the whole batch (sum / count, not per row)",
            "label_shift": "done inside the loss: logits at position t predict labels at t+1; labels are "
                           "given unshifted",
        },
        "optimizer": {
            "name": "torch.optim.AdamW", "lr": LR, "betas": list(BETAS), "eps": EPS, "weight_decay": WD,
            "amsgrad": False,
            "update": "t=step+1; p *= 1 - lr*wd; m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g^2; "
                      "p -= (lr/(1-b1^t)) * m / (sqrt(v)/sqrt(1-b2^t) + eps)",
            "params": "only the LoRA A and B tensors; weight decay applies to all of them",
        },
        "schedule": {
            "name": "transformers.get_linear_schedule_with_warmup",
            "num_warmup_steps": WARMUP, "num_training_steps": STEPS,
            "formula": "lr(i) = lr * (i/warmup if i < warmup else max(0, (total-i)/(total-warmup)))",
            "note": "lrs[i] is the lr applied by step i's optimizer update; lrs[0] is 0, so step 0 changes "
                    "nothing except Adam's moments and step count",
        },
        "clipping": {
            "max_norm": MAX_NORM,
            "formula": "total_norm = sqrt(sum over all LoRA grads of sum(g^2)); g *= min(1, max_norm/(total_norm+1e-6))",
            "order": "backward -> clip -> optimizer.step -> scheduler.step -> zero_grad",
            "grad_norms": "grad_norms[i] is the total norm before clipping (clip_grad_norm_'s return value)",
        },
        "steps": STEPS,
        "trace": {
            "losses": "losses[i] is the loss of step i, computed before step i's update (losses[0] == loss_init)",
            "logits_final": "after all %d updates, adapter enabled" % STEPS,
            "adapter_final": "the adapter after all %d updates" % STEPS,
        },
        "io_tensors": {k: {"dtype": str(v.dtype).replace("torch.", ""), "shape": list(v.shape)}
                       for k, v in sorted(io.items())},
        "versions": {"torch": torch.__version__, "transformers": version("transformers"), "peft": version("peft")},
    }
    with open(os.path.join(out, "train.json"), "w") as f:
        json.dump(train, f, indent=2)
        f.write("\n")
    print(f"{name}: loss_init {io['loss_init'].item():.6f} -> final step loss {losses[-1]:.6f}; "
          f"{len(params)} lora tensors")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=[s[0] for s in model_specs()], help="build one model only")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    for name, seed, config, use_rslora, rope_scaling in model_specs():
        if args.only and args.only != name:
            continue
        build(name, seed, config, use_rslora, rope_scaling)


if __name__ == "__main__":
    main()
