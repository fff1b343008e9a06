//! Reading Asterisk configuration: the ini dialect (`[section](templates)`, `key = value`,
//! `key => value`, `;` comments, `#include`), templates and their inheritance, and the parts of
//! pjsip.conf, sip.conf, iax.conf and voicemail.conf that define extensions, secrets and mailboxes.
//! Pure: it reads files and returns what it found, or an error naming the file and line.

use crate::{Error, Result, invalid};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub(super) struct Section {
    pub name: String,
    pub is_template: bool,
    pub values: Vec<(String, String)>,
    pub file: PathBuf,
    pub line: usize,
}

impl Section {
    pub(super) fn get(&self, key: &str) -> Option<&str> {
        self.values.iter().rev().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v.as_str())
    }
}

/// Parses one config file (following `#include`s, relative to its directory), applying templates.
pub(super) fn parse_file(path: &Path) -> Result<Vec<Section>> {
    let mut raw = Vec::new();
    read_into(path, &mut raw, 0)?;
    let mut done: HashMap<String, Section> = HashMap::new();
    let mut out = Vec::new();
    for (mut s, parents) in raw {
        let mut values = Vec::new();
        for p in &parents {
            let t = done.get(p).ok_or_else(|| {
                invalid!("{}:{}: template {p:?} is not defined before [{}]", s.file.display(), s.line, s.name)
            })?;
            values.extend(t.values.iter().cloned());
        }
        values.append(&mut s.values);
        s.values = values;
        done.insert(s.name.clone(), s.clone());
        if !s.is_template {
            out.push(s);
        }
    }
    Ok(out)
}

fn read_into(path: &Path, out: &mut Vec<(Section, Vec<String>)>, depth: usize) -> Result<()> {
    if depth > 8 {
        return Err(invalid!("{}: #include nested more than 8 deep (a loop?)", path.display()));
    }
    let text = std::fs::read_to_string(path).map_err(|e| Error::Io(format!("{}: {e}", path.display())))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let line = line.split(';').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        if let Some(inc) = line.strip_prefix("#include") {
            let inc = inc.trim().trim_matches(['"', '<', '>']);
            read_into(&dir.join(inc), out, depth + 1)
                .map_err(|e| invalid!("{e}\n  included from {}:{n}", path.display()))?;
            continue;
        }
        if let Some(rest) = line.strip_prefix('[') {
            let (name, after) =
                rest.split_once(']').ok_or_else(|| invalid!("{}:{n}: section header without ']'", path.display()))?;
            let mut is_template = false;
            let mut parents = Vec::new();
            if let Some(opts) = after.trim().strip_prefix('(') {
                let opts = opts
                    .strip_suffix(')')
                    .ok_or_else(|| invalid!("{}:{n}: template list without ')'", path.display()))?;
                for o in opts.split(',').map(str::trim).filter(|o| !o.is_empty()) {
                    if o == "!" {
                        is_template = true;
                    } else if o != "+" {
                        parents.push(o.to_owned());
                    }
                }
            }
            out.push((
                Section {
                    name: name.trim().to_owned(),
                    is_template,
                    values: Vec::new(),
                    file: path.to_owned(),
                    line: n,
                },
                parents,
            ));
            continue;
        }
        let (k, v) = line
            .split_once("=>")
            .or_else(|| line.split_once('='))
            .ok_or_else(|| invalid!("{}:{n}: expected `key = value`, found {line:?}", path.display()))?;
        let (sec, _) =
            out.last_mut().ok_or_else(|| invalid!("{}:{n}: `{}` outside any [section]", path.display(), k.trim()))?;
        sec.values.push((k.trim().to_owned(), v.trim().to_owned()));
    }
    Ok(())
}

/// One account found in the configs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Account {
    pub number: String,
    pub secret: Option<String>,
    /// Where it was defined, for the report.
    pub origin: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct MailboxDef {
    pub number: String,
    pub pin: String,
    pub origin: String,
}

#[derive(Debug, Default)]
pub(super) struct Found {
    pub accounts: Vec<Account>,
    pub mailboxes: Vec<MailboxDef>,
}

fn origin(s: &Section) -> String {
    format!("{}:{} [{}]", s.file.display(), s.line, s.name)
}

/// Reads whatever of pjsip.conf, sip.conf, iax.conf and voicemail.conf exists in `dir`. The first
/// definition of an extension wins (pjsip, then sip, then iax).
pub(super) fn read_dir(dir: &Path) -> Result<Found> {
    let mut found = Found::default();
    let mut seen = std::collections::HashSet::new();
    let mut push = |found: &mut Found, a: Account| {
        if seen.insert(a.number.clone()) {
            found.accounts.push(a);
        }
    };
    let file = |name: &str| Some(dir.join(name)).filter(|p| p.exists());
    if let Some(p) = file("pjsip.conf") {
        let sections = parse_file(&p)?;
        let by_name: HashMap<&str, &Section> = sections.iter().map(|s| (s.name.as_str(), s)).collect();
        for s in sections.iter().filter(|s| s.get("type") == Some("endpoint")) {
            let auth = s.get("auth").or_else(|| s.get("outbound_auth")).and_then(|a| by_name.get(a));
            let secret = auth.and_then(|a| a.get("password")).map(str::to_owned);
            if let Some(a) = auth
                && a.get("auth_type").is_some_and(|t| t.eq_ignore_ascii_case("md5"))
            {
                return Err(invalid!(
                    "{}: auth [{}] stores an MD5 hash (md5_cred) for another realm; set a new secret for it after import",
                    origin(a),
                    a.name
                ));
            }
            push(&mut found, Account { number: s.name.clone(), secret, origin: origin(s) });
        }
    }
    for conf in ["sip.conf", "iax.conf"] {
        if let Some(p) = file(conf) {
            for s in parse_file(&p)? {
                if s.name == "general" || !matches!(s.get("type"), Some("friend" | "peer" | "user")) {
                    continue;
                }
                push(
                    &mut found,
                    Account { number: s.name.clone(), secret: s.get("secret").map(str::to_owned), origin: origin(&s) },
                );
            }
        }
    }
    if let Some(p) = file("voicemail.conf") {
        for s in parse_file(&p)? {
            if matches!(s.name.as_str(), "general" | "zonemessages") {
                continue;
            }
            for (k, v) in &s.values {
                let pin = v.split(',').next().unwrap_or("").trim().trim_start_matches('-');
                found.mailboxes.push(MailboxDef { number: k.clone(), pin: pin.to_owned(), origin: origin(&s) });
            }
        }
    }
    Ok(found)
}
