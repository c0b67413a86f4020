#!/usr/bin/env python3
"""Lists the config keys Axolotl's schema accepts, from a checkout of its sources, without importing
Axolotl (no torch needed): it reads the pydantic models in src/axolotl/utils/schemas/*.py with `ast`
and collects the annotated fields of AxolotlInputConfig and of every base class defined there, plus
the fields of SFTDataset (one entry of `datasets:`) and FSDPConfig (`fsdp_config:`).

Usage:
    python3 scripts/export/axolotl_keys.py PATH/TO/axolotl [COMMIT] \
        > crates/whetstone-export/tests/fixtures/axolotl_keys.json

COMMIT is recorded in the output as given (for example `git -C PATH rev-parse HEAD`).
"""
import ast
import json
import pathlib
import sys


def classes(schema_dir):
    found = {}
    for path in sorted(schema_dir.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                bases = [b.id if isinstance(b, ast.Name) else getattr(b, "attr", None) for b in node.bases]
                fields = [
                    item.target.id
                    for item in node.body
                    if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)
                    and item.target.id != "model_config"
                ]
                found[node.name] = (bases, fields)
    return found


def fields_of(name, found, seen=None):
    seen = set() if seen is None else seen
    if name not in found or name in seen:
        return set()
    seen.add(name)
    bases, fields = found[name]
    out = set(fields)
    for base in bases:
        out |= fields_of(base, found, seen)
    return out


def main():
    root = pathlib.Path(sys.argv[1])
    commit = sys.argv[2] if len(sys.argv) > 2 else None
    found = classes(root / "src/axolotl/utils/schemas")
    print(json.dumps({
        "source": "src/axolotl/utils/schemas/",
        "commit": commit,
        "top_level": sorted(fields_of("AxolotlInputConfig", found)),
        "dataset": sorted(fields_of("SFTDataset", found)),
        "fsdp_config": sorted(fields_of("FSDPConfig", found)),
    }, indent=1))


if __name__ == "__main__":
    main()
