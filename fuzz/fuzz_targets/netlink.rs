//! The kernel's netlink answers (and anything else on the socket) never panic the decoder.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for r in pbxguard_firewall::netlink::replies(data) {
        let _ = r;
    }
    let _ = pbxguard_firewall::netlink::decode_batch(data);
});
