//! The README's SQL, as the suites that run it read it.

/// The SQL blocks of the README section "Accounting queries".
pub fn accounting_queries() -> Vec<String> {
    let readme = include_str!("../../README.md");
    let section = readme
        .split("## Accounting queries")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("README has an Accounting queries section");
    section
        .split("```sql")
        .skip(1)
        .map(|block| {
            block
                .split("```")
                .next()
                .unwrap_or_default()
                .trim()
                .to_owned()
        })
        .collect()
}
