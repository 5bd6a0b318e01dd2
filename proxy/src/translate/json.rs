//! The per-event JSON work of a translated stream without `serde_json::Value` trees (issue 12:
//! they were most of its cost): upstream events read into borrowed structs, client events
//! written straight into the output buffer.
//!
//! Reading is exactly as lenient as `Value` lookups were: a field of another type reads as
//! absent, a value that is not an object reads as an object with no fields, a repeated key
//! keeps its last value, and the same texts fail to parse (every skipped value is still parsed
//! in full, so a lone surrogate or an out-of-range number is refused as `Value` refuses it).
//! Writing gives the bytes `Value::to_string` gave: keys in sorted order, no spaces.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// `visit_*` methods of a [`Visitor`] that read each listed kind of value as `$value`; an
/// array or object (`seq`, `map`) is still parsed in full, so invalid text fails as with
/// `Value`, and dropped.
macro_rules! read_as {
    ($value:expr; $($kind:ident),+) => { $(read_as!(@ $kind $value);)+ };
    (@ bool $value:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($value)
        }
    };
    (@ i64 $value:expr) => {
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($value)
        }
    };
    (@ u64 $value:expr) => {
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($value)
        }
    };
    (@ f64 $value:expr) => {
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($value)
        }
    };
    (@ str $value:expr) => {
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok($value)
        }
    };
    (@ unit $value:expr) => {
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($value)
        }
    };
    (@ seq $value:expr) => {
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            Skip::deserialize(de::value::SeqAccessDeserializer::new(seq)).map(|_| $value)
        }
    };
    (@ map $value:expr) => {
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            Skip::deserialize(de::value::MapAccessDeserializer::new(map)).map(|_| $value)
        }
    };
}

/// Any value, parsed in full (so invalid text fails as with `Value`) and dropped.
pub struct Skip;

impl<'de> Deserialize<'de> for Skip {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Skip;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            read_as!(Skip; bool, i64, u64, f64, str, unit);
            // Not `read_as!`'s seq/map: those parse through `Skip` itself.
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Skip, A::Error> {
                while seq.next_element::<Skip>()?.is_some() {}
                Ok(Skip)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Skip, A::Error> {
                while map.next_key::<Skip>()?.is_some() {
                    map.next_value::<Skip>()?;
                }
                Ok(Skip)
            }
        }
        d.deserialize_any(V)
    }
}

/// A field that should be a string: `present` whatever its type, `value` when a string.
#[derive(Debug, Default)]
pub struct Str<'a> {
    /// The key was there (with any value, `null` included).
    pub present: bool,
    /// Its value, when it is a string.
    pub value: Option<Cow<'a, str>>,
}

impl<'a> Str<'a> {
    /// The string, as `Value::as_str` gave it.
    #[must_use]
    pub fn get(&self) -> Option<&str> {
        self.value.as_deref()
    }

    /// The string, or `""`.
    #[must_use]
    pub fn or_empty(&self) -> &str {
        self.get().unwrap_or("")
    }

    fn string(value: Cow<'a, str>) -> Self {
        Self {
            present: true,
            value: Some(value),
        }
    }
}

impl<'de> Deserialize<'de> for Str<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Str<'de>, E> {
                Ok(Str::string(Cow::Borrowed(s)))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Str<'de>, E> {
                Ok(Str::string(Cow::Owned(s)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Str<'de>, E> {
                Ok(Str::string(Cow::Owned(s.to_owned())))
            }
            read_as!(PRESENT; bool, i64, u64, f64, unit, seq, map);
        }
        const PRESENT: Str<'static> = Str {
            present: true,
            value: None,
        };
        d.deserialize_any(V)
    }
}

/// A field that should be a whole number: its value when `Value::as_u64` gave one.
#[derive(Debug, Default, Clone, Copy)]
pub struct U64(pub Option<u64>);

impl<'de> Deserialize<'de> for U64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = U64;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<U64, E> {
                Ok(U64(Some(n)))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<U64, E> {
                Ok(U64(u64::try_from(n).ok()))
            }
            read_as!(U64(None); bool, f64, str, unit, seq, map);
        }
        d.deserialize_any(V)
    }
}

/// The fields of an object that a translator reads; [`Obj`] feeds it each key.
pub trait Fields<'de>: Default {
    /// Reads the value of `key` (a key it does not know: [`Skip`]).
    ///
    /// # Errors
    /// The value is not valid JSON.
    fn field<A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<(), A::Error>;
}

/// A value read as an object: `fields` from its keys, or defaults when it is not an object.
#[derive(Debug, Default)]
pub struct Obj<T> {
    /// The value was an object.
    pub is_object: bool,
    /// What was read.
    pub fields: T,
}

impl<'de, T: Fields<'de>> Deserialize<'de> for Obj<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Fields<'de>> Visitor<'de> for V<T> {
            type Value = Obj<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Obj<T>, A::Error> {
                let mut fields = T::default();
                while let Some(key) = map.next_key::<Key<'de>>()? {
                    fields.field(&key.0, &mut map)?;
                }
                Ok(Obj {
                    is_object: true,
                    fields,
                })
            }
            read_as!(Obj::default(); bool, i64, u64, f64, str, unit, seq);
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// An object key, borrowed unless it had escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(s)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s)))
            }
        }
        d.deserialize_str(V)
    }
}

/// An array's elements: empty when the value is not an array.
#[derive(Debug)]
pub struct List<T>(pub Vec<T>);

impl<T> Default for List<T> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for List<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = List<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<List<T>, A::Error> {
                let mut v = Vec::new();
                while let Some(x) = seq.next_element()? {
                    v.push(x);
                }
                Ok(List(v))
            }
            read_as!(List::default(); bool, i64, u64, f64, str, unit, map);
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// An array's first element (the rest parsed and dropped): `None` when the value is not an
/// array or is empty.
#[derive(Debug)]
pub struct First<T>(pub Option<T>);

impl<T> Default for First<T> {
    fn default() -> Self {
        Self(None)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for First<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = First<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<First<T>, A::Error> {
                let first = seq.next_element()?;
                if first.is_some() {
                    while seq.next_element::<Skip>()?.is_some() {}
                }
                Ok(First(first))
            }
            read_as!(First::default(); bool, i64, u64, f64, str, unit, map);
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// A field read as `T` whenever its key comes (`null` included): `None` only when absent.
#[derive(Debug)]
pub struct Present<T>(pub Option<T>);

impl<T> Default for Present<T> {
    fn default() -> Self {
        Self(None)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Present<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        T::deserialize(d).map(|t| Present(Some(t)))
    }
}

/// Implements [`Fields`] for a struct: each listed key read into its field, the rest skipped.
macro_rules! fields {
    ($name:ident<'de> { $($key:literal => $field:ident),* $(,)? }) => {
        impl<'de> $crate::translate::json::Fields<'de> for $name<'de> {
            fn field<A: serde::de::MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<(), A::Error> {
                match key {
                    $($key => self.$field = map.next_value()?,)*
                    _ => {
                        map.next_value::<$crate::translate::json::Skip>()?;
                    }
                }
                Ok(())
            }
        }
    };
    ($name:ident { $($key:literal => $field:ident),* $(,)? }) => {
        impl<'de> $crate::translate::json::Fields<'de> for $name {
            fn field<A: serde::de::MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<(), A::Error> {
                match key {
                    $($key => self.$field = map.next_value()?,)*
                    _ => {
                        map.next_value::<$crate::translate::json::Skip>()?;
                    }
                }
                Ok(())
            }
        }
    };
}
pub(crate) use fields;

/// Parses `text` as an object of `T` (any other value: defaults), or `None` when it is not
/// JSON, as `serde_json::from_str::<Value>` would refuse it.
#[must_use]
pub fn parse<'de, T: Fields<'de>>(text: &'de str) -> Option<Obj<T>> {
    serde_json::from_str(text).ok()
}

/// Writes `s` as a JSON string.
pub fn string(out: &mut Vec<u8>, s: &str) {
    // Writing into a `Vec` cannot fail.
    let _ = serde_json::to_writer(out, s);
}

/// Writes `n` as a JSON number.
pub fn number(out: &mut Vec<u8>, n: u64) {
    // Writing into a `Vec` cannot fail.
    let _ = serde_json::to_writer(out, &n);
}

/// Writes `v` as `Value::to_string` does.
pub fn value(out: &mut Vec<u8>, v: &serde_json::Value) {
    // Writing into a `Vec` cannot fail.
    let _ = serde_json::to_writer(out, v);
}

/// Writes one SSE event whose data `body` writes: `event: name` (when given), `data: …`.
pub fn event(out: &mut Vec<u8>, name: Option<&str>, body: impl FnOnce(&mut Vec<u8>)) {
    if let Some(name) = name {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(name.as_bytes());
        out.push(b'\n');
    }
    out.extend_from_slice(b"data: ");
    body(out);
    out.extend_from_slice(b"\n\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[derive(Debug, Default)]
    struct T<'de> {
        s: Str<'de>,
        n: U64,
        o: Obj<Inner>,
        l: List<Obj<Inner>>,
        f: First<Str<'de>>,
    }
    fields!(T<'de> { "s" => s, "n" => n, "o" => o, "l" => l, "f" => f });

    #[derive(Debug, Default)]
    struct Inner {
        n: U64,
    }
    fields!(Inner { "n" => n });

    /// What `Value` lookups give, side by side with the borrowed read, on texts that
    /// differ in type, repetition and validity.
    #[test]
    fn reads_as_value_lookups_do() {
        for text in [
            r#"{"s": "a\"b", "n": 3, "o": {"n": 1}, "l": [{"n": 2}, 5, {"n": -1}], "f": ["x", 1]}"#,
            r#"{"s": null, "n": -3, "o": [1], "l": {"n": 1}, "f": []}"#,
            r#"{"s": 1, "n": 1.0, "o": null, "l": "x", "f": [null]}"#,
            r#"{"s": "a", "s": "b", "n": 18446744073709551615, "x": {"deep": [1, {"a": null}]}}"#,
            "[1, 2]",
            r#""text""#,
            r#"{"x": "\ud800"}"#,
            r#"{"x": 1e400}"#,
            r#"{"x": 1,}"#,
            r#"{"s\u0073": "escaped key"}"#,
        ] {
            let value = serde_json::from_str::<Value>(text);
            let read = parse::<T>(text);
            assert_eq!(value.is_ok(), read.is_some(), "{text}");
            let (Ok(v), Some(r)) = (value, read) else {
                continue;
            };
            assert_eq!(v.is_object(), r.is_object, "{text}");
            let t = r.fields;
            assert_eq!(v.get("s").is_some(), t.s.present, "{text}");
            assert_eq!(v.get("s").and_then(Value::as_str), t.s.get(), "{text}");
            assert_eq!(v.get("n").and_then(Value::as_u64), t.n.0, "{text}");
            assert_eq!(v.get("o").is_some_and(Value::is_object), t.o.is_object);
            assert_eq!(v.pointer("/o/n").and_then(Value::as_u64), t.o.fields.n.0);
            let l: Vec<Option<u64>> = v
                .get("l")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|x| x.get("n").and_then(Value::as_u64))
                .collect();
            let read_l: Vec<Option<u64>> = t.l.0.iter().map(|x| x.fields.n.0).collect();
            assert_eq!(l, read_l, "{text}");
            assert_eq!(v.pointer("/f/0").is_some(), t.f.0.is_some(), "{text}");
            assert_eq!(
                v.pointer("/f/0").and_then(Value::as_str),
                t.f.0.as_ref().and_then(Str::get),
                "{text}"
            );
        }
    }

    #[test]
    fn writes_as_value_to_string_does() {
        for s in ["", "plain", "q\"b\\s/", "\n\r\t\u{1}\u{7f}", "ünï 😀"] {
            let mut out = Vec::new();
            string(&mut out, s);
            assert_eq!(out, Value::from(s).to_string().as_bytes());
        }
        for n in [0, 7, 10, 1234, u64::MAX] {
            let mut out = Vec::new();
            number(&mut out, n);
            assert_eq!(out, Value::from(n).to_string().as_bytes());
        }
    }
}
