//! How the report writes names for people: ions with real superscripts and subscripts
//! (Mg²⁺, SO₄²⁻ in figures and Markdown; `Mg$^{2+}$`, `SO$_4^{2-}$` in LaTeX) and summary
//! keys as headers. Files keep the canonical ASCII spelling (`Mg^2+`).

use ionode_physics::IonDb;
use std::sync::OnceLock;

/// Splits an ion name into (formula, charge text): `SO4^2-` -> (`SO4`, `2-`), `Na+` ->
/// (`Na`, `+`). Names the built-in database knows are taken in any spelling; others only
/// when the charge is marked (`Fe^3+`, `Fe_3+`), since in `Fe3+` the digit could be
/// either. `None` when the name cannot be split.
fn parts(name: &str) -> Option<(String, String)> {
    static DB: OnceLock<IonDb> = OnceLock::new();
    let canonical = match DB.get_or_init(IonDb::builtin).get(name) {
        Ok(ion) => ion.name.clone(),
        Err(_) if name.contains(['^', '_']) => ionode_physics::ions::canonical_name(name),
        Err(_) => return None,
    };
    if !canonical.ends_with(['+', '-']) {
        return None;
    }
    match canonical.split_once('^') {
        Some((f, c)) => Some((f.to_string(), c.to_string())),
        None => {
            let (f, sign) = canonical.split_at(canonical.len() - 1);
            Some((f.to_string(), sign.to_string()))
        }
    }
}

fn map_chars(s: &str, table: &[(char, char)]) -> String {
    s.chars()
        .map(|c| table.iter().find(|(a, _)| *a == c).map_or(c, |(_, b)| *b))
        .collect()
}

const SUB: [(char, char); 10] = [
    ('0', '₀'),
    ('1', '₁'),
    ('2', '₂'),
    ('3', '₃'),
    ('4', '₄'),
    ('5', '₅'),
    ('6', '₆'),
    ('7', '₇'),
    ('8', '₈'),
    ('9', '₉'),
];
const SUP: [(char, char); 12] = [
    ('0', '⁰'),
    ('1', '¹'),
    ('2', '²'),
    ('3', '³'),
    ('4', '⁴'),
    ('5', '⁵'),
    ('6', '⁶'),
    ('7', '⁷'),
    ('8', '⁸'),
    ('9', '⁹'),
    ('+', '⁺'),
    ('-', '⁻'),
];

/// An ion for figures and Markdown: `SO4^2-` -> `SO₄²⁻`, `Na+` -> `Na⁺`.
pub fn ion(name: &str) -> String {
    match parts(name) {
        Some((f, c)) => format!("{}{}", map_chars(&f, &SUB), map_chars(&c, &SUP)),
        None => name.to_string(),
    }
}

/// An ion for LaTeX text: `SO4^2-` -> `SO$_{4}^{2-}$`, `Na+` -> `Na$^{+}$`.
pub fn ion_latex(name: &str) -> String {
    let Some((f, c)) = parts(name) else {
        return latex_escape(name);
    };
    let mut out = String::new();
    for ch in f.chars() {
        if ch.is_ascii_digit() {
            out.push_str(&format!("$_{{{ch}}}$"));
        } else {
            out.push_str(&latex_escape(&ch.to_string()));
        }
    }
    out.push_str(&format!("$^{{{c}}}$"));
    out.replace("$$", "")
}

/// A family or salt label with subscript counts: `NaCl+MgSO4` -> `NaCl+MgSO₄`,
/// `Na2SO4` -> `Na₂SO₄` (a digit right after a letter or `)`; `Li/Mg 1:5` is left alone).
pub fn formula(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut prev: Option<char> = None;
    for c in text.chars() {
        let after_element = prev.is_some_and(|p| p.is_ascii_alphabetic() || p == ')')
            || (prev.is_some_and(|p| SUB.iter().any(|(_, s)| *s == p)));
        match SUB.iter().find(|(a, _)| *a == c) {
            Some((_, s)) if after_element => out.push(*s),
            _ => out.push(c),
        }
        prev = out.chars().last();
    }
    out
}

/// The Li⁺/Mg²⁺ separation factor's symbol in text.
pub const SEPARATION: &str = "S(Li⁺/Mg²⁺)";

/// Escapes LaTeX's special characters; the Unicode the report writes (±, ×, λ, Δ, ², the
/// ion super- and subscripts, dashes) becomes math or its LaTeX spelling.
pub fn latex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push_str("\\textbackslash{}"),
            '&' | '%' | '$' | '#' | '_' | '{' | '}' => {
                out.push('\\');
                out.push(c);
            }
            '~' => out.push_str("\\textasciitilde{}"),
            '^' => out.push_str("\\textasciicircum{}"),
            '±' => out.push_str("$\\pm$"),
            '×' => out.push_str("$\\times$"),
            'λ' => out.push_str("$\\lambda$"),
            'Δ' => out.push_str("$\\Delta$"),
            '≤' => out.push_str("$\\leq$"),
            '≥' => out.push_str("$\\geq$"),
            '−' => out.push_str("$-$"),
            '–' => out.push_str("--"),
            '—' => out.push_str("---"),
            '†' => out.push_str("\\textdagger{}"),
            'Σ' => out.push_str("$\\Sigma$"),
            'ᵢ' => out.push_str("$_i$"),
            'ₚ' => out.push_str("$_p$"),
            '→' => out.push_str("$\\to$"),
            '★' => out.push_str("$\\star$"),
            '·' => out.push_str("$\\cdot$"),
            '≈' => out.push_str("$\\approx$"),
            'Å' => out.push_str("\\AA{}"),
            c if SUP.iter().any(|(_, u)| *u == c) => {
                let mut sup = String::new();
                let mut next = Some(c);
                while let Some(u) = next.filter(|u| SUP.iter().any(|(_, x)| x == u)) {
                    sup.push(
                        SUP.iter()
                            .find(|(_, x)| *x == u)
                            .map(|(a, _)| *a)
                            .unwrap_or(u),
                    );
                    chars.next_if_eq(&u);
                    next = chars.peek().copied();
                    if next.is_some_and(|n| !SUP.iter().any(|(_, x)| *x == n)) {
                        break;
                    }
                }
                out.push_str(&format!("$^{{{sup}}}$"));
            }
            c if SUB.iter().any(|(_, u)| *u == c) => {
                let a = SUB
                    .iter()
                    .find(|(_, u)| *u == c)
                    .map(|(a, _)| *a)
                    .unwrap_or(c);
                out.push_str(&format!("$_{{{a}}}$"));
            }
            _ => out.push(c),
        }
    }
    out.replace("$$", "")
}

/// Escapes text for HTML content and attribute values (the report page).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ions_get_real_superscripts_and_subscripts() {
        assert_eq!(ion("Mg^2+"), "Mg²⁺");
        assert_eq!(ion("SO4_2-"), "SO₄²⁻");
        assert_eq!(ion("NH4+"), "NH₄⁺");
        assert_eq!(ion("Cl-"), "Cl⁻");
        assert_eq!(ion("Fe3+"), "Fe3+", "unknown and ambiguous: left alone");
        assert_eq!(ion("Fe^3+"), "Fe³⁺");
        assert_eq!(ion_latex("SO4^2-"), "SO$_{4}^{2-}$");
        assert_eq!(ion_latex("Na+"), "Na$^{+}$");
        assert_eq!(latex_escape("SO₄²⁻ ± 1"), "SO$_{4}^{2-}$ $\\pm$ 1");
        assert_eq!(latex_escape("a_b & λ"), "a\\_b \\& $\\lambda$");
        assert_eq!(latex_escape("|Σ zᵢ cₚ,ᵢ|"), "|$\\Sigma$ z$_i$ c$_p$,$_i$|");
        assert_eq!(escape("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
        assert_eq!(formula("NaCl+MgSO4"), "NaCl+MgSO₄");
        assert_eq!(formula("Na2SO4"), "Na₂SO₄");
        assert_eq!(formula("Li/Mg 1:5"), "Li/Mg 1:5");
        assert_eq!(formula("Ca(NO3)2"), "Ca(NO₃)₂");
    }
}
