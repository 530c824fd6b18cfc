//! The address-server client: where the NameServer list comes from over HTTP (`http://{domain}:8080/rocketmq/{subgroup}`), and the checks of a static list.

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
