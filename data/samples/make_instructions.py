#!/usr/bin/env python3
"""Generates the sample instruction dataset for a LoRA run on SmolLM2-135M-Instruct.

Every row is a templated task whose answer is computed here, so the data is exact and reproducible:
unit conversions, date arithmetic, sorting, reversing word order, real-estate arithmetic (commission,
price per square foot) and formatting a property listing into one fixed sentence pattern. The answers
follow fixed phrasings that a small model does not produce on its own, which is what a fine-tune should
visibly teach.

Usage: python3 make_instructions.py [--seed 2025] [--out-dir .]
Writes instructions.jsonl (400 rows) and instructions_val.jsonl (60 rows) of {"prompt", "response"}.
"""

import argparse
import datetime as dt
import json
import random
from pathlib import Path

TRAIN_ROWS = 400
VAL_ROWS = 60

WORDS = (
    "river stone garden window silver morning quiet orange market harbor lantern meadow "
    "copper pencil winter summer bridge forest candle rocket violin coffee museum planet "
    "ladder pepper island mirror tunnel velvet thunder basket castle engine feather"
).split()

STREETS = (
    "Elm Street|Oak Avenue|Maple Drive|Cedar Lane|Birch Road|Willow Court|Harbor View|Pine Ridge Road|"
    "Chestnut Place|Lakeside Drive|Mill Road|Orchard Way|Station Road|Park Terrace|Sunset Boulevard"
).split("|")
TOWNS = "Springfield|Riverton|Fairview|Greenville|Ashford|Brookside|Kingsley|Milton|Westbury|Clearwater".split("|")
PROPERTY_KINDS = ["home", "townhouse", "condo", "bungalow", "cottage"]

# (from unit, to unit, factor as written in the answer, how the answer names one unit)
CONVERSIONS = [
    ("miles", "kilometres", "1.609344", "1 mile = 1.609344 km"),
    ("kilometres", "miles", "0.621371", "1 km = 0.621371 miles"),
    ("kilograms", "pounds", "2.204623", "1 kg = 2.204623 lb"),
    ("pounds", "kilograms", "0.453592", "1 lb = 0.453592 kg"),
    ("square feet", "square metres", "0.092903", "1 sq ft = 0.092903 m²"),
    ("square metres", "square feet", "10.76391", "1 m² = 10.76391 sq ft"),
    ("acres", "hectares", "0.404686", "1 acre = 0.404686 ha"),
    ("inches", "centimetres", "2.54", "1 inch = 2.54 cm"),
    ("litres", "US gallons", "0.264172", "1 litre = 0.264172 US gallons"),
]


def money(x):
    return f"${x:,.2f}" if round(x, 2) != round(x) else f"${round(x):,}"


def conversion(rng):
    src, dst, factor, note = rng.choice(CONVERSIONS + [("fahrenheit", "celsius", None, None)])
    if src == "fahrenheit":
        f = rng.randint(-20, 110)
        c = (f - 32) * 5 / 9
        return (
            f"Convert {f} °F to Celsius.",
            f"{f} °F is {c:.1f} °C. To convert, subtract 32 and multiply by 5/9: ({f} - 32) × 5/9 = {c:.1f}.",
        )
    value = rng.choice([rng.randint(2, 250), round(rng.uniform(1, 100), 1)])
    # The shown factor is the one multiplied, so the arithmetic in the answer checks out as written.
    result = value * float(factor)
    return (
        f"Convert {value} {src} to {dst}.",
        f"{value} {src} is {result:,.2f} {dst}. I used {note}, so {value} × {factor} = {result:,.2f}.",
    )


def date_arithmetic(rng):
    start = dt.date(2023, 1, 1) + dt.timedelta(days=rng.randint(0, 900))
    days = rng.randint(3, 200)
    forward = rng.random() < 0.6
    end = start + dt.timedelta(days=days if forward else -days)
    word = "after" if forward else "before"

    def long(d):
        return f"{d:%A}, {d.day} {d:%B %Y}"

    return (
        f"What date is {days} days {word} {start.isoformat()}?",
        f"{days} days {word} {long(start)} is {long(end)} ({end.isoformat()}).",
    )


def sorting(rng):
    n = rng.randint(5, 8)
    nums = rng.sample(range(1, 200), n)
    descending = rng.random() < 0.35
    ordered = sorted(nums, reverse=descending)
    order = "largest to smallest" if descending else "smallest to largest"
    return (
        f"Sort these numbers from {order}: {', '.join(map(str, nums))}.",
        f"Sorted from {order}: {', '.join(map(str, ordered))}. "
        f"The smallest is {min(nums)} and the largest is {max(nums)}, a range of {max(nums) - min(nums)}.",
    )


def reverse_words(rng):
    words = rng.sample(WORDS, rng.randint(4, 7))
    return (
        f'Reverse the order of the words in: "{" ".join(words)}"',
        f'Reversed: "{" ".join(reversed(words))}". The {len(words)} words are the same; only their order '
        f'changed, so "{words[0]}" now comes last.',
    )


def address(rng):
    return f"{rng.randint(2, 980)} {rng.choice(STREETS)}, {rng.choice(TOWNS)}"


def listing(rng):
    beds = rng.randint(1, 6)
    baths = rng.choice([b for b in (1, 1.5, 2, 2.5, 3, 3.5) if b <= beds + 0.5])
    sqft = 350 * beds + rng.randrange(200, 1400, 10)
    price = int(round(sqft * rng.uniform(120, 650), -3))
    kind = rng.choice(PROPERTY_KINDS)
    addr = address(rng)
    baths_text = f"{baths:g}"
    prompt = (
        "Write the listing sentence for this property: "
        f"address {addr}; type {kind}; bedrooms {beds}; bathrooms {baths_text}; {sqft:,} sq ft; asking {money(price)}."
    )
    response = (
        f"{addr}: a {beds}-bedroom, {baths_text}-bathroom {kind} with {sqft:,} sq ft of living space, "
        f"offered at {money(price)} ({money(price / sqft)} per sq ft)."
    )
    return prompt, response


def commission(rng):
    price = rng.randrange(150, 1500) * 1000
    rate = rng.choice([1.5, 2, 2.5, 2.75, 3, 3.5, 5, 6])
    split = rng.choice([None, 50, 60, 70])
    total = price * rate / 100
    prompt = f"A property sells for {money(price)} with a {rate:g}% commission."
    response = f"The commission is {money(total)}: {rate:g}% of {money(price)} is {money(price)} × {rate / 100:g} = {money(total)}."
    if split:
        prompt += f" The agent keeps {split}% of it. How much does the agent earn?"
        response += f" The agent's {split}% share is {money(total * split / 100)}."
    else:
        prompt += " How much is the commission?"
    return prompt, response


def price_per_sqft(rng):
    sqft = rng.randrange(500, 4500, 10)
    price = int(round(sqft * rng.uniform(120, 650), -3))
    addr = address(rng)
    return (
        f"The house at {addr} is listed at {money(price)} for {sqft:,} sq ft. What is the price per square foot?",
        f"The price per square foot is {money(price / sqft)}: {money(price)} divided by {sqft:,} sq ft.",
    )


TASKS = [conversion, date_arithmetic, sorting, reverse_words, listing, commission, price_per_sqft]


def generate(seed):
    rng = random.Random(seed)
    rows, seen = [], set()
    while len(rows) < TRAIN_ROWS + VAL_ROWS:
        task = TASKS[len(rows) % len(TASKS)]
        prompt, response = task(rng)
        if prompt in seen:
            continue
        seen.add(prompt)
        rows.append({"prompt": prompt, "response": response})
    rng.shuffle(rows)
    return rows[:TRAIN_ROWS], rows[TRAIN_ROWS:]


def write_jsonl(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=2025)
    parser.add_argument("--out-dir", type=Path, default=Path(__file__).resolve().parent)
    args = parser.parse_args()
    train, val = generate(args.seed)
    write_jsonl(args.out_dir / "instructions.jsonl", train)
    write_jsonl(args.out_dir / "instructions_val.jsonl", val)
    print(f"wrote {len(train)} training and {len(val)} validation rows (seed {args.seed})")


if __name__ == "__main__":
    main()
