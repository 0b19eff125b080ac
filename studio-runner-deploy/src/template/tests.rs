//! Unit tests of the engine: syntax, control flow, variables, each function, errors.

use std::collections::BTreeMap;

use super::*;

fn data() -> Value {
    Value::from(serde_json::json!({
        "name": "runner",
        "n": 3,
        "f": 1.5,
        "yes": true,
        "empty": "",
        "list": ["a", "b", "c"],
        "map": {"z": 26, "a": 1},
        "nested": {"inner": {"v": "deep"}},
        "nil": null,
    }))
}

fn env() -> BTreeMap<String, String> {
    [("HOME", "/root"), ("REG", "studioml")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn render(src: &str) -> String {
    match try_render(src) {
        Ok(s) => s,
        Err(e) => panic!("{src}: {e}"),
    }
}

fn try_render(src: &str) -> Result<String, Error> {
    Template::parse("t", src)?.render_value(&data(), &env(), &RenderOptions::default())
}

fn error(src: &str) -> String {
    match try_render(src) {
        Ok(s) => panic!("{src} rendered {s:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn text_fields_and_trimming() {
    assert_eq!(render("plain"), "plain");
    assert_eq!(render("{{ .name }}/{{.nested.inner.v}}"), "runner/deep");
    assert_eq!(render("a \n {{- .n -}} \n b"), "a3b");
    assert_eq!(render("a {{- /* gone */ -}} b{{/* c */}}"), "ab");
    assert_eq!(render("{{ . | len }}"), "9");
    assert_eq!(
        render("{{ .list }} {{ .map }} {{ .f }} {{ .yes }}"),
        "[a b c] map[a:1 z:26] 1.5 true"
    );
}

#[test]
fn pipelines_and_parentheses() {
    assert_eq!(render(r#"{{ .name | upper | printf "%s!" }}"#), "RUNNER!");
    assert_eq!(
        render(r#"{{ printf "%s-%d" (.name | upper) (len .list) }}"#),
        "RUNNER-3"
    );
    assert_eq!(
        render(r#"{{ (index .list 1) }}{{ (.nested.inner).v }}"#),
        "bdeep"
    );
}

#[test]
fn if_else_chains() {
    let t = r#"{{ if eq .n 1 }}one{{ else if eq .n 3 }}three{{ else }}other{{ end }}"#;
    assert_eq!(render(t), "three");
    assert_eq!(render("{{ if .empty }}x{{ else }}y{{ end }}"), "y");
    assert_eq!(
        render(
            "{{ if and .yes .n }}both{{ end }}{{ if or .empty .nil }}{{ else }}neither{{ end }}"
        ),
        "bothneither"
    );
    assert_eq!(render("{{ if not .missing }}absent{{ end }}"), "absent");
    assert_eq!(render("{{ and 1 0 2 }} {{ or 0 \"\" 7 }}"), "0 7");
}

#[test]
fn range_with_variables() {
    assert_eq!(render("{{ range .list }}{{ . }}{{ end }}"), "abc");
    assert_eq!(
        render("{{ range $i, $v := .list }}{{ $i }}={{ $v }};{{ end }}"),
        "0=a;1=b;2=c;"
    );
    assert_eq!(
        render("{{ range $k, $v := .map }}{{ $k }}:{{ $v }} {{ end }}"),
        "a:1 z:26 "
    );
    assert_eq!(render("{{ range .nil }}x{{ else }}none{{ end }}"), "none");
    assert_eq!(render("{{ range 3 }}{{ . }}{{ end }}"), "012");
    assert_eq!(
        render(
            "{{ range .list }}{{ if eq . \"b\" }}{{ continue }}{{ end }}{{ if eq . \"c\" }}{{ break }}{{ end }}{{ . }}{{ end }}"
        ),
        "a"
    );
    assert_eq!(
        render("{{ range .list }}{{ $.name }}{{ end }}"),
        "runnerrunnerrunner"
    );
}

#[test]
fn with_and_variable_scopes() {
    assert_eq!(render("{{ with .nested.inner }}{{ .v }}{{ end }}"), "deep");
    assert_eq!(render("{{ with .empty }}x{{ else }}y{{ end }}"), "y");
    assert_eq!(
        render("{{ $x := 1 }}{{ if .yes }}{{ $x = 2 }}{{ $y := 3 }}{{ end }}{{ $x }}"),
        "2"
    );
    assert!(
        error("{{ if .yes }}{{ $y := 3 }}{{ end }}{{ $y }}").contains("undefined variable: $y")
    );
    assert_eq!(render("{{ $v := .nested }}{{ $v.inner.v }}"), "deep");
}

#[test]
fn define_and_template() {
    assert_eq!(
        render(r#"{{ define "x" }}<{{ . }}>{{ end }}{{ template "x" .name }}"#),
        "<runner>"
    );
}

#[test]
fn go_builtins() {
    assert_eq!(render(r#"{{ len "abc" }} {{ len .map }}"#), "3 2");
    assert_eq!(
        render(r#"{{ index .map "z" }} {{ index .list 2 }}"#),
        "26 c"
    );
    assert_eq!(
        render(r#"{{ print 1 2 "a" 3 }}|{{ println "x" 1 }}|"#),
        "1 2a3|x 1\n|"
    );
    assert_eq!(
        render(r#"{{ printf "%05.1f|%-3s|%q" 3.14159 "ab" "q" }}"#),
        "003.1|ab |\"q\""
    );
    assert_eq!(
        render(
            r#"{{ eq .n 1 2 3 }} {{ ne .name "x" }} {{ lt 1 2 }} {{ gt "b" "a" }} {{ le 2 2 }} {{ ge 1 2 }}"#
        ),
        "true true true true true false"
    );
    assert!(error(r#"{{ eq .name 1 }}"#).contains("incompatible types"));
    assert!(error(r#"{{ index .list 9 }}"#).contains("index out of range: 9"));
}

#[test]
fn sprig_functions() {
    let cases = [
        (
            r#"{{ expandenv "$REG.azurecr.io ${HOME}" }}"#,
            "studioml.azurecr.io /root",
        ),
        (r#"{{ env "REG" }}"#, "studioml"),
        (
            r#"{{ default "d" .empty }} {{ default "d" .name }} {{ .missing | default "m" }}"#,
            "d runner m",
        ),
        (
            r#"{{ empty .empty }} {{ empty .list }} {{ empty 0 }} {{ empty .missing }}"#,
            "true false true true",
        ),
        (r#"{{ required "need name" .name }}"#, "runner"),
        (
            r#"{{ quote .name 1 }} {{ squote .name }}"#,
            r#""runner" "1" 'runner'"#,
        ),
        (
            r#"{{ upper "aB" }} {{ lower "aB" }} {{ title "hello world" }}"#,
            "AB ab Hello World",
        ),
        (
            r#"[{{ trim "  x  " }}] {{ trimSuffix ".yaml" "a.yaml" }} {{ trimPrefix "v" "v1.2" }}"#,
            "[x] a 1.2",
        ),
        (r#"{{ replace "-" "_" "a-b-c" }}"#, "a_b_c"),
        (
            r#"{{ contains "un" .name }} {{ hasPrefix "run" .name }} {{ hasSuffix "x" .name }}"#,
            "true true false",
        ),
        (
            r#"{{ b64enc "studio:pw" }} {{ b64dec "c3R1ZGlvOnB3" }}"#,
            "c3R1ZGlvOnB3 studio:pw",
        ),
        (
            r#"{{ toJson .map }} {{ toJson .list }} {{ toJson "<a>" }}"#,
            r#"{"a":1,"z":26} ["a","b","c"] "\u003ca\u003e""#,
        ),
        (r#"{{ toYaml .nested }}"#, "inner:\n  v: deep\n"),
        (
            "x:{{ toYaml .list | indent 2 }}",
            "x:  - a\n  - b\n  - c\n  ",
        ),
        ("x:{{ toYaml .map | nindent 2 }}", "x:\n  a: 1\n  z: 26\n  "),
        (
            r#"{{ toJson (dict "k" (list 1 "two")) }}"#,
            r#"{"k":[1,"two"]}"#,
        ),
    ];
    for (src, want) in cases {
        assert_eq!(render(src), want, "{src}");
    }
    assert!(error(r#"{{ required "need a name" .empty }}"#).contains("need a name"));
    assert!(error(r#"{{ upper 1 }}"#).contains("expected string; got int"));
    assert!(error(r#"{{ b64dec "!!" }}"#).contains("b64dec"));
    assert!(error(r#"{{ nosuch 1 }}"#).contains(r#"function "nosuch" not defined"#));
}

#[test]
fn env_context_is_injected() {
    let ctx = Context {
        env: env(),
        ..Default::default()
    };
    let t = Template::parse("t", "{{ .Env.REG }} {{ .duat.module }}|").unwrap();
    assert_eq!(
        t.render(&ctx, &RenderOptions::default()).unwrap(),
        "studioml |"
    );
}

#[test]
fn missing_values_fail_with_their_position() {
    let e = error("line one\n  image: {{ .nested.inner.nope }}");
    assert_eq!(e, "t:2:13: missing value: .nested.inner.nope");
    let e = error("a\nb {{ expandenv \"$NOPE.azurecr.io\" }}");
    assert_eq!(e, "t:2:6: missing value: environment variable $NOPE");
    let e = error("{{ env \"NOPE\" | upper }}");
    assert_eq!(e, "t:1:4: missing value: environment variable NOPE");
    assert!(error("{{ .missing.deeper }}").contains("missing value: .missing"));
    assert!(error("{{ range .itmes }}{{ end }}").contains("missing value: .itmes"));
    // With stencil's behaviour the same templates print `<no value>`.
    let t = Template::parse("t", "[{{ .nested.inner.nope }}][{{ expandenv \"$NOPE\" }}]").unwrap();
    let lenient = RenderOptions {
        allow_missing: true,
    };
    assert_eq!(
        t.render_value(&data(), &env(), &lenient).unwrap(),
        "[<no value>][]"
    );
}

#[test]
fn syntax_errors_have_positions() {
    let cases = [
        (
            "ok\n{{ if .x }}",
            "t:2:1: unexpected EOF: {{if}} has no {{end}}",
        ),
        ("{{ .a | }}", "t:1:8: missing value for command"),
        ("x {{ printf \"%s\" (.a }}", "t:1:18: unclosed left paren"),
        ("\n\n   {{ .a ", "t:3:4: unclosed action"),
        ("{{ else }}", "t:1:1: unexpected {{else}}"),
        ("{{ \"abc }}", "t:1:4: unterminated quoted string"),
    ];
    for (src, want) in cases {
        match Template::parse("t", src) {
            Ok(_) => panic!("{src} parsed"),
            Err(e) => assert_eq!(e.to_string(), want, "{src}"),
        }
    }
    assert!(error("{{ .name 1 }}").contains("can't give argument to non-function"));
}
