"""Re-derive the parity fixtures from their files and the conventions written in train.json alone.

How to run (after make_fixtures.py; needs only torch and safetensors):

    ~/.cache/whetstone/refenv/bin/python scripts/parity/check_fixtures.py

It also checks the SmolLM2 reference when the GGUF is present ($WHETSTONE_DEFAULT_MODEL or
~/.cache/whetstone/models/SmolLM2-135M-Instruct.Q4_1.gguf), dequantizing it by hand (numpy) and
un-permuting attn_q/attn_k as smollm2/meta.json says, so that document is checked too.

This is a second implementation of the decoder (no transformers, no PEFT): plain tensor code for
RMSNorm, rotate-half rope (with llama3 frequency scaling), GQA attention with a key-padding mask,
SwiGLU, LoRA, and the Mistral / Gemma / Gemma 2 particulars (sliding windows, `1 + weight` norms,
sqrt(hidden) embedding scale, tanh-GELU, Gemma 2's output norms, query_pre_attn_scalar and soft caps), the shifted cross-entropy, clipping, the warmup/linear schedule and AdamW as train.json
spells them.  If it reproduces io.safetensors within the tolerances the Rust engine must meet, the
written conventions are complete.  Exits non-zero on any mismatch.
"""

import hashlib
import json
import math
import os
import sys

import torch
from safetensors.torch import load_file

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROOT = os.path.join(REPO, "crates", "whetstone-engine", "tests", "fixtures", "parity")
LOGIT_ATOL, GRAD_RTOL, LOSS_RTOL = 1e-4, 1e-4, 1e-5


def inv_freq(cfg, head_dim):
    theta = cfg["rope_theta"]
    freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim))
    scaling = cfg.get("rope_scaling")
    if not scaling or scaling.get("rope_type", "default") == "default":
        return freq
    assert scaling["rope_type"] == "llama3", scaling
    factor, low, high = scaling["factor"], scaling["low_freq_factor"], scaling["high_freq_factor"]
    old = scaling["original_max_position_embeddings"]
    low_wavelen, high_wavelen = old / low, old / high
    wavelen = 2 * math.pi / freq
    scaled = torch.where(wavelen > low_wavelen, freq / factor, freq)
    smooth = (old / wavelen - low) / (high - low)
    smoothed = (1 - smooth) * scaled / factor + smooth * scaled
    medium = ~(wavelen < high_wavelen) & ~(wavelen > low_wavelen)
    return torch.where(medium, smoothed, scaled)


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class Decoder:
    def __init__(self, cfg, weights, lora, scale):
        self.cfg, self.w, self.scale = cfg, weights, scale
        if cfg["tie_word_embeddings"]:
            assert "lm_head.weight" not in self.w
            self.w["lm_head.weight"] = self.w["model.embed_tokens.weight"]
        self.lora = {k: v.clone().requires_grad_(True) for k, v in lora.items()}

    @staticmethod
    def lora_scale(adapter_dir):
        with open(os.path.join(adapter_dir, "adapter_config.json")) as f:
            acfg = json.load(f)
        r, alpha = acfg["r"], acfg["lora_alpha"]
        return alpha / math.sqrt(r) if acfg["use_rslora"] else alpha / r

    @classmethod
    def from_dirs(cls, path, adapter_dir):
        with open(os.path.join(path, "config.json")) as f:
            cfg = json.load(f)
        lora = load_file(os.path.join(adapter_dir, "adapter_model.safetensors"))
        return cls(cfg, load_file(os.path.join(path, "model.safetensors")), lora, cls.lora_scale(adapter_dir))

    def linear(self, x, name, use_lora):
        y = x @ self.w[name + ".weight"].T
        if name + ".bias" in self.w:
            y = y + self.w[name + ".bias"]
        key = "base_model.model." + name
        if use_lora and key + ".lora_A.weight" in self.lora:
            y = y + self.scale * ((x @ self.lora[key + ".lora_A.weight"].T) @ self.lora[key + ".lora_B.weight"].T)
        return y

    def gemma(self):
        return self.cfg.get("model_type") in ("gemma", "gemma2")

    def norm(self, x, name):
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.cfg["rms_norm_eps"])
        w = self.w[name + ".weight"]
        return (1 + w) * x if self.gemma() else w * x

    def window(self, i):
        """The sliding window of layer i, or None."""
        c = self.cfg
        if c.get("model_type") == "mistral":
            return c.get("sliding_window")
        if c.get("model_type") == "gemma2":
            types = c.get("layer_types") or ["sliding_attention" if j % 2 == 0 else "full_attention"
                                               for j in range(c["num_hidden_layers"])]
            return c["sliding_window"] if types[i] == "sliding_attention" else None
        return None

    @staticmethod
    def cap(x, c):
        return x if c is None else torch.tanh(x / c) * c

    def forward(self, input_ids, attention_mask=None, use_lora=True):
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        c = self.cfg
        b, t = input_ids.shape
        nh, nkv = c["num_attention_heads"], c["num_key_value_heads"]
        hd = c.get("head_dim") or c["hidden_size"] // nh
        freqs = torch.arange(t).float()[:, None] * inv_freq(c, hd)[None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos(), emb.sin()
        causal = torch.tril(torch.ones(t, t, dtype=torch.bool))
        qpos, kpos = torch.arange(t)[:, None], torch.arange(t)[None, :]

        def bias_for(window):
            keep = causal if window is None else causal & (qpos - kpos < window)
            allowed = keep[None, None] & attention_mask.bool()[:, None, None, :]
            return torch.zeros(b, 1, t, t).masked_fill(~allowed, torch.finfo(torch.float32).min)

        h = self.w["model.embed_tokens.weight"][input_ids]
        gemma2 = c.get("model_type") == "gemma2"
        if self.gemma():
            h = h * torch.tensor(c["hidden_size"] ** 0.5)
        scale = (c["query_pre_attn_scalar"] if gemma2 else hd) ** -0.5
        for i in range(c["num_hidden_layers"]):
            p = f"model.layers.{i}"
            bias = bias_for(self.window(i))
            x = self.norm(h, p + ".input_layernorm")
            q = self.linear(x, p + ".self_attn.q_proj", use_lora).view(b, t, nh, hd).transpose(1, 2)
            k = self.linear(x, p + ".self_attn.k_proj", use_lora).view(b, t, nkv, hd).transpose(1, 2)
            v = self.linear(x, p + ".self_attn.v_proj", use_lora).view(b, t, nkv, hd).transpose(1, 2)
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
            k = k.repeat_interleave(nh // nkv, dim=1)
            v = v.repeat_interleave(nh // nkv, dim=1)
            scores = self.cap((q @ k.transpose(-1, -2)) * scale, c.get("attn_logit_softcapping") if gemma2 else None)
            att = torch.softmax(scores + bias, dim=-1)
            o = (att @ v).transpose(1, 2).reshape(b, t, nh * hd)
            o = self.linear(o, p + ".self_attn.o_proj", use_lora)
            if gemma2:
                o = self.norm(o, p + ".post_attention_layernorm")
            h = h + o
            x = self.norm(h, p + (".pre_feedforward_layernorm" if gemma2 else ".post_attention_layernorm"))
            gate = self.linear(x, p + ".mlp.gate_proj", use_lora)
            up = self.linear(x, p + ".mlp.up_proj", use_lora)
            act = torch.nn.functional.gelu(gate, approximate="tanh") if self.gemma() else torch.nn.functional.silu(gate)
            d = self.linear(act * up, p + ".mlp.down_proj", use_lora)
            if gemma2:
                d = self.norm(d, p + ".post_feedforward_layernorm")
            h = h + d
        logits = self.norm(h, "model.norm") @ self.w["lm_head.weight"].T
        return self.cap(logits, c.get("final_logit_softcapping") if gemma2 else None)


def shifted_loss(logits, labels):
    logits, targets = logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1)
    keep = targets != -100
    return torch.nn.functional.cross_entropy(logits[keep], targets[keep], reduction="sum") / keep.sum()


def rel(a, b):
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-30)).item()


def check(name):
    path = os.path.join(ROOT, name)
    with open(os.path.join(path, "train.json")) as f:
        tr = json.load(f)
    io = load_file(os.path.join(path, "io.safetensors"))
    ids, mask, labels = io["input_ids"], io["attention_mask"], io["labels"]
    m = Decoder.from_dirs(path, os.path.join(path, "adapter_init"))
    failures = []

    def expect(what, ok, detail):
        print(f"  {what:<28} {'ok ' if ok else 'FAIL'} {detail}")
        if not ok:
            failures.append(what)

    with torch.no_grad():
        base = m.forward(ids, mask, use_lora=False)
    d = (base - io["logits_base"]).abs().max().item()
    expect("logits_base", d <= LOGIT_ATOL, f"max abs diff {d:.2e}")
    logits = m.forward(ids, mask)
    d = (logits - io["logits_init"]).abs().max().item()
    expect("logits_init", d <= LOGIT_ATOL, f"max abs diff {d:.2e}")
    loss = shifted_loss(logits, labels)
    d = abs(loss.item() - io["loss_init"].item()) / abs(io["loss_init"].item())
    expect("loss_init", d <= LOSS_RTOL, f"rel diff {d:.2e}")
    loss.backward()
    worst = max(rel(m.lora[k].grad, io["grad." + k]) for k in m.lora)
    expect("grad.* (%d tensors)" % len(m.lora), worst <= GRAD_RTOL, f"worst rel diff {worst:.2e}")

    opt, sch, clip = tr["optimizer"], tr["schedule"], tr["clipping"]
    lr0, (b1, b2), eps, wd = opt["lr"], opt["betas"], opt["eps"], opt["weight_decay"]
    warm, total = sch["num_warmup_steps"], sch["num_training_steps"]
    params = [m.lora[k] for k in sorted(m.lora)]
    mom = [torch.zeros_like(p) for p in params]
    var = [torch.zeros_like(p) for p in params]
    losses, norms, lrs = [], [], []
    for step in range(tr["steps"]):
        for p in params:
            p.grad = None
        loss = shifted_loss(m.forward(ids, mask), labels)
        loss.backward()
        with torch.no_grad():
            norm = torch.sqrt(sum((p.grad ** 2).sum() for p in params))
            coef = min(1.0, clip["max_norm"] / (norm.item() + 1e-6))
            lr = lr0 * (step / max(1, warm) if step < warm else max(0.0, (total - step) / max(1, total - warm)))
            t = step + 1
            for p, mo, va in zip(params, mom, var):
                g = p.grad * coef
                p.mul_(1 - lr * wd)
                mo.mul_(b1).add_(g, alpha=1 - b1)
                va.mul_(b2).addcmul_(g, g, value=1 - b2)
                p.addcdiv_(mo, va.sqrt() / math.sqrt(1 - b2 ** t) + eps, value=-lr / (1 - b1 ** t))
        losses.append(loss.item())
        norms.append(norm.item())
        lrs.append(lr)
    worst = max(abs(a - b) / abs(b) for a, b in zip(losses, io["losses"].tolist()))
    expect("losses[20]", worst <= LOSS_RTOL, f"worst rel diff {worst:.2e}")
    worst = max(abs(a - b) / abs(b) for a, b in zip(norms, io["grad_norms"].tolist()))
    expect("grad_norms[20]", worst <= 1e-4, f"worst rel diff {worst:.2e}")
    worst = max(abs(a - b) for a, b in zip(lrs, io["lrs"].tolist()))
    expect("lrs[20]", worst <= 1e-9, f"worst abs diff {worst:.2e}")
    with torch.no_grad():
        final = m.forward(ids, mask)
    d = (final - io["logits_final"]).abs().max().item()
    expect("logits_final", d <= LOGIT_ATOL, f"max abs diff {d:.2e}")
    trained = load_file(os.path.join(path, "adapter_final", "adapter_model.safetensors"))
    worst = max(rel(m.lora[k].detach(), trained[k]) for k in trained)
    expect("adapter_final", worst <= 1e-4, f"worst rel diff {worst:.2e}")
    return failures


GGUF_NAMES = {
    "attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
    "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}


def dequantize(tensor):
    """Q4_1 / Q8_0 / F32 to float32 as smollm2/meta.json describes it (numpy, not transformers)."""
    import numpy as np
    raw = np.ascontiguousarray(tensor.data).view(np.uint8).reshape(-1)
    kind = tensor.tensor_type.name
    if kind == "F32":
        values = raw.view(np.float32)
    elif kind == "Q4_1":
        blocks = raw.reshape(-1, 20)
        d = blocks[:, 0:2].copy().view(np.float16).astype(np.float32)
        m = blocks[:, 2:4].copy().view(np.float16).astype(np.float32)
        qs = blocks[:, 4:20]
        q = np.concatenate([qs & 15, qs >> 4], axis=1).astype(np.float32)
        values = d * q + m
    elif kind == "Q8_0":
        blocks = raw.reshape(-1, 34)
        d = blocks[:, 0:2].copy().view(np.float16).astype(np.float32)
        values = d * blocks[:, 2:34].copy().view(np.int8).astype(np.float32)
    else:
        raise ValueError(f"{tensor.name}: unexpected tensor type {kind}")
    shape = [int(n) for n in reversed(tensor.shape)]  # GGUF lists ne0 (the inner dimension) first
    return torch.from_numpy(values.reshape(shape).copy())


def unpermute(w, n_head):
    """GGUF (interleaved-rope) row order back to HF rotate-half order."""
    out, inp = w.shape
    return w.reshape(n_head, out // n_head // 2, 2, inp).transpose(1, 2).reshape(out, inp)


def check_smollm2(model_path):
    from gguf import GGUFReader

    fixture = os.path.join(REPO, "crates", "whetstone-engine", "tests", "fixtures", "smollm2")
    with open(os.path.join(fixture, "meta.json")) as f:
        meta = json.load(f)
    reader = GGUFReader(model_path)
    field = lambda key: reader.fields[key].contents()
    nh, nkv = field("llama.attention.head_count"), field("llama.attention.head_count_kv")
    cfg = {
        "hidden_size": field("llama.embedding_length"), "num_hidden_layers": field("llama.block_count"),
        "num_attention_heads": nh, "num_key_value_heads": nkv, "rms_norm_eps": field(
            "llama.attention.layer_norm_rms_epsilon"), "rope_theta": field("llama.rope.freq_base"),
        "rope_scaling": None, "tie_word_embeddings": "output.weight" not in {t.name for t in reader.tensors},
    }
    weights = {}
    for t in reader.tensors:
        w = dequantize(t)
        parts = t.name.split(".")
        if t.name == "token_embd.weight":
            name = "model.embed_tokens.weight"
        elif t.name == "output_norm.weight":
            name = "model.norm.weight"
        elif t.name == "output.weight":
            name = "lm_head.weight"
        else:
            name = f"model.layers.{parts[1]}.{GGUF_NAMES[parts[2]]}.{parts[3]}"
            if parts[2] == "attn_q":
                w = unpermute(w, nh)
            elif parts[2] == "attn_k":
                w = unpermute(w, nkv)
        weights[name] = w
    adapter = os.path.join(fixture, "adapter_init")
    m = Decoder(cfg, weights, load_file(os.path.join(adapter, "adapter_model.safetensors")),
                Decoder.lora_scale(adapter))
    ref = load_file(os.path.join(fixture, "reference.safetensors"))
    failures = []

    def expect(what, ok, detail):
        print(f"  {what:<28} {'ok ' if ok else 'FAIL'} {detail}")
        if not ok:
            failures.append(what)

    for key, w in ref.items():
        if key.startswith("weight_rows."):
            got = weights[key[len("weight_rows."):]]
            got = got[:w.shape[0]] if w.dim() == 2 else got
            expect(key[len("weight_rows."):][:28], torch.equal(got, w), "dequantized rows identical")
    ids, labels = ref["input_ids"], ref["labels"]
    digest = hashlib.sha256()
    with open(model_path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    expect("model sha256", digest.hexdigest() == meta["model_sha256"], meta["model_sha256"][:16])
    with torch.no_grad():
        base = m.forward(ids, use_lora=False)
    d = (base[0, -4:] - ref["logits_rows"]).abs().max().item()
    expect("logits_rows", d <= LOGIT_ATOL, f"max abs diff {d:.2e}")
    expect("logits_argmax", torch.equal(base[0].argmax(-1), ref["logits_argmax"]), "")
    d = abs(shifted_loss(base, labels).item() - ref["loss"].item()) / ref["loss"].item()
    expect("loss", d <= LOSS_RTOL, f"rel diff {d:.2e}")
    logits = m.forward(ids)
    expect("logits_argmax_lora", torch.equal(logits[0].argmax(-1), ref["logits_argmax_lora"]), "")
    loss = shifted_loss(logits, labels)
    d = abs(loss.item() - ref["loss_lora"].item()) / ref["loss_lora"].item()
    expect("loss_lora", d <= LOSS_RTOL, f"rel diff {d:.2e}")
    loss.backward()
    grads = [k for k in ref if k.startswith("grad.")]
    worst = max(rel(m.lora[k[len("grad."):]].grad, ref[k]) for k in grads)
    expect("grad.* (%d tensors)" % len(grads), worst <= GRAD_RTOL, f"worst rel diff {worst:.2e}")
    return failures


def main():
    torch.set_num_threads(1)
    names = sorted(n for n in os.listdir(ROOT) if os.path.isdir(os.path.join(ROOT, n)))
    if not names:
        sys.exit(f"no fixtures under {ROOT}; run make_fixtures.py first")
    failed = {}
    for name in names:
        print(name)
        failures = check(name)
        if failures:
            failed[name] = failures
    gguf = os.environ.get("WHETSTONE_DEFAULT_MODEL", os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "whetstone", "models",
        "SmolLM2-135M-Instruct.Q4_1.gguf"))
    if os.path.isfile(gguf):
        print("smollm2 (from %s)" % gguf)
        failures = check_smollm2(gguf)
        if failures:
            failed["smollm2"] = failures
    else:
        print(f"smollm2: skipped, no model file at {gguf}")
    if failed:
        sys.exit(f"mismatches: {failed}")
    print("all fixtures reproduced from their files and train.json")


if __name__ == "__main__":
    main()
