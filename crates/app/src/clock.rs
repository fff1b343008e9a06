//! The wall clock, read in one place. Sans-IO cores take `now` as an argument; this is where the
//! daemon and the operations get it.

pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

pub fn now_secs() -> i64 {
    (now_ms() / 1000) as i64
}
