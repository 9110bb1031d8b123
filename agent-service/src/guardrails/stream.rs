//! Streaming redaction: redacts text that arrives in chunks (model token deltas) so that
//! the concatenated output equals redacting the whole text at once, for any chunking.
//!
//! The redactor keeps a buffer of text not yet emitted (plus a few bytes already emitted,
//! as left context for `\b`). On each chunk it scans the buffer and emits up to a cut:
//! `len - holdback` (the look-ahead that decides any match), or just past the last "break"
//! character (one no pattern can match, so no match spans it) if that is later; then moved
//! back to the start of any candidate match that straddles it. Text before the cut is then
//! redacted exactly as the whole text would be, and scanning resumes at the cut.

use super::redact::{
    Candidate, PEM_BEGIN, Redactor, Region, RuleSet, assemble, engine, regions_before, scan,
};

/// Bytes of already-emitted text kept as left context (`\b` looks one character back).
const CONTEXT: usize = 8;

/// Redacts a text that arrives in chunks, holding back enough of the tail that a pattern
/// split across chunks is still caught.
#[derive(Debug)]
pub struct StreamRedactor {
    enabled: RuleSet,
    /// `buf[..start]` was emitted (context only); `buf[start..]` is pending.
    buf: String,
    start: usize,
    fired: RuleSet,
    rules: Vec<&'static str>,
    candidates: Vec<Candidate>,
    regions: Vec<Region>,
}

impl Redactor {
    /// A redactor for a text that arrives in chunks, with this redactor's rules.
    pub fn stream(&self) -> StreamRedactor {
        StreamRedactor::new(self.enabled)
    }
}

impl StreamRedactor {
    pub(super) fn new(enabled: RuleSet) -> Self {
        Self {
            enabled,
            buf: String::new(),
            start: 0,
            fired: RuleSet::default(),
            rules: Vec::new(),
            candidates: Vec::new(),
            regions: Vec::new(),
        }
    }

    /// Feeds a chunk; returns the redacted text that is now safe to emit (may be empty).
    pub fn push(&mut self, chunk: &str) -> String {
        self.buf.push_str(chunk);
        self.scan();
        let cut = self.cut();
        self.emit(cut)
    }

    /// Ends the stream; returns the redacted remainder.
    pub fn finish(&mut self) -> String {
        self.scan();
        self.emit(self.buf.len())
    }

    /// Rules that fired so far.
    pub fn rules(&self) -> &[&'static str] {
        &self.rules
    }

    /// Bytes received but not yet emitted.
    pub fn pending(&self) -> usize {
        self.buf.len() - self.start
    }

    fn scan(&mut self) {
        self.candidates.clear();
        scan(self.enabled, &self.buf, self.start, &mut self.candidates);
    }

    /// The end of the text that is decided: no match can start before it and end after.
    fn cut(&self) -> usize {
        let engine = engine();
        let len = self.buf.len();
        let mut cut = self
            .buf
            .floor_char_boundary(len.saturating_sub(engine.holdback))
            .max(self.start);
        if let Some((i, c)) = self.buf[cut..]
            .char_indices()
            .rev()
            .find(|&(_, c)| engine.is_break(c))
        {
            cut += i + c.len_utf8();
        }
        // A PEM block is held back whole until its END line arrives (its body has breaks,
        // and a private key must not leave in pieces): the one hold-back not bounded by
        // the patterns' look-ahead, bounded instead by the block.
        if let Some(open) = open_pem_block(&self.buf, self.start) {
            cut = cut.min(open);
        }
        // Pattern candidates never contain a break, so this only ever moves the cut back.
        while let Some(s) = self
            .candidates
            .iter()
            .filter(|c| c.start < cut && cut < c.end)
            .map(|c| c.start)
            .min()
        {
            cut = s;
        }
        cut
    }

    fn emit(&mut self, cut: usize) -> String {
        self.regions.clear();
        let fired = regions_before(&self.candidates, cut, &mut self.regions);
        let mut out = String::with_capacity(cut - self.start);
        assemble(&self.buf, self.start, cut, &self.regions, &mut out);
        if !fired.is_empty() {
            self.fired.union(fired);
            self.rules = self.fired.labels();
        }
        let keep_from = self.buf.floor_char_boundary(cut.saturating_sub(CONTEXT));
        self.buf.drain(..keep_from);
        self.start = cut - keep_from;
        out
    }
}

/// The start of a PEM block in `buf[from..]` whose END line has not arrived, or of a tail
/// that may still become `-----BEGIN `.
fn open_pem_block(buf: &str, from: usize) -> Option<usize> {
    let tail = &buf[from..];
    if let Some(i) = tail.rfind(PEM_BEGIN) {
        let after = &tail[i + PEM_BEGIN.len()..];
        let closed = after.find("-----END ").is_some_and(|e| {
            let rest = &after[e + "-----END ".len()..];
            rest.contains("-----")
        });
        if !closed {
            return Some(from + i);
        }
    }
    // A tail that is a prefix of the marker ("---", "-----BEG").
    (1..PEM_BEGIN.len())
        .rev()
        .find(|&n| tail.len() >= n && tail.ends_with(&PEM_BEGIN[..n]))
        .map(|n| buf.len() - n)
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::super::redact::{Redacted, Redactor};

    /// `(text, secret)`: texts to embed, and the part of each that must never be emitted.
    const SECRETS: &[(&str, &str)] = &[
        ("bob@example.com", "bob@example.com"),
        (
            "alice.smith+billing@mail.example.co.uk",
            "alice.smith+billing@mail.example.co.uk",
        ),
        ("+44 20 7946 0958", "20 7946 0958"),
        ("(415) 555-0132", "555-0132"),
        ("4111 1111 1111 1111", "4111 1111 1111 1111"),
        ("5500-0055-5555-5559", "5500-0055-5555-5559"),
        ("123-45-6789", "123-45-6789"),
        ("JK 12 34 56 D", "JK 12 34 56 D"),
        ("GB82 WEST 1234 5698 7654 32", "WEST 1234 5698 7654"),
        ("DE89370400440532013000", "DE89370400440532013000"),
        (
            "sk-proj-Abc123def456ghi789jkl012mno345pqr678stu901vwx234yz567ABC890def123ghi456jkl789mno012pqr345stu678vwx901yzaBCD234efg567hij890klm123nop456qrs789tuv",
            "Abc123def456ghi789jkl012mno345",
        ),
        ("AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"),
        (
            "ghp_0123456789abcdefghijklmnopqrstuvwxyzAB",
            "0123456789abcdefghijklmnopqrstuvwxyzAB",
        ),
        ("xoxb-1234567890-abcdefghij", "1234567890-abcdefghij"),
        (
            "AIzaSyA1234567890abcdefghijklmnopqrstuv",
            "SyA1234567890abcdefghijklmnopqrstuv",
        ),
        ("api_key=abc123xyz789", "abc123xyz789"),
        ("\"password\": \"hunter2!\"", "hunter2!"),
        ("Authorization: Basic dXNlcjpwYXNz", "dXNlcjpwYXNz"),
        (
            "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyLCJleHAiOjE3MTYyMzkwMjIsInNjb3BlIjoicmVhZCB3cml0ZSBhZG1pbiJ9.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5cSflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
            "eyJhbGciOiJIUzI1NiJ9",
        ),
    ];

    /// Texts that carry the secrets in various contexts (`{}` is a secret's text).
    const TEMPLATES: &[&str] = &[
        "{}",
        "Contact {} for details.",
        "line one\nvalue: {}\nline three, with more text after it to push the cut forward",
        "é→{}←日本",
        "first {} and then {}",
        "before {} {} after",
        "{} 2024 123",
        "a long preamble without any breaks in it at all so the holdback decides where to cut {} and a long tail of words again without breaks to make it span chunks",
    ];

    /// Every template filled with every secret (and its neighbour for a second `{}`).
    fn corpus() -> Vec<(String, Vec<&'static str>)> {
        let mut texts = Vec::new();
        for template in TEMPLATES {
            for i in 0..SECRETS.len() {
                let mut parts = template.split("{}");
                let mut text = parts.next().unwrap_or_default().to_string();
                let mut secrets = Vec::new();
                for (n, part) in parts.enumerate() {
                    let (embedded, secret) = SECRETS[(i + n) % SECRETS.len()];
                    text.push_str(embedded);
                    text.push_str(part);
                    secrets.push(secret);
                }
                texts.push((text, secrets));
            }
        }
        texts.push(("nothing secret here, just text.\n".repeat(20), Vec::new()));
        texts
    }

    fn run(chunks: &[&str]) -> (String, Vec<&'static str>) {
        let mut s = Redactor::builtin().stream();
        let mut out: String = chunks.iter().map(|c| s.push(c)).collect();
        out.push_str(&s.finish());
        (out, s.rules().to_vec())
    }

    /// The streamed output of `chunks` equals `whole` (the text redacted at once) and
    /// contains none of `secrets`.
    fn assert_same(whole: &Redacted<'_>, secrets: &[&str], chunks: &[&str]) {
        let (out, rules) = run(chunks);
        assert_eq!(out, whole.text, "chunks: {chunks:?}");
        assert_eq!(rules, whole.rules, "chunks: {chunks:?}");
        for secret in secrets {
            assert!(
                !out.contains(secret),
                "{secret:?} leaked with chunks {chunks:?}"
            );
        }
    }

    fn char_splits(text: &str) -> impl Iterator<Item = usize> + '_ {
        text.char_indices().map(|(i, _)| i).skip(1)
    }

    #[test]
    fn every_single_split_point() {
        for (text, secrets) in corpus() {
            let whole = Redactor::builtin().redact(&text);
            for i in char_splits(&text) {
                assert_same(&whole, &secrets, &[&text[..i], &text[i..]]);
            }
        }
    }

    #[test]
    fn one_char_at_a_time() {
        for (text, secrets) in corpus() {
            let chunks: Vec<&str> = text
                .char_indices()
                .map(|(i, c)| &text[i..i + c.len_utf8()])
                .collect();
            assert_same(&Redactor::builtin().redact(&text), &secrets, &chunks);
        }
    }

    #[test]
    fn random_multi_splits() {
        let mut rng = StdRng::seed_from_u64(0x5eed_f11e);
        for (text, secrets) in corpus() {
            let whole = Redactor::builtin().redact(&text);
            let points: Vec<usize> = char_splits(&text).collect();
            for _ in 0..40 {
                let mut cuts: Vec<usize> = points
                    .iter()
                    .copied()
                    .filter(|_| rng.random_bool(0.15))
                    .collect();
                cuts.push(text.len());
                let mut chunks = Vec::new();
                let mut from = 0;
                for cut in cuts {
                    chunks.push(&text[from..cut]);
                    from = cut;
                }
                assert_same(&whole, &secrets, &chunks);
            }
        }
    }

    #[test]
    fn named_split_cases() {
        // (chunks, expected output)
        let cases: &[(&[&str], &str)] = &[
            (&["4111 1111 1111", " 1111"], "[REDACTED:card_number]"),
            (&["bob@exa", "mple.com"], "[REDACTED:email]"),
            (
                &["Bearer abc", "123def456"],
                "Bearer [REDACTED:bearer_token]",
            ),
            (&["", "", "plain", "", " text"], "plain text"),
            (&[], ""),
        ];
        for (chunks, expected) in cases {
            assert_eq!(run(chunks).0, *expected, "{chunks:?}");
        }
    }

    #[test]
    fn emits_early_when_safe() {
        let mut s = Redactor::builtin().stream();
        // A break character (newline) decides everything before it.
        assert_eq!(s.push("hello world\nand"), "hello world\n");
        // A long text without breaks is emitted up to the hold-back.
        let long = "word ".repeat(100);
        let out = s.push(&long);
        assert!(!out.is_empty() && s.pending() <= super::engine().holdback);
        assert_eq!(
            format!("hello world\n{out}{}", s.finish()),
            format!("hello world\nand{long}")
        );
        assert_eq!(s.pending(), 0);
    }

    #[test]
    fn a_growing_token_is_held_back() {
        let mut s = Redactor::builtin().stream();
        let mut out = s.push("key: sk-");
        for _ in 0..100 {
            out.push_str(&s.push("a1b2c3d4e5"));
        }
        assert!(!out.contains("a1b2"), "{out}");
        out.push_str(&s.push(" done"));
        out.push_str(&s.finish());
        assert_eq!(out, "key: [REDACTED:api_key] done");
        assert_eq!(s.rules(), ["api_key"]);
    }
}
