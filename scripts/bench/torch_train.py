"""PyTorch + PEFT LoRA training throughput on SmolLM2-135M: the reference the engine's speed is measured against.

How to run:

    ~/.cache/whetstone/refenv/bin/pip install -r scripts/parity/requirements.txt
    ~/.cache/whetstone/refenv/bin/python scripts/bench/torch_train.py [--steps 10] [--model PATH]

Configuration (the engine runs the same one): the GGUF dequantized to float32, LoRA r=8, alpha=16,
dropout 0 (--lora-dropout) on q/k/v/o/gate/up/down, batch 4 x 256 tokens (--batch, --seq-len) of seeded random ids with labels =
inputs and no padding, AdamW lr 1e-4, 2 torch threads, PyTorch's default (sdpa) attention, no gradient
checkpointing.  2 warm-up steps, then --steps timed steps; one step = forward + backward +
optimizer.step + zero_grad.  tokens_per_s counts batch*seq_len tokens per step.

Prints one JSON line: impl, tokens_per_s, step_s_mean, peak_rss_mb (ru_maxrss of this process, which
includes loading and dequantizing the model), steps, threads, versions.
"""

import argparse
import json
import os
import resource
import time
from importlib.metadata import version

DEFAULT_MODEL = os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")),
                             "whetstone", "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
THREADS = 2


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=os.environ.get("WHETSTONE_DEFAULT_MODEL", DEFAULT_MODEL))
    parser.add_argument("--steps", type=int, default=10, help="timed steps after 2 warm-up steps")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--lora-r", type=int, default=8)
    parser.add_argument("--lora-dropout", type=float, default=0.0)
    args = parser.parse_args()
    if args.steps < 1:
        parser.error("--steps must be at least 1")
    if not os.path.isfile(args.model):
        parser.error(f"model file not found: {args.model}")

    # Set before torch starts its thread pools.
    os.environ.setdefault("OMP_NUM_THREADS", str(THREADS))
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    torch.set_num_threads(THREADS)
    torch.manual_seed(0)

    model_dir, model_file = os.path.split(os.path.abspath(args.model))
    model = AutoModelForCausalLM.from_pretrained(model_dir, gguf_file=model_file, dtype=torch.float32)
    model.config.use_cache = False
    lora = LoraConfig(r=args.lora_r, lora_alpha=2 * args.lora_r, lora_dropout=args.lora_dropout, target_modules=TARGETS,
                      task_type="CAUSAL_LM")
    model = get_peft_model(model, lora)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)

    g = torch.Generator().manual_seed(1234)
    input_ids = torch.randint(0, model.config.vocab_size, (args.batch, args.seq_len), generator=g)
    labels = input_ids.clone()

    def step():
        loss = model(input_ids=input_ids, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()

    for _ in range(2):
        step()
    times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        loss = step()
        times.append(time.perf_counter() - t0)
    if loss != loss:
        raise SystemExit("loss became NaN during the benchmark")

    mean = sum(times) / len(times)
    print(json.dumps({
        "impl": "pytorch+peft",
        "tokens_per_s": round(args.batch * args.seq_len / mean, 2),
        "step_s_mean": round(mean, 4),
        "step_s_min": round(min(times), 4),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "steps": args.steps,
        "threads": THREADS,
        "batch": args.batch,
        "seq_len": args.seq_len,
        "lora_r": args.lora_r,
        "lora_dropout": args.lora_dropout,
        "trainable_params": sum(p.numel() for p in params),
        "attn_implementation": model.config._attn_implementation,
        "final_loss": round(loss, 4),
        "torch": torch.__version__,
        "transformers": version("transformers"),
        "peft": version("peft"),
    }))


if __name__ == "__main__":
    main()
