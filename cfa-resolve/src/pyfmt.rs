//! The few Python formatting rules the reference's strings and numbers follow.

/// Python `round(x, 2)`: the double nearest to the decimal `x` rounded half-to-even
/// on its exact binary value (`round(0.125, 2) == 0.12`, `round(2.675, 2) == 2.67`).
///
/// Away from a tie the rounding direction is clear from `x * 100` alone, and the
/// double nearest to the decimal `k / 100` is the correctly rounded IEEE quotient
/// `k / 100.0`; values near a tie (or too large for that margin) take the exact path,
/// formatting and parsing the decimal.
pub fn round2(x: f64) -> f64 {
    if !x.is_finite() {
        return x;
    }
    let scaled = x * 100.0;
    if scaled.abs() < 1e9 {
        let distance_to_tie = ((scaled - scaled.trunc()).abs() - 0.5).abs();
        if distance_to_tie > 1e-6 {
            return scaled.round() / 100.0;
        }
    }
    round2_exact(x)
}

/// [`round2`] through the decimal text, for every finite `x`.
fn round2_exact(x: f64) -> f64 {
    format!("{x:.2}").parse::<f64>().unwrap_or(x)
}

/// Python `f"{x:.2f}"`.
pub fn fmt2(x: f64) -> String {
    if x.is_nan() {
        "nan".to_owned()
    } else if x.is_infinite() {
        if x > 0.0 { "inf" } else { "-inf" }.to_owned()
    } else {
        format!("{x:.2}")
    }
}

/// Python `True` / `False`.
pub fn py_bool(b: bool) -> &'static str {
    if b { "True" } else { "False" }
}

/// Python `repr(str)`.
pub fn py_str_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || (0x7f..0xa0).contains(&(c as u32)) => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Python `repr(list_of_str)`: `['nfe', 'clientes']`.
pub fn py_list_repr<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let parts: Vec<String> = items.into_iter().map(py_str_repr).collect();
    format!("[{}]", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_rounding() {
        // The fast path gives the exact path's double, bit for bit.
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut samples: Vec<f64> = vec![0.0, -0.0, 0.005, -0.005, 0.015, 1e8, -1e8, 0.75, 0.85];
        for i in 0..200_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let unit = (seed >> 11) as f64 / (1u64 << 53) as f64;
            samples.push(match i % 3 {
                0 => unit,
                1 => (unit - 0.5) * 2e4,
                _ => f64::from(i % 1000) / 1000.0,
            });
        }
        for x in samples {
            assert_eq!(round2(x).to_bits(), round2_exact(x).to_bits(), "{x:e}");
        }
        assert_eq!(round2(0.125), 0.12);
        assert_eq!(round2(0.375), 0.38);
        assert_eq!(round2(2.675), 2.67);
        assert_eq!(round2(0.45 - 0.3), 0.15);
        assert_eq!(round2(0.85 - 0.1), 0.75);
        assert_eq!(fmt2(0.125), "0.12");
        assert_eq!(fmt2(0.65), "0.65");
    }

    #[test]
    fn python_reprs() {
        assert_eq!(py_list_repr(["nfe", "clientes"]), "['nfe', 'clientes']");
        assert_eq!(py_list_repr([]), "[]");
        assert_eq!(py_str_repr("it's"), "\"it's\"");
        assert_eq!(py_str_repr("a'b\"c"), "'a\\'b\"c'");
        assert_eq!(py_str_repr("ção\n"), "'ção\\n'");
    }
}
