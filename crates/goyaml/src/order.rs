//! go-yaml v2's order of mapping keys. sigs.k8s.io/yaml writes a JSON object through a Go
//! map, so every mapping it prints comes out in this order.

use std::cmp::Ordering;

/// go-yaml v2's key order (`keyList.Less`), which it sorts a Go map's keys by before writing: numbers by value, strings in a "natural" order where runs of
/// digits compare as numbers and letters sort before non-letters.
pub fn key_less(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        return key_less_in(a.as_bytes(), b.as_bytes(), |c| c as char);
    }
    let ar: Vec<char> = a.chars().collect();
    let br: Vec<char> = b.chars().collect();
    key_less_in(&ar, &br, |c| c)
}

fn key_less_in<T: Copy + PartialEq + PartialOrd>(
    ar: &[T],
    br: &[T],
    ch: impl Fn(T) -> char,
) -> bool {
    let mut i = 0;
    while i < ar.len() && i < br.len() {
        if ar[i] == br[i] {
            i += 1;
            continue;
        }
        let al = ch(ar[i]).is_alphabetic();
        let bl = ch(br[i]).is_alphabetic();
        if al && bl {
            return ar[i] < br[i];
        }
        if al || bl {
            return bl;
        }
        let (mut an, mut bn): (i64, i64) = (0, 0);
        if ch(ar[i]) == '0' || ch(br[i]) == '0' {
            let mut j = i;
            while j > 0 {
                j -= 1;
                if !ch(ar[j]).is_ascii_digit() {
                    break;
                }
                if ch(ar[j]) != '0' {
                    an = 1;
                    bn = 1;
                    break;
                }
            }
        }
        let mut ai = i;
        while ai < ar.len() && ch(ar[ai]).is_ascii_digit() {
            an = an
                .wrapping_mul(10)
                .wrapping_add(ch(ar[ai]) as i64 - '0' as i64);
            ai += 1;
        }
        let mut bi = i;
        while bi < br.len() && ch(br[bi]).is_ascii_digit() {
            bn = bn
                .wrapping_mul(10)
                .wrapping_add(ch(br[bi]) as i64 - '0' as i64);
            bi += 1;
        }
        if an != bn {
            return an < bn;
        }
        if ai != bi {
            return ai < bi;
        }
        return ar[i] < br[i];
    }
    ar.len() < br.len()
}

/// [`key_less`] as an ordering, for a stable sort.
pub fn key_cmp(a: &str, b: &str) -> Ordering {
    if key_less(a, b) {
        Ordering::Less
    } else if key_less(b, a) {
        Ordering::Greater
    } else {
        Ordering::Equal
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_key_order() {
        assert!(key_less("a9", "a10"));
        assert!(key_less("a", "b"));
        assert!(key_less("a_", "ab"));
        assert!(!key_less("b", "B"));
        assert_eq!(key_cmp("x", "x"), Ordering::Equal);
    }
}
