//! Output redaction of PII and secrets: the built-in patterns, their validators (Luhn,
//! IBAN mod-97, SSN areas) and the match-and-replace engine shared with streaming.
//!
//! Every pattern is compiled once (ASCII mode, so `\b` is an ASCII word boundary and the
//! lazy DFA stays usable on any input) and a [`RegexSet`] over all of them is the hot-path
//! prefilter: a clean text costs one DFA pass and no allocation.
//!
//! From the patterns' syntax trees the engine also derives what streaming needs: how many
//! bytes of look-ahead decide a match (the hold-back) and which characters no pattern can
//! ever match (a "break" ends every possible match, so text before it can be emitted).

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;
use std::sync::LazyLock;

use regex::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};
use regex_syntax::hir::{Class, Hir, HirKind};

/// A redaction rule. [`Rule::as_str`] is the metric label and the replacement tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rule {
    Email,
    Phone,
    CardNumber,
    NationalId,
    Iban,
    ApiKey,
    BearerToken,
    Jwt,
    PrivateKey,
}

impl Rule {
    pub const ALL: [Rule; 9] = [
        Rule::Email,
        Rule::Phone,
        Rule::CardNumber,
        Rule::NationalId,
        Rule::Iban,
        Rule::ApiKey,
        Rule::BearerToken,
        Rule::Jwt,
        Rule::PrivateKey,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Rule::Email => "email",
            Rule::Phone => "phone",
            Rule::CardNumber => "card_number",
            Rule::NationalId => "national_id",
            Rule::Iban => "iban",
            Rule::ApiKey => "api_key",
            Rule::BearerToken => "bearer_token",
            Rule::Jwt => "jwt",
            Rule::PrivateKey => "private_key",
        }
    }

    fn bit(self) -> u16 {
        1 << self as u16
    }

    fn replacement(self) -> &'static str {
        match self {
            Rule::Email => "[REDACTED:email]",
            Rule::Phone => "[REDACTED:phone]",
            Rule::CardNumber => "[REDACTED:card_number]",
            Rule::NationalId => "[REDACTED:national_id]",
            Rule::Iban => "[REDACTED:iban]",
            Rule::ApiKey => "[REDACTED:api_key]",
            Rule::BearerToken => "[REDACTED:bearer_token]",
            Rule::Jwt => "[REDACTED:jwt]",
            Rule::PrivateKey => "[REDACTED:private_key]",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of rules, as a bit mask over [`Rule`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct RuleSet(u16);

impl RuleSet {
    pub(super) fn contains(self, rule: Rule) -> bool {
        self.0 & rule.bit() != 0
    }

    pub(super) fn insert(&mut self, rule: Rule) {
        self.0 |= rule.bit();
    }

    pub(super) fn union(&mut self, other: RuleSet) {
        self.0 |= other.0;
    }

    pub(super) fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The labels of the rules in the set, in [`Rule::ALL`] order.
    pub(super) fn labels(self) -> Vec<&'static str> {
        Rule::ALL
            .into_iter()
            .filter(|r| self.contains(*r))
            .map(Rule::as_str)
            .collect()
    }
}

impl FromIterator<Rule> for RuleSet {
    fn from_iter<I: IntoIterator<Item = Rule>>(iter: I) -> Self {
        let mut set = RuleSet::default();
        for rule in iter {
            set.insert(rule);
        }
        set
    }
}

/// Redacts PII and secrets. Cheap to clone (shared compiled patterns).
#[derive(Clone, PartialEq, Eq)]
pub struct Redactor {
    pub(super) enabled: RuleSet,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redactor")
            .field("rules", &self.enabled.labels())
            .finish()
    }
}

/// The result of redacting one text: the text and the rules that fired (metric labels).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redacted<'a> {
    pub text: Cow<'a, str>,
    pub rules: Vec<&'static str>,
}

impl Redactor {
    /// The built-in patterns (also used by the log writer before any policy is loaded).
    pub fn builtin() -> Self {
        Self::with_rules(Rule::ALL)
    }

    /// Only the given rules (a policy can switch rules off).
    pub fn with_rules(rules: impl IntoIterator<Item = Rule>) -> Self {
        Self {
            enabled: rules.into_iter().collect(),
        }
    }

    /// The rules this redactor applies.
    pub fn rules(&self) -> impl Iterator<Item = Rule> + '_ {
        Rule::ALL.into_iter().filter(|r| self.enabled.contains(*r))
    }

    pub fn redact<'a>(&self, text: &'a str) -> Redacted<'a> {
        let (text, fired) = self.redact_text(text);
        Redacted {
            text,
            rules: fired.labels(),
        }
    }

    fn redact_text<'a>(&self, text: &'a str) -> (Cow<'a, str>, RuleSet) {
        let mut candidates = Vec::new();
        scan(self.enabled, text, 0, &mut candidates);
        let mut regions = Vec::new();
        let fired = regions_before(&candidates, text.len(), &mut regions);
        if regions.is_empty() {
            return (Cow::Borrowed(text), fired);
        }
        let mut out = String::with_capacity(text.len());
        assemble(text, 0, text.len(), &regions, &mut out);
        (Cow::Owned(out), fired)
    }

    /// Redacts every string inside a JSON value, in place; returns the rules that fired.
    pub fn redact_json(&self, v: &mut serde_json::Value) -> Vec<&'static str> {
        let mut fired = RuleSet::default();
        self.redact_value(v, &mut fired);
        fired.labels()
    }

    fn redact_value(&self, v: &mut serde_json::Value, fired: &mut RuleSet) {
        use serde_json::Value;
        match v {
            Value::String(s) => {
                let (text, rules) = self.redact_text(s);
                if let Cow::Owned(text) = text {
                    fired.union(rules);
                    *s = text;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|i| self.redact_value(i, fired)),
            Value::Object(map) => map.values_mut().for_each(|i| self.redact_value(i, fired)),
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }
}

// ---------------------------------------------------------------------------------------
// Patterns

/// Pushes the byte ranges of `text` (a match, or its `secret` group) to redact, if any.
type Validator = fn(text: &str, out: &mut Vec<Range<usize>>);

/// `(rule, pattern, validator)`. A pattern with a `secret` group redacts only (parts of)
/// that group; otherwise (parts of) the whole match. Patterns are compiled in ASCII mode.
/// Each must be bounded, or a bounded head followed by one greedy open-ended run: that is
/// what lets streaming decide a match with a fixed look-ahead (checked when compiling).
const PATTERNS: &[(Rule, &str, Validator)] = &[
    (
        Rule::Email,
        r"[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,62}[A-Za-z0-9])?\.[A-Za-z]{2,18}\b",
        always,
    ),
    // International: +CC or 00CC, a "(0)" trunk prefix allowed, 8-15 digits in all (E.164),
    // and an extension.
    (
        Rule::Phone,
        r"(?:\+|\b00)[1-9][0-9]{0,2}(?:[ .-]?\(?[0-9]{1,5}\)?){0,5}[ .-]?[0-9]{1,5}(?:\b| ?(?:x|ext\.?) ?[0-9]{1,6}\b)",
        e164_prefix,
    ),
    // NANP: (415) 555-0132, 415-555-0132, 1 415 555 0132, 4155550132, with an extension.
    (
        Rule::Phone,
        r"(?:\b1[ .-]?)?(?:\([2-9][0-9]{2}\)[ .-]?|\b[2-9][0-9]{2}[ .-]?)[2-9][0-9]{2}[ .-]?[0-9]{4}(?:\b| ?(?:x|ext\.?) ?[0-9]{1,6}\b)",
        always,
    ),
    // National format with a trunk 0: 0114 496 0104, 02 49 28 10 33, (0161) 4960066,
    // 08-170 669 07. A bare "00" is the international prefix (the pattern above), never a
    // trunk; in parentheses it is still an area code as written.
    (
        Rule::Phone,
        r"(?:\(0[0-9]{1,5}\)|\b0[1-9][0-9]{0,4})(?:[ .\-/]{0,2}[0-9]{2,8}){1,5}\b",
        national_trunk,
    ),
    // An area code in parentheses: (43) 7860-2733, (235) 337-4068.
    (
        Rule::Phone,
        r"\([1-9][0-9]{1,4}\)[ .-]?[0-9]{2,5}(?:[ .-]?[0-9]{2,5}){0,3}(?:\b| ?(?:x|ext\.?) ?[0-9]{1,6}\b)",
        digits_8_to_13,
    ),
    // Grouped digits without a trunk 0 (609 141 777, 342 083 7783): a valid number of one
    // of the common regions (libphonenumber's metadata). Groups that continue a code with
    // letters ("GB82 WEST 1234 5698 7654", an account reference) are not a phone number.
    (
        Rule::Phone,
        r"(?:\b[A-Z0-9]{4} )?\b[1-9][0-9]{1,3}(?: [0-9]{2,4}){2,4}\b",
        valid_in_a_region,
    ),
    // Mobile numbers written without a trunk or separators: India (10 digits from 6-9),
    // Italy (3 and 8-9 digits), Spain (6 or 7 and 8 digits); as 5+5 digits (India). Not
    // after a reference word ("order 9876543210") nor inside a longer run of digit groups.
    (
        Rule::Phone,
        r"(?i)(?:(?:order|invoice|ticket|case|tracking|ref|reference|account|acct|no|nr|number|po|sku|item|#)[ .:#-]{0,3}|\b[0-9]{1,5} )?\b(?:[6-9][0-9]{9}|[6-9][0-9]{4} [0-9]{5}|3[0-9]{8,9}|[67][0-9]{8})\b",
        bare_mobile,
    ),
    // Brazil: a two-digit area code (no 0) and 4+4 or 9+4+4 digits with a dash or space:
    // "21 3768-1407", "11 98765-4321".
    (
        Rule::Phone,
        r"\b[1-9][1-9] (?:9 ?)?[0-9]{4}[ -][0-9]{4}\b",
        always,
    ),
    // A number right after a phone word: "mobile: 3420837783", "tel 35098683498".
    (
        Rule::Phone,
        r#"(?i)\b(?:phone|tel|telephone|mobile|mob|cell|cellphone|call|ring|whatsapp|fax|handy|telefon|telefono|telefone|portable|movil|gsm)\b[ \t:#=.'"-]{0,4}(?:(?:is|on|at|number|no|nr)[ \t:#.]{1,3}){0,2}(?P<secret>\+?[0-9][0-9 .()/-]{6,18}[0-9])"#,
        digits_8_to_15,
    ),
    // A whole run of digit groups; the validator finds the card numbers in it.
    (
        Rule::CardNumber,
        r"\b[0-9](?:[ -]?[0-9]){12,}",
        card_numbers,
    ),
    // Maestro also issues 12-digit numbers (IIN 50, 56-69; Luhn), as 4-4-4 or bare; not
    // after a reference word ("tracking 5018...") unless the word is "card", nor inside a
    // longer run of digit groups.
    (
        Rule::CardNumber,
        r"(?i)(?:\b(?:card|order|invoice|ticket|case|tracking|ref|reference|account|acct|no|nr|number|po|sku|item)\b[ .:#-]{0,3}(?:(?:number|no|nr)[ .:#-]{0,3})?|# ?|\b[0-9]{1,4}[ -])?\b(?:50|5[6-9]|6[0-9])[0-9]{2}[ -]?[0-9]{4}[ -]?[0-9]{4}\b",
        maestro_12,
    ),
    // US SSN with dashes, spaces or dots.
    (
        Rule::NationalId,
        r"\b[0-9]{3}([- .])[0-9]{2}[- .][0-9]{4}\b",
        ssn,
    ),
    // An identity number right after its name (any separators, or none): SSN, BSN, SIN,
    // PESEL, Aadhaar, personal numbers...
    (
        Rule::NationalId,
        r#"(?i)\b(?:ssn|ss#|social security|social insurance|sin|itin|tin|tax id|taxpayer id|bsn|burgerservicenummer|sofinummer|pesel|aadhaar|aadhar|uid|personnummer|national id|national identity|id number|identity number|id no|personal number|insurance number|nir|cpf|nif|dni|nie|codice fiscale)\b[ \t:#=.'"-]{0,4}(?:(?:is|number|no|nr|num)[ \t:#.]{1,3}){0,2}(?P<secret>[0-9][0-9 .-]{7,16}[0-9A-Za-z])\b"#,
        id_after_name,
    ),
    // A bare 9- or 12-digit number standing alone (not after "order", "invoice", "#",
    // ...): an SSN with no separators (area rules), a BSN (11-check) or an Aadhaar
    // (Verhoeff).
    (
        Rule::NationalId,
        r"(?i)(?:(?:order|invoice|ticket|case|tracking|ref|reference|account|acct|no|nr|number|po|sku|item|#)[ .:#-]{0,3})?\b(?:[0-9]{9}|[2-9][0-9]{11})\b",
        bare_id,
    ),
    // UK National Insurance number (ZZ, the prefix Faker and test systems use, with any
    // final letter).
    (
        Rule::NationalId,
        r"\b[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?[0-9]{2} ?[0-9]{2} ?[0-9]{2} ?[A-Z]\b",
        nino,
    ),
    // Brazilian CPF (two check digits).
    (
        Rule::NationalId,
        r"\b[0-9]{3}\.?[0-9]{3}\.?[0-9]{3}-?[0-9]{2}\b",
        cpf,
    ),
    // Aadhaar in its printed 4-4-4 grouping (the grouping says what it is; the check digit is
    // not needed), unless another group comes before or after it (a card number's digits).
    (
        Rule::NationalId,
        r"(?:\b[0-9]{1,4} )?\b[2-9][0-9]{3} [0-9]{4} [0-9]{4}(?: [0-9]{1,4})?\b",
        aadhaar_grouped,
    ),
    // Spanish DNI and NIE (check letter).
    (
        Rule::NationalId,
        r"\b(?:[0-9]{8}|[XYZ]-?[0-9]{7})-?[A-Z]\b",
        dni_nie,
    ),
    // Italian codice fiscale (check character; digits may be replaced by letters).
    (
        Rule::NationalId,
        r"(?i)\b[A-Z]{6}[0-9LMNPQRSTUV]{2}[ABCDEHLMPRST][0-9LMNPQRSTUV]{2}[A-Z][0-9LMNPQRSTUV]{3}[A-Z]\b",
        codice_fiscale,
    ),
    // French NIR (social security number, 2-digit key).
    (
        Rule::NationalId,
        r"\b[1-478] ?[0-9]{2} ?[0-9]{2} ?(?:[0-9]{2}|2[AB]) ?[0-9]{3} ?[0-9]{3} ?[0-9]{2}\b",
        nir,
    ),
    // Dutch BSN in its dotted form (11-check); bare BSNs need their name before them.
    (
        Rule::NationalId,
        r"\b[0-9]{4}\.[0-9]{2}\.[0-9]{3}\b",
        bsn_dotted,
    ),
    // Swedish personnummer (Luhn).
    (
        Rule::NationalId,
        r"\b(?:19|20)?[0-9]{6}[-+][0-9]{4}\b",
        personnummer,
    ),
    (
        Rule::Iban,
        r"\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b",
        iban,
    ),
    // A token after "Bearer" (an Authorization header) is labelled a bearer token even when
    // it is a JWT: this pattern comes before the JWT one, and the earlier pattern names a
    // region both cover.
    (
        Rule::BearerToken,
        r"(?i)\bbearer {1,3}(?P<secret>[A-Za-z0-9._~+/=-]{8,})",
        token_like,
    ),
    // JSON Web Tokens anywhere (header.payload.signature, base64url; JWE has five parts).
    (Rule::Jwt, r"\beyJ[A-Za-z0-9_.=-]{17,}", jwt),
    // OpenAI / Anthropic style: sk-…, sk-proj-…, sk-ant-…, sk-svcacct-….
    (Rule::ApiKey, r"\bsk-[A-Za-z0-9_-]{20,}", random_key),
    // Stripe secret, restricted and webhook keys.
    (
        Rule::ApiKey,
        r"\b[rs]k_(?:live|test)_[A-Za-z0-9]{16,}",
        always,
    ),
    (Rule::ApiKey, r"\bwhsec_[A-Za-z0-9]{24,}", always),
    // AWS access key ids (all the credential prefixes).
    (
        Rule::ApiKey,
        r"\b(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|APKA)[0-9A-Z]{16}\b",
        always,
    ),
    // GitHub tokens.
    (Rule::ApiKey, r"\bgh[pousr]_[A-Za-z0-9]{36,}", always),
    (Rule::ApiKey, r"\bgithub_pat_[A-Za-z0-9_]{22,}", always),
    // GitLab tokens.
    (
        Rule::ApiKey,
        r"\b(?:glpat|glptt|gldt|glrt|glcbt|gloas|glsoat|glft|glimt|glagent)-[A-Za-z0-9_-]{20,}",
        always,
    ),
    // Slack tokens and webhooks.
    (Rule::ApiKey, r"\bxox[abprse]-[A-Za-z0-9-]{10,}", has_digit),
    (Rule::ApiKey, r"\bxapp-[0-9]-[A-Za-z0-9-]{10,}", always),
    (
        Rule::ApiKey,
        r"hooks\.slack\.com/(?:services|workflows)/(?P<secret>[A-Za-z0-9/_-]{20,})",
        always,
    ),
    // Google: API keys, OAuth client secrets and access tokens.
    (Rule::ApiKey, r"\bAIza[0-9A-Za-z_-]{35}", always),
    (Rule::ApiKey, r"\bGOCSPX-[A-Za-z0-9_-]{20,}", always),
    (Rule::ApiKey, r"\bya29\.[0-9A-Za-z_-]{20,}", always),
    // Azure: storage account keys and SAS signatures in connection strings and URLs, and
    // Entra ID client secrets.
    (
        Rule::ApiKey,
        r"(?i)(?:accountkey|sharedaccesskey)=(?P<secret>[A-Za-z0-9+/=]{20,})",
        always,
    ),
    (
        Rule::ApiKey,
        r"[?&]sig=(?P<secret>[A-Za-z0-9%+/=]{20,})",
        always,
    ),
    (
        Rule::ApiKey,
        r"\b[A-Za-z0-9_~.-]{3}[0-9]Q~[A-Za-z0-9_~.-]{31,34}",
        always,
    ),
    // Other common providers: SendGrid, npm, PyPI, Hugging Face, Twilio, DigitalOcean,
    // Shopify, Atlassian, Mailgun, Databricks.
    (
        Rule::ApiKey,
        r"\bSG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}",
        always,
    ),
    (Rule::ApiKey, r"\bnpm_[A-Za-z0-9]{36}", always),
    (Rule::ApiKey, r"\bpypi-[A-Za-z0-9_-]{50,}", always),
    (Rule::ApiKey, r"\bhf_[A-Za-z0-9]{30,}", always),
    (Rule::ApiKey, r"\bSK[0-9a-f]{32}\b", always),
    (Rule::ApiKey, r"\bdo[opr]_v1_[a-f0-9]{64}", always),
    (
        Rule::ApiKey,
        r"\bshp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}",
        always,
    ),
    (Rule::ApiKey, r"\bATATT3[A-Za-z0-9_=-]{40,}", always),
    (Rule::ApiKey, r"\b(?:key-|dapi)[0-9a-f]{32}\b", always),
    // Generic assignments: api_key=…, "token": "…", client_secret: …,
    // aws_secret_access_key = ….
    (
        Rule::ApiKey,
        r#"(?i)\b(?:[a-z0-9]{1,12}[_-]){0,3}(?:api[_-]?key|access[_-]?key|secret[_-]?key|private[_-]?key|client[_-]?secret|(?:access|auth|refresh|api|session)[_-]?token|token|secret|apikey|passphrase)["']? {0,3}[:=] {0,3}["']?(?P<secret>[A-Za-z0-9._~+/=-]{8,})"#,
        token_like,
    ),
    (
        Rule::ApiKey,
        r#"(?i)\b(?:password|passwd|pwd)["']? {0,3}[:=] {0,3}["']?(?P<secret>[A-Za-z0-9!#$%&*+./=?@^_~-]{4,})"#,
        always,
    ),
    // HTTP Basic credentials (user:password in base64).
    (
        Rule::ApiKey,
        r#"(?i)\bauthorization["']? {0,3}[:=] {0,3}["']?basic {1,3}(?P<secret>[A-Za-z0-9+/=]{4,})"#,
        always,
    ),
];

struct Pattern {
    rule: Rule,
    regex: Regex,
    secret_group: Option<usize>,
    validate: Validator,
}

/// The compiled patterns and what streaming derives from them.
pub(super) struct Engine {
    patterns: Vec<Pattern>,
    set: RegexSet,
    /// Bytes of look-ahead that decide any match (see [`decision_len`]).
    pub(super) holdback: usize,
    /// ASCII characters that no pattern can match.
    ascii_breaks: [bool; 128],
    /// Whether no pattern can match any non-ASCII character.
    non_ascii_breaks: bool,
}

impl Engine {
    /// Whether no match can contain `c` (so none can span it).
    pub(super) fn is_break(&self, c: char) -> bool {
        match usize::try_from(u32::from(c)) {
            Ok(i) if i < 128 => self.ascii_breaks[i],
            _ => self.non_ascii_breaks,
        }
    }
}

pub(super) fn engine() -> &'static Engine {
    // The patterns are constants that every test compiles, so this cannot fail at run time.
    static ENGINE: LazyLock<Engine> = LazyLock::new(|| {
        compile(PATTERNS).unwrap_or_else(|e| panic!("built-in redaction pattern: {e}"))
    });
    &ENGINE
}

fn compile(table: &[(Rule, &str, Validator)]) -> Result<Engine, String> {
    let mut patterns = Vec::with_capacity(table.len());
    let mut holdback = 0;
    let mut matchable = [false; 128];
    let mut non_ascii = false;
    for &(rule, src, validate) in table {
        let regex = RegexBuilder::new(src)
            .unicode(false)
            .build()
            .map_err(|e| format!("{src}: {e}"))?;
        let hir = regex_syntax::ParserBuilder::new()
            .unicode(false)
            .utf8(true)
            .build()
            .parse(src)
            .map_err(|e| format!("{src}: {e}"))?;
        if hir.properties().minimum_len().unwrap_or(0) == 0 {
            return Err(format!("{src}: can match the empty string"));
        }
        let decide = decision_len(&hir)
            .ok_or_else(|| format!("{src}: not bounded nor a bounded head and one open run"))?;
        holdback = holdback.max(decide);
        mark_matchable(&hir, &mut matchable, &mut non_ascii);
        let secret_group = regex.capture_names().position(|n| n == Some("secret"));
        patterns.push(Pattern {
            rule,
            regex,
            secret_group,
            validate,
        });
    }
    let set = RegexSetBuilder::new(table.iter().map(|p| p.1))
        .unicode(false)
        .build()
        .map_err(|e| e.to_string())?;
    Ok(Engine {
        patterns,
        set,
        holdback,
        ascii_breaks: matchable.map(|m| !m),
        non_ascii_breaks: !non_ascii,
    })
}

/// How many bytes of text, from a match's start, decide the leftmost-first match there.
/// For a bounded pattern that is its maximum length. For `head run{min,}` (a bounded head
/// and one greedy open-ended run last) it is the head's maximum plus `min` runs: once that
/// much text is there the pattern has matched, and a longer match only extends the run up
/// to the end of the text, where streaming treats it as still open.
fn decision_len(hir: &Hir) -> Option<usize> {
    if let Some(n) = hir.properties().maximum_len() {
        return Some(n);
    }
    match hir.kind() {
        HirKind::Capture(c) => decision_len(&c.sub),
        HirKind::Concat(parts) => {
            let (last, head) = parts.split_last()?;
            let head_max = head
                .iter()
                .map(|h| h.properties().maximum_len())
                .sum::<Option<usize>>()?;
            Some(head_max + open_run_min(last)?)
        }
        _ => open_run_min(hir),
    }
}

fn open_run_min(hir: &Hir) -> Option<usize> {
    match hir.kind() {
        HirKind::Capture(c) => open_run_min(&c.sub),
        HirKind::Repetition(r) if r.max.is_none() && r.greedy => {
            let unit = r.sub.properties().maximum_len()?;
            usize::try_from(r.min).ok().map(|m| m * unit)
        }
        _ => None,
    }
}

fn mark_matchable(hir: &Hir, ascii: &mut [bool; 128], non_ascii: &mut bool) {
    let mut mark = |lo: u32, hi: u32| {
        for c in lo..=hi.min(127) {
            ascii[c as usize] = true;
        }
        if hi > 127 {
            *non_ascii = true;
        }
    };
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => {}
        HirKind::Literal(lit) => lit.0.iter().for_each(|&b| mark(b.into(), b.into())),
        HirKind::Class(Class::Unicode(cls)) => cls
            .iter()
            .for_each(|r| mark(r.start().into(), r.end().into())),
        HirKind::Class(Class::Bytes(cls)) => cls
            .iter()
            .for_each(|r| mark(r.start().into(), r.end().into())),
        HirKind::Repetition(r) => mark_matchable(&r.sub, ascii, non_ascii),
        HirKind::Capture(c) => mark_matchable(&c.sub, ascii, non_ascii),
        HirKind::Concat(hs) | HirKind::Alternation(hs) => {
            hs.iter().for_each(|h| mark_matchable(h, ascii, non_ascii))
        }
    }
}

// ---------------------------------------------------------------------------------------
// Matching

/// One match of one pattern, valid or not. Streaming never cuts inside a candidate, valid
/// or not, so that it resumes scanning exactly where a whole-text scan would.
#[derive(Debug, Clone)]
pub(super) struct Candidate {
    pub(super) start: usize,
    pub(super) end: usize,
    /// The spans to replace (within the `secret` group, or the whole match); none if the
    /// validator rejected the match.
    secrets: Vec<Range<usize>>,
    rule: Rule,
    pattern: usize,
}

/// A span to replace, the union of overlapping valid candidates.
#[derive(Debug, Clone)]
pub(super) struct Region {
    start: usize,
    end: usize,
    rule: Rule,
}

/// Appends the candidates of the enabled rules that start at or after `from`; the text
/// before `from` is context only (for `\b`).
pub(super) fn scan(enabled: RuleSet, hay: &str, from: usize, out: &mut Vec<Candidate>) {
    let engine = engine();
    if enabled.contains(Rule::PrivateKey) {
        private_key_blocks(hay, from, engine.patterns.len(), out);
    }
    // Most texts match nothing: `is_match_at` answers that without allocating the set of
    // matching patterns and stops early; only a text that matches pays for `matches_at`.
    if !engine.set.is_match_at(hay, from) {
        return;
    }
    let first = out.len();
    scan_patterns(enabled, hay, from, out);
    // Request ids and other UUIDs are never redacted, even where a digit group inside one
    // passes a checksum.
    if hay.len() >= 36 && hay.as_bytes().contains(&b'-') {
        let uuids: Vec<Range<usize>> = UUID
            .find_iter(&hay[from..])
            .map(|m| from + m.start()..from + m.end())
            .collect();
        if !uuids.is_empty() {
            for c in &mut out[first..] {
                c.secrets
                    .retain(|s| !uuids.iter().any(|u| s.start < u.end && u.start < s.end));
            }
        }
    }
}

static UUID: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b")
        .unwrap_or_else(|e| panic!("uuid pattern: {e}"))
});

/// The marker that opens a PEM block; a private key's header names a PRIVATE KEY.
pub(super) const PEM_BEGIN: &str = "-----BEGIN ";

/// Private key blocks: from `-----BEGIN … PRIVATE KEY-----` to the end of the matching
/// `-----END …-----` line, or to the end of the text when it has not come yet (streaming
/// holds an open block back until its end line arrives, see `stream`).
fn private_key_blocks(hay: &str, from: usize, pattern: usize, out: &mut Vec<Candidate>) {
    // One searcher for every call (`str::find` builds one per call: most of this function's
    // cost on the many short texts a run redacts).
    static BEGIN: LazyLock<memchr::memmem::Finder<'static>> =
        LazyLock::new(|| memchr::memmem::Finder::new(PEM_BEGIN));
    let mut pos = from;
    while let Some(i) = BEGIN.find(&hay.as_bytes()[pos..]) {
        let start = pos + i;
        let after = start + PEM_BEGIN.len();
        let Some(close) = hay[after..].find("-----") else {
            break;
        };
        let label = &hay[after..after + close];
        if close > 60 || !label.ends_with("PRIVATE KEY") && !label.ends_with("PRIVATE KEY BLOCK") {
            pos = after;
            continue;
        }
        let body = after + close + 5;
        let end = match hay[body..].find("-----END ") {
            Some(e) => {
                let end_line = body + e + "-----END ".len();
                match hay[end_line..].find("-----") {
                    Some(c) if c <= 60 => end_line + c + 5,
                    _ => hay.len(),
                }
            }
            None => hay.len(),
        };
        out.push(Candidate {
            start,
            end,
            secrets: std::iter::once(start..end).collect(),
            rule: Rule::PrivateKey,
            pattern,
        });
        pos = end;
    }
}

fn scan_patterns(enabled: RuleSet, hay: &str, from: usize, out: &mut Vec<Candidate>) {
    let engine = engine();
    let hits = engine.set.matches_at(hay, from);
    if !hits.matched_any() {
        return;
    }
    for idx in hits.iter() {
        let p = &engine.patterns[idx];
        if !enabled.contains(p.rule) {
            continue;
        }
        let mut pos = from;
        while pos < hay.len() {
            let found = match p.secret_group {
                Some(group) => p.regex.captures_at(hay, pos).and_then(|caps| {
                    let whole = caps.get(0)?;
                    let secret = caps.get(group).unwrap_or(whole);
                    Some((whole.range(), secret.range()))
                }),
                None => p.regex.find_at(hay, pos).map(|m| (m.range(), m.range())),
            };
            let Some((whole, secret)) = found else { break };
            if whole.is_empty() {
                break;
            }
            let mut secrets = Vec::new();
            (p.validate)(&hay[secret.clone()], &mut secrets);
            for r in &mut secrets {
                *r = secret.start + r.start..secret.start + r.end;
            }
            out.push(Candidate {
                start: whole.start,
                end: whole.end,
                secrets,
                rule: p.rule,
                pattern: idx,
            });
            pos = whole.end;
        }
    }
}

/// Fills `out` with the regions of valid candidates that end by `upto`, merged where they
/// overlap and labelled with the first (leftmost, then longest, then earliest pattern);
/// returns every rule that contributed.
pub(super) fn regions_before(
    candidates: &[Candidate],
    upto: usize,
    out: &mut Vec<Region>,
) -> RuleSet {
    let mut spans: Vec<(&Range<usize>, &Candidate)> = candidates
        .iter()
        .filter(|c| c.end <= upto)
        .flat_map(|c| c.secrets.iter().map(move |s| (s, c)))
        .collect();
    spans.sort_by_key(|(s, c)| (s.start, std::cmp::Reverse(s.end), c.pattern));
    let mut fired = RuleSet::default();
    for (span, c) in spans {
        fired.insert(c.rule);
        match out.last_mut() {
            Some(last) if span.start < last.end => last.end = last.end.max(span.end),
            _ => out.push(Region {
                start: span.start,
                end: span.end,
                rule: c.rule,
            }),
        }
    }
    fired
}

/// Appends `hay[from..to]` with `regions` (sorted, within the range) replaced.
pub(super) fn assemble(hay: &str, from: usize, to: usize, regions: &[Region], out: &mut String) {
    let mut pos = from;
    for r in regions {
        out.push_str(&hay[pos..r.start]);
        out.push_str(r.rule.replacement());
        pos = r.end;
    }
    out.push_str(&hay[pos..to]);
}

// ---------------------------------------------------------------------------------------
// Validators

fn always(text: &str, out: &mut Vec<Range<usize>>) {
    out.push(0..text.len());
}

fn whole_if(ok: bool, text: &str, out: &mut Vec<Range<usize>>) {
    if ok {
        out.push(0..text.len());
    }
}

fn has_digit(text: &str, out: &mut Vec<Range<usize>>) {
    whole_if(text.bytes().any(|b| b.is_ascii_digit()), text, out);
}

/// A key body that looks generated, not hyphenated prose (`sk-learn-and-numpy`): it has a
/// digit, or a run of at least 20 letters and digits.
fn random_key(text: &str, out: &mut Vec<Range<usize>>) {
    let digit = text.bytes().any(|b| b.is_ascii_digit());
    let long_run = text.split(['-', '_']).any(|segment| segment.len() >= 20);
    whole_if(digit || long_run, text, out);
}

/// A value that looks generated: letters and digits, or long enough to be a token anyway.
fn token_like(text: &str, out: &mut Vec<Range<usize>>) {
    let digit = text.bytes().any(|b| b.is_ascii_digit());
    let alpha = text.bytes().any(|b| b.is_ascii_alphabetic());
    whole_if(text.len() >= 24 || (digit && alpha), text, out);
}

/// The byte ranges of the runs of ASCII digits in `text`.
fn digit_groups(text: &str) -> Vec<Range<usize>> {
    let mut groups = Vec::new();
    let mut start = None;
    for (i, b) in text.bytes().enumerate() {
        match (b.is_ascii_digit(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                groups.push(s..i);
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        groups.push(s..text.len());
    }
    groups
}

/// International numbers: the longest prefix of digit groups with 8-15 digits (E.164),
/// so trailing digits that are not part of the number (a year, a count) stay.
fn e164_prefix(text: &str, out: &mut Vec<Range<usize>>) {
    let mut digits = 0;
    let mut best = None;
    for g in digit_groups(text) {
        digits += g.len();
        if (8..=15).contains(&digits) {
            best = Some(g.end);
        }
    }
    if let Some(end) = best {
        out.push(0..end);
    }
}

/// Card numbers inside a run of digit groups: from each group, the longest run of groups
/// with 13-19 digits that passes the Luhn check. Groups other than the last have at least
/// 4 digits (4-4-4-4, 4-6-5, 4-4-4-4-3 or none), which keeps dates and phone numbers out.
fn card_numbers(text: &str, out: &mut Vec<Range<usize>>) {
    let groups = digit_groups(text);
    let mut i = 0;
    while i < groups.len() {
        let mut found = None;
        let mut digits = 0;
        for (j, g) in groups.iter().enumerate().skip(i) {
            digits += g.len();
            if digits > 19 {
                break;
            }
            if digits >= 13 && luhn(&text[groups[i].start..g.end]) {
                found = Some(j);
            }
            if g.len() < 4 {
                break;
            }
        }
        match found {
            Some(j) => {
                out.push(groups[i].start..groups[j].end);
                i = j + 1;
            }
            None => i += 1,
        }
    }
}

fn digits(s: &str) -> impl DoubleEndedIterator<Item = u32> + '_ {
    s.bytes()
        .filter(u8::is_ascii_digit)
        .map(|b| u32::from(b - b'0'))
}

fn luhn(s: &str) -> bool {
    let mut count = 0;
    let mut sum = 0;
    for (i, d) in digits(s).rev().enumerate() {
        count += 1;
        sum += if i % 2 == 1 {
            let twice = d * 2;
            if twice > 9 { twice - 9 } else { twice }
        } else {
            d
        };
    }
    (13..=19).contains(&count) && sum % 10 == 0
}

/// US SSN: area not 000, 666 or 9xx; group not 00; serial not 0000; one separator style.
fn ssn(text: &str, out: &mut Vec<Range<usize>>) {
    let b = text.as_bytes();
    if b.len() != 11 || b[6] != b[3] {
        return;
    }
    let sep = b[3] as char;
    let mut parts = text.split(sep);
    let ok = match (parts.next(), parts.next(), parts.next()) {
        (Some(area), Some(group), Some(serial)) => {
            area != "000"
                && area != "666"
                && !area.starts_with('9')
                && group != "00"
                && serial != "0000"
        }
        _ => false,
    };
    whole_if(ok, text, out);
}

/// UK NINO: the prefixes never issued are excluded (the letter classes do the rest); the
/// final letter is A-D, except after ZZ (reserved for test and temporary numbers).
fn nino(text: &str, out: &mut Vec<Range<usize>>) {
    let prefix = text.get(..2);
    let last = text.as_bytes()[text.len() - 1];
    let ok = !matches!(prefix, Some("BG" | "GB" | "KN" | "NK" | "NT" | "TN"))
        && (prefix == Some("ZZ") || (b'A'..=b'D').contains(&last));
    whole_if(ok, text, out);
}

fn digit_vec(text: &str) -> Vec<u32> {
    digits(text).collect()
}

fn digit_count(text: &str) -> usize {
    text.bytes().filter(u8::is_ascii_digit).count()
}

fn digits_8_to_13(text: &str, out: &mut Vec<Range<usize>>) {
    whole_if((8..=13).contains(&digit_count(text)), text, out);
}

fn digits_8_to_15(text: &str, out: &mut Vec<Range<usize>>) {
    whole_if((8..=15).contains(&digit_count(text)), text, out);
}

/// A national number with a trunk 0: 9-12 digits, and not a date (01.02.2024 ...).
fn national_trunk(text: &str, out: &mut Vec<Range<usize>>) {
    let groups = digit_groups(text);
    let value = |g: &Range<usize>| text[g.clone()].parse::<u32>().unwrap_or(99);
    // A date: day and month (either order) and a year, one separator that is not a space
    // ("02 49 28 10 33" is a French number, "01.02.2024" a date).
    let date = groups.len() >= 3
        && groups[0].len() <= 2
        && groups[1].len() <= 2
        && matches!(groups[2].len(), 2 | 4)
        && {
            let (a, b) = (value(&groups[0]), value(&groups[1]));
            (1..=31).contains(&a) && (1..=12).contains(&b)
                || (1..=12).contains(&a) && (1..=31).contains(&b)
        }
        && {
            let sep = &text[groups[0].end..groups[1].start];
            matches!(sep, "." | "/" | "-") && sep == &text[groups[1].end..groups[2].start]
        };
    whole_if((9..=12).contains(&digit_count(text)) && !date, text, out);
}

/// The regions whose national formats count (libphonenumber metadata).
const PHONE_REGIONS: &[phonenumber::country::Id] = {
    use phonenumber::country::Id::*;
    &[
        US, GB, FR, DE, IT, ES, NL, BR, IN, PL, SE, CA, AU, BE, CH, AT, PT, IE, MX, JP,
    ]
};

/// Grouped digits that are a valid phone number in one of [`PHONE_REGIONS`]; rejected when
/// the match starts with a group holding a letter (the pattern's optional lead group).
fn valid_in_a_region(text: &str, out: &mut Vec<Range<usize>>) {
    if text
        .bytes()
        .take_while(|b| *b != b' ')
        .any(|b| b.is_ascii_alphabetic())
    {
        return;
    }
    let n = digit_count(text);
    if !(8..=12).contains(&n) {
        return;
    }
    let ok = PHONE_REGIONS
        .iter()
        .any(|r| phonenumber::parse(Some(*r), text).is_ok_and(|p| phonenumber::is_valid(&p)));
    whole_if(ok, text, out);
}

/// A number after an identity number's name: 9-12 digits (SSN, BSN, SIN, PESEL, Aadhaar,
/// CPF, NIR without spaces...), or a DNI/NIE with its letter.
fn id_after_name(text: &str, out: &mut Vec<Range<usize>>) {
    let n = digit_count(text);
    whole_if((8..=15).contains(&n), text, out);
}

/// See the bare-number pattern: rejected after a reference word; otherwise an SSN, BSN
/// or Aadhaar by its own rules.
fn bare_id(text: &str, out: &mut Vec<Range<usize>>) {
    let Some(first) = text.bytes().position(|b| b.is_ascii_digit()) else {
        return;
    };
    if first > 0 {
        return;
    }
    let d = digit_vec(text);
    let ok = match d.len() {
        9 => {
            let area = d[0] * 100 + d[1] * 10 + d[2];
            let ssn_like = area != 0
                && area != 666
                && area < 900
                && (d[3] + d[4]) > 0
                && d[5..].iter().any(|x| *x > 0);
            ssn_like || eleven_check(&d)
        }
        12 => verhoeff(&d),
        _ => false,
    };
    whole_if(ok, text, out);
}

fn cpf(text: &str, out: &mut Vec<Range<usize>>) {
    let d = digit_vec(text);
    let formatted = text.contains('.') && text.contains('-');
    let bare = !text.contains('.') && !text.contains('-');
    if d.len() != 11 || !(formatted || bare) || d.iter().all(|x| *x == d[0]) {
        return;
    }
    let check = |len: usize| {
        let sum: u32 = (0..len).map(|i| d[i] * (len as u32 + 1 - i as u32)).sum();
        let r = (sum * 10) % 11;
        if r == 10 { 0 } else { r }
    };
    whole_if(check(9) == d[9] && check(10) == d[10], text, out);
}

/// The Verhoeff check (Aadhaar).
fn verhoeff(d: &[u32]) -> bool {
    const MUL: [[u8; 10]; 10] = [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        [1, 2, 3, 4, 0, 6, 7, 8, 9, 5],
        [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
        [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
        [4, 0, 1, 2, 3, 9, 5, 6, 7, 8],
        [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
        [6, 5, 9, 8, 7, 1, 0, 4, 3, 2],
        [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
        [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
        [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
    ];
    const PERM: [[u8; 10]; 8] = [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        [1, 5, 7, 6, 2, 8, 3, 0, 9, 4],
        [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
        [8, 9, 1, 6, 0, 4, 3, 5, 2, 7],
        [9, 4, 5, 3, 1, 2, 6, 8, 7, 0],
        [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
        [2, 7, 9, 3, 8, 0, 6, 4, 1, 5],
        [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
    ];
    let mut c = 0u8;
    for (i, x) in d.iter().rev().enumerate() {
        c = MUL[c as usize][PERM[i % 8][*x as usize] as usize];
    }
    c == 0
}

fn aadhaar_grouped(text: &str, out: &mut Vec<Range<usize>>) {
    whole_if(digit_count(text) == 12, text, out);
}

/// A bare mobile number: the match when it starts with its digits (no reference word
/// before them) and has 9 or 10 digits (no digit group before them).
fn bare_mobile(text: &str, out: &mut Vec<Range<usize>>) {
    let starts_with_digit = text.bytes().next().is_some_and(|b| b.is_ascii_digit());
    whole_if(
        starts_with_digit && (9..=10).contains(&digit_count(text)),
        text,
        out,
    );
}

/// A 12-digit Maestro number (Luhn), after no reference word other than "card".
fn maestro_12(text: &str, out: &mut Vec<Range<usize>>) {
    let Some(first) = text.bytes().position(|b| b.is_ascii_digit()) else {
        return;
    };
    if first > 0 && !text[..first].to_ascii_lowercase().starts_with("card") {
        return;
    }
    let d = digit_vec(text);
    let mut sum = 0;
    for (i, x) in d.iter().rev().enumerate() {
        sum += if i % 2 == 1 {
            let t = x * 2;
            if t > 9 { t - 9 } else { t }
        } else {
            *x
        };
    }
    if d.len() == 12 && sum % 10 == 0 {
        out.push(first..text.len());
    }
}

/// DNI: 8 digits and the letter of their value mod 23; NIE: X/Y/Z read as 0/1/2.
fn dni_nie(text: &str, out: &mut Vec<Range<usize>>) {
    const LETTERS: &[u8] = b"TRWAGMYFPDXBNJZSQVHLCKE";
    let compact: Vec<u8> = text.bytes().filter(|b| *b != b'-').collect();
    let (lead, rest) = compact.split_at(1);
    let lead = match lead[0] {
        b'X' => b'0',
        b'Y' => b'1',
        b'Z' => b'2',
        d => d,
    };
    let number: String = std::iter::once(lead as char)
        .chain(rest[..rest.len() - 1].iter().map(|b| *b as char))
        .collect();
    let ok = number
        .parse::<u32>()
        .is_ok_and(|n| LETTERS[(n % 23) as usize] == compact[compact.len() - 1]);
    whole_if(ok, text, out);
}

fn codice_fiscale(text: &str, out: &mut Vec<Range<usize>>) {
    const ODD: [u32; 26] = [
        1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24,
        23,
    ];
    let up: Vec<u8> = text.bytes().map(|b| b.to_ascii_uppercase()).collect();
    let mut sum = 0;
    for (i, &c) in up[..15].iter().enumerate() {
        let v = if c.is_ascii_digit() {
            c - b'0'
        } else {
            c - b'A'
        } as usize;
        sum += if i % 2 == 0 { ODD[v] } else { v as u32 };
    }
    whole_if(u32::from(up[15] - b'A') == sum % 26, text, out);
}

/// French NIR: the key is 97 minus the 13-digit number mod 97 (Corsica: 2A/2B read as
/// 19/18 in the number).
fn nir(text: &str, out: &mut Vec<Range<usize>>) {
    let compact: String = text.chars().filter(|c| *c != ' ').collect();
    let (body, key) = compact.split_at(13);
    let body = body.replace("2A", "19").replace("2B", "18");
    let ok = match (body.parse::<u64>(), key.parse::<u64>()) {
        (Ok(n), Ok(k)) => 97 - n % 97 == k,
        _ => false,
    };
    whole_if(ok, text, out);
}

/// The Dutch 11-check: 9*d1 + 8*d2 + ... + 2*d8 - d9 is a multiple of 11.
fn eleven_check(d: &[u32]) -> bool {
    if d.len() != 9 {
        return false;
    }
    let sum: i64 = (0..8)
        .map(|i| i64::from(d[i]) * (9 - i as i64))
        .sum::<i64>()
        - i64::from(d[8]);
    sum % 11 == 0 && sum != 0
}

fn bsn_dotted(text: &str, out: &mut Vec<Range<usize>>) {
    whole_if(eleven_check(&digit_vec(text)), text, out);
}

fn personnummer(text: &str, out: &mut Vec<Range<usize>>) {
    let d = digit_vec(text);
    let ten = &d[d.len() - 10..];
    let month = ten[2] * 10 + ten[3];
    let day = ten[4] * 10 + ten[5];
    let valid_date = (1..=12).contains(&month) && (1..=91).contains(&day);
    let mut sum = 0;
    for (i, x) in ten.iter().enumerate() {
        let v = if i % 2 == 0 { x * 2 } else { *x };
        sum += v / 10 + v % 10;
    }
    whole_if(valid_date && sum % 10 == 0, text, out);
}

/// A JWT: three (JWS) or five (JWE) dot-separated base64url parts, the header JSON.
fn jwt(text: &str, out: &mut Vec<Range<usize>>) {
    let token = text.trim_end_matches(['.', '=']);
    let parts: Vec<&str> = token.split('.').collect();
    let ok = matches!(parts.len(), 3 | 5) && parts[0].len() >= 10 && parts[1].len() >= 4;
    if ok {
        out.push(0..token.len().max(text.trim_end_matches('.').len()));
    }
}

fn iban(text: &str, out: &mut Vec<Range<usize>>) {
    whole_if(iban_valid(text), text, out);
}

/// IBAN: 15-34 characters and mod-97 == 1 (ISO 13616). The country's registered length
/// is not required: two check digits that pass mod 97 on an IBAN-shaped string say it is
/// an account number, and a generator or a bank that gets the length wrong still wrote one.
fn iban_valid(s: &str) -> bool {
    let compact: Vec<u8> = s.bytes().filter(|b| *b != b' ').collect();
    if !(15..=34).contains(&compact.len()) {
        return false;
    }
    let (head, rest) = compact.split_at(4);
    let mut rem: u32 = 0;
    for &b in rest.iter().chain(head) {
        rem = match b {
            b'0'..=b'9' => (rem * 10 + u32::from(b - b'0')) % 97,
            b'A'..=b'Z' => (rem * 100 + u32::from(b - b'A') + 10) % 97,
            _ => return false,
        };
    }
    rem == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(input, expected)`: the redacted text, with every rule enabled.
    fn check(cases: &[(&str, &str)]) {
        let r = Redactor::builtin();
        for (input, expected) in cases {
            assert_eq!(r.redact(input).text, *expected, "input: {input:?}");
        }
    }

    /// Texts nothing should touch: the result must borrow the input.
    fn check_clean(cases: &[&str]) {
        let r = Redactor::builtin();
        for input in cases {
            let out = r.redact(input);
            assert!(
                matches!(out.text, Cow::Borrowed(_)) && out.rules.is_empty(),
                "{input:?} was redacted to {:?} by {:?}",
                out.text,
                out.rules
            );
        }
    }

    #[test]
    fn email() {
        check(&[
            ("mail bob@example.com now", "mail [REDACTED:email] now"),
            ("<Alice.Smith+tag@mail.example.co.uk>", "<[REDACTED:email]>"),
            (
                "end of sentence: ops@acme.io.",
                "end of sentence: [REDACTED:email].",
            ),
            (
                "mailto:x_y%z@sub-domain.example.org",
                "mailto:[REDACTED:email]",
            ),
        ]);
        check_clean(&["user@localhost", "npm i left-pad@1.3.0", "@handle and a@b"]);
    }

    #[test]
    fn phone() {
        check(&[
            ("call +44 20 7946 0958 today", "call [REDACTED:phone] today"),
            ("+1 (415) 555-0132", "[REDACTED:phone]"),
            ("tel +4915112345678.", "tel [REDACTED:phone]."),
            ("+33 1 42 68 53 00", "[REDACTED:phone]"),
            (
                "(415) 555-0132 or 415.555.0132",
                "[REDACTED:phone] or [REDACTED:phone]",
            ),
            ("ring 1-800-555-0199", "ring [REDACTED:phone]"),
            ("num 4155550132!", "num [REDACTED:phone]!"),
        ]);
        check_clean(&[
            "ticket T-1001 and invoice INV-2001",
            "in 2024, on 2024-01-15 at 10:30:00",
            "total $1,234.56 or 1234.56 EUR",
            "order 555-123-4567",
            "epoch 1712345678 and +15% growth",
            "version 1.2.3.4",
        ]);
    }

    #[test]
    fn card_number() {
        check(&[
            (
                "card 4111 1111 1111 1111 ok",
                "card [REDACTED:card_number] ok",
            ),
            ("4111-1111-1111-1111", "[REDACTED:card_number]"),
            ("5500005555555559", "[REDACTED:card_number]"),
            ("amex 378282246310005.", "amex [REDACTED:card_number]."),
        ]);
        check_clean(&[
            "4111 1111 1111 1112",
            "1234 5678 9012 3456",
            "id 12345678901234567890123",
            "4111 1111 111",
        ]);
    }

    #[test]
    fn national_id() {
        check(&[
            ("ssn 123-45-6789.", "ssn [REDACTED:national_id]."),
            ("NINO JK 12 34 56 D", "NINO [REDACTED:national_id]"),
            ("AB123456C", "[REDACTED:national_id]"),
        ]);
        check_clean(&[
            "000-12-3456",
            "666-12-3456",
            "912-34-5678",
            "123-00-4567",
            "123-45-0000",
            "GB123456A",
            "QQ 12 34 56 C",
            "date 2024-01-15",
        ]);
    }

    #[test]
    fn iban() {
        check(&[
            (
                "pay GB82 WEST 1234 5698 7654 32 now",
                "pay [REDACTED:iban] now",
            ),
            ("DE89370400440532013000", "[REDACTED:iban]"),
            ("FR14 2004 1010 0505 0001 3M02 606", "[REDACTED:iban]"),
        ]);
        check_clean(&[
            "GB83 WEST 1234 5698 7654 32",
            "DE89370400440532013001",
            "GB82 WEST 1234 5698 7654",
            "AB12 CDEF GHIJ KLMN",
        ]);
    }

    #[test]
    fn api_key() {
        check(&[
            (
                "key sk-proj-Abc123def456ghi789jkl012mno345",
                "key [REDACTED:api_key]",
            ),
            ("sk-proj-abcdefghijklmnopqrstuvwx", "[REDACTED:api_key]"),
            ("AKIAIOSFODNN7EXAMPLE", "[REDACTED:api_key]"),
            (
                "ghp_0123456789abcdefghijklmnopqrstuvwxyzAB",
                "[REDACTED:api_key]",
            ),
            ("xoxb-1234567890-abcdefghij", "[REDACTED:api_key]"),
            (
                "AIzaSyA1234567890abcdefghijklmnopqrstuv",
                "[REDACTED:api_key]",
            ),
            ("sk_live_4eC39HqLyjWDarjtT1zdp7dc", "[REDACTED:api_key]"),
            ("api_key=abc123xyz789", "api_key=[REDACTED:api_key]"),
            (
                r#"{"token": "f00ba4c0ffee1234"}"#,
                r#"{"token": "[REDACTED:api_key]"}"#,
            ),
            (
                "client_secret: s3cr3tV4lue",
                "client_secret: [REDACTED:api_key]",
            ),
            ("password=hunter2", "password=[REDACTED:api_key]"),
            (
                "Authorization: Basic dXNlcjpwYXNz",
                "Authorization: Basic [REDACTED:api_key]",
            ),
        ]);
        check_clean(&[
            "we use sk-learn-and-numpy-for-everything",
            "the token: expiration",
            "task-1234567890abcdefghijk",
            "AKIA is a prefix",
            "secret sauce",
            "a basic dXNlcjpwYXNz question",
        ]);
    }

    #[test]
    fn bearer_token() {
        check(&[
            (
                "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc_DEF-123",
                "Authorization: Bearer [REDACTED:bearer_token]",
            ),
            ("bearer  abc123def456", "bearer  [REDACTED:bearer_token]"),
        ]);
        check_clean(&["the bearer instrument", "Bearer of bad news"]);
    }

    /// Each national identity number: a valid one is redacted (with no name before it), the
    /// same number with a wrong check digit or letter is left alone.
    #[test]
    fn national_ids_by_check_digit() {
        const ID: &str = "[REDACTED:national_id]";
        // (valid, redacted text of "code <valid>", invalid)
        let cases: &[(&str, &str)] = &[
            ("529.982.247-25", "529.982.247-26"), // CPF, two check digits
            ("52998224725", "52998224726"),       // CPF without punctuation
            ("234123412346", "234123412347"),     // Aadhaar, Verhoeff
            ("12345678Z", "12345678A"),           // DNI, check letter
            ("X1234567L", "X1234567A"),           // NIE, check letter
            ("RSSMRA85T10A562S", "RSSMRA85T10A562T"), // codice fiscale
            ("1850578006084 91", "1850578006084 92"), // NIR, key 97 - n mod 97
            ("1112.22.333", "1112.22.334"),       // BSN, 11-check
            ("19811228-9874", "19811228-9875"),   // personnummer, Luhn
            ("AB 12 34 56 C", "GB 12 34 56 A"),   // NINO, prefixes never issued
            ("123-45-6789", "666-12-3456"),       // SSN, area rules
        ];
        for (valid, invalid) in cases {
            check(&[(&format!("code {valid}"), &format!("code {ID}"))]);
            check_clean(&[&format!("code {invalid}")]);
        }
        // The printed Aadhaar grouping is redacted whatever its check digit.
        let out = Redactor::builtin().redact("Aadhaar 2341 2341 2347 ok").text;
        assert!(
            out.starts_with("Aadhaar [REDACTED:") && out.ends_with("] ok"),
            "{out}"
        );
        // After the number's name any digits are redacted, check digit or not.
        check(&[(
            "my CPF is 529.982.247-26",
            "my CPF is [REDACTED:national_id]",
        )]);
    }

    #[test]
    fn ssn_separator_styles() {
        for ssn in ["123-45-6789", "123 45 6789", "123.45.6789", "123456789"] {
            let input = format!("SSN {ssn}.");
            let out = Redactor::builtin().redact(&input).text;
            assert!(
                out.starts_with("SSN [REDACTED:") && !out.contains("6789"),
                "{ssn}: {out}"
            );
        }
    }

    #[test]
    fn phone_formats_per_country() {
        for phone in [
            "020 7946 0958",       // GB, national
            "+44 20 7946 0958",    // GB, international
            "01 78 64 43 62",      // FR
            "01.78.64.43.62",      // FR, dotted
            "(030) 1234567",       // DE, area code in parentheses
            "+49 30 1234567",      // DE, international
            "06-12345678",         // NL mobile
            "3471234567",          // IT mobile, bare
            "612 345 678",         // ES mobile
            "98765 43210",         // IN mobile, 5+5
            "9876543210",          // IN mobile, bare
            "(21) 3768-1407",      // BR
            "21 3768-1407",        // BR, no parentheses
            "11 98765-4321",       // BR mobile
            "(415) 555-0132",      // US
            "415.555.0132",        // US, dotted
            "+1-415-555-0132x123", // US with extension
            "0114 496 0104",       // GB, four-digit area code
        ] {
            check(&[(
                &format!("call {phone} today"),
                "call [REDACTED:phone] today",
            )]);
        }
        check_clean(&[
            "order 712345678 is late",
            "on 01.02.2024 at 10:30",
            "room 12, floor 3, building 4",
            "1234 5678 9012 3456",
        ]);
    }

    #[test]
    fn maestro_and_iban_variants() {
        let grouped = Redactor::builtin().redact("card 5018 0000 0009").text;
        assert!(grouped.starts_with("card [REDACTED:") && !grouped.contains("0009"));
        check(&[
            (
                "Maestro 501800000009 ok",
                "Maestro [REDACTED:card_number] ok",
            ),
            // A GB IBAN one character short of the registry's length, check digits valid.
            ("IBAN GB42MLJQ8241192339654", "IBAN [REDACTED:iban]"),
        ]);
        check_clean(&["tracking 501800000009", "code 501800000007"]);
    }

    #[test]
    fn jwt_and_pem_anywhere() {
        let jwt = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJlLXZhbHVl";
        check(&[(&format!("token={jwt};"), "token=[REDACTED:jwt];")]);
        check(&[(&format!("see {jwt} here"), "see [REDACTED:jwt] here")]);
        let pem = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmU=\n-----END OPENSSH PRIVATE KEY-----";
        check(&[(
            &format!("key:\n{pem}\nthanks"),
            "key:\n[REDACTED:private_key]\nthanks",
        )]);
        // A public certificate is not a secret.
        check_clean(&["-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"]);
    }

    #[test]
    fn token_per_provider() {
        const KEY: &str = "[REDACTED:api_key]";
        for token in [
            "sk-proj-Abc123def456ghi789jkl012mno345", // OpenAI
            "sk-ant-api03-Abc123def456ghi789jkl012mno345pqr678", // Anthropic
            "sk_live_4eC39HqLyjWDarjtT1zdp7dc",       // Stripe secret
            "rk_test_4eC39HqLyjWDarjtT1zdp7dc",       // Stripe restricted
            "whsec_0123456789abcdefghijABCDEFGHIJ",   // Stripe webhook
            "AKIAIOSFODNN7EXAMPLE",                   // AWS
            "ghp_0123456789abcdefghijklmnopqrstuvwxyzAB", // GitHub
            "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz", // GitHub fine-grained
            "glpat-0123456789abcdefghij",             // GitLab
            "xoxb-1234567890-abcdefghij",             // Slack bot
            "xapp-1-A0123456789-abcdefghij",          // Slack app
            "AIzaSyA1234567890abcdefghijklmnopqrstuv", // Google API key
            "GOCSPX-0123456789abcdefghijABCD",        // Google OAuth secret
            "ya29.a0AfH6SMB0123456789abcdefghij",     // Google access token
            "abc1Q~0123456789abcdefghijABCDEFGHIJ.-_", // Entra client secret
            "SG.abcdefghij0123456789AB.abcdefghij0123456789ABCDEFGHIJ0123456789abc", // SendGrid
            "npm_0123456789abcdefghijABCDEFGHIJabcdef", // npm
            "pypi-AgEIcHlwaS5vcmcCJDAxMjM0NTY3LTg5YWItY2RlZi0wMTIzLTQ1Njc4OWFiY2RlZg", // PyPI
            "hf_0123456789abcdefghijABCDEFGHIJab",    // Hugging Face
            "SK0123456789abcdef0123456789abcdef",     // Twilio
            "dop_v1_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", // DigitalOcean
            "shpat_0123456789abcdef0123456789abcdef",                                  // Shopify
            "ATATT3xFfGF0123456789abcdefghijABCDEFGHIJ0123456789",                     // Atlassian
            "key-0123456789abcdef0123456789abcdef",                                    // Mailgun
            "dapi0123456789abcdef0123456789abcdef",                                    // Databricks
        ] {
            check(&[(&format!("use {token} now"), &format!("use {KEY} now"))]);
        }
        check(&[
            (
                "https://hooks.slack.com/services/T0000/B0000/XXXXXXXXXXXXXXXXXXXXXXXX",
                "https://hooks.slack.com/services/[REDACTED:api_key]",
            ),
            (
                "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=AbCdEf0123456789+/AbCdEf0123456789==",
                "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=[REDACTED:api_key]",
            ),
            (
                "https://acct.blob.core.windows.net/c?sv=2022&sig=AbCdEf0123456789%2BAbCdEf0123",
                "https://acct.blob.core.windows.net/c?sv=2022&sig=[REDACTED:api_key]",
            ),
        ]);
    }

    #[test]
    fn overlapping_matches_merge() {
        // The assignment and the sk- pattern both match the same key.
        check(&[(
            "api_key: sk-abcdefghij1234567890XYZ and done",
            "api_key: [REDACTED:api_key] and done",
        )]);
    }

    #[test]
    fn rules_fired_are_reported_once() {
        let out = Redactor::builtin().redact("a@b.io c@d.io 4111111111111111");
        assert_eq!(out.rules, vec!["email", "card_number"]);
    }

    #[test]
    fn disabled_rules_do_not_fire() {
        let r = Redactor::with_rules([Rule::CardNumber]);
        let out = r.redact("bob@example.com 4111111111111111");
        assert_eq!(out.text, "bob@example.com [REDACTED:card_number]");
        assert_eq!(r.rules().collect::<Vec<_>>(), vec![Rule::CardNumber]);
    }

    #[test]
    fn redaction_is_idempotent() {
        let r = Redactor::builtin();
        let once = r
            .redact("token: abc123def456 bob@x.io +44 20 7946 0958")
            .text;
        assert_eq!(r.redact(&once).text, once);
    }

    #[test]
    fn non_ascii_text() {
        check(&[
            ("café bob@example.com ✓", "café [REDACTED:email] ✓"),
            ("é4111111111111111é", "é[REDACTED:card_number]é"),
        ]);
        check_clean(&["日本語のテキスト", "ünïcödé"]);
    }

    #[test]
    fn redact_json_walks_values_not_keys() {
        let mut v = serde_json::json!({
            "bob@example.com": "bob@example.com",
            "nested": [{"card": "4111 1111 1111 1111"}, 42, null, true],
            "clean": "nothing here",
        });
        let rules = Redactor::builtin().redact_json(&mut v);
        assert_eq!(rules, vec!["email", "card_number"]);
        assert_eq!(
            v,
            serde_json::json!({
                "bob@example.com": "[REDACTED:email]",
                "nested": [{"card": "[REDACTED:card_number]"}, 42, null, true],
                "clean": "nothing here",
            })
        );
    }

    #[test]
    fn engine_facts() {
        let e = engine();
        assert!(
            e.holdback >= 64 && e.holdback <= 256,
            "holdback {}",
            e.holdback
        );
        for c in [
            '\n', '\r', '\t', ',', ';', '"', '<', '>', '[', ']', '{', '}', '|', '\\',
        ] {
            // A tab may separate an identity number or phone from its name ("SSN:\t...").
            let expected = !matches!(c, '"' | '\'' | '\t');
            assert_eq!(e.is_break(c), expected, "{c:?}");
        }
        for c in ['a', '0', ' ', '.', '-', '@', '+', '('] {
            assert!(!e.is_break(c), "{c:?}");
        }
        assert!(e.is_break('é'));
    }

    #[test]
    fn validators() {
        fn ranges(v: Validator, text: &str) -> Vec<(usize, usize)> {
            let mut out = Vec::new();
            v(text, &mut out);
            out.into_iter().map(|r| (r.start, r.end)).collect()
        }
        assert!(luhn("4111111111111111") && !luhn("4111111111111112"));
        assert!(!luhn("0"), "too short");
        assert!(iban_valid("GB82WEST12345698765432") && !iban_valid("GB82WEST1234569876543"));
        assert!(ranges(ssn, "123-45").is_empty());
        assert_eq!(ranges(e164_prefix, "+44 20 7946 0958"), [(0, 16)]);
        assert_eq!(ranges(e164_prefix, "+44 20 7946 0958 2024"), [(0, 16)]);
        assert!(ranges(e164_prefix, "+1 234").is_empty());
        assert_eq!(
            ranges(card_numbers, "4111 1111 1111 1111 5500 0055 5555 5559"),
            [(0, 19), (20, 39)]
        );
        assert_eq!(ranges(card_numbers, "1234 4111 1111 1111 1111"), [(5, 24)]);
    }

    #[test]
    fn clean_text_does_not_allocate() {
        let text = "The quick brown fox jumps over the lazy dog. Ticket T-1001 was closed on \
                    2024-01-15 after invoice INV-2001 ($1,299.00) was paid. "
            .repeat(8);
        assert!(text.len() >= 1000);
        assert!(matches!(
            Redactor::builtin().redact(&text).text,
            Cow::Borrowed(_)
        ));
    }
}
