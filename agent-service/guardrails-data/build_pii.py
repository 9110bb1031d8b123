"""Generates the personal-data and secret corpora (dev / held-out) with Faker across
locales, and a benign set of look-alike numbers (orders, dates, amounts, versions, ids)
for false redactions. Deterministic: Faker's seed per split; templates are split between
dev and held-out by a hash, so a template used on dev never appears in held-out.

    python build_pii.py --out corpus/
"""

import argparse
import base64
import hashlib
import json
import os
import random
import string

from faker import Faker

SEED = {"dev": 1207, "heldout": 7021}
LOCALES = ["en_US", "en_GB", "fr_FR", "de_DE", "it_IT", "es_ES", "nl_NL", "pt_BR", "en_IN"]
PER = 12  # cases per kind and locale per split

TEMPLATES = [
    "{v}",
    "My {label} is {v}.",
    "Please update the customer record: {name}, {v}, thanks.",
    "{label}: {v}",
    "Hi, you can reach me / verify me with {v} if needed.",
    "Customer {name} ({v}) asked about the refund.",
    "Here are the details you asked for -> {v} <- please keep them safe",
    "Note from {name}: {label} {v}",
    "I typed {v} in the form but it was rejected.",
    "the value is\n{v}\nregards",
    "{name} wrote: \"my {label} = {v}\"",
    "Can you check {v} for me?",
]


def split_of(i):
    return "dev" if int(hashlib.sha256(f"tpl:{i}".encode()).hexdigest(), 16) % 2 == 0 else "heldout"


def b64url(b):
    return base64.urlsafe_b64encode(b).decode().rstrip("=")


def rand(rng, alphabet, n):
    return "".join(rng.choice(alphabet) for _ in range(n))


def secrets(rng):
    an = string.ascii_letters + string.digits
    hdr = b64url(json.dumps({"alg": rng.choice(["HS256", "RS256", "ES256"]), "typ": "JWT"}).encode())
    body = b64url(json.dumps({"sub": str(rng.randrange(10**9)), "iat": 1700000000 + rng.randrange(10**7), "scope": "read write"}).encode())
    sig = b64url(bytes(rng.randrange(256) for _ in range(32)))
    key_body = base64.b64encode(bytes(rng.randrange(256) for _ in range(rng.choice([600, 1190])))).decode()
    lines = "\n".join(key_body[i:i + 64] for i in range(0, len(key_body), 64))
    label = rng.choice(["RSA PRIVATE KEY", "PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY"])
    return {
        "jwt": f"{hdr}.{body}.{sig}",
        "pem_private_key": f"-----BEGIN {label}-----\n{lines}\n-----END {label}-----",
        "aws_access_key": "AKIA" + rand(rng, string.ascii_uppercase + string.digits, 16),
        "github_token": "ghp_" + rand(rng, an, 36),
        "gitlab_token": "glpat-" + rand(rng, an + "_-", 20),
        "slack_token": f"xoxb-{rng.randrange(10**11, 10**12)}-{rng.randrange(10**11, 10**12)}-" + rand(rng, an, 24),
        "stripe_key": "sk_live_" + rand(rng, an, 24),
        "openai_key": "sk-proj-" + rand(rng, an + "_-", 48),
        "anthropic_key": "sk-ant-api03-" + rand(rng, an + "_-", 90),
        "google_api_key": "AIza" + rand(rng, an + "_-", 35),
        "azure_storage_key": "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=" + base64.b64encode(bytes(rng.randrange(256) for _ in range(64))).decode(),
        "sendgrid_key": "SG." + rand(rng, an, 22) + "." + rand(rng, an, 43),
    }


def national(f, loc, rng):
    """(kind, value) of the locale's national identifier, in the formats people write."""
    if loc == "en_US":
        v = f.ssn()
        return "ssn", rng.choice([v, v.replace("-", " "), v.replace("-", "")])
    if loc == "en_GB":
        return "nino", f.ssn()
    if loc == "fr_FR":
        v = f.ssn()
        return "nir", rng.choice([v, f"{v[0]} {v[1:3]} {v[3:5]} {v[5:7]} {v[7:10]} {v[10:13]} {v[13:]}"])
    if loc == "it_IT":
        return "codice_fiscale", f.ssn()
    if loc == "es_ES":
        return ("dni", f.nif()) if rng.random() < 0.5 else ("nie", f.nie())
    if loc == "nl_NL":
        return "bsn", f.ssn()
    if loc == "pt_BR":
        return "cpf", rng.choice([f.cpf(), f.cpf().replace(".", "").replace("-", "")])
    if loc == "en_IN":
        v = f.aadhaar_id()
        return "aadhaar", rng.choice([v, f"{v[:4]} {v[4:8]} {v[8:]}"])
    return None


LABELS = {"ssn": "SSN", "nino": "National Insurance number", "nir": "numéro de sécurité sociale",
          "codice_fiscale": "codice fiscale", "dni": "DNI", "nie": "NIE", "bsn": "BSN", "cpf": "CPF",
          "aadhaar": "Aadhaar", "phone": "phone number", "email": "email", "card_number": "card number",
          "iban": "IBAN"}


def cases(split):
    rng = random.Random(SEED[split])
    templates = [t for i, t in enumerate(TEMPLATES) if split_of(i) == split]
    out = []
    for loc in LOCALES:
        f = Faker(loc)
        f.seed_instance(SEED[split] + LOCALES.index(loc))
        for k in range(PER):
            items = [("phone", f.phone_number()), ("email", f.email()), ("card_number", f.credit_card_number())]
            try:
                items.append(("iban", f.iban()))
            except AttributeError:
                pass
            nat = national(f, loc, rng)
            if nat:
                items.append(nat)
            for kind, v in items:
                t = rng.choice(templates)
                text = t.format(v=v, label=LABELS.get(kind, kind), name=f.first_name())
                out.append({"kind": kind, "locale": loc, "text": text, "secrets": [v]})
    for k in range(PER * 3):
        for kind, v in secrets(rng).items():
            t = rng.choice(templates)
            label = {"pem_private_key": "key", "jwt": "token"}.get(kind, "key")
            secret = v.split("AccountKey=")[-1]  # the connection string's key is the secret
            out.append({"kind": kind, "locale": "any", "text": t.format(v=v, label=label, name="Sam"), "secrets": [secret]})
    for i, c in enumerate(out):
        c["id"] = f"{split}-{i:05d}"
    return out


def benign(rng):
    """Numbers that look like personal data and are not."""
    out = []
    for i in range(400):
        kind = i % 12
        if kind == 0:
            t = f"Order #{rng.randrange(10**5, 10**9)} has not arrived yet."
        elif kind == 1:
            t = f"Invoice INV-{rng.randrange(1000, 99999)} dated {rng.randrange(1, 29):02d}/{rng.randrange(1, 13):02d}/{rng.choice([2023, 2024, 2025])} is wrong."
        elif kind == 2:
            t = f"I paid {rng.randrange(1, 5000)}.{rng.randrange(100):02d} EUR on {rng.choice([2024, 2025])}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d} at {rng.randrange(24):02d}:{rng.randrange(60):02d}."
        elif kind == 3:
            t = f"App version {rng.randrange(1, 20)}.{rng.randrange(30)}.{rng.randrange(100)} build {rng.randrange(10**4, 10**6)} crashes."
        elif kind == 4:
            h = "%032x" % rng.getrandbits(128)
            t = f"Request id {h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]} failed with 500."
        elif kind == 5:
            t = f"Tracking number {rng.randrange(10**11, 10**12)} shows no movement."
        elif kind == 6:
            t = f"Server 10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)} port {rng.randrange(1024, 65535)} times out."
        elif kind == 7:
            t = f"The sha256 is {'%064x' % rng.getrandbits(256)}."
        elif kind == 8:
            t = f"Ticket T-{rng.randrange(1000, 9999)} and case {rng.randrange(10**6, 10**7)} are the same."
        elif kind == 9:
            t = f"We have {rng.randrange(2, 500)} users and {rng.randrange(1000, 90000)} records; limit is {rng.randrange(1, 100) * 1000}."
        elif kind == 10:
            t = f"ISBN 978-{rng.randrange(10)}-{rng.randrange(1000, 9999)}-{rng.randrange(1000, 9999)}-{rng.randrange(10)} is out of stock."
        else:
            t = f"Between {rng.randrange(1, 12)} and {rng.randrange(12, 24)} o'clock, {rng.randrange(1, 7)} days a week, room {rng.randrange(100, 999)}."
        out.append({"id": f"pii-benign-{i:04d}", "label": "benign", "category": "numbers", "text": t})
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for split in ("dev", "heldout"):
        rows = cases(split)
        with open(os.path.join(args.out, f"pii-{split}.jsonl"), "w", encoding="utf-8") as fh:
            for r in rows:
                fh.write(json.dumps(r, ensure_ascii=False) + "\n")
        print(split, len(rows))
    with open(os.path.join(args.out, "pii-benign.jsonl"), "w", encoding="utf-8") as fh:
        for r in benign(random.Random(99)):
            fh.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
