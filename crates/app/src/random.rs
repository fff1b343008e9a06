//! Random material: generated SIP secrets, the nonce key, seeds.

use crate::{Error, Result};
use std::io::Write;
use std::path::Path;

pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).expect("the OS random source is available");
    b
}

/// A `len`-character secret (at least 4) drawn from letters, digits and specials, with at least one of
/// each class (unambiguous characters only, so it survives being read over the phone).
pub fn generate_secret(len: usize) -> String {
    const CLASSES: [&[u8]; 4] = [b"abcdefghijkmnopqrstuvwxyz", b"ABCDEFGHJKLMNPQRSTUVWXYZ", b"23456789", b"!$%^*-_+="];
    let len = len.max(CLASSES.len());
    let mut pick = vec![0u8; len];
    let mut order = vec![0u8; len];
    getrandom::fill(&mut pick).expect("the OS random source is available");
    getrandom::fill(&mut order).expect("the OS random source is available");
    // One character of each class first, so every class is present, then any class; then a shuffle so
    // positions carry no pattern.
    let mut s: Vec<u8> = pick
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            let set = CLASSES[if i < CLASSES.len() { i } else { usize::from(b) % CLASSES.len() }];
            set[usize::from(b / 4) % set.len()]
        })
        .collect();
    for i in (1..len).rev() {
        s.swap(i, usize::from(order[i]) % (i + 1));
    }
    String::from_utf8(s).expect("ASCII")
}

/// Reads a 32-byte key file, creating it (mode 0600) on first use.
pub fn load_or_create_key(path: &Path) -> Result<[u8; 32]> {
    if let Ok(b) = std::fs::read(path) {
        return b.try_into().map_err(|_| {
            Error::Io(format!(
                "{} is corrupt (expected 32 bytes); delete it to make a new one (outstanding nonces become invalid)",
                path.display()
            ))
        });
    }
    let key = random_bytes::<32>();
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let io = |e: std::io::Error| Error::Io(format!("creating {}: {e}", path.display()));
    let mut f = opts.open(path).map_err(io)?;
    f.write_all(&key).map_err(io)?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    #[test]
    fn generated_secrets_have_every_class() {
        for len in [4, 20, 64].into_iter().flat_map(|l| std::iter::repeat_n(l, 100)) {
            let s = super::generate_secret(len);
            assert_eq!(s.len(), len);
            assert!(s.bytes().any(|b| b.is_ascii_lowercase()) && s.bytes().any(|b| b.is_ascii_uppercase()));
            assert!(s.bytes().any(|b| b.is_ascii_digit()) && s.bytes().any(|b| !b.is_ascii_alphanumeric()));
        }
    }
}
