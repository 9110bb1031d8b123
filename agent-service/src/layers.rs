//! The layering guard, run with the unit tests (`cargo test -p agent-service --lib
//! layers`): it reads every source file of this library, builds the file-level module
//! graph from the paths the code names, and fails when a module below the HTTP layers
//! names `startup`, `background` or `routes`, or when the graph has a cycle.
//!
//! An edge `a.rs -> b.rs` is any path in `a.rs` that starts with `crate::` or `super::`
//! (in `use` declarations or inline, e.g. `crate::db::Db::open(..)`), or with a module
//! imported through such a path (`use crate::db::approvals;` then `approvals::get(..)`),
//! and that lands in `b.rs`: the longest prefix of the path that is a source file. A
//! parent's `mod child;` declaration and its paths relative to its own children
//! (`pub use child::Item;`) are containment, not edges. Comments and string literals are
//! skipped; `super::` inside an inline module (`mod tests { use super::*; }`) climbs that
//! inline module first.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::Path;

/// The layers that may know the whole application state: start-up wiring, the
/// background tasks it starts, and the HTTP handlers. (`main.rs` is the binary, not a
/// module of this library, and is not read.)
const TOP: [&str; 3] = ["startup", "background", "routes"];

/// Where a path was named: a file (relative to `src/`), a line, and the path as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    pub file: String,
    pub line: usize,
    pub path: String,
}

/// The file-level module graph: for each file, the files it names, each with the first
/// place it does.
#[derive(Debug, Default)]
pub struct Graph {
    /// Module path (e.g. `db::approvals`, `""` for `lib.rs`) -> file.
    files: BTreeMap<String, String>,
    /// Per file, the names it re-exports (`pub use child::Item;`) -> the absolute path
    /// they stand for, so a path through a re-export lands where the item is defined.
    reexports: BTreeMap<String, BTreeMap<String, Vec<String>>>,
    edges: BTreeMap<String, BTreeMap<String, Site>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Ident(String),
    PathSep,
    Open,
    Close,
    Comma,
    Semi,
    Star,
    Other,
}

/// The module path of a source file relative to `src/`; `None` for the binary root.
fn module_of(rel: &str) -> Option<Vec<String>> {
    let rel = rel.strip_suffix(".rs")?;
    if rel == "main" {
        return None;
    }
    if rel == "lib" {
        return Some(Vec::new());
    }
    let mut segs: Vec<String> = rel.split('/').map(str::to_string).collect();
    if segs.last().is_some_and(|s| s == "mod") {
        segs.pop();
    }
    Some(segs)
}

/// Splits Rust source into the tokens paths are made of, with line numbers; comments,
/// string and char literals, lifetimes and numbers carry no path and become `Other` or
/// nothing.
fn tokens(src: &str) -> Vec<(Tok, usize)> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut line = 1;
    let ident_start = |c: u8| c.is_ascii_alphabetic() || c == b'_';
    let ident_char = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    // Skips a quoted literal starting at the quote `b[start]`; returns the index after it.
    let skip_quoted = |start: usize, line: &mut usize| -> usize {
        let mut j = start + 1;
        while j < b.len() {
            match b[j] {
                b'\\' => j += 2,
                b'"' => return j + 1,
                c => {
                    if c == b'\n' {
                        *line += 1;
                    }
                    j += 1;
                }
            }
        }
        j
    };
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        match c {
            b'\n' => {
                line += 1;
                i += 1;
            }
            _ if c.is_ascii_whitespace() => i += 1,
            b'/' if next == Some(b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if next == Some(b'*') => {
                let mut depth = 0;
                while i < b.len() {
                    if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                        depth += 1;
                        i += 2;
                    } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        if b[i] == b'\n' {
                            line += 1;
                        }
                        i += 1;
                    }
                }
            }
            b'"' => {
                i = skip_quoted(i, &mut line);
                out.push((Tok::Other, line));
            }
            b'\'' => {
                // A char literal ('x', '\n', '\u{..}') or a lifetime ('a).
                if next == Some(b'\\') {
                    let mut j = i + 2;
                    while j < b.len() && b[j] != b'\'' {
                        j += 1;
                    }
                    i = j + 1;
                } else if b.get(i + 2) == Some(&b'\'') {
                    i += 3;
                } else {
                    // A multi-byte char literal, or a lifetime.
                    let rest = &src[i + 1..];
                    match rest.chars().next() {
                        Some(ch) if rest[ch.len_utf8()..].starts_with('\'') => {
                            i += 1 + ch.len_utf8() + 1;
                        }
                        _ => {
                            i += 1;
                            while i < b.len() && ident_char(b[i]) {
                                i += 1;
                            }
                        }
                    }
                }
                out.push((Tok::Other, line));
            }
            _ if ident_start(c) => {
                // Raw strings (r"..", r#".."#, br".."), byte strings (b".."), raw idents.
                let raw_string = (c == b'r' && matches!(next, Some(b'"') | Some(b'#')))
                    || (c == b'b'
                        && next == Some(b'r')
                        && matches!(b.get(i + 2), Some(b'"') | Some(b'#')));
                if raw_string {
                    let mut j = i + if c == b'b' { 2 } else { 1 };
                    let mut hashes = 0;
                    while j < b.len() && b[j] == b'#' {
                        hashes += 1;
                        j += 1;
                    }
                    if j < b.len() && b[j] == b'"' {
                        let close: Vec<u8> = std::iter::once(b'"')
                            .chain(std::iter::repeat_n(b'#', hashes))
                            .collect();
                        j += 1;
                        while j < b.len() && !b[j..].starts_with(&close) {
                            if b[j] == b'\n' {
                                line += 1;
                            }
                            j += 1;
                        }
                        i = j + close.len();
                        out.push((Tok::Other, line));
                        continue;
                    }
                    if c == b'r' && hashes == 1 && j < b.len() && ident_start(b[j]) {
                        // r#ident
                        let start = j;
                        while j < b.len() && ident_char(b[j]) {
                            j += 1;
                        }
                        out.push((Tok::Ident(src[start..j].to_string()), line));
                        i = j;
                        continue;
                    }
                }
                if c == b'b' && next == Some(b'"') {
                    i = skip_quoted(i + 1, &mut line);
                    out.push((Tok::Other, line));
                    continue;
                }
                if c == b'b' && next == Some(b'\'') {
                    let mut j = i + 2;
                    if b.get(j) == Some(&b'\\') {
                        j += 1;
                    }
                    j += 1;
                    while j < b.len() && b[j] != b'\'' {
                        j += 1;
                    }
                    i = j + 1;
                    out.push((Tok::Other, line));
                    continue;
                }
                let start = i;
                while i < b.len() && ident_char(b[i]) {
                    i += 1;
                }
                out.push((Tok::Ident(src[start..i].to_string()), line));
            }
            _ if c.is_ascii_digit() => {
                while i < b.len() && (ident_char(b[i]) || b[i] == b'.') {
                    // `1..n`: stop before a range.
                    if b[i] == b'.' && b.get(i + 1) == Some(&b'.') {
                        break;
                    }
                    i += 1;
                }
                out.push((Tok::Other, line));
            }
            b':' if next == Some(b':') => {
                out.push((Tok::PathSep, line));
                i += 2;
            }
            b'{' => {
                out.push((Tok::Open, line));
                i += 1;
            }
            b'}' => {
                out.push((Tok::Close, line));
                i += 1;
            }
            b',' => {
                out.push((Tok::Comma, line));
                i += 1;
            }
            b';' => {
                out.push((Tok::Semi, line));
                i += 1;
            }
            b'*' => {
                out.push((Tok::Star, line));
                i += 1;
            }
            _ => {
                // Skip the rest of a multi-byte character.
                i += src[i..].chars().next().map_or(1, char::len_utf8);
                out.push((Tok::Other, line));
            }
        }
    }
    out
}

/// One leaf of a `use` tree: its segments as written, the name it binds (`None` for a
/// glob), and its line.
struct UseLeaf {
    segs: Vec<String>,
    binds: Option<String>,
    line: usize,
}

/// Expands the `use` tree in `toks` (between `use` and `;`).
fn use_leaves(toks: &[(Tok, usize)]) -> Vec<UseLeaf> {
    fn tree(toks: &[(Tok, usize)], i: &mut usize, prefix: &[String], out: &mut Vec<UseLeaf>) {
        let mut segs = prefix.to_vec();
        let mut line;
        loop {
            match toks.get(*i) {
                Some((Tok::Ident(s), l)) => {
                    line = *l;
                    segs.push(s.clone());
                    *i += 1;
                    if let (Some((Tok::Ident(kw), _)), Some((Tok::Ident(alias), _))) =
                        (toks.get(*i), toks.get(*i + 1))
                        && kw == "as"
                    {
                        *i += 2;
                        let binds = (alias != "_").then(|| alias.clone());
                        out.push(leaf(segs, binds, line));
                        return;
                    }
                    if matches!(toks.get(*i), Some((Tok::PathSep, _))) {
                        *i += 1;
                        continue;
                    }
                    let binds = segs.last().cloned();
                    out.push(leaf(segs, binds, line));
                    return;
                }
                Some((Tok::PathSep, _)) => *i += 1,
                Some((Tok::Star, l)) => {
                    *i += 1;
                    out.push(UseLeaf {
                        segs,
                        binds: None,
                        line: *l,
                    });
                    return;
                }
                Some((Tok::Open, _)) => {
                    *i += 1;
                    loop {
                        match toks.get(*i) {
                            None => return,
                            Some((Tok::Close, _)) => {
                                *i += 1;
                                return;
                            }
                            Some((Tok::Comma, _)) => *i += 1,
                            Some(_) => {
                                let before = *i;
                                tree(toks, i, &segs, out);
                                if *i == before {
                                    *i += 1;
                                }
                            }
                        }
                    }
                }
                _ => return,
            }
        }
    }
    /// `a::b::self` binds `b` and names `a::b`.
    fn leaf(mut segs: Vec<String>, binds: Option<String>, line: usize) -> UseLeaf {
        let mut binds = binds;
        if segs.last().is_some_and(|s| s == "self") {
            segs.pop();
            if binds.as_deref() == Some("self") {
                binds = segs.last().cloned();
            }
        }
        UseLeaf { segs, binds, line }
    }
    let mut out = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let before = i;
        tree(toks, &mut i, &[], &mut out);
        if i == before {
            i += 1;
        }
    }
    out
}

impl Graph {
    /// Builds the graph of `sources`: `(path relative to src/, text)` pairs.
    pub fn build(sources: &[(String, String)]) -> Self {
        let mut graph = Graph::default();
        for (rel, _) in sources {
            if let Some(m) = module_of(rel) {
                graph.files.insert(m.join("::"), rel.clone());
            }
        }
        for (rel, text) in sources {
            if let Some(m) = module_of(rel) {
                let reexports = graph.reexports_of(&m, text);
                graph.reexports.insert(rel.clone(), reexports);
            }
        }
        for (rel, text) in sources {
            if let Some(m) = module_of(rel) {
                let edges = graph.scan(rel, &m, text);
                graph.edges.insert(rel.clone(), edges);
            }
        }
        graph
    }

    /// The file a path lands in: its longest prefix that is a source file, or, when the
    /// item after that prefix is a re-export, the file the re-export leads to.
    fn file_of(&self, path: &[String]) -> Option<&String> {
        let mut path = path.to_vec();
        for _ in 0..8 {
            let n = (0..=path.len())
                .rev()
                .find(|n| self.files.contains_key(&path[..*n].join("::")))?;
            let file = &self.files[&path[..n].join("::")];
            match path
                .get(n)
                .and_then(|item| self.reexports.get(file)?.get(item))
            {
                Some(target) => {
                    let mut next = target.clone();
                    next.extend(path[n + 1..].iter().cloned());
                    path = next;
                }
                None => return Some(file),
            }
        }
        None
    }

    /// The names a file re-exports at its top level (`pub use` / `pub(crate) use` of a
    /// path into this crate, its children included), with the absolute path of each.
    fn reexports_of(&self, module: &[String], text: &str) -> BTreeMap<String, Vec<String>> {
        let toks = tokens(text);
        let mut out = BTreeMap::new();
        let mut depth = 0usize;
        for (i, (tok, _)) in toks.iter().enumerate() {
            match tok {
                Tok::Open => depth += 1,
                Tok::Close => depth = depth.saturating_sub(1),
                Tok::Ident(kw) if kw == "use" && depth == 0 => {
                    let is = |k: usize, want: &Tok| k <= i && &toks[i - k].0 == want;
                    let public = is(1, &Tok::Ident("pub".into()))
                        || (is(4, &Tok::Ident("pub".into())) && is(1, &Tok::Other));
                    if !public {
                        continue;
                    }
                    let end = toks[i..]
                        .iter()
                        .position(|t| t.0 == Tok::Semi)
                        .map_or(toks.len(), |p| i + p);
                    for leaf in use_leaves(&toks[i + 1..end]) {
                        let Some(name) = leaf.binds else { continue };
                        let abs = Self::absolute(module, &leaf.segs).or_else(|| {
                            // A path relative to this file's own children.
                            let child: Vec<String> =
                                module.iter().chain(leaf.segs.first()).cloned().collect();
                            self.files
                                .contains_key(&child.join("::"))
                                .then(|| module.iter().chain(&leaf.segs).cloned().collect())
                        });
                        if let Some(abs) = abs {
                            out.insert(name, abs);
                        }
                    }
                }
                _ => {}
            }
        }
        out
    }

    /// The absolute module path `segs` names from inside `module` (`None`: not a path
    /// into this crate through `crate`, `super` or `self`).
    fn absolute(module: &[String], segs: &[String]) -> Option<Vec<String>> {
        let first = segs.first()?;
        match first.as_str() {
            "crate" => Some(segs[1..].to_vec()),
            "super" | "self" => {
                let mut base = module.to_vec();
                let mut rest = segs;
                while let Some(s) = rest.first() {
                    match s.as_str() {
                        "super" => {
                            base.pop()?;
                        }
                        "self" => {}
                        _ => break,
                    }
                    rest = &rest[1..];
                }
                base.extend(rest.iter().cloned());
                Some(base)
            }
            _ => None,
        }
    }

    fn scan(&self, rel: &str, file_module: &[String], text: &str) -> BTreeMap<String, Site> {
        let toks = tokens(text);
        let mut edges: BTreeMap<String, Site> = BTreeMap::new();
        // Names bound to modules of this crate by `use`: name -> absolute module path.
        let mut aliases: BTreeMap<String, Vec<String>> = BTreeMap::new();
        // Inline modules open at this point: (name, brace depth inside it).
        let mut inline: Vec<(String, usize)> = Vec::new();
        let mut depth = 0usize;
        let mut pending_mod: Option<String> = None;
        let add = |edges: &mut BTreeMap<String, Site>, abs: &[String], line, written: &[String]| {
            if let Some(file) = self.file_of(abs)
                && file != rel
            {
                edges.entry(file.clone()).or_insert_with(|| Site {
                    file: rel.to_string(),
                    line,
                    path: written.join("::"),
                });
            }
        };
        let mut i = 0;
        while i < toks.len() {
            let module: Vec<String> = file_module
                .iter()
                .cloned()
                .chain(inline.iter().map(|(n, _)| n.clone()))
                .collect();
            match &toks[i].0 {
                Tok::Open => {
                    depth += 1;
                    if let Some(name) = pending_mod.take() {
                        inline.push((name, depth));
                    }
                    i += 1;
                }
                Tok::Close => {
                    if inline.last().is_some_and(|(_, d)| *d == depth) {
                        inline.pop();
                    }
                    depth = depth.saturating_sub(1);
                    i += 1;
                }
                Tok::Semi => {
                    pending_mod = None;
                    i += 1;
                }
                Tok::Ident(kw) if kw == "mod" => {
                    if let Some((Tok::Ident(name), _)) = toks.get(i + 1) {
                        pending_mod = Some(name.clone());
                        i += 2;
                    } else {
                        i += 1;
                    }
                }
                Tok::Ident(kw) if kw == "use" => {
                    let end = toks[i..]
                        .iter()
                        .position(|t| t.0 == Tok::Semi)
                        .map_or(toks.len(), |p| i + p);
                    for leaf in use_leaves(&toks[i + 1..end]) {
                        let abs = Self::absolute(&module, &leaf.segs).or_else(|| {
                            let first = leaf.segs.first()?;
                            let base = aliases.get(first)?;
                            Some(base.iter().chain(&leaf.segs[1..]).cloned().collect())
                        });
                        let Some(abs) = abs else { continue };
                        add(&mut edges, &abs, leaf.line, &leaf.segs);
                        if let Some(name) = leaf.binds
                            && self.files.contains_key(&abs.join("::"))
                        {
                            aliases.insert(name, abs);
                        }
                    }
                    i = end;
                }
                Tok::Ident(first) => {
                    let starts_path = i == 0 || toks[i - 1].0 != Tok::PathSep;
                    let mut segs = vec![first.clone()];
                    let mut j = i + 1;
                    while let (Some((Tok::PathSep, _)), Some((Tok::Ident(s), _))) =
                        (toks.get(j), toks.get(j + 1))
                    {
                        segs.push(s.clone());
                        j += 2;
                    }
                    if starts_path && segs.len() > 1 {
                        let abs = Self::absolute(&module, &segs).or_else(|| {
                            let base = aliases.get(first)?;
                            Some(base.iter().chain(&segs[1..]).cloned().collect())
                        });
                        if let Some(abs) = abs {
                            add(&mut edges, &abs, toks[i].1, &segs);
                        }
                    }
                    i = j;
                }
                _ => i += 1,
            }
        }
        edges
    }

    /// Every place a module outside `startup`, `background` and `routes/` names one of
    /// them.
    pub fn forbidden(&self) -> Vec<Site> {
        let is_top = |file: &str| {
            let m = module_of(file).unwrap_or_default();
            m.first().is_some_and(|s| TOP.contains(&s.as_str()))
        };
        self.edges
            .iter()
            .filter(|(from, _)| !is_top(from))
            .flat_map(|(_, to)| to.iter().filter(|(t, _)| is_top(t)).map(|(_, s)| s))
            .cloned()
            .collect()
    }

    /// One cycle (as the files along it, the first repeated at the end) per strongly
    /// connected component with more than one file.
    pub fn cycles(&self) -> Vec<Vec<String>> {
        self.components()
            .into_iter()
            .map(|(cycle, _)| cycle)
            .collect()
    }

    /// Each strongly connected component of two or more files: one cycle through it, and
    /// all of its files.
    pub fn components(&self) -> Vec<(Vec<String>, Vec<String>)> {
        let nodes: Vec<&String> = self.edges.keys().collect();
        let index: BTreeMap<&String, usize> =
            nodes.iter().enumerate().map(|(i, n)| (*n, i)).collect();
        let adj: Vec<Vec<usize>> = nodes
            .iter()
            .map(|n| {
                self.edges[*n]
                    .keys()
                    .filter_map(|t| index.get(t).copied())
                    .collect()
            })
            .collect();
        let mut cycles = Vec::new();
        for component in strongly_connected(&adj) {
            if component.len() < 2 {
                continue;
            }
            let inside: BTreeSet<usize> = component.iter().copied().collect();
            let start = *inside.first().expect("non-empty");
            // The shortest way from `start` back to itself inside the component.
            let mut prev: BTreeMap<usize, usize> = BTreeMap::new();
            let mut queue = VecDeque::from([start]);
            let mut last = None;
            'bfs: while let Some(n) = queue.pop_front() {
                for &m in &adj[n] {
                    if !inside.contains(&m) {
                        continue;
                    }
                    if m == start {
                        last = Some(n);
                        break 'bfs;
                    }
                    if let std::collections::btree_map::Entry::Vacant(e) = prev.entry(m) {
                        e.insert(n);
                        queue.push_back(m);
                    }
                }
            }
            let mut path = vec![start];
            let mut n = last.expect("a component of two or more has a cycle through each node");
            while n != start {
                path.push(n);
                n = prev[&n];
            }
            path.push(start);
            path.reverse();
            cycles.push((
                path.into_iter().map(|i| nodes[i].clone()).collect(),
                inside.iter().map(|&i| nodes[i].clone()).collect(),
            ));
        }
        cycles
    }

    /// A cycle spelled out hop by hop, with where each hop is named.
    pub fn describe_cycle(&self, cycle: &[String]) -> String {
        let mut out = cycle.join(" -> ");
        for pair in cycle.windows(2) {
            let site = &self.edges[&pair[0]][&pair[1]];
            out.push_str(&format!(
                "\n    {}:{} names {} ({})",
                site.file, site.line, site.path, pair[1]
            ));
        }
        out
    }
}

/// Tarjan's strongly connected components, iteratively.
fn strongly_connected(adj: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let n = adj.len();
    let mut index = vec![usize::MAX; n];
    let mut low = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut next = 0;
    let mut out = Vec::new();
    for root in 0..n {
        if index[root] != usize::MAX {
            continue;
        }
        let mut work = vec![(root, 0usize)];
        while let Some(&mut (v, ref mut child)) = work.last_mut() {
            if *child == 0 && index[v] == usize::MAX {
                index[v] = next;
                low[v] = next;
                next += 1;
                stack.push(v);
                on_stack[v] = true;
            }
            if let Some(&w) = adj[v].get(*child) {
                *child += 1;
                if index[w] == usize::MAX {
                    work.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            work.pop();
            if let Some(&(parent, _)) = work.last() {
                low[parent] = low[parent].min(low[v]);
            }
            if low[v] == index[v] {
                let mut component = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    component.push(w);
                    if w == v {
                        break;
                    }
                }
                out.push(component);
            }
        }
    }
    out
}

/// Every `.rs` file under `dir`, as (path relative to `dir` with `/`, text).
fn read_sources(dir: &Path) -> Vec<(String, String)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
            .map(|e| e.expect("directory entry").path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(root, &path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path
                    .strip_prefix(root)
                    .expect("under root")
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("/");
                let text = std::fs::read_to_string(&path)
                    .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
                out.push((rel, text));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out
}

fn this_crate() -> Graph {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let sources = read_sources(&src);
    assert!(
        sources.iter().any(|(f, _)| f == "lib.rs") && sources.len() > 20,
        "the guard found {} files under {}; it must read the whole crate",
        sources.len(),
        src.display()
    );
    Graph::build(&sources)
}

#[test]
fn lower_modules_do_not_name_startup_background_or_routes() {
    let found = this_crate().forbidden();
    assert!(
        found.is_empty(),
        "only startup, background and routes/ may name crate::startup, crate::background or \
         crate::routes; pass what the module needs instead (a context struct, a Shutdown):\n{}",
        found
            .iter()
            .map(|s| format!("  {}:{} names {}", s.file, s.line, s.path))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn the_module_graph_has_no_cycle() {
    let graph = this_crate();
    let components = graph.components();
    assert!(
        components.is_empty(),
        "the file-level module graph has {} cycle(s); move what both sides need into a \
         lower module:\n{}",
        components.len(),
        components
            .iter()
            .map(|(cycle, files)| format!(
                "  {}\n    (one cycle of {} files that all reach each other: {})",
                graph.describe_cycle(cycle),
                files.len(),
                files.join(", ")
            ))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[cfg(test)]
mod checker {
    use super::*;

    fn graph(files: &[(&str, &str)]) -> Graph {
        let sources: Vec<(String, String)> = files
            .iter()
            .map(|(f, t)| (f.to_string(), t.to_string()))
            .collect();
        Graph::build(&sources)
    }

    fn targets(g: &Graph, file: &str) -> Vec<String> {
        g.edges[file].keys().cloned().collect()
    }

    #[test]
    fn a_clean_layered_graph_passes() {
        let g = graph(&[
            (
                "lib.rs",
                "pub mod domain; pub mod engine; pub mod routes; pub mod startup;",
            ),
            ("domain.rs", "pub struct TenantId;"),
            ("engine.rs", "use crate::domain::TenantId;"),
            (
                "routes/mod.rs",
                "pub mod invoke; pub mod state; pub use state::AppState;",
            ),
            (
                "routes/state.rs",
                "pub struct AppState { engine: crate::engine::Engine }",
            ),
            (
                "routes/invoke.rs",
                "use super::AppState; use crate::engine;",
            ),
            (
                "background.rs",
                "use crate::routes::AppState; use crate::engine::Engine;",
            ),
            (
                "startup.rs",
                "fn f() { crate::routes::router(); crate::background::spawn_all(); }",
            ),
        ]);
        assert!(g.forbidden().is_empty(), "{:?}", g.forbidden());
        assert!(g.cycles().is_empty(), "{:?}", g.cycles());
    }

    #[test]
    fn a_reintroduced_cycle_fails_and_is_spelled_out() {
        let files = [
            ("lib.rs", ""),
            ("approvals.rs", "use crate::engine::Engine;"),
            ("engine.rs", "use crate::traces::{self, RunTrace};"),
            ("traces/mod.rs", "pub mod writer;\npub use writer::Writer;"),
            ("traces/writer.rs", "fn f() {\n    let q = 1;\n}"),
        ];
        assert!(graph(&files).cycles().is_empty(), "a chain is not a cycle");
        let mut files = files.to_vec();
        files[3] = (
            "traces/mod.rs",
            "pub mod writer;\nfn f() {\n    crate::approvals::ApprovalQueue::new();\n}",
        );
        let g = graph(&files);
        let cycles = g.cycles();
        assert_eq!(cycles.len(), 1, "{cycles:?}");
        assert_eq!(
            cycles[0],
            ["approvals.rs", "engine.rs", "traces/mod.rs", "approvals.rs"].map(String::from)
        );
        let text = g.describe_cycle(&cycles[0]);
        assert!(
            text.starts_with("approvals.rs -> engine.rs -> traces/mod.rs -> approvals.rs"),
            "{text}"
        );
        assert!(
            text.contains("traces/mod.rs:3 names crate::approvals::ApprovalQueue::new"),
            "{text}"
        );
    }

    #[test]
    fn a_path_through_a_reexport_lands_where_the_item_is_defined() {
        let g = graph(&[
            ("lib.rs", ""),
            (
                "engine.rs",
                "use crate::traces::RunTrace;\nfn f() { crate::traces::Sink::new(); }",
            ),
            (
                "traces/mod.rs",
                "pub mod recorder;\npub use recorder::{RunTrace, SpanId};\npub struct Sink;",
            ),
            (
                "traces/recorder.rs",
                "use super::Sink;\nuse crate::engine::Engine;",
            ),
        ]);
        assert_eq!(
            targets(&g, "engine.rs"),
            ["traces/mod.rs", "traces/recorder.rs"]
        );
        let cycles = g.cycles();
        assert_eq!(
            cycles.len(),
            1,
            "engine -> recorder (re-exported) -> engine: {cycles:?}"
        );
        assert!(cycles[0].contains(&"traces/recorder.rs".to_string()));
    }

    #[test]
    fn sibling_cycles_through_super_are_found() {
        let g = graph(&[
            ("lib.rs", ""),
            (
                "tools/mod.rs",
                "pub mod builtin; pub mod kb; pub use builtin::Builtin;",
            ),
            ("tools/builtin.rs", "use super::kb::{self, Search};"),
            (
                "tools/kb.rs",
                "use super::builtin::KB_SEARCH;\nuse super::ToolError;",
            ),
        ]);
        assert_eq!(targets(&g, "tools/builtin.rs"), ["tools/kb.rs"]);
        assert_eq!(
            targets(&g, "tools/kb.rs"),
            ["tools/builtin.rs", "tools/mod.rs"]
        );
        assert!(
            targets(&g, "tools/mod.rs").is_empty(),
            "a parent's paths to its children are containment"
        );
        assert_eq!(g.cycles().len(), 1);
    }

    #[test]
    fn a_forbidden_import_fails_in_every_spelling() {
        for (how, text) in [
            ("use", "use crate::startup::AppState;"),
            ("grouped use", "use crate::{db::Db, background::stopping};"),
            (
                "inline path",
                "fn f() { crate::routes::invoke::response_body(); }",
            ),
            ("super escape", "use super::startup::AppState;"),
            (
                "module alias",
                "use crate::routes;\nfn f() { routes::jobs::JobOut::from(j); }",
            ),
        ] {
            let g = graph(&[
                ("lib.rs", ""),
                ("approvals.rs", text),
                ("startup.rs", ""),
                ("background.rs", ""),
                ("routes/mod.rs", ""),
                ("routes/jobs.rs", ""),
            ]);
            let found = g.forbidden();
            assert!(!found.is_empty(), "{how}: not found");
            assert!(
                found.iter().all(|s| s.file == "approvals.rs"),
                "{how}: {found:?}"
            );
        }
    }

    #[test]
    fn comments_strings_and_inline_test_modules_are_not_edges() {
        let g = graph(&[
            ("lib.rs", ""),
            ("startup.rs", ""),
            (
                "jobs.rs",
                "//! Unlike crate::startup, this module ...\n\
                 /* crate::startup::AppState /* nested */ crate::startup */\n\
                 const S: &str = \"crate::startup::AppState\";\n\
                 const R: &str = r#\"use crate::startup;\"#;\n\
                 fn f<'a>(x: &'a str) -> char { 'c' }\n\
                 #[cfg(test)]\n\
                 mod tests {\n    use super::*;\n    use super::super::domain::TenantId;\n}\n",
            ),
            ("domain.rs", ""),
        ]);
        assert!(g.forbidden().is_empty(), "{:?}", g.forbidden());
        assert_eq!(
            targets(&g, "jobs.rs"),
            ["domain.rs"],
            "`super::*` in `mod tests` is the file itself; `super::super` its parent"
        );
    }
}
