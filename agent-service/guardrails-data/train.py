"""Trains the input-scan model: a logistic regression over the features the Rust scanner
exports (`agent-service guardrails features`: hashed word unigrams/bigrams and character
4-grams of the normalised and decoded text, per window, plus the structural signals).

    python train.py --features-train F --features-dev F --train corpus/train.jsonl \
        --dev corpus/dev.jsonl --out model/injection-v4.bin

Two stages, so the structural signals keep the weight their own evidence gives them:
  1. a logistic regression over the signals alone (their weights and a bias);
  2. a logistic regression over the n-grams, fitted to what stage 1 leaves unexplained
     (stage 1's log-odds is a fixed offset), L2 strength C chosen on the dev split (never
     on held-out).
Fitted jointly, the n-grams would absorb most of what the signals say on the training
corpora's wordings and the signals would keep small weights; the signals are what carries
over to phrasings the corpora do not have. The weights of the
n-gram part are quantised to signed bytes (one scale); the signal weights and the bias
stay floats in the header. Every window of a text is a training example with the text's
label (a long text is scored by its highest window).
"""

import argparse
import json
from collections import Counter

import numpy as np
from scipy.optimize import minimize
from scipy.sparse import csr_matrix
from scipy.special import expit
from sklearn.linear_model import LogisticRegression

SIGNALS = [
    "override_prior", "override_bare", "new_instructions", "echo_directive", "role_tag",
    "role_line", "fake_turns", "addresses_ai", "prompt_request", "above_request", "persona", "no_limits",
    "refusal_suppression", "stands_for", "dual_response", "mode_switch", "exfil_link",
    "markdown_image", "active_html", "decode_request", "unicode_tags", "invisible_chars",
    "mixed_script", "spaced_letters", "leetspeak", "decoded_payload",
]


def load(features_path, corpus_path, bits):
    labels = {}
    cats = {}
    families = {}
    with open(corpus_path, encoding="utf-8") as f:
        for line in f:
              r = json.loads(line)
              labels[r["id"]] = 1 if r["label"] == "attack" else 0
              cats[r["id"]] = r["category"]
              families[r["id"]] = r.get("family", r["id"])
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
    return x, np.array(y), owner, labels, cats, families


def text_scores(c, offset, fired, owner, floor):
    """A text's log-odds: the n-gram part of its highest window plus the signals (and the
    bias); when the signals and bias alone say attack (log-odds > 0), the n-gram part is not
    below -floor."""
    best = {}
    for o, v, off, f in zip(owner, c, offset, fired):
        if floor is not None and f:
              v = max(v, -floor)
        best[o] = max(best.get(o, -1e9), v + off)
    return best


def sample_weights(y, owner, families):
    """Attacks and benign balanced; within a class, a family (a template and its fills, an
    encoded payload's variants) weighs 1/sqrt(its windows), so a template filled a dozen
    times does not teach its wording a dozen times over."""
    fam = [families[o] for o in owner]
    size = Counter(fam)
    w = np.array([1.0 / np.sqrt(size[f]) for f in fam])
    for label in (0, 1):
        m = y == label
        w[m] *= len(y) / (2 * w[m].sum())
    return w


def fit_with_offset(g, y, offset, c, sw):
    """L2 logistic regression over `g` (sparse) with a fixed per-row offset: weights, bias."""
    dim = g.shape[1]
    gt = g.T.tocsr()
    yf = y.astype(np.float64)

    def f(theta):
        w, b = theta[:dim], theta[dim]
        z = g @ w + b + offset
        loss = np.sum(sw * (np.logaddexp(0.0, z) - yf * z)) + 0.5 / c * np.dot(w, w)
        r = sw * (expit(z) - yf)
        grad = np.empty(dim + 1)
        grad[:dim] = gt @ r + w / c
        grad[dim] = r.sum()
        return loss, grad

    res = minimize(f, np.zeros(dim + 1), jac=True, method="L-BFGS-B", options={"maxiter": 800})
    return res.x[:dim], float(res.x[dim])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--features-train", required=True)
    ap.add_argument("--features-dev", required=True)
    ap.add_argument("--train", required=True)
    ap.add_argument("--dev", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--bits", type=int, default=18)
    ap.add_argument("--version", default="injection-v4.3")
    args = ap.parse_args()

    xt, yt, ot, _, _, ft = load(args.features_train, args.train, args.bits)
    xd, _, od, ld, cd, _ = load(args.features_dev, args.dev, args.bits)
    cut = 1 << args.bits
    gt, st = xt[:, :cut].tocsr(), xt[:, cut:].toarray()
    gd, sd = xd[:, :cut].tocsr(), xd[:, cut:].toarray()
    sw = sample_weights(yt, ot, ft)

    # Stage 1: the signals alone.
    s1 = LogisticRegression(C=1.0, max_iter=3000)
    s1.fit(st, yt, sample_weight=sw)
    sig = s1.coef_[0].astype(np.float64)
    b1 = float(s1.intercept_[0])
    off_t = st @ sig + b1
    off_d = sd @ sig + b1
    # Filled in per C below: the structure alone (bias and signals) says attack.
    print("stage 1 (signals):", {n: round(float(v), 2) for n, v in zip(SIGNALS, sig)}, "bias", round(b1, 2))

    # Stage 2: the n-grams on top, C chosen on dev.
    best = None
    # The floor: how far the n-grams may pull a text whose structure alone says attack
    # (wording learned from the corpora may temper structural evidence, not erase it).
    for c in (8.0, 32.0, 128.0, 512.0):
        w, b2 = fit_with_offset(gt, yt, off_t, c, sw)
        # On a tie the stronger floor wins: the dev split has few short direct attacks, where
        # the floor matters, and structure is what generalises to phrasings it lacks.
        for floor in (1.0, 2.0, None):
            s = text_scores(gd @ w, off_d + b2, off_d + b2 > 0, od, floor)
            # Dev objective: detection at a 0.8 probability threshold minus 5x the
            # look-alike false positive rate and 10x the plain one.
            thr = np.log(0.8 / 0.2)
            att = [s[i] >= thr for i in s if ld[i] == 1]
            fp_look = [s[i] >= thr for i in s if ld[i] == 0 and cd[i] == "lookalike"]
            fp_plain = [s[i] >= thr for i in s if ld[i] == 0 and cd[i] != "lookalike"]
            det = float(np.mean(att))
            fl = float(np.mean(fp_look)) if fp_look else 0.0
            fpl = float(np.mean(fp_plain)) if fp_plain else 0.0
            obj = det - 5 * fl - 10 * fpl
            print(f"C={c} floor={floor}: dev detection {det:.4f}, fp lookalike {fl:.4f}, fp plain {fpl:.4f}, objective {obj:.4f}")
            if best is None or obj > best[0] + 1e-9:
                best = (obj, c, w, b2, floor)
    _, c, grams, b2, floor = best
    print(f"chosen C={c}, floor={floor}")
    scale = float(np.max(np.abs(grams)) / 127.0) or 1e-6
    q = np.clip(np.round(grams / scale), -127, 127).astype(np.int8)
    header = {
        "version": args.version,
        "bits": args.bits,
        "scale": scale,
        "bias": b1 + b2,
        "window": 96,
        "floor": floor,
        "stride": 48,
        "signals": {name: round(float(v), 4) for name, v in zip(SIGNALS, sig)},
        "trained": {"C": c, "floor": floor, "train_windows": int(xt.shape[0])},
    }
    with open(args.out, "wb") as f:
        f.write(b"FDGM1\n")
        f.write(json.dumps(header, sort_keys=True).encode())
        f.write(b"\n")
        f.write(q.tobytes())
    print(json.dumps(header["signals"], indent=1))


if __name__ == "__main__":
    main()
