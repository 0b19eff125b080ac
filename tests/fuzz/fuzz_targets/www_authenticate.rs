//! `WWW-Authenticate` headers: parsing never panics; every parsed challenge can be queried.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(header) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(challenges) = studio_acr::challenge::parse(header) {
        assert!(!challenges.is_empty());
        for c in &challenges {
            let _ = (c.is_bearer(), c.is_basic(), c.param("realm"), c.scopes());
        }
    }
});
