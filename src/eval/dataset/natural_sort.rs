//! The order files are listed and reported in: digit runs by value, so `2.png` comes
//! before `10.png` as in a file manager, and every caller sees the same order.

use std::cmp::Ordering;

/// Orders digit runs by value (`2.png` before `10.png`), the rest bytewise; ties between
/// equal values written differently (`01` vs `1`) fall back to plain byte order, which
/// keeps this a total order.
pub(super) fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (x, y) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < x.len() && j < y.len() {
        if x[i].is_ascii_digit() && y[j].is_ascii_digit() {
            let (si, sj) = (i, j);
            while i < x.len() && x[i].is_ascii_digit() {
                i += 1;
            }
            while j < y.len() && y[j].is_ascii_digit() {
                j += 1;
            }
            let strip = |d: &[u8]| {
                let zeros = d.iter().take_while(|c| **c == b'0').count();
                d[zeros..].to_vec()
            };
            let (n, m) = (strip(&x[si..i]), strip(&y[sj..j]));
            let ord = n.len().cmp(&m.len()).then_with(|| n.cmp(&m));
            if ord != Ordering::Equal {
                return ord;
            }
        } else {
            let ord = x[i].cmp(&y[j]);
            if ord != Ordering::Equal {
                return ord;
            }
            i += 1;
            j += 1;
        }
    }
    (x.len() - i).cmp(&(y.len() - j)).then_with(|| a.cmp(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn natural_order() {
        let mut v = vec!["a10", "a2", "a02", "b", "a", "a1b", "a1"];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(v, ["a", "a1", "a1b", "a02", "a2", "a10", "b"]);
    }

    proptest! {
        #[test]
        fn natural_cmp_is_a_total_order(a in "[a0-9]{0,6}", b in "[a0-9]{0,6}", c in "[a0-9]{0,6}") {
            prop_assert_eq!(natural_cmp(&a, &b), natural_cmp(&b, &a).reverse());
            prop_assert_eq!(natural_cmp(&a, &b) == Ordering::Equal, a == b);
            if natural_cmp(&a, &b) != Ordering::Greater && natural_cmp(&b, &c) != Ordering::Greater {
                prop_assert_ne!(natural_cmp(&a, &c), Ordering::Greater);
            }
        }
    }
}
