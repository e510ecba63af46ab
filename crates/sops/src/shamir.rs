//! Shamir secret sharing over GF(2^8) (the AES field, x^8 + x^4 + x^3 + x + 1), as sops
//! splits a data key across key groups: every share is the per-byte evaluations followed by
//! the share's x coordinate in its last byte. Combining interpolates each byte at x = 0.

fn mul(a: u8, b: u8) -> u8 {
    let (mut a, mut b, mut p) = (a, b, 0u8);
    while b != 0 {
        if b & 1 != 0 {
            p ^= a;
        }
        let carry = a & 0x80 != 0;
        a <<= 1;
        if carry {
            a ^= 0x1b;
        }
        b >>= 1;
    }
    p
}

/// Multiplicative inverse: a^254 (a^255 = 1 for a != 0).
fn inv(a: u8) -> u8 {
    let mut result = 1u8;
    let mut base = a;
    let mut e = 254u32;
    while e > 0 {
        if e & 1 != 0 {
            result = mul(result, base);
        }
        base = mul(base, base);
        e >>= 1;
    }
    result
}

/// Recover the secret from at least `threshold` shares (the caller checks the count).
pub(crate) fn combine(parts: &[Vec<u8>]) -> Result<Vec<u8>, String> {
    if parts.len() < 2 {
        return Err("less than two parts cannot be used to reconstruct the secret".into());
    }
    let len = parts[0].len();
    if len < 2 {
        return Err("parts must be at least two bytes".into());
    }
    if parts.iter().any(|p| p.len() != len) {
        return Err("all parts must be the same length".into());
    }
    let xs: Vec<u8> = parts.iter().map(|p| p[len - 1]).collect();
    for (i, x) in xs.iter().enumerate() {
        if xs[..i].contains(x) {
            return Err("duplicate part detected".into());
        }
    }
    let mut secret = vec![0u8; len - 1];
    for (idx, byte) in secret.iter_mut().enumerate() {
        let mut acc = 0u8;
        for (i, xi) in xs.iter().enumerate() {
            // Lagrange basis at 0: prod_j (0 - x_j) / (x_i - x_j); minus is xor here
            let mut basis = 1u8;
            for (j, xj) in xs.iter().enumerate() {
                if i != j {
                    basis = mul(basis, mul(*xj, inv(xi ^ xj)));
                }
            }
            acc ^= mul(parts[i][idx], basis);
        }
        *byte = acc;
    }
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_inverse() {
        for a in 1..=255u8 {
            assert_eq!(mul(a, inv(a)), 1, "{a}");
        }
    }

    #[test]
    fn combines_shares_of_a_known_polynomial() {
        // secret bytes 42 and 7, polynomials s + 5x and s + 200x, shares at x = 1, 2, 3
        let share = |x: u8| vec![42 ^ mul(5, x), 7 ^ mul(200, x), x];
        let all = [share(1), share(2), share(3)];
        assert_eq!(combine(&all[..2]).unwrap(), vec![42, 7]);
        assert_eq!(
            combine(&[all[2].clone(), all[0].clone()]).unwrap(),
            vec![42, 7]
        );
        assert_eq!(combine(&all).unwrap(), vec![42, 7]);
        assert!(combine(&all[..1]).is_err());
    }
}
