//! The catalogue of cases, one file per area. Each area file exports `CASES`; [`all`] gathers them.

mod add;
mod chain;
mod check;
mod connectivity;
mod del;
mod delegation;
mod error;
mod gc;
mod ipam;
mod kernel;
mod matrix;
mod safety;
mod status;
mod version;

use crate::case::Case;

/// Every case, grouped by area in report order.
pub fn all() -> Vec<&'static Case> {
    [
        version::CASES,
        error::CASES,
        add::CASES,
        check::CASES,
        chain::CASES,
        matrix::CASES,
        del::CASES,
        delegation::CASES,
        ipam::CASES,
        gc::CASES,
        status::CASES,
        connectivity::CASES,
        safety::CASES,
    ]
    .iter()
    .flat_map(|list| list.iter())
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_unique_and_well_formed() {
        let re = regex::Regex::new(r"^[a-z0-9]+/[a-z0-9-]+$").unwrap();
        let mut seen = HashSet::new();
        for c in all() {
            assert!(re.is_match(c.id), "bad id {}", c.id);
            assert!(seen.insert(c.id), "duplicate id {}", c.id);
            assert!(
                !c.title.is_empty() && !c.spec.is_empty(),
                "{} lacks title or spec",
                c.id
            );
        }
        assert!(all().len() >= 10);
    }
}
