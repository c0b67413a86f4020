#!/usr/bin/env python3
"""Renders the export crate's probe conversations through Jinja chat templates, the way
transformers does (jinja2 sandbox, trim_blocks, lstrip_blocks, raise_exception), and prints one
JSON object per template: {"name", "without_system", "with_system"} where with_system is null when
the template refuses a system message. The output feeds crates/whetstone-export/tests/fixtures/probes/.

Input: JSON files that are either a tokenizer_config.json (its "chat_template") or a list of
{"name", "template"} objects. Usage:
    python3 scripts/export/render_probes.py FILE... > probes.jsonl
The probe texts, BOS and EOS below must stay equal to those in crates/whetstone-export/src/probe.rs.
"""
import json
import sys

from jinja2.exceptions import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

SYSTEM = "SYSTEM-PROBE"
TURNS = [("user", "USER-PROBE-1"), ("assistant", "ASSISTANT-PROBE-1"), ("user", "USER-PROBE-2")]
BOS = "<BOS-PROBE>"
EOS = "<EOS-PROBE>"


def raise_exception(message):
    raise TemplateError(message)


def render(source, messages):
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = raise_exception
    template = env.from_string(source)
    return template.render(messages=messages, bos_token=BOS, eos_token=EOS, add_generation_prompt=True)


def probe(name, source):
    turns = [{"role": r, "content": c} for r, c in TURNS]
    out = {"name": name, "without_system": render(source, turns)}
    try:
        out["with_system"] = render(source, [{"role": "system", "content": SYSTEM}] + turns)
    except TemplateError:
        out["with_system"] = None
    return out


def main():
    for path in sys.argv[1:]:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        entries = data if isinstance(data, list) else [{"name": path, "template": data["chat_template"]}]
        for entry in entries:
            try:
                print(json.dumps(probe(entry["name"], entry["template"]), ensure_ascii=False))
            except TemplateError as e:
                print(json.dumps({"name": entry["name"], "error": str(e)}), file=sys.stderr)


if __name__ == "__main__":
    main()
