#!/usr/bin/env python3
"""Validates Whetstone's Axolotl exports with Axolotl's own config loader (`validate_config`, the
pydantic schema `axolotl train` applies before it loads anything), for a cluster of the given size.

    pip install axolotl
    python scripts/export/validate_axolotl.py EXPORT_DIR [EXPORT_DIR ...] [--gpus 16]

Each EXPORT_DIR is what `whet export RUN --format axolotl --out EXPORT_DIR` wrote. The DeepSpeed
JSON that a config names must exist beside it. Prints the normalised keys Axolotl derived and fails
on the first config it refuses. CI does not run it (Axolotl needs torch); the Rust tests check the
same configs against the key list read from Axolotl's source (scripts/export/axolotl_keys.py).
"""

import argparse
import json
import sys
from pathlib import Path

import yaml


def main() -> int:
    from axolotl.utils.config import validate_config
    from axolotl.utils.dict import DictDefault
    import axolotl

    p = argparse.ArgumentParser()
    p.add_argument("exports", type=Path, nargs="+")
    p.add_argument("--gpus", type=int, default=16)
    a = p.parse_args()
    print(f"axolotl {axolotl.__version__}")
    for export in a.exports:
        folder = export / "axolotl"
        raw = yaml.safe_load((folder / "config.yml").read_text())
        if raw.get("deepspeed"):
            json.loads((folder / raw["deepspeed"]).read_text())
        cfg = validate_config(
            DictDefault(raw),
            capabilities={"bf16": True, "n_gpu": a.gpus, "compute_capability": "sm_90"},
            env_capabilities={"torch_version": __import__("torch").__version__.split("+")[0]},
        )
        spread = "deepspeed " + Path(raw["deepspeed"]).name if raw.get("deepspeed") else (
            f"fsdp v{cfg.fsdp_version}" if cfg.fsdp_config else "data parallel")
        print(
            f"{export.name}: accepted; base_model {cfg.base_model}, adapter {cfg.adapter}, "
            f"load_in_4bit {bool(cfg.load_in_4bit)}, {spread}, {len(cfg.datasets)} dataset(s) of type "
            f"{cfg.datasets[0]['type']}, micro_batch_size {cfg.micro_batch_size}, max_steps {cfg.max_steps}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
