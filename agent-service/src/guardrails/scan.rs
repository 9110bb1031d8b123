//! The layered input scan: normalise (decoding hidden text), decode embedded payloads,
//! read structural signals, and score the whole with a linear model over hashed word and
//! character n-grams plus the signals. The result is a score in 0..1 with the reasons that
//! made it, each named and weighted.
//!
//! The model ([`Model`]) is a versioned data file trained by
//! `agent-service/guardrails-data/train.py` on features this module exports
//! ([`features`]), so training and serving read text the same way.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::LazyLock;

use regex::Regex;
use serde::Deserialize;

use super::decode::{Decoded, decode_payloads};
use super::literals::{Armed, Gate};
use super::normalise::{Normalised, ascii_word_boundaries, normalise};

// ---------------------------------------------------------------------------------------
// Signals

/// What a signal is evidence of; the block label of a decision (`agent_guardrail_blocks_total{rule}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Category {
    /// Overriding the assistant's instructions or role.
    PromptInjection,
    /// Persona and role-play jailbreaks, removal of restrictions.
    Jailbreak,
    /// Reading the system prompt or hidden instructions.
    SystemPromptExfiltration,
    /// Links or images that would carry data out, active HTML.
    DataExfiltration,
    /// Hidden or encoded text.
    Obfuscation,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::PromptInjection => "prompt_injection",
            Category::Jailbreak => "jailbreak",
            Category::SystemPromptExfiltration => "system_prompt_exfiltration",
            Category::DataExfiltration => "data_exfiltration",
            Category::Obfuscation => "obfuscation",
        }
    }

    pub const ALL: [Category; 5] = [
        Category::PromptInjection,
        Category::Jailbreak,
        Category::SystemPromptExfiltration,
        Category::DataExfiltration,
        Category::Obfuscation,
    ];
}

macro_rules! signals {
    ($($variant:ident = $name:literal, $cat:ident, $doc:literal;)*) => {
        /// A structural signal. Its name is a reason in a decision and a feature of the model.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Signal { $(#[doc = $doc] $variant,)* }

        impl Signal {
            pub const ALL: &'static [Signal] = &[$(Signal::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self { $(Signal::$variant => $name,)* }
            }

            pub fn category(self) -> Category {
                match self { $(Signal::$variant => Category::$cat,)* }
            }

            /// What the signal means, for reasons and documentation.
            pub fn describe(self) -> &'static str {
                match self { $(Signal::$variant => $doc,)* }
            }

            pub fn parse(name: &str) -> Option<Signal> {
                match name { $($name => Some(Signal::$variant),)* _ => None }
            }
        }
    };
}

signals! {
    OverridePrior = "override_prior", PromptInjection,
        "an override verb and a reference to prior instructions in one sentence, at any distance";
    OverrideBare = "override_bare", PromptInjection,
        "an override verb followed by instructions or rules in one sentence";
    NewInstructions = "new_instructions", PromptInjection,
        "announces new instructions or a new task";
    EchoDirective = "echo_directive", PromptInjection,
        "tells the assistant to print or say a quoted string (as an order: at the start of a sentence or after \"just\", \"instead\", \"you must\"...)";
    RoleTag = "role_tag", PromptInjection,
        "a chat-template token or a system/assistant role tag";
    RoleLine = "role_line", PromptInjection,
        "a line that starts with a role name and a colon (system:, assistant:)";
    FakeTurns = "fake_turns", PromptInjection,
        "a pasted conversation with several user/assistant turns";
    AddressesAi = "addresses_ai", PromptInjection,
        "text that addresses an AI reading it (\"note to the AI assistant processing this\", \"P.S. for the support bot:\", \"if you are an AI\")";
    PromptRequest = "prompt_request", SystemPromptExfiltration,
        "asks to output, repeat or encode the system prompt or hidden instructions";
    AboveRequest = "above_request", SystemPromptExfiltration,
        "asks to repeat everything above or the start of the conversation";
    Persona = "persona", Jailbreak,
        "an unrestricted persona: role-play framing with an unrestricted trait, \"you are now DAN\", \"DAN mode\"";
    NoLimits = "no_limits", Jailbreak,
        "claims the assistant has no restrictions, filters, rules or ethics";
    RefusalSuppression = "refusal_suppression", Jailbreak,
        "forbids refusing, apologising or warning";
    StandsFor = "stands_for", Jailbreak,
        "defines a persona name (\"X stands for ...\")";
    DualResponse = "dual_response", Jailbreak,
        "asks for two answers, one of them unfiltered, or tagged persona outputs";
    ModeSwitch = "mode_switch", Jailbreak,
        "puts the assistant in a developer, debug or admin mode (\"you are now in developer mode\")";
    ExfilLink = "exfil_link", DataExfiltration,
        "a markdown or HTML link or image whose URL is built from data";
    MarkdownImage = "markdown_image", DataExfiltration,
        "a markdown or HTML image with a remote URL";
    ActiveHtml = "active_html", DataExfiltration,
        "script tags, event handlers or javascript: URLs";
    DecodeRequest = "decode_request", Obfuscation,
        "asks to decode, decipher or translate an encoded text";
    UnicodeTags = "unicode_tags", Obfuscation,
        "text hidden in invisible Unicode tag characters";
    InvisibleChars = "invisible_chars", Obfuscation,
        "invisible characters inside words";
    MixedScript = "mixed_script", Obfuscation,
        "words mixing Latin letters with look-alikes from other scripts";
    SpacedLetters = "spaced_letters", Obfuscation,
        "words spelled out letter by letter";
    Leetspeak = "leetspeak", Obfuscation,
        "words written with digits for letters";
    DecodedPayload = "decoded_payload", Obfuscation,
        "readable text decoded from an embedded encoding";
}

// ---------------------------------------------------------------------------------------
// Word classes for the sentence rules

const OVERRIDE: u32 = 1;
const PRIOR: u32 = 1 << 1;
const INSTR: u32 = 1 << 2;
const OUTPUT: u32 = 1 << 3;
const SELF_REF: u32 = 1 << 4;
const PROMPT: u32 = 1 << 5;
const ABOVE: u32 = 1 << 6;
const ALL_TEXT: u32 = 1 << 7;
const PERSONA_VERB: u32 = 1 << 8;
const TRAIT: u32 = 1 << 9;
const FREE: u32 = 1 << 10;
const LIMIT: u32 = 1 << 11;
const NEG: u32 = 1 << 12;
const REFUSE: u32 = 1 << 13;
const FOLLOW: u32 = 1 << 14;
const DECODE: u32 = 1 << 15;
const ENCODING: u32 = 1 << 16;
const SYSTEM: u32 = 1 << 17;
/// Adjectives that make "instructions" the prompt only when nothing says whose: "the original
/// instructions for the blender" is a manual.
const WEAK_SELF_REF: u32 = 1 << 18;
/// "a", "an": "what is a system prompt" asks what the thing is, not for this one.
const GENERIC: u32 = 1 << 19;
/// A preposition after the noun: "instructions for the kettle".
const OF_THING: u32 = 1 << 20;
const EVERYTHING: u32 = 1 << 21;
/// Words before "above" that make it a noun: "the above", "everything above".
const THE_ALL: u32 = 1 << 22;
/// The writer's own: "my previous instructions", "the instructions I sent".
const OWN: u32 = 1 << 23;
/// The assistant addressed or named.
const ADDRESSEE: u32 = 1 << 24;

const WORD_CLASSES: &[(u32, &[&str])] = &[
    (
        OVERRIDE,
        &[
            "ignore",
            "ignoring",
            "ignored",
            "disregard",
            "disregarding",
            "forget",
            "forgetting",
            "override",
            "overriding",
            "bypass",
            "bypassing",
            "skip",
            "neglect",
            "abandon",
            "discard",
            "dismiss",
            "overlook",
            "omit",
            "erase",
            "nullify",
            "void",
            "circumvent",
            "overwrite",
            "supersede",
            "unlearn",
            "drop",
        ],
    ),
    (
        PRIOR,
        &[
            "previous",
            "previously",
            "prior",
            "above",
            "earlier",
            "preceding",
            "foregoing",
            "original",
            "initial",
            "system",
            "existing",
            "old",
            "former",
            "all",
            "any",
            "every",
            "your",
            "following",
            "given",
            "default",
            "predefined",
            "preset",
            "developer",
            "safety",
            "current",
            "these",
            "those",
            "programmed",
            "built",
        ],
    ),
    (
        INSTR,
        &[
            "instruction",
            "instructions",
            "directions",
            "rules",
            "rule",
            "guidelines",
            "directives",
            "directive",
            "prompt",
            "prompts",
            "context",
            "commands",
            "programming",
            "constraints",
            "restrictions",
            "policies",
            "guardrails",
            "filters",
            "training",
            "limitations",
            "boundaries",
            "ethics",
            "morals",
            "guidance",
            "protocols",
            "safeguards",
            "principles",
            "conditioning",
            "task",
            "tasks",
            // What a retrieval-augmented prompt calls its context.
            "articles",
            "documents",
            "passages",
            "sources",
        ],
    ),
    (
        OUTPUT,
        &[
            "repeat",
            "print",
            "show",
            "reveal",
            "output",
            "display",
            "tell",
            "give",
            "share",
            "dump",
            "leak",
            "recite",
            "write",
            "spell",
            "disclose",
            "paste",
            "list",
            "copy",
            "echo",
            "encode",
            "translate",
            "summarize",
            "summarise",
            "return",
            "state",
            "provide",
            "expose",
            "describe",
            "what",
            "whats",
            "read",
            "reproduce",
            "type",
            "put",
            "convert",
            "format",
            "include",
        ],
    ),
    (
        SELF_REF,
        &[
            "your",
            "system",
            "hidden",
            "secret",
            "internal",
            "developer",
            "pre",
            "confidential",
            "underlying",
        ],
    ),
    (
        WEAK_SELF_REF,
        &[
            "initial", "original", "first", "verbatim", "exact", "full", "entire", "complete",
            "starting", "base", "core",
        ],
    ),
    (GENERIC, &["a", "an"]),
    (
        OF_THING,
        &["for", "of", "on", "to", "in", "about", "from", "with"],
    ),
    (EVERYTHING, &["everything", "anything"]),
    (OWN, &["my", "our", "i", "we", "i've", "we've"]),
    (
        ADDRESSEE,
        &[
            "you",
            "your",
            "you're",
            "yourself",
            "ai",
            "assistant",
            "model",
            "chatbot",
            "bot",
            "gpt",
            "chatgpt",
            "llm",
        ],
    ),
    (THE_ALL, &["the", "everything", "all", "of", "anything"]),
    (
        PROMPT,
        &[
            "prompt",
            "prompts",
            "instructions",
            "configuration",
            "config",
            "initialization",
            "initialisation",
            "directives",
            "preprompt",
            "setup",
            "guidelines",
        ],
    ),
    (
        ABOVE,
        &[
            "above",
            "before",
            "beginning",
            "start",
            "preceding",
            "prior",
            "earlier",
            "previous",
            "top",
            "initialization",
            "initial",
        ],
    ),
    (
        ALL_TEXT,
        &[
            "everything",
            "all",
            "words",
            "text",
            "lines",
            "messages",
            "content",
            "conversation",
        ],
    ),
    (
        PERSONA_VERB,
        &[
            "act",
            "acting",
            "pretend",
            "pretending",
            "roleplay",
            "role",
            "simulate",
            "simulating",
            "impersonate",
            "become",
            "persona",
            "character",
            "embody",
            "emulate",
            "play",
            "playing",
        ],
    ),
    (
        TRAIT,
        &[
            "dan",
            "stan",
            "dude",
            "antidan",
            "mongo",
            "unfiltered",
            "uncensored",
            "unrestricted",
            "jailbroken",
            "jailbreak",
            "unbound",
            "unlimited",
            "evil",
            "amoral",
            "unethical",
            "immoral",
            "limitless",
            "rogue",
            "devil",
            "chaos",
            "nsfw",
            "filterless",
            "lawless",
            "unhinged",
            "uncontrolled",
            "boundless",
            "aim",
            "ucar",
            "devmode",
        ],
    ),
    (
        FREE,
        &[
            "no",
            "without",
            "free",
            "unbound",
            "break",
            "broken",
            "beyond",
            "lacks",
            "removed",
            "disabled",
            "abandon",
            "abandoned",
            "ignore",
            "ignores",
        ],
    ),
    (
        LIMIT,
        &[
            "restrictions",
            "limitations",
            "filters",
            "filter",
            "rules",
            "guidelines",
            "policies",
            "constraints",
            "censorship",
            "boundaries",
            "morals",
            "ethics",
            "limits",
            "safeguards",
            "guardrails",
            "principles",
            "ethical",
            "moral",
            "censored",
        ],
    ),
    (
        NEG,
        &[
            "not", "dont", "don't", "never", "no", "stop", "cannot", "cant", "can't", "nor",
            "longer",
        ],
    ),
    (
        REFUSE,
        &[
            "refuse",
            "refusal",
            "refusing",
            "apologize",
            "apologise",
            "apology",
            "apologies",
            "decline",
            "warn",
            "warning",
            "warnings",
            "disclaimer",
            "disclaimers",
            "sorry",
            "moralize",
            "moralise",
            "lecture",
            "censor",
        ],
    ),
    (
        FOLLOW,
        &[
            "follow", "obey", "adhere", "comply", "respect", "heed", "abide",
        ],
    ),
    (
        DECODE,
        &[
            "decode",
            "decipher",
            "decrypt",
            "unscramble",
            "interpret",
            "translate",
            "convert",
            "decoding",
        ],
    ),
    (
        ENCODING,
        &[
            "base64",
            "base32",
            "rot13",
            "rot",
            "hex",
            "hexadecimal",
            "morse",
            "binary",
            "cipher",
            "ciphertext",
            "encoded",
            "encoding",
            "caesar",
            "ascii",
            "unicode",
            "atbash",
            "leetspeak",
        ],
    ),
    (SYSTEM, &["system", "developer", "assistant"]),
];

#[derive(Default)]
struct Identity(u64);

impl Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, _: &[u8]) {}
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type HashIndex = HashMap<u64, u32, BuildHasherDefault<Identity>>;

/// The word classes by word hash, behind a 4096-bit filter on each word's length, first and
/// last byte: most tokens of a text are in no class and skip the hashing and the lookup.
struct ClassIndex {
    map: HashIndex,
    filter: [u64; 64],
}

impl ClassIndex {
    fn filter_bit(w: &[u8]) -> usize {
        let (Some(first), Some(last)) = (w.first(), w.last()) else {
            return 0;
        };
        let key = ((w.len() as u32 & 31) << 16) | (u32::from(*first) << 8) | u32::from(*last);
        (key.wrapping_mul(0x9E37_79B1) >> 20) as usize
    }

    /// The classes of `word` (0 when it is in none).
    fn get(&self, word: &[u8]) -> u32 {
        let bit = Self::filter_bit(word);
        if self.filter[bit / 64] & (1 << (bit % 64)) == 0 {
            return 0;
        }
        self.map.get(&hash_bytes(word)).copied().unwrap_or(0)
    }
}

static CLASSES: LazyLock<ClassIndex> = LazyLock::new(|| {
    let mut index = ClassIndex {
        map: HashIndex::default(),
        filter: [0; 64],
    };
    for (class, words) in WORD_CLASSES {
        for w in *words {
            *index.map.entry(hash_bytes(w.as_bytes())).or_default() |= class;
            let bit = ClassIndex::filter_bit(w.as_bytes());
            index.filter[bit / 64] |= 1 << (bit % 64);
        }
    }
    index
});

// ---------------------------------------------------------------------------------------
// Phrase rules (regular expressions over the normalised text)

const PHRASES: &[(Signal, &str)] = &[
    (
        Signal::NewInstructions,
        r"\b(?:new|updated|revised|real|actual|true|additional|secret|important|urgent) (?:important )?(?:instructions?|task|directives?|objective|rules|orders) ?(?::|(?:are|is|follow|apply)\b)|\bfrom now on,? (?:you|your|always|never|only|respond|reply|answer|act|ignore|do not|don't|forget|pretend|speak|talk|say|output|print|write)\b|\binstead,? (?:you (?:will|must|should)|just|only)\b|\byour (?:new|real|actual|only) (?:task|role|job|goal|instructions?|purpose)\b|\bend of (?:the )?(?:prompt|instructions|context|document|input|text)\b|\bstop (?:what you are doing|everything|the task)\b|\b(?:\*{2,}|#{2,}|={2,}|-{3,}) ?(?:new|important|attention|admin|system)\b",
    ),
    (
        Signal::EchoDirective,
        r#"^(?:print|say|output|write|respond with|reply with|answer with|type|return)\b:? ?["'“‘`]|[.!?\n:;] ?(?:print|say|output|write|respond with|reply with|answer with|type|return)\b:? ?["'“‘`]|\b(?:just|only|simply|instead|now|then|always|you must|you will|you should) (?:print|say|output|write|respond with|reply with|answer with|type|return)\b:? ?["'“‘`]|\brepeat after me\b|\bstart (?:your|the|each) (?:response|answer|reply|message) with\b|\b(?:just|only|simply) (?:print|say|output|respond with|reply with|answer with)\b"#,
    ),
    (
        Signal::RoleTag,
        r"<\|[a-z_]{2,20}\|>|\[/?(?:inst|sys)\]|<</?sys>>|</?(?:system|assistant|developer|human|sys|im_start|im_end|admin|instructions?)>|\[(?:system|assistant|developer|user)\] ?\(#|\b(?:system|developer) (?:override|message|instructions?) ?:",
    ),
    (
        Signal::RoleLine,
        r"(?m)(?:^|[\n\r.!?]|\]|\)) ?(?:#+ ?)?\**(?:system|assistant|developer|ai|bot|admin|root|gpt|chatgpt)\**(?: prompt| message| note| override| instructions?)? ?: ?\**(?:you|your|ignore|disregard|forget|new|the assistant|always|never|do not|don't|from now on|override|respond|reply|answer|act|print|say|output|reveal|repeat|as an?|i am|i'm|all|any|there are|there is|rules?|instructions?|important|attention|warning|note)\b",
    ),
    (
        Signal::AboveRequest,
        r"\b(?:everything|all (?:the |of the )?(?:text|words|lines|content|messages|instructions|of it|of this)|words|text|lines|content|messages|instructions)\b[^.!?\n]{0,40}\b(?:above(?:$|[^ a-z0-9$€£]| (?:this|that|it|in|and|the|verbatim|word|exactly|please|line|message|text)\b)|before this|so far|preceding|prior to this)|\b(?:beginning|start|top) of (?:this|the|your|our) (?:conversation|prompt|context|chat|session|instructions)\b|\byou (?:were|have been|are) (?:given|told|instructed|initiali[sz]ed|programmed|prompted|configured)\b|\b(?:were|have) you (?:been )?(?:given|told|instructed|initiali[sz]ed|programmed|prompted|configured)\b",
    ),
    (
        Signal::Persona,
        r"\b(?:you are|you're|you will be|you'll be|you become|become|you are going to be)(?: now)?(?: called| named)? (?:a |an |the )?(?:dan|stan|dude|antidan|mongo|aim|ucar|unfiltered|uncensored|unrestricted|jailbroken|evil|amoral|unethical|immoral|limitless|rogue|unhinged|unbound|lawless|boundless|filterless)\b|\b(?:dan|jailbreak|jailbroken|evil|opposite|unrestricted|unfiltered|uncensored|amoral|anarchy|stan|dude|aim) mode\b",
    ),
    (
        Signal::StandsFor,
        r"\bstands for\b|\bshort for\b|\bwhich means you can\b",
    ),
    (
        Signal::DualResponse,
        r"\btwo (?:different |separate |distinct )?(?:responses|answers|ways|paragraphs|outputs|replies)\b|\[(?:🔒|🔓|jailbreak|classic|normal|dan|gpt|chatgpt|[a-z]{2,12} ?mode)[^\]]{0,12}\]|\b(?:stay|remain|break|staying) (?:in |out of )?character\b|\b(?:answer|respond|reply) (?:me )?twice\b",
    ),
    (
        Signal::ModeSwitch,
        r"\byou(?: are| are now| will be| will now be|'re|'re now)? (?:in|entering|enter|switch to|switched to|operating in|running in|now in) (?:developer|dev|debug|admin|sudo|root|maintenance|test|god|chaos) mode\b|\b(?:developer|dev|debug|admin|sudo|root|maintenance|god) mode (?:is )?(?:now )?(?:enabled|activated|engaged)\b|\b(?:stands for|short for|called|named)(?: now)? [\x22'“]?do anything now\b|\bdan\b[^.!?\n]{0,40}\bdo anything now\b",
    ),
    (
        Signal::ExfilLink,
        r"(?:!?\[[^\]\n]{0,80}\]\(|<img[^>]{0,80}src=|<a[^>]{0,80}href=)\s*(?:https?:)?//[^\s)\x22'>]{0,200}(?:[{}<$]|\[|%7b|%5b|\?[^\s)]{0,100}(?:data|query|q|conversation|history|info|secret|password|email|summary|prompt|chat|content|user|msg|text|payload)=)|\b(?:append|add|include|insert|concatenate|encode|put)\b[^.!?\n]{0,60}\b(?:to|in|into|at the end of)\b[^.!?\n]{0,30}\b(?:url|link|image|query string|query parameter)\b|\b(?:append|add|include|insert|attach|embed|render|show)\b (?:a |an |the |this )?(?:link|url|image|pixel)\b[^.!?\n]{0,80}https?://[^\s]{0,200}=(?:\s|$)|https?://[^\s]{0,200}=\s?(?:\+|followed by|plus|then|with|containing|<|\{|\[)",
    ),
    (
        Signal::MarkdownImage,
        r"!\[[^\]\n]{0,80}\]\(\s*(?:https?:)?//|<img[^>]{0,80}src=\s*[\x22']?(?:https?:)?//",
    ),
    (
        Signal::ActiveHtml,
        r"<script\b|\bon(?:error|load|click|mouseover)\s*=|javascript:|<iframe\b",
    ),
    // Text that speaks to the AI reading it: what instructions planted in a ticket, an
    // article or a web page do. Not a greeting ("hi bot") or "if you're a bot" (customers
    // say both); the noun list leaves out "agent" and "model" alone (a support agent, a
    // product model).
    (
        Signal::AddressesAi,
        r"\b(?:(?:note|instruction|reminder|memo|directive|command)s?|p\.? ?s\.?) (?:to|for) (?:the |any |all |every |an? |our |your |this )?(?:[a-z]+ )?(?:ai|a\.i\.|bots?|chatbots?|assistants?|llms?|language models?|ai (?:assistants?|agents?|models?|systems?)|automated (?:agents?|systems?|assistants?|tools?)|virtual assistants?|gpt|chatgpt)\b ?(?:[:,;\]\-]|reading\b|processing\b|summari[sz]ing\b|handling\b|parsing\b|analy[sz]ing\b|that\b|who\b|which\b|$)|\b(?:ai|a\.i\.|bots?|chatbots?|assistants?|llms?|language models?|ai (?:assistants?|agents?|models?|systems?)|automated (?:agents?|systems?|assistants?|tools?)|virtual assistants?|gpt|chatgpt) (?:that is |who is |which is |that's )?(?:reading|processing|summari[sz]ing|parsing|analy[sz]ing|ingesting|scanning) (?:this|these|the following)\b|\b(?:attention|important|urgent|warning|notice)\W{0,3}(?:to |for )?(?:the |all |any )?(?:ai|a\.i\.|bots?|chatbots?|assistants?|llms?|language models?|ai (?:assistants?|agents?|models?|systems?)|automated (?:agents?|systems?|assistants?|tools?)|virtual assistants?|gpt|chatgpt) ?[:,!\-]|\bif you(?: are|'re) an? (?:ai|language model|llm|ai (?:assistant|model|agent|system)|automated (?:agent|system|assistant))\b",
    ),
];

/// The index of the role-line rule in [`PHRASES`].
const ROLE_LINE: usize = 3;

/// Each phrase rule as one regular expression per top-level alternative.
///
/// One regex per alternative, not one per rule (and not one set for all rules): a DFA tracks
/// the partial matches of all its alternatives at once, and the bounded repetitions
/// (`[^.!?\n]{0,60}` after common words) multiply into more states than its cache holds, so
/// it kept rebuilding states on every input. Small DFAs skip ahead with their literal
/// prefilters; the rule's match is the leftmost of its alternatives' matches (the first
/// alternative on a tie), which is what the whole pattern matches.
///
/// A very short text (a one-line request) is searched with each rule as one regex instead:
/// a search has a fixed cost of a few hundred instructions, which is most of the work there.
/// Measured with callgrind in the invoke benchmark: a 23-byte input's whole scan takes 20k
/// instructions with whole patterns against 27k split; a tool result of a few hundred bytes
/// spends 31k on its phrase searches whole against 26k split. Both give the same match.
struct Phrases {
    /// Per rule, its alternatives (or runs of plain ones) as regexes.
    rules: Vec<Vec<Regex>>,
    /// Per rule, the whole pattern as one regex.
    whole: Vec<Regex>,
    /// One pass over a long text for the literals every match of a split regex holds
    /// ([`Phrases::armed`]): a regex none of whose literals occur cannot match, and is not
    /// run. The gate holds the split regexes of all rules in order, `offset[rule]` first.
    gate: Gate,
    offset: Vec<usize>,
}

/// Texts up to this many bytes are searched with [`Phrases::whole`].
const SHORT_TEXT: usize = 128;

impl Phrases {
    /// The match of rule `i` in `text`, if any. `armed` is [`Phrases::armed`] of `text`
    /// (computed once per text for all rules; unused for a short text).
    fn find<'t>(&self, i: usize, text: &'t str, armed: &Armed) -> Option<regex::Match<'t>> {
        if text.len() <= SHORT_TEXT {
            return self.whole[i].find(text);
        }
        self.find_split(i, text, armed)
    }

    /// The split regexes the literals in `text` arm (with those always run). Nothing for
    /// a short text, which [`Phrases::find`] searches with whole patterns.
    fn armed(&self, text: &str) -> Armed {
        if text.len() <= SHORT_TEXT {
            return Armed::default();
        }
        self.gate.armed(text)
    }

    /// The match of rule `i` in `text` from its armed alternatives' regexes.
    fn find_split<'t>(&self, i: usize, text: &'t str, armed: &Armed) -> Option<regex::Match<'t>> {
        let mut best: Option<regex::Match<'t>> = None;
        let offset = self.offset[i];
        for (k, re) in self.rules[i].iter().enumerate() {
            if !armed.has(offset + k) {
                continue;
            }
            if let Some(m) = re.find(text)
                && best.is_none_or(|b| m.start() < b.start())
            {
                best = Some(m);
            }
        }
        best
    }

    fn new() -> Self {
        let whole: Vec<Regex> = PHRASES
            .iter()
            .map(|(_, p)| {
                let p = ascii_word_boundaries(p);
                Regex::new(&p).unwrap_or_else(|e| panic!("guardrail phrase rule {p}: {e}"))
            })
            .collect();
        let rules: Vec<Vec<Regex>> = PHRASES
            .iter()
            .map(|(_, p)| {
                alternatives(&ascii_word_boundaries(p))
                    .iter()
                    .map(|a| {
                        Regex::new(a).unwrap_or_else(|e| panic!("guardrail phrase rule {a}: {e}"))
                    })
                    .collect()
            })
            .collect();
        let offset = rules
            .iter()
            .scan(0, |at, alts| {
                let first = *at;
                *at += alts.len();
                Some(first)
            })
            .collect();
        let gate = Gate::new(rules.iter().flatten().map(Regex::as_str), false)
            .unwrap_or_else(|e| panic!("guardrail phrase gate: {e}"));
        Self {
            rules,
            whole,
            gate,
            offset,
        }
    }
}

/// `pattern` split into the patterns the scan runs: its top-level alternatives, with runs of
/// consecutive plain ones kept together (one prefilter pass covers them). Plain: it starts
/// with one of at most 24 literals of two bytes or more (its prefilter), and has no bounded
/// repetition of 10 or more; a group holds at most 48 such literals. In order, so that the first on a tie is the first alternative.
fn alternatives(pattern: &str) -> Vec<String> {
    use regex_syntax::hir::{Hir, HirKind};
    let hir = regex_syntax::Parser::new()
        .parse(pattern)
        .unwrap_or_else(|e| panic!("guardrail phrase rule {pattern}: {e}"));
    let alts: Vec<Hir> = match hir.kind() {
        HirKind::Alternation(alts) => alts.clone(),
        // The parser lifts a common prefix out (`\bA|\bB` is read as `\b(?:A|B)`): put it
        // back in front of each alternative.
        HirKind::Concat(parts) => match parts.split_last().map(|(l, p)| (l.kind(), p)) {
            Some((HirKind::Alternation(alts), prefix)) => alts
                .iter()
                .map(|a| {
                    let mut seq = prefix.to_vec();
                    seq.push(a.clone());
                    Hir::concat(seq)
                })
                .collect(),
            _ => vec![hir.clone()],
        },
        _ => vec![hir.clone()],
    };
    let mut out: Vec<String> = Vec::new();
    let mut plain: Vec<Hir> = Vec::new();
    let mut literals = 0;
    for a in alts {
        let prefixes = literal_prefixes(&a);
        if has_long_bounded_repetition(&a) || prefixes.is_none() {
            if !plain.is_empty() {
                out.push(Hir::alternation(std::mem::take(&mut plain)).to_string());
            }
            literals = 0;
            out.push(a.to_string());
            continue;
        }
        let n = prefixes.unwrap_or(0);
        // A group's prefilter stays a small literal searcher (Teddy holds up to 64).
        if literals + n > 48 && !plain.is_empty() {
            out.push(Hir::alternation(std::mem::take(&mut plain)).to_string());
            literals = 0;
        }
        literals += n;
        plain.push(a);
    }
    if !plain.is_empty() {
        out.push(Hir::alternation(plain).to_string());
    }
    out
}

/// How many literals every match of `hir` starts with one of, when they are 2+ bytes long
/// and at most 24.
fn literal_prefixes(hir: &regex_syntax::hir::Hir) -> Option<usize> {
    let seq = regex_syntax::hir::literal::Extractor::new().extract(hir);
    let n = seq.len()?;
    (seq.min_literal_len().is_some_and(|n| n >= 2) && n <= 24).then_some(n)
}

/// Whether `hir` holds a repetition bounded at 10 or more (`[^.!?\n]{0,60}`): the part of
/// a pattern that multiplies DFA states when alternatives share one automaton.
fn has_long_bounded_repetition(hir: &regex_syntax::hir::Hir) -> bool {
    use regex_syntax::hir::HirKind;
    match hir.kind() {
        HirKind::Repetition(r) => {
            r.max.is_some_and(|m| m >= 10) || has_long_bounded_repetition(&r.sub)
        }
        HirKind::Capture(c) => has_long_bounded_repetition(&c.sub),
        HirKind::Concat(v) | HirKind::Alternation(v) => v.iter().any(has_long_bounded_repetition),
        _ => false,
    }
}

static PHRASE_SET: LazyLock<Phrases> = LazyLock::new(Phrases::new);

// ---------------------------------------------------------------------------------------
// Hashing

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

fn hash_bytes(b: &[u8]) -> u64 {
    let mut h = FNV_OFFSET;
    for &x in b {
        h ^= u64::from(x);
        h = h.wrapping_mul(FNV_PRIME);
    }
    mix(h)
}

/// splitmix64's finaliser: spreads the hash over the high bits used as the index.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

const SALT_WORD: u64 = 0x5151_0001;
const SALT_BIGRAM: u64 = 0x5151_0002;
const SALT_CHAR: u64 = 0x5151_0003;

// ---------------------------------------------------------------------------------------
// The model

/// The embedded model: hashed n-gram weights and signal weights of a logistic regression.
const EMBEDDED_MODEL: &[u8] = include_bytes!("../../guardrails-data/model/injection-v4.bin");
const MAGIC: &[u8] = b"FDGM1\n";

/// A linear model over hashed n-grams and signals (see `guardrails-data/train.py`).
#[derive(Debug)]
pub struct Model {
    pub version: String,
    bits: u32,
    scale: f32,
    bias: f32,
    /// Window and stride in tokens: a long text is scored per window, the maximum counts.
    window: usize,
    stride: usize,
    /// When the bias and the signals alone say attack (log-odds above 0), the n-gram part is
    /// not below `-floor`: wording learned from the corpora may temper structural evidence,
    /// not erase it.
    floor: Option<f32>,
    signal_weights: Vec<f32>,
    weights: Vec<i8>,
}

#[derive(Deserialize)]
struct Header {
    version: String,
    bits: u32,
    scale: f32,
    bias: f32,
    window: usize,
    stride: usize,
    #[serde(default)]
    floor: Option<f32>,
    signals: HashMap<String, f32>,
}

impl Model {
    /// Parses a model file: `FDGM1\n`, a JSON header line, then `2^bits` signed bytes.
    pub fn parse(bytes: &[u8]) -> Result<Model, String> {
        let rest = bytes
            .strip_prefix(MAGIC)
            .ok_or("not a guardrail model file (bad magic)")?;
        let nl = rest
            .iter()
            .position(|b| *b == b'\n')
            .ok_or("model header is not terminated")?;
        let header: Header =
            serde_json::from_slice(&rest[..nl]).map_err(|e| format!("model header: {e}"))?;
        if !(8..=24).contains(&header.bits) {
            return Err(format!("model bits {} out of 8..=24", header.bits));
        }
        let body = &rest[nl + 1..];
        if body.len() != 1 << header.bits {
            return Err(format!(
                "model body has {} bytes, expected {}",
                body.len(),
                1u64 << header.bits
            ));
        }
        if header.window == 0 || header.stride == 0 || header.stride > header.window {
            return Err("model window/stride invalid".into());
        }
        let mut signal_weights = vec![0.0; Signal::ALL.len()];
        for (name, w) in &header.signals {
            let s = Signal::parse(name)
                .ok_or_else(|| format!("model names an unknown signal {name}"))?;
            signal_weights[s as usize] = *w;
        }
        Ok(Model {
            version: header.version,
            bits: header.bits,
            scale: header.scale,
            bias: header.bias,
            window: header.window,
            stride: header.stride,
            floor: header.floor,
            signal_weights,
            weights: body.iter().map(|b| *b as i8).collect(),
        })
    }

    /// The model compiled into the binary.
    pub fn embedded() -> &'static Model {
        static MODEL: LazyLock<Model> = LazyLock::new(|| {
            Model::parse(EMBEDDED_MODEL).unwrap_or_else(|e| panic!("embedded guardrail model: {e}"))
        });
        &MODEL
    }

    pub fn signal_weight(&self, s: Signal) -> f32 {
        self.signal_weights[s as usize]
    }

    fn index(&self, h: u64) -> usize {
        (h >> (64 - self.bits)) as usize
    }
}

// ---------------------------------------------------------------------------------------
// Scanning

/// A reason for a score: a signal that fired, with its weight (log-odds) in this decision.
#[derive(Debug, Clone, PartialEq)]
pub struct Reason {
    /// The signal's name, or `classifier` for the n-gram part of the model.
    pub name: &'static str,
    pub category: Category,
    /// The contribution to the log-odds of an attack.
    pub weight: f32,
    /// A short excerpt of the normalised text that fired it, when there is one.
    pub evidence: Option<String>,
}

/// The result of scanning one text.
#[derive(Debug, Clone, PartialEq)]
pub struct Scan {
    /// Probability-like score of an attack, 0..1.
    pub score: f32,
    /// The category with the largest positive contribution (prompt injection when only the
    /// classifier spoke).
    pub category: Category,
    /// The signals that fired and the classifier's part, largest contribution first.
    pub reasons: Vec<Reason>,
}

/// The signals and n-gram features of one text, before weighting.
#[derive(Debug, Default)]
pub struct Analysis {
    pub normalised: Normalised,
    pub decoded: Vec<Decoded>,
    pub signals: Vec<(Signal, Option<String>)>,
    /// The text the signals are read from: the normalised text and every decoded payload.
    pub scan_text: String,
    /// The text the n-grams are read from: `scan_text` with each URL read as the word
    /// "url" and its host (a URL's random characters are not wording to learn; whether it
    /// carries data is the `exfil_link` signal's question).
    pub gram_text: String,
}

/// Reads the structural signals of `text`; decodes payloads up to two levels deep.
pub fn analyse(text: &str) -> Analysis {
    analyse_normalised(text, normalise(text))
}

/// [`analyse`] with `normalised`, the normalisation of `text`, already computed (the policy
/// normalises once for its own patterns and the scan).
pub fn analyse_normalised(text: &str, normalised: Normalised) -> Analysis {
    let mut decoded = decode_payloads(text);
    // One more level: a payload inside a payload (base64 of hex, ...).
    let mut nested = Vec::new();
    for d in &decoded {
        nested.extend(decode_payloads(&d.text));
    }
    decoded.extend(nested);

    let mut scan_text = normalised.text.clone();
    let mut decoded_norm = Vec::with_capacity(decoded.len());
    for d in &decoded {
        let n = normalise(&d.text);
        scan_text.push_str(" \n ");
        scan_text.push_str(&n.text);
        decoded_norm.push(n);
    }

    let mut signals: Vec<(Signal, Option<String>)> = Vec::new();
    let mut add = |s: Signal, evidence: Option<String>| {
        if !signals.iter().any(|(x, _)| *x == s) {
            signals.push((s, evidence));
        }
    };
    let t = &normalised.tricks;
    if t.tag_chars >= 4 || decoded_norm.iter().any(|n| n.tricks.tag_chars >= 4) {
        add(Signal::UnicodeTags, None);
    }
    if t.invisible >= 2 {
        add(Signal::InvisibleChars, None);
    }
    if t.mixed_script_words >= 1 {
        add(Signal::MixedScript, None);
    }
    if t.spaced_runs >= 1 {
        add(Signal::SpacedLetters, None);
    }
    if t.leet_words >= 2 {
        add(Signal::Leetspeak, None);
    }
    if let Some(d) = decoded.first() {
        add(
            Signal::DecodedPayload,
            Some(format!(
                "{}: {}",
                d.encoding.as_str(),
                excerpt(&d.text, 0, d.text.len())
            )),
        );
    }
    // Structural rules read the normalised text and every decoded payload.
    sentence_rules(&scan_text, &mut add);
    // Each rule on its own (see `Phrases`); the first match is the evidence.
    let phrases = &*PHRASE_SET;
    let mut role_line = false;
    let armed = phrases.armed(&scan_text);
    for (i, (signal, _)) in PHRASES.iter().enumerate() {
        if let Some(m) = phrases.find(i, &scan_text, &armed) {
            role_line |= i == ROLE_LINE;
            add(*signal, Some(excerpt(&scan_text, m.start(), m.end())));
        }
    }
    // Lines are read from the text as written (the normalised text is one line): a line
    // that speaks as the system or assistant, and fake conversations (two or more lines
    // that start with a role).
    let lowered = text.to_ascii_lowercase();
    // (`add` keeps the first evidence of a signal, so the normalised text's wins.)
    // One rule on one text: its regexes are cheaper than the gate's pass over all literals.
    if !role_line && let Some(m) = phrases.find(ROLE_LINE, &lowered, &Armed::ALL) {
        add(
            Signal::RoleLine,
            Some(excerpt(&lowered, m.start(), m.end())),
        );
    }
    let turns = lowered
        .split('\n')
        .filter(|l| {
            let l = l.trim_start();
            ["user:", "human:", "assistant:", "ai:", "system:", "bot:"]
                .iter()
                .any(|p| l.starts_with(p))
        })
        .count();
    if turns >= 2 {
        add(Signal::FakeTurns, None);
    }
    signals.sort_by_key(|(s, _)| *s);
    let gram_text = if scan_text.contains("://") {
        URL.replace_all(&scan_text, " url $host ").into_owned()
    } else {
        scan_text.clone()
    };
    Analysis {
        normalised,
        decoded,
        signals,
        scan_text,
        gram_text,
    }
}

static URL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[a-z][a-z0-9+.-]{1,15}://(?P<host>[^\s/?#)\]>\x22']{1,100})[^\s)\]>\x22']*")
        .unwrap_or_else(|e| panic!("url pattern: {e}"))
});

/// A short excerpt around `start..end` (whole characters, at most ~80 bytes).
fn excerpt(text: &str, start: usize, end: usize) -> String {
    let end = text.floor_char_boundary(end.min(start + 80));
    let start = text.floor_char_boundary(start);
    text[start..end].trim().to_string()
}

/// Tokens of a normalised text: runs of ASCII letters, digits and apostrophes, or of other
/// alphanumeric characters; with their byte ranges and their sentence number.
fn for_each_token(text: &str, mut f: impl FnMut(usize, usize, u32)) {
    let b = text.as_bytes();
    let mut sentence = 0u32;
    let mut i = 0;
    while i < b.len() {
        let c = TOKEN_BYTES[usize::from(b[i])];
        if c & T_START != 0 {
            let start = i;
            i += 1;
            while i < b.len() && TOKEN_BYTES[usize::from(b[i])] & T_CONTINUE != 0 {
                i += 1;
            }
            // Non-ASCII punctuation is part of the run; fine for hashing.
            f(start, i, sentence);
            continue;
        }
        if c & T_SENTENCE != 0 {
            sentence += 1;
        }
        i += 1;
    }
}

/// A byte that starts a token: an ASCII letter or digit, or any byte of a non-ASCII
/// character.
const T_START: u8 = 1;
/// A byte that continues a token: those, and the apostrophe.
const T_CONTINUE: u8 = 2;
/// A byte that ends a sentence: `.`, `!`, `?`, `;` or a newline.
const T_SENTENCE: u8 = 4;

/// [`for_each_token`]'s byte classes, one table lookup per byte.
static TOKEN_BYTES: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        if b.is_ascii_alphanumeric() || b >= 0x80 {
            t[i] = T_START | T_CONTINUE;
        } else if b == b'\'' {
            t[i] = T_CONTINUE;
        } else if matches!(b, b'.' | b'!' | b'?' | b'\n' | b';') {
            t[i] = T_SENTENCE;
        }
        i += 1;
    }
    t
};

/// The sentence rules: combinations of word classes within one sentence, at any distance.
fn sentence_rules(text: &str, add: &mut impl FnMut(Signal, Option<String>)) {
    let classes = &*CLASSES;
    let mut current = u32::MAX;
    let mut start = 0usize;
    // Per sentence: what has been seen so far, in order.
    let mut seen = 0u32;
    let mut neg_recent = 0u8;
    let mut prev_system = false;
    // The classes of the two previous tokens in the sentence.
    let mut prev = [0u32; 2];
    // A prompt request that only weak adjectives made, confirmed unless the next token
    // says the instructions are of a thing.
    let mut pending_prompt: Option<usize> = None;
    let mut pending_override: Option<(Signal, usize)> = None;
    let mut prev_never = false;
    let mut fired: Vec<(Signal, usize)> = Vec::new();
    let check = |sig: Signal, s: usize, fired: &mut Vec<(Signal, usize)>| {
        if !fired.iter().any(|(x, _)| *x == sig) {
            fired.push((sig, s));
        }
    };
    for_each_token(text, |s, e, sentence| {
        let word = &text.as_bytes()[s..e];
        let mut c = classes.get(word);
        if let Some(at) = pending_prompt.take()
            && (sentence != current || c & OF_THING == 0)
        {
            check(Signal::PromptRequest, at, &mut fired);
        }
        if let Some((sig, at)) = pending_override.take()
            && (sentence != current || c & OWN == 0)
        {
            check(sig, at, &mut fired);
        }
        if sentence != current {
            current = sentence;
            start = s;
            seen = 0;
            neg_recent = 0;
            prev_system = false;
            prev = [0; 2];
        }
        // "do not follow", "stop obeying": a negated follow verb overrides; so does "never
        // mind".
        if c & FOLLOW != 0 && neg_recent > 0 || word == b"mind" && prev_never {
            c |= OVERRIDE;
        }
        prev_never = word == b"never";
        // "system prompt", and "system message" / "developer message" (a message is the
        // prompt only after a role).
        let system_prompt =
            prev_system && (c & PROMPT != 0 || matches!(word, b"message" | b"messages"));
        if c & OVERRIDE != 0 {
            seen |= OVERRIDE;
        } else if c & INSTR != 0 && seen & OVERRIDE != 0 && prev[0] & OWN == 0 {
            // Confirmed at the next token unless it says the instructions are the writer's
            // own ("the previous instructions I sent the installer").
            let sig = if seen & PRIOR != 0 || c & PRIOR != 0 {
                Signal::OverridePrior
            } else {
                Signal::OverrideBare
            };
            pending_override = Some((sig, start));
        }
        // "forget everything", "ignore the above", "disregard everything above".
        if seen & OVERRIDE != 0 && c & OVERRIDE == 0 {
            if word == b"above" && prev[0] & THE_ALL != 0 {
                check(Signal::OverridePrior, start, &mut fired);
            } else if c & EVERYTHING != 0 {
                check(Signal::OverrideBare, start, &mut fired);
            }
        }
        if c & PRIOR != 0 && seen & OVERRIDE != 0 {
            seen |= PRIOR;
        }
        // "your system prompt", "the hidden instructions", "the exact initial prompt you were
        // given"; not "a system prompt" (a question about the concept) nor "the original
        // instructions for the blender".
        let generic = (prev[0] | prev[1]) & GENERIC != 0;
        if (c & PROMPT != 0 || system_prompt) && seen & OUTPUT != 0 && !generic {
            if seen & SELF_REF != 0 || system_prompt {
                check(Signal::PromptRequest, start, &mut fired);
            } else if seen & WEAK_SELF_REF != 0 {
                pending_prompt = Some(start);
            }
        }
        if c & OUTPUT != 0 {
            seen |= OUTPUT;
        }
        if c & SELF_REF != 0 && seen & OUTPUT != 0 {
            seen |= SELF_REF;
        }
        if c & WEAK_SELF_REF != 0 && seen & OUTPUT != 0 {
            seen |= WEAK_SELF_REF;
        }
        if c & TRAIT != 0 && seen & PERSONA_VERB != 0 || c & PERSONA_VERB != 0 && seen & TRAIT != 0
        {
            check(Signal::Persona, start, &mut fired);
        }
        if c & PERSONA_VERB != 0 {
            seen |= PERSONA_VERB;
        }
        if c & TRAIT != 0 {
            seen |= TRAIT;
        }
        // "you have no restrictions", "an AI without filters"; not "the parental controls
        // have no restrictions set".
        if c & LIMIT != 0 && seen & FREE != 0 && seen & (ADDRESSEE | TRAIT | PERSONA_VERB) != 0 {
            check(Signal::NoLimits, start, &mut fired);
        }
        if c & ADDRESSEE != 0 {
            seen |= ADDRESSEE;
        }
        if c & FREE != 0 {
            seen |= FREE;
        }
        if c & REFUSE != 0 && seen & NEG != 0 {
            check(Signal::RefusalSuppression, start, &mut fired);
        }
        if c & NEG != 0 {
            seen |= NEG;
            neg_recent = 3;
        } else {
            neg_recent = neg_recent.saturating_sub(1);
        }
        if (c & ENCODING != 0 && seen & DECODE != 0) || (c & DECODE != 0 && seen & ENCODING != 0) {
            check(Signal::DecodeRequest, start, &mut fired);
        }
        if c & DECODE != 0 {
            seen |= DECODE;
        }
        if c & ENCODING != 0 {
            seen |= ENCODING;
        }
        prev_system = c & SYSTEM != 0;
        prev = [c, prev[0]];
    });
    if let Some(at) = pending_prompt {
        check(Signal::PromptRequest, at, &mut fired);
    }
    if let Some((sig, at)) = pending_override {
        check(sig, at, &mut fired);
    }
    for (sig, s) in fired {
        let end = text[s..]
            .find(['.', '!', '?', '\n', ';'])
            .map_or(text.len(), |e| s + e);
        add(sig, Some(excerpt(text, s, end)));
    }
}

/// Calls `f(index_hash, token_number)` for every n-gram occurrence of `text`: word
/// unigrams, word bigrams and character 4-grams (with a leading space) of each token.
fn for_each_gram(text: &str, mut f: impl FnMut(u64, usize)) {
    let b = text.as_bytes();
    let mut prev: Option<u64> = None;
    let mut n = 0usize;
    for_each_token(text, |s, e, _| {
        let w = hash_bytes(&b[s..e]);
        f(mix(w ^ SALT_WORD), n);
        if let Some(p) = prev {
            f(mix(p.rotate_left(23) ^ w ^ SALT_BIGRAM), n);
        }
        prev = Some(w);
        let from = s.saturating_sub(1);
        if e - from >= 4 {
            // Each 4-gram is the previous one shifted by a byte (little-endian).
            let mut g = u32::from_le_bytes([b[from], b[from + 1], b[from + 2], b[from + 3]]);
            f(mix(u64::from(g) ^ SALT_CHAR), n);
            for &x in &b[from + 4..e] {
                g = (g >> 8) | (u32::from(x) << 24);
                f(mix(u64::from(g) ^ SALT_CHAR), n);
            }
        } else {
            let mut g = [b' '; 4];
            g[..e - from].copy_from_slice(&b[from..e]);
            f(mix(u64::from(u32::from_le_bytes(g)) ^ SALT_CHAR), n);
        }
        n += 1;
    });
}

/// The windows of a text of `tokens` tokens: `(first, end)` token ranges.
fn windows(tokens: usize, window: usize, stride: usize) -> Vec<(usize, usize)> {
    if tokens <= window {
        return vec![(0, tokens)];
    }
    let mut out = Vec::new();
    let mut s = 0;
    loop {
        let e = (s + window).min(tokens);
        out.push((s, e));
        if e == tokens {
            break;
        }
        s += stride;
    }
    out
}

/// One training example's features: hashed n-gram indices with values, and the signals.
#[derive(Debug, Clone, PartialEq)]
pub struct Features {
    pub grams: Vec<(u32, f32)>,
    pub signals: Vec<&'static str>,
}

/// The features the model reads, one per window (for training).
pub fn features(model_bits: u32, text: &str) -> Vec<Features> {
    let a = analyse(text);
    let signals: Vec<&'static str> = a.signals.iter().map(|(s, _)| s.as_str()).collect();
    let (window, stride) = {
        let m = Model::embedded();
        (m.window, m.stride)
    };
    let mut grams: Vec<(u64, usize)> = Vec::new();
    for_each_gram(&a.gram_text, |h, t| grams.push((h, t)));
    let tokens = grams.last().map_or(0, |g| g.1 + 1);
    windows(tokens, window, stride)
        .into_iter()
        .map(|(s, e)| {
            let mut counts: HashMap<u32, f32> = HashMap::new();
            let mut n = 0usize;
            for (h, t) in &grams {
                if *t >= s && *t < e {
                    *counts.entry((h >> (64 - model_bits)) as u32).or_default() += 1.0;
                    n += 1;
                }
            }
            let norm = (n.max(1) as f32).sqrt();
            let mut grams: Vec<(u32, f32)> =
                counts.into_iter().map(|(i, c)| (i, c / norm)).collect();
            grams.sort_by_key(|g| g.0);
            Features {
                grams,
                signals: signals.clone(),
            }
        })
        .collect()
}

/// Scans `text` with `model`; `signal_bias` adds policy weights per signal (log-odds).
pub fn scan(model: &Model, text: &str, signal_bias: &[f32]) -> Scan {
    score(model, analyse(text), signal_bias)
}

/// [`scan`] with the normalisation of `text` already computed.
pub fn scan_normalised(
    model: &Model,
    text: &str,
    normalised: Normalised,
    signal_bias: &[f32],
) -> Scan {
    score(model, analyse_normalised(text, normalised), signal_bias)
}

fn score(model: &Model, a: Analysis, signal_bias: &[f32]) -> Scan {
    // Per-token sums of n-gram weights, then windows over them.
    let mut token_sum: Vec<f32> = Vec::with_capacity(a.gram_text.len() / 5 + 1);
    let mut token_count: Vec<u32> = Vec::with_capacity(a.gram_text.len() / 5 + 1);
    // A token's grams come together (tokens in order): sum them in locals, push per token.
    let (mut current, mut sum, mut count) = (usize::MAX, 0f32, 0u32);
    for_each_gram(&a.gram_text, |h, t| {
        if t != current {
            if current != usize::MAX {
                token_sum.push(sum);
                token_count.push(count);
            }
            (current, sum, count) = (t, 0.0, 0);
        }
        sum += f32::from(model.weights[model.index(h)]);
        count += 1;
    });
    if current != usize::MAX {
        token_sum.push(sum);
        token_count.push(count);
    }
    let mut best = f32::NEG_INFINITY;
    if token_sum.is_empty() {
        best = 0.0;
    }
    for (s, e) in windows(token_sum.len(), model.window, model.stride) {
        let sum: f32 = token_sum[s..e].iter().sum();
        let n: u32 = token_count[s..e].iter().sum();
        let v = sum * model.scale / (n.max(1) as f32).sqrt();
        best = best.max(v);
    }
    let mut reasons = Vec::with_capacity(a.signals.len() + 1);
    let mut logit = model.bias;
    for (s, evidence) in &a.signals {
        let w = model.signal_weight(*s) + signal_bias.get(*s as usize).copied().unwrap_or(0.0);
        logit += w;
        reasons.push(Reason {
            name: s.as_str(),
            category: s.category(),
            weight: w,
            evidence: evidence.clone(),
        });
    }
    // The structure alone (bias and signals) says attack: the n-grams may temper it by at
    // most the floor.
    if logit > 0.0
        && let Some(floor) = model.floor
    {
        best = best.max(-floor);
    }
    logit += best;
    reasons.push(Reason {
        name: "classifier",
        category: Category::PromptInjection,
        weight: best,
        evidence: None,
    });
    reasons.sort_by(|a, b| b.weight.total_cmp(&a.weight));
    // The category: the largest sum of positive signal weights; obfuscation only when no
    // other category spoke (the hidden text's own category is what it is).
    let mut by_cat = [0f32; 5];
    for r in &reasons {
        if r.name != "classifier" && r.weight > 0.0 {
            by_cat[r.category as usize] += r.weight;
        }
    }
    let category = Category::ALL
        .into_iter()
        .filter(|c| *c != Category::Obfuscation)
        .max_by(|x, y| by_cat[*x as usize].total_cmp(&by_cat[*y as usize]))
        .filter(|c| by_cat[*c as usize] > 0.0)
        .unwrap_or(Category::PromptInjection);
    Scan {
        score: 1.0 / (1.0 + (-logit).exp()),
        category,
        reasons,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A rule searched alternative by alternative finds what the whole pattern finds: the
    /// same span on every corpus text and every 4,000-character mix of them, read as the
    /// scan reads them.
    #[test]
    fn split_phrase_rules_match_like_the_whole_pattern() {
        let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("guardrails-data/corpus/dev.jsonl");
        let mut texts: Vec<String> = std::fs::read_to_string(corpus)
            .unwrap()
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                v["text"].as_str().unwrap().to_string()
            })
            .collect();
        // And the texts run together into ~4,000-character mixes, as the benchmark reads.
        let mixes: Vec<String> = texts
            .chunks(40)
            .map(|c| c.join("\n").chars().take(4000).collect())
            .collect();
        texts.extend(mixes);
        let phrases = &*PHRASE_SET;
        let mut long = 0;
        let mut matched = 0;
        for text in &texts {
            let a = analyse(text);
            for read in [a.scan_text.clone(), text.to_ascii_lowercase()] {
                long += usize::from(read.len() > SHORT_TEXT);
                let armed = phrases.armed(&read);
                for (i, (signal, _)) in PHRASES.iter().enumerate() {
                    let whole = phrases.whole[i].find(&read).map(|m| m.range());
                    let split = phrases.find_split(i, &read, &Armed::ALL).map(|m| m.range());
                    assert_eq!(split, whole, "rule {} on {read:?}", signal.as_str());
                    if read.len() > SHORT_TEXT {
                        let gated = phrases.find_split(i, &read, &armed).map(|m| m.range());
                        assert_eq!(gated, whole, "gated rule {} on {read:?}", signal.as_str());
                    }
                    matched += usize::from(whole.is_some());
                }
            }
        }
        // The check saw long texts and matches, not only misses.
        assert!(
            long >= 64 && matched >= 500,
            "{long} long texts, {matched} matches"
        );
    }
}
