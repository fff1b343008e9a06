//! The protocol core stays sans-IO: no async runtime, sockets or database in its dependency tree.

use std::process::Command;

#[test]
fn sip_core_has_no_io_dependencies() {
    for krate in ["pbxguard-sip", "pbxguard-pbx"] {
        let o = Command::new(env!("CARGO"))
            .args(["tree", "--offline", "-e", "normal", "-p", krate, "--prefix", "none"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("cargo tree");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let tree = String::from_utf8_lossy(&o.stdout);
        for banned in ["tokio", "mio", "socket2", "rusqlite", "sqlx", "async-std", "libsqlite3-sys"] {
            assert!(!tree.lines().any(|l| l.split(' ').next() == Some(banned)), "{krate} depends on {banned}:\n{tree}");
        }
        assert!(tree.lines().count() > 1, "cargo tree printed nothing useful for {krate}");
    }
}
