//! Stencil templates: parsing and rendering never panic (depth and output are bounded by the
//! engine, not by this harness).
#![no_main]
use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use studio_runner_deploy::template::{Context, Duat, RenderOptions, Template};

fuzz_target!(|data: &[u8]| {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(template) = Template::parse("fuzz.tmpl", source) else {
        return;
    };
    let context = Context {
        duat: Duat {
            module: "runner".into(),
            version: "0.9.1".into(),
            ..Default::default()
        },
        env: BTreeMap::from([("acr".to_owned(), "studioml".to_owned())]),
        ..Default::default()
    };
    for allow_missing in [false, true] {
        let _ = template.render(&context, &RenderOptions { allow_missing });
    }
});
