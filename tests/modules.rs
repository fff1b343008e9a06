//! Import structure: no module of `src/` or of a `crates/*` library may reference a module that
//! references it back, directly or through others. Cycles make modules impossible to move into their
//! own crate, to test alone or to reason about one at a time.
//!
//! The check reads the sources (std only, no parser crate): it follows `mod NAME;` declarations from
//! `src/main.rs` and every `crates/*/src/lib.rs`, then records which module each module names through
//! `crate::…`, `super::…`, `self::…` or a bare `child::…` path (including `use` groups), ignoring
//! comments, string and char literals. A path resolves to the deepest module it names
//! (`crate::daemon::net::Net` is the module `daemon::net`; `super::now_ms` is the parent module).
//! References to the crate root (re-exports, `#[macro_export]` macros such as `crate::outln!`) and
//! `#[cfg(test)] mod x;` test modules are ignored; inline `mod x { … }` blocks count as part of their
//! file (so `use super::*` inside `mod tests { … }` is the file's own module).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// A module path from the crate root: empty for the root, `["daemon", "net"]` for `crate::daemon::net`.
type ModPath = Vec<String>;

/// One token of cleaned source and the line it starts on.
#[derive(Debug, Clone)]
struct Tok {
    text: String,
    line: usize,
}

/// A `mod NAME;` declaration found at the top level of a file (not inside an inline `mod x { … }`).
#[derive(Debug)]
struct Decl {
    name: String,
    cfg_test: bool,
    line: usize,
}

/// A path found in a file: its segments as written (`["super", "net", "Net"]`), how many inline
/// `mod x { … }` blocks enclose it, where it is and how it reads.
#[derive(Debug)]
struct PathRef {
    segments: Vec<String>,
    inline_depth: usize,
    line: usize,
    text: String,
}

/// What one file declares and references.
#[derive(Debug, Default)]
struct Scan {
    decls: Vec<Decl>,
    refs: Vec<PathRef>,
}

/// A module found by following `mod` declarations.
#[derive(Debug)]
struct Module {
    path: ModPath,
    file: PathBuf,
    scan: Scan,
}

/// Where a module references another: file, line and the path as written.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Evidence {
    file: PathBuf,
    line: usize,
    text: String,
}

/// The module graph of one crate: an edge `a -> b` when module `a` names module `b`.
#[derive(Debug, Default)]
struct Graph {
    files: BTreeMap<ModPath, PathBuf>,
    edges: BTreeMap<ModPath, BTreeMap<ModPath, Vec<Evidence>>>,
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn is_ident(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_alphabetic() || c == '_') && s.chars().all(is_ident_char)
}

/// Replaces comments, string literals and char literals with spaces, keeping newlines so that line
/// numbers stay right. Lifetimes and labels (`'a`) are kept.
fn strip_comments_and_strings(src: &str) -> String {
    let c: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let blank = |out: &mut String, ch: char| out.push(if ch == '\n' { '\n' } else { ' ' });
    let blank_range = |out: &mut String, range: &[char]| range.iter().for_each(|&ch| blank(out, ch));
    let prev_is_ident = |i: usize| i > 0 && is_ident_char(c[i - 1]);
    let mut i = 0;
    while i < c.len() {
        let next = c.get(i + 1).copied();
        // Line comment (including doc comments).
        if c[i] == '/' && next == Some('/') {
            while i < c.len() && c[i] != '\n' {
                out.push(' ');
                i += 1;
            }
            continue;
        }
        // Block comment, possibly nested.
        if c[i] == '/' && next == Some('*') {
            let mut depth = 0;
            while i < c.len() {
                let pair = (c[i], c.get(i + 1).copied());
                if pair == ('/', Some('*')) {
                    depth += 1;
                } else if pair == ('*', Some('/')) {
                    depth -= 1;
                } else {
                    blank(&mut out, c[i]);
                    i += 1;
                    continue;
                }
                out.push_str("  ");
                i += 2;
                if depth == 0 {
                    break;
                }
            }
            continue;
        }
        // Raw string: r"…", r#"…"#, br#"…"#.
        if !prev_is_ident(i) && (c[i] == 'r' || (c[i] == 'b' && next == Some('r'))) {
            let mut j = if c[i] == 'b' { i + 2 } else { i + 1 };
            let mut hashes = 0;
            while c.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if c.get(j) == Some(&'"') {
                let mut k = j + 1;
                let end = loop {
                    if k >= c.len() {
                        break c.len();
                    }
                    if c[k] == '"' && (1..=hashes).all(|h| c.get(k + h) == Some(&'#')) {
                        break k + 1 + hashes;
                    }
                    k += 1;
                };
                blank_range(&mut out, &c[i..end]);
                i = end;
                continue;
            }
        }
        // String (the `b` of b"…" stays as a harmless identifier).
        if c[i] == '"' {
            let mut k = i + 1;
            while k < c.len() && c[k] != '"' {
                k += if c[k] == '\\' { 2 } else { 1 };
            }
            let end = (k + 1).min(c.len());
            blank_range(&mut out, &c[i..end]);
            i = end;
            continue;
        }
        // Char literal ('x', '\n', '\'', '\u{..}'); a lifetime or label ('a) is left alone.
        if c[i] == '\'' {
            let end = if next == Some('\\') {
                let mut k = i + 3;
                while k < c.len() && c[k] != '\'' {
                    k += 1;
                }
                Some((k + 1).min(c.len()))
            } else if c.get(i + 2) == Some(&'\'') {
                Some(i + 3)
            } else {
                None
            };
            if let Some(end) = end {
                blank_range(&mut out, &c[i..end]);
                i = end;
                continue;
            }
        }
        out.push(c[i]);
        i += 1;
    }
    out
}

/// Splits cleaned source into identifiers (and numbers), `::` and single punctuation characters.
fn tokenize(clean: &str) -> Vec<Tok> {
    let c: Vec<char> = clean.chars().collect();
    let mut toks = Vec::new();
    let (mut i, mut line) = (0, 1);
    while i < c.len() {
        if c[i] == '\n' {
            line += 1;
            i += 1;
        } else if c[i].is_whitespace() {
            i += 1;
        } else if is_ident_char(c[i]) {
            let start = i;
            while i < c.len() && is_ident_char(c[i]) {
                i += 1;
            }
            toks.push(Tok { text: c[start..i].iter().collect(), line });
        } else if c[i] == ':' && c.get(i + 1) == Some(&':') {
            toks.push(Tok { text: "::".into(), line });
            i += 2;
        } else {
            toks.push(Tok { text: c[i].to_string(), line });
            i += 1;
        }
    }
    toks
}

fn tok(toks: &[Tok], i: usize) -> &str {
    toks.get(i).map_or("", |t| t.text.as_str())
}

/// Parses a use tree or path starting at `toks[i]` (a segment, `{` or `*`) below `prefix`, pushing
/// every complete path to `out`. `self` inside a group names the prefix itself, `*` the prefix too.
/// Returns the index of the first token after the tree.
fn parse_tree(toks: &[Tok], mut i: usize, mut path: Vec<String>, out: &mut Vec<Vec<String>>) -> usize {
    loop {
        match tok(toks, i) {
            "{" => {
                i += 1;
                while !matches!(tok(toks, i), "}" | "") {
                    let before = i;
                    i = parse_tree(toks, i, path.clone(), out);
                    if tok(toks, i) == "," {
                        i += 1;
                    } else if i == before || tok(toks, i) != "}" {
                        // Not a use group after all (or malformed): stop here.
                        return i;
                    }
                }
                return i + 1;
            }
            "*" => {
                out.push(path);
                return i + 1;
            }
            seg if is_ident(seg) => {
                if seg != "self" || path.is_empty() {
                    path.push(seg.to_string());
                }
                i += 1;
                let after = tok(toks, i + 1);
                if tok(toks, i) == "::" && (is_ident(after) || after == "{" || after == "*") {
                    i += 1;
                    continue;
                }
                if tok(toks, i) == "as" {
                    i += 2;
                }
                out.push(path);
                return i;
            }
            _ => {
                if !path.is_empty() {
                    out.push(path);
                }
                return i;
            }
        }
    }
}

/// Renders tokens `from..to` back into readable source (`crate::cli::{A, B}`).
fn render(toks: &[Tok], from: usize, to: usize) -> String {
    let mut s = String::new();
    for t in &toks[from..to.min(toks.len())] {
        match t.text.as_str() {
            "," => s.push_str(", "),
            "as" => s.push_str(" as "),
            other => s.push_str(other),
        }
    }
    s
}

/// True if the `mod` keyword at `toks[at]` carries an attribute mentioning `cfg` and `test`
/// (`#[cfg(test)]`, `#[cfg(all(test, unix))]`), looking back over its visibility and attributes.
fn has_cfg_test(toks: &[Tok], at: usize) -> bool {
    let mut i = at;
    // Visibility: `pub`, `pub(crate)`, `pub(in crate::x)`.
    if i > 0 && tok(toks, i - 1) == ")" {
        while i > 0 && tok(toks, i - 1) != "(" {
            i -= 1;
        }
        i = i.saturating_sub(1);
    }
    if i > 0 && tok(toks, i - 1) == "pub" {
        i -= 1;
    }
    while i > 0 && tok(toks, i - 1) == "]" {
        let end = i - 1;
        let mut depth = 0;
        let mut j = end;
        loop {
            match tok(toks, j) {
                "]" => depth += 1,
                "[" => depth -= 1,
                _ => {}
            }
            if depth == 0 || j == 0 {
                break;
            }
            j -= 1;
        }
        if j == 0 || tok(toks, j - 1) != "#" {
            return false;
        }
        let attr = &toks[j..end];
        if attr.iter().any(|t| t.text == "cfg") && attr.iter().any(|t| t.text == "test") {
            return true;
        }
        i = j - 1;
    }
    false
}

/// Finds the `mod NAME;` declarations and the module paths of one file.
fn scan(src: &str) -> Scan {
    let toks = tokenize(&strip_comments_and_strings(src));
    let mut out = Scan::default();
    let mut braces = 0usize;
    // Brace depth at which each enclosing inline `mod x {` block was opened.
    let mut inline: Vec<usize> = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let t = tok(&toks, i);
        let prev = if i == 0 { "" } else { tok(&toks, i - 1) };
        match t {
            "{" => braces += 1,
            "}" => {
                braces = braces.saturating_sub(1);
                if inline.last() == Some(&braces) {
                    inline.pop();
                }
            }
            "mod" if is_ident(tok(&toks, i + 1)) => match tok(&toks, i + 2) {
                ";" if inline.is_empty() => out.decls.push(Decl {
                    name: tok(&toks, i + 1).to_string(),
                    cfg_test: has_cfg_test(&toks, i),
                    line: toks[i].line,
                }),
                "{" => {
                    inline.push(braces);
                    braces += 1;
                    i += 3;
                    continue;
                }
                _ => {}
            },
            _ if is_ident(t)
                && tok(&toks, i + 1) == "::"
                && !matches!(prev, "::" | "." | "'")
                // `pub(in crate::x)` is a visibility, not a reference.
                && !(prev == "in" && i >= 2 && tok(&toks, i - 2) == "(") =>
            {
                let mut paths = Vec::new();
                let end = parse_tree(&toks, i, Vec::new(), &mut paths);
                let text = render(&toks, i, end);
                for segments in paths {
                    out.refs.push(PathRef {
                        segments,
                        inline_depth: inline.len(),
                        line: toks[i].line,
                        text: text.clone(),
                    });
                }
                i = end.max(i + 1);
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// The directory holding the files of `file`'s child modules: the file's own directory for `main.rs`,
/// `lib.rs` and `mod.rs`, otherwise a directory named after the file (`src/daemon.rs` → `src/daemon/`).
fn child_dir(file: &Path) -> PathBuf {
    let dir = file.parent().unwrap_or(Path::new("")).to_path_buf();
    let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
    match file.file_name().and_then(|s| s.to_str()) {
        Some("main.rs" | "lib.rs" | "mod.rs") => dir,
        _ => dir.join(stem),
    }
}

/// Follows `mod NAME;` declarations from the crate root file. `load` returns a file's text, `None` if
/// it does not exist. Returns the modules found and a description of every declaration whose file is
/// missing.
fn discover(root: &Path, load: &dyn Fn(&Path) -> Option<String>) -> (Vec<Module>, Vec<String>) {
    let mut problems = Vec::new();
    let Some(src) = load(root) else {
        return (Vec::new(), vec![format!("crate root {} cannot be read", root.display())]);
    };
    let mut modules = vec![Module { path: Vec::new(), file: root.to_path_buf(), scan: scan(&src) }];
    let mut next = 0;
    while next < modules.len() {
        let dir = child_dir(&modules[next].file);
        let mut found = Vec::new();
        for decl in modules[next].scan.decls.iter().filter(|d| !d.cfg_test) {
            let candidates = [dir.join(format!("{}.rs", decl.name)), dir.join(&decl.name).join("mod.rs")];
            let Some((file, src)) = candidates.iter().find_map(|f| Some((f.clone(), load(f)?))) else {
                problems.push(format!(
                    "{}:{}: `mod {};` but neither {} nor {} exists",
                    modules[next].file.display(),
                    decl.line,
                    decl.name,
                    candidates[0].display(),
                    candidates[1].display()
                ));
                continue;
            };
            let mut path = modules[next].path.clone();
            path.push(decl.name.clone());
            found.push(Module { path, file, scan: scan(&src) });
        }
        modules.extend(found);
        next += 1;
    }
    (modules, problems)
}

/// The module a path written in module `current` names, or `None` if it names no module of this crate
/// (an external crate, a local item, or `super` past the root). Leading `super`s first leave the
/// enclosing inline `mod x { … }` blocks, which belong to the file's module. The result is the deepest
/// existing module along the path: `crate::daemon::net::Net` → `daemon::net`, `super::now_ms` → parent.
fn resolve(
    modules: &BTreeSet<ModPath>,
    current: &[String],
    inline_depth: usize,
    segments: &[String],
) -> Option<ModPath> {
    let first = segments.first()?.as_str();
    let (mut target, rest): (ModPath, &[String]) = match first {
        "crate" => (Vec::new(), &segments[1..]),
        "self" => (current.to_vec(), &segments[1..]),
        "super" => {
            let supers = segments.iter().take_while(|s| *s == "super").count();
            let up = supers.saturating_sub(inline_depth);
            if up > current.len() {
                return None;
            }
            (current[..current.len() - up].to_vec(), &segments[supers..])
        }
        child => {
            let mut path = current.to_vec();
            path.push(child.to_string());
            if !modules.contains(&path) {
                return None;
            }
            (current.to_vec(), segments)
        }
    };
    for seg in rest {
        target.push(seg.clone());
        if !modules.contains(&target) {
            target.pop();
            break;
        }
    }
    Some(target)
}

/// Builds the reference graph of a crate's modules. References to the crate root and to the module
/// itself are not edges.
fn build_graph(modules: &[Module]) -> Graph {
    let known: BTreeSet<ModPath> = modules.iter().map(|m| m.path.clone()).collect();
    let mut graph = Graph::default();
    for m in modules {
        graph.files.insert(m.path.clone(), m.file.clone());
        let edges = graph.edges.entry(m.path.clone()).or_default();
        for r in &m.scan.refs {
            let Some(target) = resolve(&known, &m.path, r.inline_depth, &r.segments) else { continue };
            if target.is_empty() || target == m.path {
                continue;
            }
            let evidence = Evidence { file: m.file.clone(), line: r.line, text: r.text.clone() };
            let list = edges.entry(target).or_default();
            if !list.contains(&evidence) {
                list.push(evidence);
            }
        }
    }
    graph
}

/// Strongly connected components with more than one module (Tarjan), each sorted, in module order.
fn cyclic_components(graph: &Graph) -> Vec<Vec<ModPath>> {
    struct Tarjan<'g> {
        graph: &'g Graph,
        index: BTreeMap<&'g ModPath, usize>,
        low: BTreeMap<&'g ModPath, usize>,
        stack: Vec<&'g ModPath>,
        on_stack: BTreeSet<&'g ModPath>,
        out: Vec<Vec<ModPath>>,
    }
    impl<'g> Tarjan<'g> {
        fn visit(&mut self, v: &'g ModPath) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            self.on_stack.insert(v);
            let graph = self.graph;
            for w in graph.edges.get(v).into_iter().flat_map(BTreeMap::keys) {
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w]);
                    self.low.insert(v, low);
                } else if self.on_stack.contains(w) {
                    let low = self.low[v].min(self.index[w]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    component.push(w.clone());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.out.push(component);
                }
            }
        }
    }
    let mut t = Tarjan {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.edges.keys() {
        if !t.index.contains_key(v) {
            t.visit(v);
        }
    }
    t.out.sort();
    t.out
}

/// Most elementary cycles listed per component; the references inside it are always all listed.
const MAX_CYCLES: usize = 60;

/// The elementary cycles inside one component, each starting at its smallest module, shortest first,
/// at most `MAX_CYCLES` of them; also how many there are (`None` if too many to count).
fn elementary_cycles(graph: &Graph, component: &[ModPath]) -> (Vec<Vec<ModPath>>, Option<usize>) {
    struct Walk<'g> {
        graph: &'g Graph,
        allowed: BTreeSet<&'g ModPath>,
        out: Vec<Vec<ModPath>>,
        steps_left: usize,
    }
    impl Walk<'_> {
        fn walk(&mut self, start: &ModPath, path: &mut Vec<ModPath>) {
            let graph = self.graph;
            let last = path.last().expect("path starts with the start module");
            for w in graph.edges.get(last).into_iter().flat_map(BTreeMap::keys) {
                if self.steps_left == 0 {
                    return;
                }
                self.steps_left -= 1;
                if w == start {
                    self.out.push(path.clone());
                } else if w > start && self.allowed.contains(w) && !path.contains(w) {
                    path.push(w.clone());
                    self.walk(start, path);
                    path.pop();
                }
            }
        }
    }
    let mut w = Walk { graph, allowed: component.iter().collect(), out: Vec::new(), steps_left: 2_000_000 };
    for start in component {
        w.walk(start, &mut vec![start.clone()]);
    }
    let mut out = w.out;
    let total = (w.steps_left > 0).then_some(out.len());
    out.sort_by(|a, b| a.len().cmp(&b.len()).then_with(|| a.cmp(b)));
    out.truncate(MAX_CYCLES);
    (out, total)
}

fn name(path: &[String]) -> String {
    if path.is_empty() { "crate".into() } else { path.join("::") }
}

/// The human-readable report of every cycle in a crate's graph, empty if there is none.
fn report_cycles(graph: &Graph) -> String {
    let mut s = String::new();
    for component in cyclic_components(graph) {
        let file = |m: &ModPath| graph.files[m].display().to_string();
        let members: Vec<String> = component.iter().map(|m| format!("{} ({})", name(m), file(m))).collect();
        let _ = writeln!(s, "  {} modules reference each other: {}", component.len(), members.join(", "));
        let (cycles, total) = elementary_cycles(graph, &component);
        let _ = writeln!(s, "    cycles:");
        for cycle in &cycles {
            let names: Vec<String> = cycle.iter().chain(&cycle[..1]).map(|m| name(m)).collect();
            let files: Vec<String> = cycle.iter().chain(&cycle[..1]).map(file).collect();
            let _ = writeln!(s, "      {}    [{}]", names.join(" -> "), files.join(" -> "));
        }
        match total {
            Some(total) if total <= cycles.len() => {}
            Some(total) => {
                let _ = writeln!(s, "      … and {} longer cycles through the same references", total - cycles.len());
            }
            None => {
                let _ = writeln!(s, "      … and more longer cycles through the same references");
            }
        }
        let _ = writeln!(s, "    references to break (at least one per cycle):");
        for from in &component {
            for (to, evidence) in graph.edges[from].iter().filter(|(to, _)| component.contains(to)) {
                let _ = writeln!(s, "      {} -> {}:", name(from), name(to));
                for e in evidence {
                    let _ = writeln!(s, "        {}:{}: {}", e.file.display(), e.line, e.text);
                }
            }
        }
    }
    s
}

/// Discovers the modules of the crate rooted at `root`, builds the graph and reports its cycles and
/// missing module files; empty if all is well. Also returns how many modules were found.
fn check_crate(root: &Path, load: &dyn Fn(&Path) -> Option<String>) -> (String, usize) {
    let (modules, problems) = discover(root, load);
    let mut s = String::new();
    for p in problems {
        let _ = writeln!(s, "  {p}");
    }
    s.push_str(&report_cycles(&build_graph(&modules)));
    (s, modules.len())
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut roots = vec![PathBuf::from("src/main.rs")];
    let mut crates: Vec<PathBuf> = std::fs::read_dir(workspace.join("crates"))
        .expect("crates/ is readable")
        .filter_map(|e| Some(e.ok()?.path().strip_prefix(workspace).ok()?.join("src/lib.rs")))
        .filter(|lib| workspace.join(lib).is_file())
        .collect();
    crates.sort();
    roots.extend(crates);

    let load = |p: &Path| std::fs::read_to_string(workspace.join(p)).ok();
    let mut report = String::new();
    let mut total = 0;
    for root in &roots {
        let (problems, count) = check_crate(root, &load);
        total += count;
        if !problems.is_empty() {
            let _ = writeln!(report, "\n{}:\n{problems}", root.display());
        }
    }
    assert!(total > roots.len(), "found only {total} modules in {roots:?}: the module discovery is broken");
    assert!(
        report.is_empty(),
        "modules that import each other (module A names module B through crate::/super::/self::/child:: \
         paths and B names A, directly or through others); move the shared items into a module both can \
         use, or pass them in:\n{report}"
    );
}

// ---- Tests of the checker itself, on tiny inline crates. ----

fn check_inline(files: &[(&str, &str)]) -> (Graph, String) {
    let files: BTreeMap<PathBuf, String> = files.iter().map(|(p, s)| (PathBuf::from(p), s.to_string())).collect();
    let load = |p: &Path| files.get(p).cloned();
    let (modules, problems) = discover(Path::new("src/main.rs"), &load);
    assert!(problems.is_empty(), "{problems:?}");
    let graph = build_graph(&modules);
    let report = report_cycles(&graph);
    (graph, report)
}

fn edges(graph: &Graph) -> BTreeSet<String> {
    graph
        .edges
        .iter()
        .flat_map(|(from, to)| to.keys().map(move |to| format!("{} -> {}", name(from), name(to))))
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn checker_finds_a_two_module_cycle() {
    let (graph, report) = check_inline(&[
        ("src/main.rs", "mod a;\nmod b;\nfn main() { a::run() }"),
        ("src/a.rs", "use crate::b::helper;\npub fn run() { helper() }"),
        ("src/b.rs", "pub fn helper() {\n    crate::a::other();\n}"),
    ]);
    assert_eq!(cyclic_components(&graph), vec![vec![vec!["a".to_string()], vec!["b".to_string()]]]);
    assert!(report.contains("a -> b -> a    [src/a.rs -> src/b.rs -> src/a.rs]"), "{report}");
    assert!(report.contains("src/a.rs:1: crate::b::helper"), "{report}");
    assert!(report.contains("src/b.rs:2: crate::a::other"), "{report}");
}

#[test]
fn checker_finds_a_longer_cycle_and_a_parent_child_cycle() {
    let (graph, report) = check_inline(&[
        ("src/main.rs", "mod a; mod b; mod c; mod p;"),
        ("src/a.rs", "use crate::b;"),
        ("src/b.rs", "use crate::c::X;"),
        ("src/c.rs", "pub struct X; fn f() { crate::a::g() }"),
        ("src/p/mod.rs", "mod x;\npub fn item() {}\nfn f() { x::run() }"),
        ("src/p/x.rs", "pub fn run() { super::item() }"),
    ]);
    let components: Vec<Vec<String>> =
        cyclic_components(&graph).iter().map(|c| c.iter().map(|m| name(m)).collect()).collect();
    assert_eq!(components, vec![vec!["a", "b", "c"], vec!["p", "p::x"]]);
    assert!(report.contains("a -> b -> c -> a"), "{report}");
    assert!(report.contains("p -> p::x -> p"), "{report}");
}

#[test]
fn checker_passes_a_dag() {
    let (graph, report) = check_inline(&[
        ("src/main.rs", "mod a; mod b; mod c;\nuse crate::a::x;"),
        (
            "src/a.rs",
            "use crate::{b, c::Y};\nmod inner;\nfn f() { inner::g(); self::inner::h(); crate::outln!(\"x\"); }",
        ),
        ("src/a/inner.rs", "use crate::c::Z;\n#[cfg(test)]\nmod tests {\n    use super::*;\n}"),
        (
            "src/b.rs",
            "use crate::c;\nuse std::fmt::Write;\n// use crate::a;\n/* crate::a::x */\nconst S: &str = \"crate::a\";",
        ),
        (
            "src/c.rs",
            "pub struct Y; pub struct Z;\n\
             const R: &str = r#\"crate::b \"quoted\" \"#; const C: char = '\"';\n\
             fn f() { crate::Root::new() }",
        ),
    ]);
    assert_eq!(report, "");
    assert!(cyclic_components(&graph).is_empty());
    assert_eq!(edges(&graph), set(&["crate -> a", "a -> a::inner", "a -> b", "a -> c", "a::inner -> c", "b -> c"]));
}

#[test]
fn checker_parses_use_groups() {
    let (graph, _) = check_inline(&[
        ("src/main.rs", "mod a; mod b; mod d; mod e;"),
        ("src/a.rs", ""),
        ("src/b.rs", "mod c;"),
        ("src/b/c.rs", ""),
        ("src/d.rs", "use crate::{a, b::c};"),
        ("src/e.rs", "use crate::{\n    b::{self, Thing as Other},\n    a::*,\n};"),
    ]);
    assert_eq!(edges(&graph), set(&["d -> a", "d -> b::c", "e -> a", "e -> b"]));
}

#[test]
fn checker_resolves_super_sibling_and_parent_items() {
    let (graph, _) = check_inline(&[
        ("src/main.rs", "mod daemon;"),
        ("src/daemon.rs", "mod net;\nmod udp;\npub fn now_ms() -> u64 { 0 }"),
        ("src/daemon/net.rs", "pub struct Net;"),
        (
            "src/daemon/udp.rs",
            "use super::net::Net;\n\
             fn f() -> u64 { super::now_ms() }\n\
             #[cfg(test)]\n\
             mod tests {\n    use super::*;\n    fn g() { super::super::now_ms(); }\n}",
        ),
    ]);
    assert_eq!(edges(&graph), set(&["daemon::udp -> daemon::net", "daemon::udp -> daemon"]));
    // `mod.rs` layout and a `#[cfg(test)] mod tests;` file that is skipped (it does not even exist).
    let (graph, _) = check_inline(&[
        ("src/main.rs", "mod daemon;"),
        ("src/daemon/mod.rs", "pub mod net;\npub(crate) mod udp;\n#[cfg(test)]\nmod tests;"),
        ("src/daemon/net.rs", "pub(in crate::daemon) struct Net;"),
        ("src/daemon/udp.rs", "use super::{net, Core};"),
    ]);
    assert_eq!(edges(&graph), set(&["daemon::udp -> daemon::net", "daemon::udp -> daemon"]));
}

#[test]
fn checker_cleans_comments_and_literals() {
    let clean = strip_comments_and_strings(
        "a // crate::x\nb /* c /* nested */ crate::y */ d \"s\\\"crate::z\" 'c' '\\'' <'a> br##\"crate::w\"# \"## e",
    );
    let words: Vec<String> = tokenize(&clean).into_iter().map(|t| t.text).collect();
    assert_eq!(words, ["a", "b", "d", "<", "'", "a", ">", "e"]);
    assert_eq!(clean.lines().count(), 2);
}
