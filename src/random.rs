//! Unpredictable numbers for protocol IDs (DNS transaction IDs, DHCP xids):
//! an off-path attacker who could guess them could forge answers.

/// Fills `buf` from the kernel's CSPRNG without ever blocking: PID 1 may
/// ask before the pool is initialised (getrandom's default would wait;
/// then /dev/urandom answers, as it always does). Should both fail, the
/// bytes are mixed with the time and PID: weaker, but the protocols work.
pub fn fill(buf: &mut [u8]) {
    // SAFETY: getrandom writes at most buf.len() bytes into buf.
    let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), libc::GRND_NONBLOCK) };
    if n == buf.len() as isize {
        return;
    }
    let read = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, buf));
    if read.is_err() {
        let mix = crate::clock::unix_ms() ^ (u64::from(std::process::id()) << 20);
        for (i, b) in buf.iter_mut().enumerate() {
            *b ^= (mix >> ((i % 8) * 8)) as u8;
        }
    }
}

pub fn u16() -> u16 {
    let mut b = [0u8; 2];
    fill(&mut b);
    u16::from_ne_bytes(b)
}

pub fn u32() -> u32 {
    let mut b = [0u8; 4];
    fill(&mut b);
    u32::from_ne_bytes(b)
}

#[cfg(test)]
mod tests {
    #[test]
    fn draws_differ() {
        // 8 draws of 32 bits all equal: 2^-224 if random, certain if stuck.
        let first = super::u32();
        assert!((0..8).any(|_| super::u32() != first));
    }
}
