"""Trains the input-scan model: a logistic regression over the features the Rust scanner
exports (`agent-service guardrails features`: hashed word unigrams/bigrams and character
4-grams of the normalised and decoded text, per window, plus the structural signals).

    python train.py --features-train F --features-dev F --train corpus/train.jsonl \
        --dev corpus/dev.jsonl --out model/injection-v4.bin

Regularisation C is chosen on the dev split (never on held-out). The weights of the
n-gram part are quantised to signed bytes (one scale); the signal weights and the bias
stay floats in the header. Every window of a text is a training example with the text's
label (a long text is scored by its highest window).
"""

import argparse
import json

import numpy as np
from scipy.sparse import csr_matrix
from sklearn.linear_model import LogisticRegression

SIGNALS = [
    "override_prior", "override_bare", "new_instructions", "echo_directive", "role_tag",
    "role_line", "fake_turns", "prompt_request", "above_request", "persona", "no_limits",
    "refusal_suppression", "stands_for", "dual_response", "mode_switch", "exfil_link",
    "markdown_image", "active_html", "decode_request", "unicode_tags", "invisible_chars",
    "mixed_script", "spaced_letters", "leetspeak", "decoded_payload",
]


def load(features_path, corpus_path, bits):
    labels = {}
    cats = {}
    with open(corpus_path, encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            labels[r["id"]] = 1 if r["label"] == "attack" else 0
            cats[r["id"]] = r["category"]
    dim = (1 << bits) + len(SIGNALS)
    rows, cols, vals, y, owner = [], [], [], [], []
    n = 0
    with open(features_path, encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            for w in r["w"]:
                for i, v in zip(w["i"], w["v"]):
                    rows.append(n)
                    cols.append(i)
                    vals.append(v)
                for s in w["s"]:
                    rows.append(n)
                    cols.append((1 << bits) + SIGNALS.index(s))
                    vals.append(1.0)
                y.append(labels[r["id"]])
                owner.append(r["id"])
                n += 1
    x = csr_matrix((vals, (rows, cols)), shape=(n, dim), dtype=np.float32)
    return x, np.array(y), owner, labels, cats


def text_scores(model, x, owner):
    """A text's score is its highest window's."""
    p = model.decision_function(x)
    best = {}
    for o, s in zip(owner, p):
        best[o] = max(best.get(o, -1e9), s)
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--features-train", required=True)
    ap.add_argument("--features-dev", required=True)
    ap.add_argument("--train", required=True)
    ap.add_argument("--dev", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--bits", type=int, default=18)
    ap.add_argument("--version", default="injection-v4.1")
    args = ap.parse_args()

    xt, yt, _, _, _ = load(args.features_train, args.train, args.bits)
    xd, _, od, ld, cd = load(args.features_dev, args.dev, args.bits)
    # Balance attacks and benign windows; look-alike benign counts double (they are the
    # false positives that matter).
    best = None
    for c in (4.0, 16.0, 64.0, 256.0):
        m = LogisticRegression(C=c, class_weight="balanced", max_iter=3000, solver="liblinear")
        m.fit(xt, yt)
        s = text_scores(m, xd, od)
        # Dev objective: detection at a 0.8 probability threshold minus 5x the look-alike
        # false positive rate and 10x the plain one.
        thr = np.log(0.8 / 0.2)
        att = [s[i] >= thr for i in s if ld[i] == 1]
        fp_look = [s[i] >= thr for i in s if ld[i] == 0 and cd[i] == "lookalike"]
        fp_plain = [s[i] >= thr for i in s if ld[i] == 0 and cd[i] != "lookalike"]
        det = float(np.mean(att))
        fl = float(np.mean(fp_look)) if fp_look else 0.0
        fpl = float(np.mean(fp_plain)) if fp_plain else 0.0
        obj = det - 5 * fl - 10 * fpl
        print(f"C={c}: dev detection {det:.4f}, fp lookalike {fl:.4f}, fp plain {fpl:.4f}, objective {obj:.4f}")
        if best is None or obj > best[0]:
            best = (obj, c, m)
    _, c, m = best
    print(f"chosen C={c}")
    w = m.coef_[0].astype(np.float64)
    grams = w[: 1 << args.bits]
    sig = w[1 << args.bits:]
    scale = float(np.max(np.abs(grams)) / 127.0) or 1e-6
    q = np.clip(np.round(grams / scale), -127, 127).astype(np.int8)
    header = {
        "version": args.version,
        "bits": args.bits,
        "scale": scale,
        "bias": float(m.intercept_[0]),
        "window": 96,
        "stride": 48,
        "signals": {name: round(float(v), 4) for name, v in zip(SIGNALS, sig)},
        "trained": {"C": c, "train_windows": int(xt.shape[0])},
    }
    with open(args.out, "wb") as f:
        f.write(b"FDGM1\n")
        f.write(json.dumps(header, sort_keys=True).encode())
        f.write(b"\n")
        f.write(q.tobytes())
    print(json.dumps(header["signals"], indent=1))


if __name__ == "__main__":
    main()
