//! Where the NameServer list comes from: a static list or an address server over HTTP.

mod http;
mod list;

pub use http::{AddressServer, LookupError, DEFAULT_DOMAIN, DEFAULT_SUBGROUP};
pub use list::validate_addr;

// What tests name from outside.
#[cfg(any(test, feature = "test-util"))]
pub use {
    http::parse_answer,
    list::{parse_list, ListError},
};
