use std::sync::Mutex;

use crate::time::now_millis;

const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// The last id made in this process, so ids made in one millisecond still come out in order.
static LAST: Mutex<u128> = Mutex::new(0);

/// A new ULID-style id: 48 bits of milliseconds then 80 random bits, as 26 Crockford base-32
/// characters. Ids sort by creation time, never collide across processes or branches, and
/// read well enough to type a prefix of. Within a process they are monotonic (the ULID
/// spec's way): an id made in the same millisecond as the last one is that one plus one, so
/// items queued together are taken in the order they were queued.
pub fn new_id() -> String {
    let mut random = [0u8; 10];
    // Without OS randomness the time part alone still orders ids; uniqueness then rests on
    // the counter-free millisecond, which is logged.
    if let Err(error) = getrandom::fill(&mut random) {
        tracing::error!(%error, "no OS randomness for an id");
    }
    let mut value: u128 = u128::from(now_millis() & 0xFFFF_FFFF_FFFF) << 80;
    for (index, byte) in random.iter().enumerate() {
        value |= u128::from(*byte) << (8 * (9 - index));
    }
    if let Ok(mut last) = LAST.lock() {
        if value >> 80 <= *last >> 80 {
            value = last.saturating_add(1);
        }
        *last = value;
    }
    (0..26)
        .rev()
        .map(|digit| char::from(CROCKFORD[((value >> (5 * digit)) & 31) as usize]))
        .collect()
}
