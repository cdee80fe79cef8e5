//! Unit tests of the parsers and the loader.
use super::*;

fn no_env(_: &str) -> Option<String> {
    None
}

#[test]
fn durations() {
    assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
    assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
    assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
    assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
    assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
    for bad in ["", "2x", "s", "1.5s", "-1s", "2 s", "99999999999999999999d"] {
        assert!(parse_duration(bad).is_err(), "{bad}");
    }
}

#[test]
fn interpolation_rules() {
    let mut env = |n: &str| (n == "A").then(|| "1".to_owned());
    assert_eq!(interpolate("x${A}y", &mut env), Ok("x1y".to_owned()));
    assert_eq!(interpolate("$${A}", &mut env), Ok("${A}".to_owned()));
    assert_eq!(interpolate("a$b$", &mut env), Ok("a$b$".to_owned()));
    assert!(interpolate("${B}", &mut env).is_err());
    assert!(interpolate("${A", &mut env).is_err());
    assert!(interpolate("${1A}", &mut env).is_err());
}

#[test]
fn urls() {
    for ok in [
        "http://localhost:8080",
        "https://h.example.com/a?b=c",
        "http://[::1]:80/",
        "HTTPS://X",
    ] {
        assert_eq!(check_url(ok), Ok(()), "{ok}");
    }
    for bad in [
        "localhost:8080",
        "ftp://h",
        "http://",
        "http://:80",
        "http://h:0",
        "http://h:x",
        "http://u:p@h",
        "http://h h",
        "http://[zz]",
    ] {
        assert!(check_url(bad).is_err(), "{bad}");
    }
}

#[test]
fn line_col_counts_chars() {
    let text = "a\nbé=c\n";
    assert_eq!(line_col(text, 0), (1, 1));
    assert_eq!(line_col(text, 2), (2, 1));
    assert_eq!(line_col(text, 5), (2, 3));
    assert_eq!(line_col(text, 999), (3, 1));
}

#[test]
fn only_the_config_document_expands_variables() {
    // Every unset variable is reported, each at its own value.
    let text = "[gateway]\nsecret = \"${X}\"\n[dashboard]\nadmin_secret = \"${Y}\"\n";
    let err = Config::load_from_str(text, "t", &no_env).unwrap_err();
    let lines: Vec<String> = err.problems().iter().map(|p| p.to_string()).collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].contains("t:2:") && lines[0].contains("X is not set"),
        "{lines:?}"
    );
    assert!(
        lines[1].contains("t:4:") && lines[1].contains("Y is not set"),
        "{lines:?}"
    );
    // The same types read from anything else (an API body) never touch the environment.
    let s: Secret = serde_json::from_str("\"${HOME}\"").unwrap();
    assert_eq!(s.expose(), "${HOME}");
}
