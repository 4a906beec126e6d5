//! The engines the store's own tests run on: every test written with
//! [`store_test!`] runs once on an in-memory SQLite database and once on a
//! scratch schema of the PostgreSQL server named by [`POSTGRES_ENV`],
//! which `.ci/run` starts; without it the PostgreSQL half is skipped and
//! says why (and fails under `SHORTS_REQUIRE_POSTGRES=1`).

use super::{Database, Location};

/// A PostgreSQL server URL the tests may create schemas on.
pub(crate) const POSTGRES_ENV: &str = "SHORTS_TEST_POSTGRES";

/// A new, empty store on the test PostgreSQL server; `None` (after saying
/// why) when there is none.
pub(crate) fn postgres() -> Option<Database> {
    let Some(url) = std::env::var(POSTGRES_ENV).ok().filter(|u| !u.is_empty()) else {
        assert!(
            std::env::var_os("SHORTS_REQUIRE_POSTGRES").is_none(),
            "SHORTS_REQUIRE_POSTGRES is set but {POSTGRES_ENV} names no server"
        );
        eprintln!("skipped on PostgreSQL: {POSTGRES_ENV} names no server (.ci/run starts one)");
        return None;
    };
    let scratch = super::postgres_scratch_schema(&url).expect("a scratch schema");
    Some(Database::open(Location::Postgres(scratch)).expect("open the PostgreSQL store"))
}

/// A store test, run on each engine: `store_test! { fn name(store) { … } }`
/// makes `name::sqlite` and `name::postgres`.
macro_rules! store_test {
    ($(#[$meta:meta])* fn $name:ident($store:ident) $body:block) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[test]
            fn sqlite() {
                let $store = $crate::store::Database::in_memory().expect("an in-memory store");
                $body
            }

            #[test]
            fn postgres() {
                let Some($store) = $crate::store::testing::postgres() else {
                    return;
                };
                $body
            }
        }
    };
}
pub(crate) use store_test;
