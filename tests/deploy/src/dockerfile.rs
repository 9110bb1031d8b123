//! deploy/Dockerfile as a list of instructions grouped into build stages (hadolint is not
//! packaged for Debian, so the policy tests read the file themselves).

/// One instruction: `RUN`, `COPY`, … with its arguments, continuation lines joined.
#[derive(Debug, Clone, PartialEq)]
pub struct Instruction {
    /// 1-based line where the instruction starts.
    pub line: usize,
    /// Upper-cased keyword.
    pub keyword: String,
    pub args: String,
}

/// A build stage: its `FROM` image, its optional `AS` name and its instructions.
#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    pub image: String,
    pub name: Option<String>,
    pub instructions: Vec<Instruction>,
}

impl Stage {
    /// The instructions with this keyword.
    pub fn all<'a>(&'a self, keyword: &'a str) -> impl Iterator<Item = &'a Instruction> + 'a {
        self.instructions
            .iter()
            .filter(move |i| i.keyword == keyword)
    }

    /// The last instruction with this keyword (the one that takes effect).
    pub fn last<'a>(&'a self, keyword: &'a str) -> Option<&'a Instruction> {
        self.all(keyword).last()
    }
}

/// Splits a Dockerfile into stages. Comments and parser directives are dropped.
pub fn parse(text: &str) -> Result<Vec<Stage>, String> {
    let mut stages: Vec<Stage> = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (index, raw) in text.lines().enumerate() {
        let trimmed = raw.trim();
        if pending.is_none() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        if pending.is_some() && trimmed.starts_with('#') {
            continue;
        }
        let (start, mut joined) = pending.take().unwrap_or((index + 1, String::new()));
        let (body, continues) = match trimmed.strip_suffix('\\') {
            Some(body) => (body.trim_end(), true),
            None => (trimmed, false),
        };
        if !joined.is_empty() {
            joined.push(' ');
        }
        joined.push_str(body);
        if continues {
            pending = Some((start, joined));
            continue;
        }
        let (keyword, args) = match joined.split_once(char::is_whitespace) {
            Some((k, a)) => (k.to_ascii_uppercase(), a.trim().to_string()),
            None => (joined.to_ascii_uppercase(), String::new()),
        };
        let instruction = Instruction {
            line: start,
            keyword,
            args,
        };
        if instruction.keyword == "FROM" {
            let words: Vec<&str> = instruction
                .args
                .split_whitespace()
                .filter(|w| !w.starts_with("--"))
                .collect();
            let (image, name) = match words.as_slice() {
                [image] => (image.to_string(), None),
                [image, as_kw, name] if as_kw.eq_ignore_ascii_case("as") => {
                    (image.to_string(), Some(name.to_string()))
                }
                _ => {
                    return Err(format!(
                        "line {start}: cannot read FROM {}",
                        instruction.args
                    ));
                }
            };
            stages.push(Stage {
                image,
                name,
                instructions: Vec::new(),
            });
        } else {
            match stages.last_mut() {
                Some(stage) => stage.instructions.push(instruction),
                None if instruction.keyword == "ARG" => {}
                None => {
                    return Err(format!(
                        "line {start}: {} before the first FROM",
                        instruction.keyword
                    ));
                }
            }
        }
    }
    if let Some((start, _)) = pending {
        return Err(format!(
            "line {start}: the last instruction ends with a continuation"
        ));
    }
    Ok(stages)
}

/// The JSON array of an exec-form instruction (`CMD ["a", "b"]`), or None for shell form.
pub fn exec_form(args: &str) -> Option<Vec<String>> {
    serde_json::from_str(args.trim()).ok()
}

/// An image reference split into name, tag and digest.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageRef {
    pub name: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

/// Parses `registry/name:tag@sha256:…`.
pub fn image_ref(reference: &str) -> ImageRef {
    let (rest, digest) = match reference.split_once('@') {
        Some((r, d)) => (r, Some(d.to_string())),
        None => (reference, None),
    };
    // A ':' after the last '/' separates the tag (a registry port comes before a '/').
    let slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
    let (name, tag) = match rest[slash..].rfind(':') {
        Some(i) => (
            rest[..slash + i].to_string(),
            Some(rest[slash + i + 1..].to_string()),
        ),
        None => (rest.to_string(), None),
    };
    ImageRef { name, tag, digest }
}

/// True for `sha256:` followed by 64 lower-case hex digits.
pub fn is_sha256_digest(digest: &str) -> bool {
    digest.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64
            && hex
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    })
}
