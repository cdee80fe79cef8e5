//! The Prometheus text exposition format, version 0.0.4
//! (prometheus/docs `content/docs/instrumenting/exposition_formats.md`): `# HELP`, `# TYPE`,
//! then `name{label="value",…} value` lines.
//!
//! Written by hand rather than with `prometheus-client`: that crate writes OpenMetrics only and
//! does not escape label values (prometheus/client_rust#151), and a million quotas' series
//! must be written straight into one buffer (numbers by `itoa`/`ryu`, no per-series
//! allocation) to stay within a scrape's budget. `promtool check metrics` and a real
//! Prometheus check the output in the tests.

/// The `Content-Type` of the format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A metric family's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// One exposition being written: the buffer being appended to, after the chunks appended
/// whole (parts written on other threads are sent as they are, never copied together).
#[derive(Debug, Default)]
pub struct Exposition {
    done: Vec<Vec<u8>>,
    buf: Vec<u8>,
    /// Written in buffers of this size (see [`CHUNK`]); `None`: one growing buffer.
    chunk: Option<usize>,
}

/// The buffer size of a large exposition. Below jemalloc's `oversize_threshold` (8 MiB):
/// larger allocations come from an arena that returns them to the OS at once, so each scrape
/// of ~100 MB in large buffers faulted in every page anew (a quarter of its time).
pub const CHUNK: usize = 1 << 20;

/// A sample's value is at most this long (`-9223372036854775808`, ryu's longest float).
const VALUE_MAX: usize = 24;

impl Exposition {
    pub fn with_capacity(bytes: usize) -> Exposition {
        Exposition {
            buf: Vec::with_capacity(bytes),
            ..Exposition::default()
        }
    }

    /// An exposition written in buffers of `chunk` bytes, none ever reallocated.
    pub fn chunked(chunk: usize) -> Exposition {
        Exposition {
            chunk: Some(chunk),
            ..Exposition::default()
        }
    }

    /// Room for `bytes` more in the current buffer, starting a new one if need be.
    fn room(&mut self, bytes: usize) {
        if let Some(chunk) = self.chunk
            && self.buf.len() + bytes > self.buf.capacity()
        {
            if !self.buf.is_empty() {
                self.done.push(std::mem::take(&mut self.buf));
            }
            self.buf = Vec::with_capacity(chunk.max(bytes));
        }
    }

    /// `other`'s text after this one's.
    pub fn append(&mut self, other: Exposition) {
        if !self.buf.is_empty() {
            self.done.push(std::mem::take(&mut self.buf));
        }
        self.done.extend(other.done);
        if !other.buf.is_empty() {
            self.done.push(other.buf);
        }
    }

    /// The text in order, in the chunks it was written in (a response body streams them).
    pub fn into_chunks(mut self) -> Vec<Vec<u8>> {
        if !self.buf.is_empty() {
            self.done.push(self.buf);
        }
        self.done
    }

    /// The text in one buffer.
    pub fn into_bytes(self) -> Vec<u8> {
        if self.done.is_empty() {
            return self.buf;
        }
        self.into_chunks().concat()
    }

    pub fn len(&self) -> usize {
        self.done.iter().map(Vec::len).sum::<usize>() + self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `# HELP` and `# TYPE` of a family; `help` is escaped (backslash, line feed).
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) {
        self.buf.extend_from_slice(b"# HELP ");
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.push(b' ');
        for c in help.chars() {
            match c {
                '\\' => self.buf.extend_from_slice(b"\\\\"),
                '\n' => self.buf.extend_from_slice(b"\\n"),
                c => self.push_char(c),
            }
        }
        self.buf.extend_from_slice(b"\n# TYPE ");
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.push(b' ');
        self.buf.extend_from_slice(kind.as_str().as_bytes());
        self.buf.push(b'\n');
    }

    /// One sample: `name{labels} value`. Label names are the caller's constants; values are
    /// escaped.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: Value) {
        self.buf.extend_from_slice(name.as_bytes());
        self.labels(labels);
        self.buf.push(b' ');
        self.value(value);
        self.buf.push(b'\n');
    }

    /// `{k="v",…}` (nothing for no labels), values escaped.
    pub fn labels(&mut self, labels: &[(&str, &str)]) {
        if labels.is_empty() {
            return;
        }
        self.buf.push(b'{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                self.buf.push(b',');
            }
            self.buf.extend_from_slice(k.as_bytes());
            self.buf.extend_from_slice(b"=\"");
            self.label_value(v);
            self.buf.push(b'"');
        }
        self.buf.push(b'}');
    }

    /// [`Exposition::sample`] with labels already written by [`Exposition::labels`].
    pub fn sample_with(&mut self, name: &str, labels: &[u8], value: Value) {
        self.room(name.len() + labels.len() + VALUE_MAX + 2);
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.extend_from_slice(labels);
        self.buf.push(b' ');
        self.value(value);
        self.buf.push(b'\n');
    }

    /// A label value as the format wants it: `\`, `"` and line feed escaped. Other control
    /// characters (a hostile alias may hold a carriage return) become spaces: Prometheus
    /// accepts them, but a line that a terminal or a log would break is no use to anyone.
    fn label_value(&mut self, v: &str) {
        if !v
            .bytes()
            .any(|b| b == b'\\' || b == b'"' || b < 0x20 || b == 0x7f)
        {
            self.buf.extend_from_slice(v.as_bytes());
            return;
        }
        for c in v.chars() {
            match c {
                '\\' => self.buf.extend_from_slice(b"\\\\"),
                '"' => self.buf.extend_from_slice(b"\\\""),
                '\n' => self.buf.extend_from_slice(b"\\n"),
                c if c.is_control() => self.buf.push(b' '),
                c => self.push_char(c),
            }
        }
    }

    fn push_char(&mut self, c: char) {
        let mut b = [0u8; 4];
        self.buf.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
    }

    fn value(&mut self, v: Value) {
        match v {
            Value::Int(i) => {
                self.buf
                    .extend_from_slice(itoa::Buffer::new().format(i).as_bytes());
            }
            Value::Uint(u) => {
                self.buf
                    .extend_from_slice(itoa::Buffer::new().format(u).as_bytes());
            }
            Value::Float(f) if f.is_nan() => self.buf.extend_from_slice(b"NaN"),
            Value::Float(f) if f.is_infinite() => {
                self.buf
                    .extend_from_slice(if f > 0.0 { b"+Inf" } else { b"-Inf" })
            }
            Value::Float(f) => self
                .buf
                .extend_from_slice(ryu::Buffer::new().format_finite(f).as_bytes()),
        }
    }
}

/// A sample's value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    Int(i64),
    Uint(u64),
    Float(f64),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(e: Exposition) -> String {
        String::from_utf8(e.into_bytes()).expect("utf-8")
    }

    #[test]
    fn label_values_are_escaped_as_the_format_says() {
        let mut e = Exposition::default();
        e.family("tykwatch_x", Kind::Gauge, "a \\ b\nc");
        e.sample(
            "tykwatch_x",
            &[("alias", "say \"hi\"\\\nbye\r\u{7}"), ("org_id", "ok")],
            Value::Int(-3),
        );
        e.sample("tykwatch_x", &[], Value::Float(0.25));
        e.sample("tykwatch_x", &[], Value::Float(f64::INFINITY));
        e.sample("tykwatch_x", &[], Value::Uint(u64::MAX));
        assert_eq!(
            text(e),
            "# HELP tykwatch_x a \\\\ b\\nc\n# TYPE tykwatch_x gauge\n\
             tykwatch_x{alias=\"say \\\"hi\\\"\\\\\\nbye  \",org_id=\"ok\"} -3\n\
             tykwatch_x 0.25\ntykwatch_x +Inf\ntykwatch_x 18446744073709551615\n"
        );
    }

    #[test]
    fn appended_parts_keep_their_order() {
        let mut a = Exposition::default();
        a.sample("a", &[], Value::Int(1));
        let mut b = Exposition::default();
        b.sample("b", &[], Value::Int(2));
        let mut c = Exposition::default();
        c.sample("c", &[], Value::Int(3));
        b.append(c);
        a.append(b);
        a.sample("d", &[], Value::Int(4));
        assert_eq!(a.len(), 16);
        assert_eq!(a.into_chunks().len(), 4);
        let mut a = Exposition::default();
        a.append(Exposition::default());
        a.sample("x", &[], Value::Int(0));
        assert_eq!(text(a), "x 0\n");
    }

    #[test]
    fn a_chunked_exposition_never_grows_a_buffer() {
        let mut e = Exposition::chunked(64);
        for i in 0..10 {
            e.sample_with(
                "tykwatch_quota_used",
                b"{k=\"v\"}",
                Value::Int(i64::MIN + i),
            );
        }
        let chunks = e.into_chunks();
        assert!(chunks.len() > 1);
        assert!(
            chunks
                .iter()
                .all(|c| c.len() <= c.capacity() && c.capacity() == 64)
        );
        let text = String::from_utf8(chunks.concat()).expect("utf-8");
        assert_eq!(text.lines().count(), 10);
        assert!(text.ends_with("tykwatch_quota_used{k=\"v\"} -9223372036854775799\n"));
    }

    #[test]
    fn plain_values_and_unicode_pass_through() {
        let mut e = Exposition::default();
        e.sample("m", &[("key", "5e9d…ef6d")], Value::Float(1.0));
        assert_eq!(text(e), "m{key=\"5e9d…ef6d\"} 1.0\n");
    }
}
