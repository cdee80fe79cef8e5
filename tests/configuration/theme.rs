//! Themes: shipped themes are complete and readable, user themes override and inherit, errors
//! are located, and the struct's keys stay in sync with `themes/default.toml`.
#![allow(clippy::unwrap_used)] // tests and benches may unwrap; the product may not

use std::fs;
use std::path::Path;

use ratatui::style::Color;
use tykwatch::ui::theme::{Theme, parse_color};

fn themes_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("themes")
}

/// `key = value` keys of a theme file, in file order.
fn file_keys(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('=').map(|(k, _)| k.trim().to_owned()))
        .collect()
}

#[test]
fn every_shipped_theme_loads_and_is_complete() {
    let mut on_disk: Vec<String> = fs::read_dir(themes_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let mut names: Vec<String> = Theme::builtin_names()
        .iter()
        .map(|s| s.to_string())
        .collect();
    names.sort();
    assert_eq!(
        names, on_disk,
        "every file in themes/ is embedded, and nothing else"
    );
    assert_eq!(
        Theme::builtin_names(),
        ["default", "light", "high-contrast"]
    );

    for name in Theme::builtin_names() {
        let theme = Theme::builtin(name).unwrap_or_else(|| panic!("builtin {name} fails to load"));
        assert_eq!(theme.name, *name);
        assert_eq!(Theme::load(name, None).unwrap(), theme);
        // Complete without inheriting: every key is written out in the shipped file.
        let text = fs::read_to_string(themes_dir().join(format!("{name}.toml"))).unwrap();
        let keys = file_keys(&text);
        assert!(
            !keys.iter().any(|k| k == "inherits"),
            "{name} must not inherit"
        );
        assert_eq!(
            keys,
            Theme::keys(),
            "{name}.toml: keys or order differ from default.toml"
        );
    }
    assert_eq!(Theme::builtin("nope"), None);
    assert_eq!(Theme::default(), Theme::builtin("default").unwrap());
}

/// trippy-style doc sync: the struct, `Theme::keys()` and `themes/default.toml` agree.
#[test]
fn struct_keys_match_default_toml() {
    let text = fs::read_to_string(themes_dir().join("default.toml")).unwrap();
    assert_eq!(file_keys(&text), Theme::keys());

    let theme = Theme::default();
    let debug = format!("{theme:?}");
    // Every field of the struct, minus `name`, is a key and every key is a field.
    let fields: Vec<&str> = debug
        .split(['{', ','])
        .filter_map(|part| part.split_once(':').map(|(f, _)| f.trim()))
        .filter(|f| *f != "name")
        .collect();
    assert_eq!(fields, Theme::keys());
    for key in Theme::keys() {
        assert!(theme.color(key).is_some(), "{key}");
        // Each key is documented by a trailing comment in default.toml.
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{key} =")))
            .unwrap();
        assert!(line.contains('#'), "default.toml: {key} has no comment");
    }
    assert_eq!(theme.color("nope"), None);
}

#[test]
fn user_theme_overrides_and_inherits() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("mine.toml"),
        "inherits = \"default\"\nborder = \"magenta\"\nband_warn = 214\nselection_bg = \"#102030\"\n",
    )
    .unwrap();
    let theme = Theme::load("mine", Some(dir.path())).unwrap();
    let default = Theme::builtin("default").unwrap();
    assert_eq!(theme.name, "mine");
    assert_eq!(theme.border, Color::Magenta);
    assert_eq!(theme.band_warn, Color::Indexed(214));
    assert_eq!(theme.selection_bg, Color::Rgb(0x10, 0x20, 0x30));
    assert_eq!(theme.foreground, default.foreground);
    assert_eq!(theme.link, default.link);

    // A user theme inheriting another user theme.
    fs::write(
        dir.path().join("child.toml"),
        "inherits = \"mine\"\nlink = \"white\"\n",
    )
    .unwrap();
    let child = Theme::load("child", Some(dir.path())).unwrap();
    assert_eq!(child.border, Color::Magenta);
    assert_eq!(child.link, Color::White);

    // A user file wins over the builtin of the same name; inheriting its own name means the
    // builtin one.
    fs::write(
        dir.path().join("light.toml"),
        "inherits = \"light\"\ntitle = \"red\"\n",
    )
    .unwrap();
    let light = Theme::load("light", Some(dir.path())).unwrap();
    assert_eq!(light.title, Color::Red);
    assert_eq!(
        light.background,
        Theme::builtin("light").unwrap().background
    );

    // Builtins are still found when a user dir is given.
    assert_eq!(
        Theme::load("high-contrast", Some(dir.path())).unwrap(),
        Theme::builtin("high-contrast").unwrap()
    );
}

#[test]
fn bad_colour_names_file_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    fs::write(
        &path,
        "inherits = \"default\"\n\nborder = \"blurple\"\ninfo = 300\n",
    )
    .unwrap();
    let err = Theme::load("bad", Some(dir.path())).unwrap_err();
    let msg = err.to_string();
    let file = path.display().to_string();
    assert!(
        msg.contains(&format!("{file}:3:10: border: invalid colour \"blurple\"")),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("{file}:4:8: info: invalid colour index 300")),
        "{msg}"
    );
    assert_eq!(err.problems().len(), 2);
}

#[test]
fn unknown_key_is_an_error_with_a_suggestion() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("t.toml"),
        "inherits = \"default\"\nboder = \"red\"\n",
    )
    .unwrap();
    let msg = Theme::load("t", Some(dir.path())).unwrap_err().to_string();
    assert!(
        msg.contains("t.toml:2:1: boder: unknown theme key (did you mean `border`?)"),
        "{msg}"
    );
}

#[test]
fn incomplete_theme_without_inherits_lists_missing_keys() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("half.toml"), "background = \"black\"\n").unwrap();
    let msg = Theme::load("half", Some(dir.path()))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("half.toml: missing keys: foreground, muted,"),
        "{msg}"
    );
    assert!(msg.contains("inherits = \"default\""), "{msg}");
}

#[test]
fn unknown_theme_and_bad_names() {
    let dir = tempfile::tempdir().unwrap();
    let msg = Theme::load("solarized", Some(dir.path()))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("unknown theme \"solarized\""), "{msg}");
    assert!(msg.contains("default, light, high-contrast"), "{msg}");
    assert!(
        msg.contains("solarized.toml"),
        "the user file to create is named: {msg}"
    );
    assert!(Theme::load("../default", Some(dir.path())).is_err());
    assert!(Theme::load("", None).is_err());
}

#[test]
fn inheritance_errors() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("a.toml"), "inherits = \"b\"\n").unwrap();
    fs::write(dir.path().join("b.toml"), "inherits = \"a\"\n").unwrap();
    let msg = Theme::load("a", Some(dir.path())).unwrap_err().to_string();
    assert!(msg.contains("b.toml:1:1: inherits: cycle: "), "{msg}");
    assert!(msg.contains("a.toml → "), "{msg}");
    assert_eq!(msg.lines().count(), 1, "{msg}");

    fs::write(dir.path().join("c.toml"), "inherits = \"nope\"\n").unwrap();
    let msg = Theme::load("c", Some(dir.path())).unwrap_err().to_string();
    assert!(msg.contains("unknown theme \"nope\""), "{msg}");
    assert!(
        msg.contains("c.toml:1:1: inherits: while loading the parent theme \"nope\""),
        "{msg}"
    );
}

#[test]
fn toml_syntax_error_is_located() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("s.toml"),
        "inherits = \"default\"\nborder = \n",
    )
    .unwrap();
    let msg = Theme::load("s", Some(dir.path())).unwrap_err().to_string();
    assert!(msg.contains("s.toml:2:"), "{msg}");
    assert!(msg.contains("invalid TOML"), "{msg}");
}

#[test]
fn colour_syntax() {
    assert_eq!(parse_color("dark_gray"), Some(Color::DarkGray));
    assert_eq!(parse_color("light-magenta"), Some(Color::LightMagenta));
    assert_eq!(parse_color("#FFa500"), Some(Color::Rgb(255, 165, 0)));
    assert_eq!(parse_color("0"), Some(Color::Indexed(0)));
    assert_eq!(parse_color("reset"), Some(Color::Reset));
    assert_eq!(parse_color("#fff"), None);
}

// --- readability ------------------------------------------------------------------------------

/// RGB of a colour as xterm draws it (the 16 named colours vary by palette: not used here).
fn rgb(c: Color) -> (u8, u8, u8) {
    match c {
        Color::Rgb(r, g, b) => (r, g, b),
        Color::Indexed(16) => (0, 0, 0),
        Color::Indexed(231) => (255, 255, 255),
        Color::Indexed(226) => (255, 255, 0),
        Color::Indexed(196) => (255, 0, 0),
        other => panic!("no fixed RGB for {other:?}"),
    }
}

/// WCAG 2 contrast ratio.
fn contrast(a: Color, b: Color) -> f64 {
    fn luminance((r, g, b): (u8, u8, u8)) -> f64 {
        let lin = |c: u8| {
            let c = f64::from(c) / 255.0;
            if c <= 0.039_28 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b)
    }
    let (la, lb) = (luminance(rgb(a)), luminance(rgb(b)));
    (la.max(lb) + 0.05) / (la.min(lb) + 0.05)
}

/// Text keys drawn on the theme's background.
const ON_BACKGROUND: [&str; 14] = [
    "foreground",
    "title",
    "table_header",
    "band_ok",
    "band_warn",
    "band_critical",
    "band_exhausted",
    "band_unlimited",
    "delta_up",
    "delta_down",
    "warning_fg",
    "info",
    "key_hint",
    "link",
];

fn assert_readable(theme: &Theme, background: Color, min: f64) {
    for key in ON_BACKGROUND {
        let ratio = contrast(theme.color(key).unwrap(), background);
        assert!(
            ratio >= min,
            "{}: {key} contrast {ratio:.2} < {min}",
            theme.name
        );
    }
    for (fg, bg) in [
        ("selection_fg", "selection_bg"),
        ("error_fg", "error_bg"),
        ("demo_badge_fg", "demo_badge_bg"),
    ] {
        let ratio = contrast(theme.color(fg).unwrap(), theme.color(bg).unwrap());
        assert!(
            ratio >= min,
            "{}: {fg} on {bg} contrast {ratio:.2} < {min}",
            theme.name
        );
    }
}

#[test]
fn light_theme_is_readable() {
    let theme = Theme::builtin("light").unwrap();
    assert_readable(&theme, theme.background, 4.5);
}

#[test]
fn default_theme_is_readable_on_a_dark_terminal() {
    // The default keeps the terminal's background; check against a typical dark one.
    let theme = Theme::builtin("default").unwrap();
    assert_eq!(theme.background, Color::Reset);
    assert_readable(&theme, Color::Rgb(0x1e, 0x1e, 0x1e), 4.5);
}

#[test]
fn high_contrast_uses_only_black_white_yellow_red() {
    let theme = Theme::builtin("high-contrast").unwrap();
    let allowed = [16, 231, 226, 196].map(Color::Indexed);
    for key in Theme::keys() {
        let c = theme.color(key).unwrap();
        assert!(allowed.contains(&c), "{key} = {c:?}");
    }
    assert_readable(&theme, theme.background, 5.0);
}
