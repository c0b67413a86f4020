//! MinHash signatures over word 3-grams and banded LSH, for finding near-duplicate rows in linear time.

use std::collections::HashMap;

use rayon::prelude::*;

/// Signature length. 128 permutations estimate a Jaccard similarity to within about ±0.09 (2σ).
pub const NUM_PERM: usize = 128;

pub type Signature = [u32; NUM_PERM];

/// The hash family: `a·x + b` (mod 2³²) with odd `a`, a bijection on 32-bit shingle hashes; cheap enough that
/// the compiler vectorises the 128 of them.
pub struct MinHasher {
    a: [u32; NUM_PERM],
    b: [u32; NUM_PERM],
}

/// splitmix64: a fixed, well-mixed sequence from a seed, so signatures are the same on every run.
pub(crate) fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
    z = (z ^ (z >> 33)).wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    z ^ (z >> 33)
}

impl Default for MinHasher {
    fn default() -> Self {
        Self::new(0x5eed)
    }
}

impl MinHasher {
    pub fn new(seed: u64) -> Self {
        let mut s = seed;
        let mut a = [0u32; NUM_PERM];
        let mut b = [0u32; NUM_PERM];
        for i in 0..NUM_PERM {
            a[i] = (splitmix(&mut s) as u32) | 1;
            b[i] = splitmix(&mut s) as u32;
        }
        MinHasher { a, b }
    }

    /// The signature of the word 3-grams of `texts` (lowercased, split on anything not a letter or digit), or
    /// `None` when there are no words.
    pub fn signature<'a>(&self, texts: impl IntoIterator<Item = &'a str>) -> Option<Signature> {
        let mut sig = [u32::MAX; NUM_PERM];
        let mut window = [0u64; 3];
        let mut words = 0usize;
        let mut any = false;
        let fast = avx2();
        let add = |h: u64, sig: &mut Signature| {
            let x = (mix(h) >> 32) as u32;
            #[cfg(target_arch = "x86_64")]
            if fast {
                // SAFETY: only reached when the CPU reports AVX2.
                unsafe { update_avx2(sig, &self.a, &self.b, x) };
                return;
            }
            let _ = fast;
            update(sig, &self.a, &self.b, x);
        };
        for text in texts {
            for word in text.as_bytes().split(|b| !(b.is_ascii_alphanumeric() || *b >= 0x80)) {
                if word.is_empty() {
                    continue;
                }
                let mut h: u64 = 0xcbf2_9ce4_8422_2325;
                for &c in word {
                    h = (h ^ c.to_ascii_lowercase() as u64).wrapping_mul(0x0000_0100_0000_01b3);
                }
                window = [window[1], window[2], h];
                words += 1;
                if words >= 3 {
                    add(window[0] ^ window[1].rotate_left(21) ^ window[2].rotate_left(42), &mut sig);
                    any = true;
                }
            }
        }
        if !any && words > 0 {
            // Fewer than three words: the words themselves are the shingle.
            add(window[0] ^ window[1].rotate_left(21) ^ window[2].rotate_left(42) ^ words as u64, &mut sig);
            any = true;
        }
        any.then_some(sig)
    }
}

#[inline(always)]
fn update(sig: &mut Signature, a: &[u32; NUM_PERM], b: &[u32; NUM_PERM], x: u32) {
    for ((s, &a), &b) in sig.iter_mut().zip(a).zip(b) {
        *s = (*s).min(a.wrapping_mul(x).wrapping_add(b));
    }
}

/// The same loop compiled for AVX2, whose 8-lane 32-bit multiply the baseline x86-64 target lacks; this is most
/// of the near-duplicate search's time.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn update_avx2(sig: &mut Signature, a: &[u32; NUM_PERM], b: &[u32; NUM_PERM], x: u32) {
    update(sig, a, b, x)
}

fn avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Estimated Jaccard similarity: the share of positions where the signatures agree.
pub fn similarity(a: &Signature, b: &Signature) -> f64 {
    a.iter().zip(b).filter(|(x, y)| x == y).count() as f64 / NUM_PERM as f64
}

/// Bands × rows per band for a similarity threshold: the S-curve's midpoint (1/b)^(1/r) placed just under it, so
/// pairs at the threshold are found with high probability; candidates are then checked against the threshold.
pub fn bands_for(threshold: f64) -> (usize, usize) {
    let mut best = (NUM_PERM, 1);
    let mut best_gap = f64::INFINITY;
    for r in 1..=NUM_PERM {
        let b = NUM_PERM / r;
        if b == 0 {
            break;
        }
        let mid = (1.0 / b as f64).powf(1.0 / r as f64);
        let gap = threshold - 0.08 - mid;
        if gap.abs() < best_gap {
            best_gap = gap.abs();
            best = (b, r);
        }
    }
    best
}

fn find(parent: &mut [usize], mut i: usize) -> usize {
    while parent[i] != i {
        parent[i] = parent[parent[i]];
        i = parent[i];
    }
    i
}

/// Groups of items whose signatures agree on at least `threshold` of positions (transitively), each sorted with
/// the lowest index first; only groups of two or more are returned, ordered by their first index.
pub fn near_duplicate_groups(sigs: &[Option<Signature>], threshold: f64) -> Vec<Vec<usize>> {
    let (bands, rows) = bands_for(threshold);
    let mut parent: Vec<usize> = (0..sigs.len()).collect();
    let keys: Vec<Option<Vec<u64>>> = sigs
        .par_iter()
        .map(|s| {
            s.as_ref().map(|s| {
                (0..bands)
                    .map(|band| {
                        let mut h = band as u64;
                        for &v in &s[band * rows..(band + 1) * rows] {
                            h = mix(h ^ v as u64).wrapping_add(0x9e37_79b9);
                        }
                        h
                    })
                    .collect()
            })
        })
        .collect();
    let mut tables: Vec<HashMap<u64, usize>> = vec![HashMap::with_capacity(sigs.len()); bands];
    for (i, k) in keys.iter().enumerate() {
        let Some(k) = k else { continue };
        for (band, key) in k.iter().enumerate() {
            match tables[band].get(key) {
                Some(&j) => {
                    let (ri, rj) = (find(&mut parent, i), find(&mut parent, j));
                    if ri != rj && similarity(sigs[i].as_ref().unwrap(), sigs[j].as_ref().unwrap()) >= threshold {
                        let (lo, hi) = (ri.min(rj), ri.max(rj));
                        parent[hi] = lo;
                    }
                }
                None => {
                    tables[band].insert(*key, i);
                }
            }
        }
    }
    let mut groups: HashMap<usize, Vec<usize>> = HashMap::new();
    for i in 0..sigs.len() {
        let r = find(&mut parent, i);
        groups.entry(r).or_default().push(i);
    }
    let mut out: Vec<Vec<usize>> = groups.into_values().filter(|g| g.len() > 1).collect();
    for g in &mut out {
        g.sort_unstable();
    }
    out.sort_unstable_by_key(|g| g[0]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_copies_group_and_different_texts_do_not() {
        let h = MinHasher::default();
        let base = "the quick brown fox jumps over the lazy dog while the cat sleeps on the warm mat near the door";
        let near = "the quick brown fox jumps over the lazy dog while the cat sleeps on the warm mat near the window";
        let other = "completely unrelated sentence about tax forms and the filing deadline for small businesses";
        let sigs = vec![h.signature([base]), h.signature([other]), h.signature([near]), h.signature([""])];
        assert!(sigs[3].is_none());
        let groups = near_duplicate_groups(&sigs, 0.7);
        assert_eq!(groups, vec![vec![0, 2]]);
        assert!(near_duplicate_groups(&sigs, 0.99).is_empty());
    }

    #[test]
    fn bands_put_the_curve_under_the_threshold() {
        for t in [0.5, 0.7, 0.8, 0.9] {
            let (b, r) = bands_for(t);
            assert!(b * r <= NUM_PERM);
            let mid = (1.0 / b as f64).powf(1.0 / r as f64);
            assert!(mid < t && mid > t - 0.25, "t={t} b={b} r={r} mid={mid}");
        }
    }
}
