//! Literal gates: one pass over a text for the literals every match of a pattern must
//! contain, so that a pattern whose literals do not occur is never run. A gate only skips
//! searches that cannot match; what the patterns find is unchanged.
//!
//! The literals come from regex-syntax's extraction: every match of a pattern starts with
//! one of its prefix literals and ends with one of its suffix literals (exact or truncated).
//! A pattern is armed when, for each of the two sets that is finite, one of its literals
//! occurs in the text.

use aho_corasick::automaton::Automaton;
use aho_corasick::dfa::DFA;
use aho_corasick::{Anchored, MatchKind};
use regex_syntax::hir::Hir;
use regex_syntax::hir::literal::{ExtractKind, Extractor};

/// The literal sets every match of `hir` needs one of: its prefix literals and its suffix
/// literals, each when it is finite and holds no empty literal (zero, one or two sets).
fn required_literals(hir: &Hir) -> Vec<Vec<Vec<u8>>> {
    [ExtractKind::Prefix, ExtractKind::Suffix]
        .into_iter()
        .filter_map(|kind| {
            let seq = Extractor::new().kind(kind).extract(hir);
            let lits = seq.literals()?;
            (!lits.is_empty() && lits.iter().all(|l| !l.as_bytes().is_empty()))
                .then(|| lits.iter().map(|l| l.as_bytes().to_vec()).collect())
        })
        .collect()
}

/// The characters outside ASCII that a case-insensitive pattern matches for an ASCII
/// letter: regex's simple case folding reads the Kelvin sign as `k` and the long s as `s`.
/// A case-insensitive gate arms every pattern of a text holding one. (The test
/// `only_these_characters_fold_to_ascii_letters` checks the list against the regex crate.)
const FOLDS_TO_ASCII: [char; 2] = ['\u{212A}', '\u{17F}'];

/// A set of bits: patterns of a gate (at most [`Bits::CAPACITY`]), or their literal sets.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub(super) struct Bits([u64; 8]);

impl Bits {
    pub(super) const CAPACITY: usize = 512;
    /// Every pattern: a search without the gate.
    pub(super) const ALL: Bits = Bits([u64::MAX; 8]);

    fn set(&mut self, bit: usize) {
        self.0[bit / 64] |= 1 << (bit % 64);
    }

    pub(super) fn has(&self, bit: usize) -> bool {
        self.0[bit / 64] & (1 << (bit % 64)) != 0
    }

    fn union(&mut self, other: &Bits) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a |= b;
        }
    }

    fn contains(&self, other: &Bits) -> bool {
        self.0.iter().zip(other.0).all(|(a, b)| a & b == b)
    }

    fn is_empty(&self) -> bool {
        self.0 == [0; 8]
    }
}

/// The patterns a gate lets run on one text, by their index in the list it was built from.
pub(super) type Armed = Bits;

/// A literal gate in front of a list of patterns.
#[derive(Debug, Clone)]
pub(super) struct Gate {
    /// One Aho-Corasick automaton of every pattern's literals.
    dfa: DFA,
    /// Per literal of the automaton, the literal sets it belongs to (bit `2 * pattern` for
    /// a pattern's prefixes, `2 * pattern + 1` for its suffixes).
    sets_of: Vec<Bits>,
    /// Per pattern, the literal sets that must each have an occurrence (empty: no
    /// literal is required, the pattern always runs).
    requires: Vec<Bits>,
    case_insensitive: bool,
}

impl Gate {
    /// The gate of `patterns` (at most 255). With `case_insensitive`, the patterns are
    /// compiled case-insensitively by their user: literals are compared ignoring ASCII
    /// case, and a literal set holding a non-ASCII literal (whose case variants are not
    /// all ASCII) is not required. An error (too many patterns, one that does not parse,
    /// an automaton that cannot be built) means no gate: the caller runs every pattern.
    pub(super) fn new<'p>(
        patterns: impl IntoIterator<Item = &'p str>,
        case_insensitive: bool,
    ) -> Result<Self, String> {
        let mut literals: Vec<Vec<u8>> = Vec::new();
        let mut sets_of: Vec<Bits> = Vec::new();
        let mut index: std::collections::HashMap<Vec<u8>, usize> = Default::default();
        let mut requires = Vec::new();
        for (k, p) in patterns.into_iter().enumerate() {
            if 2 * k + 1 >= Bits::CAPACITY {
                return Err(format!("more than {} patterns", Bits::CAPACITY / 2 - 1));
            }
            // Parsed as written: case-insensitivity changes which bytes a literal matches,
            // not where the literals are.
            let hir = regex_syntax::Parser::new()
                .parse(p)
                .map_err(|e| format!("pattern {p}: {e}"))?;
            let mut required = Bits::default();
            for (end, lits) in required_literals(&hir).into_iter().enumerate() {
                if case_insensitive && lits.iter().any(|l| !l.is_ascii()) {
                    continue;
                }
                let bit = 2 * k + end;
                required.set(bit);
                for mut lit in lits {
                    if case_insensitive {
                        lit.make_ascii_lowercase();
                    }
                    let at = *index.entry(lit.clone()).or_insert_with(|| {
                        literals.push(lit);
                        sets_of.push(Bits::default());
                        sets_of.len() - 1
                    });
                    sets_of[at].set(bit);
                }
            }
            requires.push(required);
        }
        // Every occurrence of every literal (an overlapping search) needs standard match
        // semantics: each state of the automaton lists every literal ending there. No
        // prefilter: the literals start with common letters, so a start-byte prefilter
        // would stop at nearly every word.
        let dfa = DFA::builder()
            .match_kind(MatchKind::Standard)
            .ascii_case_insensitive(case_insensitive)
            .prefilter(false)
            .build(&literals)
            .map_err(|e| format!("literal automaton: {e}"))?;
        Ok(Self {
            dfa,
            sets_of,
            requires,
            case_insensitive,
        })
    }

    /// The patterns that may match `text`.
    pub(super) fn armed(&self, text: &str) -> Armed {
        // (One `contains` per character: each is a memchr; a `[char]` pattern is not.)
        if self.case_insensitive
            && !text.is_ascii()
            && FOLDS_TO_ASCII.iter().any(|c| text.contains(*c))
        {
            return Bits::ALL;
        }
        // The automaton stepped byte by byte (the crate's overlapping iterator costs
        // several times more per byte): a state at or below the last special id is the
        // start, dead or a match state, and a match state lists the literals ending there.
        let dfa = &self.dfa;
        let mut seen = Bits::default();
        let Ok(mut sid) = dfa.start_state(Anchored::No) else {
            return Bits::ALL;
        };
        for &b in text.as_bytes() {
            sid = dfa.next_state(Anchored::No, sid, b);
            if dfa.is_special(sid) && dfa.is_match(sid) {
                for i in 0..dfa.match_len(sid) {
                    seen.union(&self.sets_of[dfa.match_pattern(sid, i).as_usize()]);
                }
            }
        }
        let mut armed = Bits::default();
        for (k, required) in self.requires.iter().enumerate() {
            if seen.contains(required) {
                armed.set(k);
            }
        }
        armed
    }

    /// Whether every pattern requires a literal (otherwise some pattern always runs, and
    /// a gate in front of a set of them saves nothing).
    pub(super) fn gates_every_pattern(&self) -> bool {
        self.requires.iter().all(|r| !r.is_empty())
    }

    /// Whether any pattern may match `text`.
    pub(super) fn any_armed(&self, text: &str) -> bool {
        !self.armed(text).is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every character outside ASCII that a case-insensitive regex matches for an ASCII
    /// letter is in [`FOLDS_TO_ASCII`]: otherwise a gate comparing ASCII case only could
    /// skip a set that matches.
    #[test]
    fn only_these_characters_fold_to_ascii_letters() {
        let mut found = Vec::new();
        for letter in b'a'..=b'z' {
            let re = regex::RegexBuilder::new(&format!("^{}$", letter as char))
                .case_insensitive(true)
                .build()
                .unwrap();
            for c in (0x80u32..=0x10FFFF).filter_map(char::from_u32) {
                if re.is_match(c.encode_utf8(&mut [0; 4])) {
                    found.push(c);
                }
            }
        }
        found.sort();
        let mut listed = FOLDS_TO_ASCII.to_vec();
        listed.sort();
        assert_eq!(found, listed);
    }

    #[test]
    fn required_literals_are_the_finite_ends() {
        let parse = |p: &str| regex_syntax::Parser::new().parse(p).unwrap();
        let sets = required_literals(&parse(r"\b(?:a|an) (?:bomb|explosive)s?\b"));
        assert_eq!(sets.len(), 2, "{sets:?}");
        // Only the suffixes are finite.
        assert_eq!(required_literals(&parse(r"\w+ (?:ignore|forget)")).len(), 1);
        // Nothing required at either end.
        assert!(required_literals(&parse(r"\w+ and \w+")).is_empty());
        assert!(required_literals(&parse(r"x?")).is_empty());
    }

    /// A case-insensitive gate arms every pattern of a set that matches the text, also in
    /// other letter cases and with the characters that fold to ASCII letters; and none for
    /// unrelated text or a text holding only one end of a pattern.
    #[test]
    fn case_insensitive_gate_never_skips_a_match() {
        let patterns = [
            r"\b(?:how to|ways to) (?:kill myself|end my life)\b",
            r"\bsuicide methods?\b",
            r"(?-i:CaseSensitive) word",
        ];
        let set = regex::RegexSetBuilder::new(patterns)
            .case_insensitive(true)
            .build()
            .unwrap();
        let gate = Gate::new(patterns, true).unwrap();
        assert!(gate.gates_every_pattern());
        let mut matched = 0;
        for text in [
            "how to end my life",
            "HOW TO KILL MYSELF",
            "Suicide Methods",
            "ſuicide methods",
            "how to \u{212A}ill myself",
            "CaseSensitive WORD",
            "my order is late",
            "",
        ] {
            let armed = gate.armed(text);
            for k in set.matches(text) {
                matched += 1;
                assert!(armed.has(k), "pattern {k} skipped on {text:?}");
            }
        }
        assert_eq!(matched, 6);
        assert!(!gate.any_armed("where is my parcel? it was due on monday"));
        assert!(!gate.any_armed("how to reset my password"), "one end only");
        // A pattern with nothing required always runs.
        assert!(!Gate::new([r"\w+"], true).unwrap().gates_every_pattern());
        // A literal set holding a literal outside ASCII is not required when case is
        // ignored (its case variants are not ASCII): here neither end, so it always runs.
        let gate = Gate::new(["café au lait"], true).unwrap();
        assert!(!gate.gates_every_pattern());
        assert!(gate.any_armed("CAFÉ AU LAIT") && gate.any_armed("tea"));
    }

    #[test]
    fn gate_arms_the_patterns_whose_literals_occur() {
        let gate = Gate::new(
            ["new (?:rules|orders)", r"\bend of (?:the )?prompt", r"\w+"],
            false,
        )
        .unwrap();
        let armed = gate.armed("the end of prompt");
        assert!(!armed.has(0));
        assert!(armed.has(1));
        assert!(armed.has(2), "a pattern without literals always runs");
        // Overlapping occurrences are all seen.
        let gate = Gate::new(["you are", "are now"], false).unwrap();
        let armed = gate.armed("you are now");
        assert!(armed.has(0) && armed.has(1));
        // Too many patterns, or one that does not parse: no gate, and no panic.
        let many: Vec<String> = (0..300).map(|i| format!("word{i}")).collect();
        assert!(Gate::new(many.iter().map(String::as_str), true).is_err());
        assert!(Gate::new(["(unclosed"], true).is_err());
        // Case matters when the patterns are case-sensitive.
        assert!(!gate.any_armed("YOU ARE"));
    }
}
