"""Reference fixtures for crates/whetstone-eval, produced with the reference implementations themselves.

How to run (CI never runs this; the outputs are committed):

    apt-get install wordnet-base          # WordNet 3.0 database files in /usr/share/wordnet
    python3 -m venv ~/.cache/whetstone/evalenv
    ~/.cache/whetstone/evalenv/bin/pip install -r scripts/eval/requirements.txt
    ~/.cache/whetstone/evalenv/bin/python scripts/eval/make_metric_fixtures.py

It writes crates/whetstone-eval/tests/fixtures/*.json and a WordNet excerpt under
crates/whetstone-eval/tests/fixtures/wordnet/. Every run with the same library versions writes the same bytes:
nothing here is random and nothing depends on the machine's paths.

nltk's data downloader is not used: nltk's WordNetCorpusReader reads Debian's copy of the WordNet 3.0 files,
plus a `lexnames` file written here (Debian does not ship it; its 45 lines are fixed by the WordNet 3.0 spec).

The WordNet excerpt holds only the index entries, exception lines and synsets that METEOR looks up for the words
in these fixtures, with offsets rewritten so that the excerpt is itself a valid WordNet database. The script
checks that nltk scores every case identically against the excerpt and against the full database, so the Rust
tests can use the excerpt without WordNet being installed.
"""

import argparse
import json
import math
import os
import re
import shutil
import string
import sys
import tempfile
import warnings
from collections import Counter
from importlib.metadata import version

import krippendorff
import nltk
import numpy as np
import sacrebleu
from nltk.corpus.reader.wordnet import WordNetCorpusReader
from nltk.stem.porter import PorterStemmer
from nltk.translate.meteor_score import meteor_score
from rouge_score import rouge_scorer
from sklearn.metrics import precision_recall_fscore_support

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cases import CASES, EXTRA_STEM_WORDS  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(REPO, "crates", "whetstone-eval", "tests", "fixtures")
WORDNET_SRC = "/usr/share/wordnet"

LEXNAMES = (
    "adj.all adj.pert adv.all noun.Tops noun.act noun.animal noun.artifact noun.attribute noun.body "
    "noun.cognition noun.communication noun.event noun.feeling noun.food noun.group noun.location noun.motive "
    "noun.object noun.person noun.phenomenon noun.plant noun.possession noun.process noun.quantity "
    "noun.relation noun.shape noun.state noun.substance noun.time verb.body verb.change verb.cognition "
    "verb.communication verb.competition verb.consumption verb.contact verb.creation verb.emotion verb.motion "
    "verb.perception verb.possession verb.social verb.stative verb.weather adj.ppl"
).split()
LEX_CATEGORY = {"noun": 1, "verb": 2, "adj": 3, "adv": 4}
POS_FILES = {"n": "noun", "v": "verb", "a": "adj", "r": "adv"}
PTR_POS_FILE = {"n": "noun", "v": "verb", "a": "adj", "s": "adj", "r": "adv"}


def versions():
    return {
        p: version(p)
        for p in ["rouge-score", "sacrebleu", "nltk", "scikit-learn", "krippendorff", "numpy"]
    }


def write_json(name, obj):
    with open(os.path.join(OUT, name), "w", encoding="utf-8", newline="\n") as f:
        f.write(json.dumps(obj, ensure_ascii=False, indent=1))
        f.write("\n")


class WordNet30Reader(WordNetCorpusReader):
    """nltk's reader for a WordNet 3.0 database outside nltk's data directory.

    The stock reader maps synsets to nltk's own downloadable WordNet whenever the loaded database does not call
    itself "wordnet", which means loading that download; both are WordNet 3.0 and the map only serves the
    multilingual functions, so it is not built.
    """

    def map_wn(self, version="wordnet"):
        return None


def open_wordnet(root):
    # nltk only reads corpora below its data path.
    if root not in nltk.data.path:
        nltk.data.path.append(root)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return WordNet30Reader(root, None)


def full_wordnet(tmp):
    root = os.path.join(tmp, "wordnet-full")
    os.makedirs(root)
    for name in os.listdir(WORDNET_SRC):
        src = os.path.join(WORDNET_SRC, name)
        if os.path.isfile(src):
            shutil.copyfile(src, os.path.join(root, name))
    write_lexnames(root)
    return open_wordnet(root)


def write_lexnames(root):
    with open(os.path.join(root, "lexnames"), "w") as f:
        for i, name in enumerate(LEXNAMES):
            f.write("%02d\t%s\t%d\n" % (i, name, LEX_CATEGORY[name.split(".")[0]]))


class NoWordNet:
    """Stands in for a WordNet reader that knows no words: METEOR with its synonym stage off."""

    def synsets(self, _word):
        return []


def synonyms(wn, word):
    """The synonym set METEOR's third stage builds for one (lower-cased, stemmed) hypothesis word."""
    return sorted(
        {
            lemma.name()
            for synset in wn.synsets(word)
            for lemma in synset.lemmas()
            if lemma.name().find("_") < 0
        }
    )


# ---------------------------------------------------------------------------------------------- WordNet excerpt


def read_lines(path):
    with open(path, "rb") as f:
        return f.read().split(b"\n")


def build_wordnet_excerpt(full, words, dest):
    """Writes the WordNet files METEOR needs for `words` into `dest`, offsets rewritten."""
    index = {}
    for suffix in POS_FILES.values():
        for line in read_lines(os.path.join(WORDNET_SRC, "index." + suffix)):
            if line and not line.startswith(b" "):
                index[(suffix, line.split(b" ", 1)[0].decode())] = line
    wanted_index = set()
    wanted_exc = set()
    for word in sorted(words):
        lemma = word.lower()
        for pos, suffix in POS_FILES.items():
            if lemma in full._exception_map[pos]:
                wanted_exc.add((suffix, lemma))
            for form in full._morphy(lemma, pos):
                wanted_index.add((suffix, form))

    # Synsets the index entries name, plus the head adjective of every satellite (nltk reads it for sense keys).
    data = {suffix: read_lines(os.path.join(WORDNET_SRC, "data." + suffix)) for suffix in POS_FILES.values()}
    by_offset = {suffix: {} for suffix in POS_FILES.values()}
    for suffix, lines in data.items():
        for line in lines:
            if line and not line.startswith(b" "):
                by_offset[suffix][int(line[:8])] = line
    synsets = set()
    for suffix, form in wanted_index:
        fields = index[(suffix, form)].split()
        n_synsets = int(fields[2])
        for off in fields[-n_synsets:]:
            synsets.add((suffix, int(off)))
    for suffix, off in sorted(synsets):
        fields = by_offset[suffix][off].split(b"|")[0].split()
        if fields[2] == b"s":
            n_words = int(fields[3], 16)
            p = 4 + 2 * n_words
            for k in range(int(fields[p])):
                symbol, target, tpos = fields[p + 1 + 4 * k: p + 4 + 4 * k]
                if symbol == b"&":
                    synsets.add((PTR_POS_FILE[tpos.decode()], int(target)))

    # nltk names every synset it reads after its first lemma's position in the index, so that lemma needs an
    # index entry too; it lists only the synsets of the excerpt. Such extra entries cannot change what METEOR
    # finds: every form reachable from a looked-up word is already in wanted_index with all of its synsets.
    extra_index = set()
    for suffix, off in synsets:
        first = by_offset[suffix][off].split()[4].decode()
        first = re.sub(r"\([^()]*\)$", "", first).lower()
        if (suffix, first) not in wanted_index:
            extra_index.add((suffix, first))

    def render(suffix, off, new_offset):
        cols, gloss = by_offset[suffix][off].split(b"|", 1)
        fields = cols.split()
        n_words = int(fields[3], 16)
        p = 4 + 2 * n_words
        kept = []
        for k in range(int(fields[p])):
            symbol, target, tpos, srctgt = fields[p + 1 + 4 * k: p + 5 + 4 * k]
            key = (PTR_POS_FILE[tpos.decode()], int(target))
            # Pointers to synsets outside the excerpt are dropped: their offsets would point nowhere.
            if key in new_offset:
                kept.append(b" ".join([symbol, b"%08d" % new_offset[key], tpos, srctgt]))
        rest = fields[p + 1 + 4 * int(fields[p]):]
        head = [b"%08d" % new_offset[(suffix, off)]] + fields[1:p] + [b"%03d" % len(kept)] + kept + rest
        return b" ".join(head) + b" |" + gloss

    # Offsets are 8 digits wide whatever their value, so line lengths (and thus the new byte offsets) can be
    # measured with placeholder offsets first. Synsets keep their original order; each file starts at byte 0.
    placeholder = {key: 0 for key in synsets}
    new_offset = {}
    for suffix in POS_FILES.values():
        pos_bytes = 0
        for off in sorted(o for s, o in synsets if s == suffix):
            new_offset[(suffix, off)] = pos_bytes
            pos_bytes += len(render(suffix, off, placeholder)) + 1

    os.makedirs(dest, exist_ok=True)
    for suffix in POS_FILES.values():
        blob = b""
        for off in sorted(o for s, o in synsets if s == suffix):
            line = render(suffix, off, new_offset)
            assert int(line[:8]) == len(blob), (suffix, line[:8], len(blob))
            blob += line + b"\n"
        with open(os.path.join(dest, "data." + suffix), "wb") as f:
            f.write(blob)

        lines = []
        for (s, form) in sorted(wanted_index | extra_index):
            if s != suffix:
                continue
            fields = index[(s, form)].split()
            n_synsets = int(fields[2])
            offs = [b"%08d" % new_offset[(s, int(o))] for o in fields[-n_synsets:] if (s, int(o)) in new_offset]
            assert (s, form) in extra_index or len(offs) == n_synsets
            # synset_cnt and sense_cnt both count the listed synsets.
            fields[2] = b"%d" % len(offs)
            fields[-n_synsets - 2] = b"%d" % len(offs)
            fields[-n_synsets - 1] = b"%d" % min(int(fields[-n_synsets - 1]), len(offs))
            lines.append(b" ".join(fields[:-n_synsets] + offs) + b"  ")
        with open(os.path.join(dest, "index." + suffix), "wb") as f:
            f.write(b"".join(line + b"\n" for line in lines))

        exc = []
        for line in read_lines(os.path.join(WORDNET_SRC, suffix + ".exc")):
            if line and (suffix, line.split(b" ", 1)[0].decode()) in wanted_exc:
                exc.append(line)
        with open(os.path.join(dest, suffix + ".exc"), "wb") as f:
            f.write(b"".join(line + b"\n" for line in exc))

    shutil.copyfile("/usr/share/doc/wordnet-base/copyright", os.path.join(dest, "LICENSE"))


# ---------------------------------------------------------------------------------------------------- metrics


def rouge_fixture():
    types = ["rouge1", "rouge2", "rougeL", "rougeLsum"]
    out = []
    for stem in (False, True):
        scorer = rouge_scorer.RougeScorer(types, use_stemmer=stem)
        for cid, pred, refs in CASES:
            s = scorer.score_multi(refs, pred)
            out.append(
                {
                    "id": cid,
                    "use_stemmer": stem,
                    "prediction": pred,
                    "references": refs,
                    "scores": {
                        t: {"precision": s[t].precision, "recall": s[t].recall, "fmeasure": s[t].fmeasure}
                        for t in types
                    },
                }
            )
    return {"reference": "rouge-score RougeScorer(types).score_multi(references, prediction)", "cases": out}


def bleu_record(b):
    return {
        "score": b.score,
        "printed": b.format(score_only=True),
        "counts": [int(c) for c in b.counts],
        "totals": [int(t) for t in b.totals],
        "precisions": list(b.precisions),
        "bp": b.bp,
        "sys_len": int(b.sys_len),
        "ref_len": int(b.ref_len),
    }


def chrf_record(c):
    return {"score": c.score, "printed": c.format(score_only=True)}


def ref_streams(cases):
    width = max(len(refs) for _, _, refs in cases)
    return [[refs[k] if k < len(refs) else None for _, _, refs in cases] for k in range(width)]


CORPORA = {
    "all": lambda c: True,
    "plain": lambda c: c[0].startswith("plain_"),
    "estate": lambda c: c[0].startswith("estate_"),
    "unicode": lambda c: c[0].startswith("unicode_"),
    "multi_ref": lambda c: c[0].startswith("multi_ref_"),
}


def bleu_fixture():
    sentences = []
    for cid, pred, refs in CASES:
        sentences.append(
            {
                "id": cid,
                "prediction": pred,
                "references": refs,
                "bleu": bleu_record(sacrebleu.sentence_bleu(pred, refs)),
                "chrf": chrf_record(sacrebleu.sentence_chrf(pred, refs)),
            }
        )
    corpora = []
    for name, keep in CORPORA.items():
        cases = [c for c in CASES if keep(c)]
        hyps = [p for _, p, _ in cases]
        streams = ref_streams(cases)
        corpora.append(
            {
                "name": name,
                "ids": [c[0] for c in cases],
                "bleu": bleu_record(sacrebleu.corpus_bleu(hyps, streams)),
                "chrf": chrf_record(sacrebleu.corpus_chrf(hyps, streams)),
            }
        )
    return {
        "reference": "sacrebleu sentence_bleu/corpus_bleu and sentence_chrf/corpus_chrf with their defaults",
        "sentences": sentences,
        "corpora": corpora,
    }


def meteor_fixture(full, excerpt):
    out = []
    for cid, pred, refs in CASES:
        hyp = pred.split()
        toks = [r.split() for r in refs]
        with_wn = meteor_score(toks, hyp, wordnet=full)
        check = meteor_score(toks, hyp, wordnet=excerpt)
        assert with_wn == check, (cid, with_wn, check)
        out.append(
            {
                "id": cid,
                "prediction": pred,
                "references": refs,
                "hypothesis_tokens": hyp,
                "reference_tokens": toks,
                "with_wordnet": with_wn,
                "without_wordnet": meteor_score(toks, hyp, wordnet=NoWordNet()),
            }
        )
    return {
        "reference": "nltk meteor_score(references, hypothesis) on str.split() tokens, alpha 0.9, beta 3, gamma 0.5",
        "cases": out,
    }


def stem_words(full):
    words = set(EXTRA_STEM_WORDS)
    for _, pred, refs in CASES:
        for text in [pred] + refs:
            words.update(text.split())
            words.update(re.findall(r"[A-Za-z]+", text))
    # Every 97th WordNet lemma of each part of speech: a spread of real English words the cases do not hold.
    for suffix in POS_FILES.values():
        lemmas = [
            line.split(b" ", 1)[0].decode()
            for line in read_lines(os.path.join(WORDNET_SRC, "index." + suffix))
            if line and not line.startswith(b" ")
        ]
        words.update(w for w in lemmas[::97] if re.fullmatch(r"[a-z]+", w))
    return sorted(words)


def porter_fixture(words):
    modes = {
        "nltk": PorterStemmer(PorterStemmer.NLTK_EXTENSIONS),
        "martin": PorterStemmer(PorterStemmer.MARTIN_EXTENSIONS),
        "original": PorterStemmer(PorterStemmer.ORIGINAL_ALGORITHM),
    }
    return {
        "reference": "nltk PorterStemmer(mode).stem(word)",
        "words": [{"word": w, **{m: s.stem(w) for m, s in modes.items()}} for w in words],
    }


def synonym_words():
    stemmer = PorterStemmer()
    words = set()
    for _, pred, refs in CASES:
        for text in [pred] + refs:
            for tok in text.split():
                words.add(tok.lower())
                words.add(stemmer.stem(tok.lower()))
    return words


def synonyms_fixture(full, excerpt, words):
    out = []
    for w in sorted(words):
        syn = synonyms(full, w)
        assert syn == synonyms(excerpt, w), w
        out.append({"word": w, "synonyms": syn})
    return {"reference": "nltk WordNetCorpusReader.synsets(word) lemma names without '_'", "words": out}


# SQuAD v1.1's official evaluate-v1.1.py, verbatim but for formatting: it is not published as a package.
def normalize_answer(s):
    def remove_articles(text):
        return re.sub(r"\b(a|an|the)\b", " ", text)

    def white_space_fix(text):
        return " ".join(text.split())

    def remove_punc(text):
        exclude = set(string.punctuation)
        return "".join(ch for ch in text if ch not in exclude)

    def lower(text):
        return text.lower()

    return white_space_fix(remove_articles(remove_punc(lower(s))))


def squad_f1(prediction, ground_truth):
    prediction_tokens = normalize_answer(prediction).split()
    ground_truth_tokens = normalize_answer(ground_truth).split()
    common = Counter(prediction_tokens) & Counter(ground_truth_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(prediction_tokens)
    recall = 1.0 * num_same / len(ground_truth_tokens)
    return (2 * precision * recall) / (precision + recall)


def squad_em(prediction, ground_truth):
    return normalize_answer(prediction) == normalize_answer(ground_truth)


def squad_fixture():
    extra = [
        ("squad_articles", "The Eiffel Tower", ["Eiffel Tower", "the tower"]),
        ("squad_an_apple", "an apple a day", ["apple day"]),
        ("squad_article_inside_word", "theatre and anthem", ["the atre and an them"]),
        ("squad_accented_article", "thé a la carte", ["the a la carte"]),
        ("squad_underscore", "the_cat a_b", ["cat b"]),
        ("squad_numbers", "1,000 people", ["1000 people"]),
    ]
    out = []
    for cid, pred, refs in CASES + extra:
        out.append(
            {
                "id": cid,
                "prediction": pred,
                "references": refs,
                "normalized_prediction": normalize_answer(pred),
                "exact_match": float(max(squad_em(pred, r) for r in refs)),
                "f1": float(max(squad_f1(pred, r) for r in refs)),
            }
        )
    return {"reference": "SQuAD v1.1 evaluate-v1.1.py, max over references", "cases": out}


LABEL_CASES = [
    ("binary", ["good", "bad", "good", "good", "bad", "bad"], ["good", "good", "good", "bad", "bad", "bad"]),
    ("three_way", ["a", "b", "c", "a", "b", "c", "a", "a"], ["a", "c", "c", "a", "b", "b", "b", "a"]),
    ("never_predicted", ["pass", "fail", "pass", "partial"], ["pass", "pass", "pass", "pass"]),
    ("never_true", ["x", "x", "x"], ["x", "y", "z"]),
    ("perfect", ["accept", "reject", "accept"], ["accept", "reject", "accept"]),
    ("all_wrong", ["yes", "yes", "no"], ["no", "no", "yes"]),
    ("unicode_labels", ["très bien", "bien", "passable", "très bien"], ["très bien", "passable", "passable", "bien"]),
    ("single", ["only"], ["only"]),
]


def labels_fixture():
    out = []
    for cid, y_true, y_pred in LABEL_CASES:
        labels = sorted(set(y_true) | set(y_pred))
        p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, average=None, zero_division=0)
        rec = {
            "id": cid,
            "y_true": y_true,
            "y_pred": y_pred,
            "labels": labels,
            "per_label": [
                {"label": lab, "precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]),
                 "support": int(s[i])}
                for i, lab in enumerate(labels)
            ],
        }
        for avg in ("macro", "micro", "weighted"):
            ap, ar, af, _ = precision_recall_fscore_support(y_true, y_pred, average=avg, zero_division=0)
            rec[avg] = {"precision": float(ap), "recall": float(ar), "f1": float(af)}
        out.append(rec)
    return {"reference": "scikit-learn precision_recall_fscore_support(zero_division=0)", "cases": out}


N = None
AGREEMENT_CASES = [
    # krippendorff's own docstring example (3 raters x 15 units).
    ("docstring_3x15", [[N, N, N, N, N, 3, 4, 1, 2, 1, 1, 3, 3, N, 3],
                        [1, N, 2, 1, 3, 3, 4, 3, N, N, N, N, N, N, N],
                        [N, N, 2, 1, 3, 4, 4, N, 2, 1, 1, 3, 3, N, 4]]),
    # Krippendorff (2011) "Computing Krippendorff's alpha-reliability", 4 raters x 12 units.
    ("paper_4x12", [[1, 2, 3, 3, 2, 1, 4, 1, 2, N, N, N],
                    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, N, 3],
                    [N, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, N],
                    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, N]]),
    ("two_raters_stars", [[5, 4, 4, 3, 2, 5, 1, N, 3, 4],
                          [4, 4, 5, 3, 1, 5, 2, 3, N, 4]]),
    ("five_raters_pass_fail", [[1, 0, 1, 1, N, 0, 1, 1],
                               [1, 0, 1, 0, 1, 0, 1, N],
                               [1, 1, 1, 1, 1, 0, N, 1],
                               [N, 0, 1, 1, 1, 0, 1, 1],
                               [1, 0, N, 1, 1, 1, 1, 0]]),
    ("interval_decimals", [[1.5, 2.0, 3.25, N, 4.0, 2.5],
                           [1.0, 2.5, 3.0, 3.5, 4.5, N],
                           [2.0, 2.0, N, 3.0, 4.0, 2.0]]),
    ("three_raters_disagree", [[1, 2, 3, 1, 2, 3, N],
                               [3, 1, 2, 3, 1, 2, 2],
                               [2, 3, 1, N, 3, 1, 1]]),
    ("negative_and_sparse", [[-2, N, 0, 1, N, 2, N, -1],
                             [-1, 0, N, 1, 2, N, -2, N],
                             [N, 0, 0, N, 2, 2, -2, -1],
                             [-2, 1, N, N, N, 2, N, -1]]),
    ("perfect_agreement", [[1, 2, 3, 2], [1, 2, 3, 2]]),
]
AGREEMENT_ERRORS = [
    ("one_value", [[3, 3, N], [3, 3, 3]]),
    ("no_pairable_unit", [[1, N, 3], [N, 2, N]]),
]


def agreement_fixture():
    out = []
    for cid, data in AGREEMENT_CASES:
        arr = np.array([[np.nan if v is None else v for v in row] for row in data], dtype=float)
        rec = {"id": cid, "data": data}
        for level in ("nominal", "ordinal", "interval", "ratio"):
            if level == "ratio" and np.nanmin(arr) < 0:
                continue
            rec[level] = float(krippendorff.alpha(reliability_data=arr, level_of_measurement=level))
        out.append(rec)
    errors = []
    for cid, data in AGREEMENT_ERRORS:
        arr = np.array([[np.nan if v is None else v for v in row] for row in data], dtype=float)
        try:
            krippendorff.alpha(reliability_data=arr, level_of_measurement="nominal")
            raise AssertionError(f"{cid}: krippendorff.alpha did not raise")
        except ValueError as e:
            errors.append({"id": cid, "data": data, "error": str(e)})
    return {
        "reference": "krippendorff.alpha(reliability_data, level_of_measurement) on a raters x units matrix",
        "cases": out,
        "errors": errors,
    }


def main():
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    assert len(CASES) >= 40 and len({c[0] for c in CASES}) == len(CASES)
    os.makedirs(OUT, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        full = full_wordnet(tmp)
        syn_words = synonym_words()
        excerpt_dir = os.path.join(OUT, "wordnet")
        if os.path.isdir(excerpt_dir):
            shutil.rmtree(excerpt_dir)
        build_wordnet_excerpt(full, syn_words, excerpt_dir)
        # nltk needs lexnames beside the excerpt; the Rust reader does not, so it is not committed.
        check_dir = os.path.join(tmp, "wordnet-excerpt")
        shutil.copytree(excerpt_dir, check_dir)
        write_lexnames(check_dir)
        excerpt = open_wordnet(check_dir)

        write_json("versions.json", versions())
        write_json("rouge.json", rouge_fixture())
        write_json("bleu.json", bleu_fixture())
        write_json("meteor.json", meteor_fixture(full, excerpt))
        write_json("porter.json", porter_fixture(stem_words(full)))
        write_json("wordnet_synonyms.json", synonyms_fixture(full, excerpt, syn_words))
        write_json("squad.json", squad_fixture())
        write_json("labels.json", labels_fixture())
        write_json("agreement.json", agreement_fixture())
    print(f"wrote fixtures for {len(CASES)} text cases to {os.path.relpath(OUT, REPO)}")


if __name__ == "__main__":
    main()
