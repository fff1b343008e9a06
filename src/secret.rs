//! Random material: generated SIP secrets, the nonce key, seeds.

use anyhow::{Context, Result};
use std::io::Write;
use std::path::Path;

pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).expect("the OS random source is available");
    b
}

/// A 20-character secret drawn from letters, digits and specials, with at least one of each class
/// (unambiguous characters only, so it survives being read over the phone).
pub(crate) fn generate_secret() -> String {
    const LOWER: &[u8] = b"abcdefghijkmnopqrstuvwxyz";
    const UPPER: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
    const DIGIT: &[u8] = b"23456789";
    const SPECIAL: &[u8] = b"!$%^*-_+=";
    let classes = [LOWER, UPPER, DIGIT, SPECIAL];
    loop {
        let bytes = random_bytes::<20>();
        let s: Vec<u8> = bytes
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let set = if i < 4 { classes[i] } else { classes[(*b as usize) % 4] };
                set[(*b as usize / 4) % set.len()]
            })
            .collect();
        // Shuffle the guaranteed first four with more randomness so positions carry no pattern.
        let mut s = s;
        let r = random_bytes::<20>();
        for i in (1..s.len()).rev() {
            s.swap(i, r[i] as usize % (i + 1));
        }
        let s = String::from_utf8(s).expect("ASCII");
        if classes.iter().all(|c| s.bytes().any(|b| c.contains(&b))) {
            return s;
        }
    }
}

/// Reads a 32-byte key file, creating it (mode 0600) on first use.
pub(crate) fn load_or_create_key(path: &Path) -> Result<[u8; 32]> {
    if let Ok(b) = std::fs::read(path) {
        return b.try_into().map_err(|_| {
            anyhow::anyhow!(
                "{} is corrupt (expected 32 bytes); delete it to make a new one (outstanding nonces become invalid)",
                path.display()
            )
        });
    }
    let key = random_bytes::<32>();
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(path).with_context(|| format!("creating {}", path.display()))?;
    f.write_all(&key)?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    #[test]
    fn generated_secrets_have_every_class() {
        for _ in 0..200 {
            let s = super::generate_secret();
            assert_eq!(s.len(), 20);
            assert!(s.bytes().any(|b| b.is_ascii_lowercase()) && s.bytes().any(|b| b.is_ascii_uppercase()));
            assert!(s.bytes().any(|b| b.is_ascii_digit()) && s.bytes().any(|b| !b.is_ascii_alphanumeric()));
        }
    }
}
