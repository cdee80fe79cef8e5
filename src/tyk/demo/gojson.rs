//! JSON written the way Go's `encoding/json` `Encoder.Encode` writes it (pkg.go.dev/encoding/json: HTML-safe escaping, trailing newline).
//!
//! - compact, fields in declaration order (serde derive order), map keys sorted bytewise;
//! - floats in Go's shortest form: `100` not `100.0`, `1e+21`, `1e-7`;
//! - `<` `>` `&` escaped as `\u003c` `\u003e` `\u0026`, U+2028/U+2029 as `\u2028`/`\u2029`;
//! - control characters as `\n`, `\t`, … / `\u00XX` (Go ≥ 1.22, identical to serde_json);
//! - a final `\n`.
//!
//! Arbitrary JSON (`meta_data`, `smoothing`, …) goes through [`GoValue`], which sorts object keys
//! and writes every number as a float64, as Go does for `interface{}` values.

use std::io;

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::Value;
use serde_json::ser::Formatter;

/// A `serde_json` formatter reproducing Go's `encoding/json` escaping and float format.
#[derive(Debug, Clone, Copy, Default)]
pub struct GoFormatter;

impl Formatter for GoFormatter {
    fn write_f32<W>(&mut self, writer: &mut W, value: f32) -> io::Result<()>
    where
        W: ?Sized + io::Write,
    {
        writer.write_all(go_float(f64::from(value)).as_bytes())
    }

    fn write_f64<W>(&mut self, writer: &mut W, value: f64) -> io::Result<()>
    where
        W: ?Sized + io::Write,
    {
        writer.write_all(go_float(value).as_bytes())
    }

    fn write_string_fragment<W>(&mut self, writer: &mut W, fragment: &str) -> io::Result<()>
    where
        W: ?Sized + io::Write,
    {
        let bytes = fragment.as_bytes();
        let mut start = 0;
        let mut i = 0;
        while i < bytes.len() {
            let (escape, len): (&[u8], usize) = match bytes[i] {
                b'<' => (b"\\u003c", 1),
                b'>' => (b"\\u003e", 1),
                b'&' => (b"\\u0026", 1),
                0xE2 if bytes.get(i + 1) == Some(&0x80) && bytes.get(i + 2) == Some(&0xA8) => {
                    (b"\\u2028", 3)
                }
                0xE2 if bytes.get(i + 1) == Some(&0x80) && bytes.get(i + 2) == Some(&0xA9) => {
                    (b"\\u2029", 3)
                }
                _ => {
                    i += 1;
                    continue;
                }
            };
            writer.write_all(&bytes[start..i])?;
            writer.write_all(escape)?;
            i += len;
            start = i;
        }
        writer.write_all(&bytes[start..])
    }
}

/// Go's `encoding/json` float64 format (`floatEncoder.encode`): `strconv` shortest digits, `'f'`
/// format for 1e-6 ≤ |f| < 1e21 (and 0), else `'e'` format with `e-07` cleaned to `e-7`.
/// Non-finite values (which Go refuses to encode) are written as `null`.
pub fn go_float(f: f64) -> String {
    if !f.is_finite() {
        return "null".to_string();
    }
    let abs = f.abs();
    if abs == 0.0 || (1e-6..1e21).contains(&abs) {
        // Rust's `Display` for f64 is the shortest round-tripping decimal, never with an exponent.
        return format!("{f}");
    }
    // Rust: `1e21`, `1.5e-7`; Go: `1e+21`, `1.5e-07` → cleaned to `1.5e-7`.
    let s = format!("{f:e}");
    match s.split_once('e') {
        Some((mantissa, exp)) if !exp.starts_with('-') => {
            if exp.len() < 2 {
                format!("{mantissa}e+0{exp}")
            } else {
                format!("{mantissa}e+{exp}")
            }
        }
        _ => s,
    }
}

/// Encodes `value` as Go's `json.NewEncoder(w).Encode(value)` does (with the final `\n`).
pub fn encode<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(256);
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, GoFormatter);
    value.serialize(&mut ser)?;
    buf.push(b'\n');
    Ok(buf)
}

/// A `serde_json::Value` serialised like a Go `interface{}` decoded from JSON: object keys sorted,
/// numbers as float64.
#[derive(Debug, Clone, Copy)]
pub struct GoValue<'a>(pub &'a Value);

impl Serialize for GoValue<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Null => serializer.serialize_unit(),
            Value::Bool(b) => serializer.serialize_bool(*b),
            Value::Number(n) => match n.as_f64() {
                Some(f) => serializer.serialize_f64(f),
                None => serializer.serialize_unit(),
            },
            Value::String(s) => serializer.serialize_str(s),
            Value::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&GoValue(item))?;
                }
                seq.end()
            }
            Value::Object(map) => {
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
                let mut m = serializer.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    m.serialize_entry(k, &GoValue(v))?;
                }
                m.end()
            }
        }
    }
}

/// `serialize_with` helper for `Value` fields.
pub fn go_value<S: Serializer>(value: &Value, serializer: S) -> Result<S::Ok, S::Error> {
    GoValue(value).serialize(serializer)
}

/// `serialize_with` helper: an int64 written as a decimal string (`last_updated`).
pub fn i64_as_string<S: Serializer>(value: &i64, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_like_go() {
        assert_eq!(go_float(100.0), "100");
        assert_eq!(go_float(0.0), "0");
        assert_eq!(go_float(-0.0), "-0");
        assert_eq!(go_float(0.5), "0.5");
        assert_eq!(go_float(1723207234.0), "1723207234");
        assert_eq!(go_float(1e20), "100000000000000000000");
        assert_eq!(go_float(1e21), "1e+21");
        assert_eq!(go_float(1.5e300), "1.5e+300");
        assert_eq!(go_float(1e-6), "0.000001");
        assert_eq!(go_float(1e-7), "1e-7");
        assert_eq!(go_float(-2.5e-10), "-2.5e-10");
        assert_eq!(go_float(0.1 + 0.2), "0.30000000000000004");
    }

    #[test]
    fn strings_like_go() {
        let v = serde_json::json!({"b": "<b>&</b>", "a": "x\u{2028}y\u{2029}z\n\t\u{1}\"\\/é"});
        let out = encode(&GoValue(&v)).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"a\":\"x\\u2028y\\u2029z\\n\\t\\u0001\\\"\\\\/é\",\"b\":\"\\u003cb\\u003e\\u0026\\u003c/b\\u003e\"}\n"
        );
    }

    #[test]
    fn values_sorted_and_numbers_as_floats() {
        let v: Value =
            serde_json::from_str(r#"{"z":1,"B":[1.0,2.5,{"y":null,"x":true}],"a":1e21}"#).unwrap();
        let out = encode(&GoValue(&v)).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"B\":[1,2.5,{\"x\":true,\"y\":null}],\"a\":1e+21,\"z\":1}\n"
        );
    }
}
