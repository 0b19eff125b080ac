//! acs-engine apimodels: decoding and validation never panic, and a decoded model re-encodes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use studio_cluster::apimodel::ApiModel;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(model) = ApiModel::from_json(text, "fuzz.json") {
        let _ = model.validate();
        let _ = model.validate_as("fuzz.json", true);
        let _ = model.dns_prefix();
        let _ = model.nvidia_device_plugin_enabled();
        let json = model.to_json().expect("a decoded model encodes");
        ApiModel::from_json(&json, "re-encoded.json").expect("a re-encoded model decodes");
    }
});
