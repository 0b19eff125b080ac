//! Image references: parsing never panics, and whatever parses prints as text that parses
//! back to the same reference.
#![no_main]
use libfuzzer_sys::fuzz_target;
use studio_acr::reference::Reference;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(parsed) = text.parse::<Reference>() {
        let printed = parsed.to_string();
        let again: Reference = printed
            .parse()
            .unwrap_or_else(|e| panic!("{text:?} printed as {printed:?}, which fails: {e}"));
        assert_eq!(parsed, again, "{text:?} does not round-trip");
        let _ = parsed.api_host();
        let _ = parsed.manifest_reference();
    }
});
