//! The "Perhaps you meant ..." hints: the closest name as PostgREST's
//! fuzzy set finds it (trigram then bigram cosine similarity of the
//! normalized names, re-ranked by the Levenshtein distance of the
//! lower-cased names, at least 0.33 alike).

use std::collections::HashMap;

const MIN_SCORE: f64 = 0.33;

fn normalize(s: &str) -> String {
    s.to_lowercase().chars().filter(|c| c.is_alphanumeric() || *c == ',' || *c == ' ').collect()
}

fn grams(s: &str, size: usize) -> HashMap<String, usize> {
    let padded: Vec<char> = format!("-{}-", normalize(s)).chars().collect();
    let mut out = HashMap::new();
    if padded.len() < size {
        return out;
    }
    for w in padded.windows(size) {
        *out.entry(w.iter().collect()).or_insert(0) += 1;
    }
    out
}

fn cosine(a: &HashMap<String, usize>, b: &HashMap<String, usize>) -> f64 {
    let dot: usize = a.iter().filter_map(|(g, n)| b.get(g).map(|m| n * m)).sum();
    let norm = |m: &HashMap<String, usize>| (m.values().map(|v| (v * v) as f64).sum::<f64>()).sqrt();
    let d = norm(a) * norm(b);
    if d == 0.0 {
        0.0
    } else {
        dot as f64 / d
    }
}

fn levenshtein(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The candidate most like `value`, if any is alike enough.
pub fn closest<'a>(value: &str, candidates: &[&'a str]) -> Option<&'a str> {
    for size in [3, 2] {
        let wanted = grams(value, size);
        let similar: Vec<&str> =
            candidates.iter().copied().filter(|c| cosine(&wanted, &grams(c, size)) > 0.0).collect();
        if similar.is_empty() {
            continue;
        }
        let v = value.to_lowercase();
        let score = |c: &str| {
            let n = c.to_lowercase();
            let longest = v.chars().count().max(n.chars().count()).max(1);
            1.0 - levenshtein(&v, &n) as f64 / longest as f64
        };
        return similar
            .into_iter()
            .map(|c| (score(c), c))
            .filter(|(s, _)| *s >= MIN_SCORE)
            .max_by(|a, b| a.0.total_cmp(&b.0).then_with(|| b.1.cmp(a.1)))
            .map(|(_, c)| c);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::closest;

    #[test]
    fn suggests_close_names_only() {
        let tables = ["films", "directors", "roles", "actors"];
        assert_eq!(closest("film", &tables), Some("films"));
        assert_eq!(closest("role", &tables), Some("roles"));
        assert_eq!(closest("noclosealternative", &tables), None);
        // Parameter lists keep their punctuation when ranked.
        assert_eq!(closest("(id)", &["(attr, id)", "(name, param, val)"]), Some("(attr, id)"));
        assert_eq!(closest("(a)", &["(a, b)"]), Some("(a, b)"));
    }
}
