//! The one source of randomness of a simulated run.
//!
//! xoshiro256** seeded through splitmix64: small, fast, and the same stream on
//! every platform, so a seed printed by a failing run replays it exactly. No
//! `rand` crate: its algorithms may change between versions, and a seed must
//! keep meaning the same run.

#[derive(Clone, Debug)]
pub struct Rng {
    s: [u64; 4],
}

/// splitmix64: spreads a seed (even 0 or 1) over the whole state space.
fn splitmix64(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Rng {
    pub fn new(seed: u64) -> Self {
        let mut x = seed;
        Rng { s: [splitmix64(&mut x), splitmix64(&mut x), splitmix64(&mut x), splitmix64(&mut x)] }
    }

    /// An independent generator for one concern (one node's clock, the
    /// network), so that drawing one more number in one place does not shift
    /// every later choice everywhere else: a small change to the workload then
    /// keeps the same fault schedule.
    pub fn fork(&mut self, salt: u64) -> Rng {
        Rng::new(self.next_u64() ^ salt.wrapping_mul(0x2545_f491_4f6c_dd1d))
    }

    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in `[0, n)`; `n > 0`. Lemire's multiply-shift: the bias for the
    /// small `n` used here is far below anything a test could notice.
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "Rng::below(0)");
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `[lo, hi]`, both inclusive.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        assert!(lo <= hi, "Rng::range({lo}, {hi})");
        match (hi - lo).checked_add(1) {
            Some(n) => lo + self.below(n),
            None => self.next_u64(),
        }
    }

    pub fn range_i64(&mut self, lo: i64, hi: i64) -> i64 {
        assert!(lo <= hi, "Rng::range_i64({lo}, {hi})");
        lo.wrapping_add(self.range(0, hi.wrapping_sub(lo) as u64) as i64)
    }

    /// True with probability `ppm / 1_000_000`. Integer odds keep every
    /// platform on the same stream (no float rounding in the comparison).
    pub fn chance_ppm(&mut self, ppm: u64) -> bool {
        self.below(1_000_000) < ppm
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// Around `mean_ns`: uniform in `[0, 2 * mean_ns]`, for "time until the
    /// next fault". Integer-only on purpose: `f64::ln` comes from the
    /// platform's libm, and a last-bit difference would make a seed replay a
    /// different run on another machine.
    pub fn around_ns(&mut self, mean_ns: u64) -> u64 {
        self.range(0, mean_ns.saturating_mul(2))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_and_bounds_hold() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        for _ in 0..1000 {
            assert_eq!(a.next_u64(), b.next_u64());
            let r = a.range(3, 9);
            assert!((3..=9).contains(&r));
            b.range(3, 9);
        }
        assert_ne!(Rng::new(1).next_u64(), Rng::new(2).next_u64());
        assert_eq!(a.range(5, 5), 5);
        assert!((-3..=3).contains(&a.range_i64(-3, 3)));
    }
}
