//! How the programs word what they say in English beside the numbers: a count and its
//! noun ([`counted`]). Pure: no I/O.

/// A count and its noun as English says them: `1 call`, `2 calls`, `0 exchanges` (every
/// noun the programs count takes an `s`). Korean has no plural: its lines say `N개`.
pub fn counted(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_is_singular_and_every_other_count_plural() {
        assert_eq!(counted(1, "exchange"), "1 exchange");
        assert_eq!(counted(0, "exchange"), "0 exchanges");
        assert_eq!(counted(12, "more time"), "12 more times");
    }
}
