//! The parser and the OpenAPI schema of each request body accept the same fields.
//!
//! Everything here is driven by the generated schema (as `/api/v1/openapi.json` shows it):
//! the set of property paths must be exactly the set of keys the parser reads, and for every
//! property the parser must agree with the schema on requiredness, null, `maxLength`,
//! `minLength`, `pattern`, `enum`, `format: date-time`, `minimum`/`maximum`, `type: integer`
//! and `minItems`/`maxItems`, tried at and just past each boundary.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use utoipa::{PartialSchema, ToSchema};

use super::super::schema::{
    CancelBody, CreateSignatureRequest, CreateSignatureRequestBody, ResendBody,
};
use super::*;

thread_local! {
    static READ: RefCell<Option<BTreeSet<String>>> = const { RefCell::new(None) };
}

/// Called by `Fields::raw` for every key the parser looks at, present or not.
pub(crate) fn record_read(name: &str) {
    READ.with(|r| {
        if let Some(set) = r.borrow_mut().as_mut() {
            set.insert(normalize(name));
        }
    });
}

/// `signers[3].email` → `signers[].email`.
fn normalize(name: &str) -> String {
    let mut out = String::new();
    let mut in_index = false;
    for c in name.chars() {
        match c {
            '[' => {
                in_index = true;
                out.push('[');
            }
            ']' => {
                in_index = false;
                out.push(']');
            }
            _ if in_index => {}
            _ => out.push(c),
        }
    }
    out
}

/// The keys `parse` reads.
fn keys_read(parse: impl FnOnce()) -> BTreeSet<String> {
    READ.with(|r| *r.borrow_mut() = Some(BTreeSet::new()));
    parse();
    READ.with(|r| r.borrow_mut().take().unwrap_or_default())
}

/// The schema of `T` and every schema it refers to, as JSON.
fn components<T: ToSchema>() -> (Value, BTreeMap<String, Value>) {
    let mut deps = Vec::new();
    T::schemas(&mut deps);
    let components = deps
        .into_iter()
        .map(|(name, schema)| (name, serde_json::to_value(schema).unwrap()))
        .collect();
    (serde_json::to_value(T::schema()).unwrap(), components)
}

/// A property of a body, found by walking its schema.
#[derive(Debug, Clone)]
struct Property {
    /// JSON path: object keys, and `None` for "the first item of this array".
    path: Vec<Option<String>>,
    /// Its schema with `$ref`s and the nullable `oneOf` resolved.
    schema: Value,
    nullable: bool,
    required: bool,
}

impl Property {
    fn name(&self) -> String {
        let mut out = String::new();
        for seg in &self.path {
            match seg {
                Some(k) if out.is_empty() => out.push_str(k),
                Some(k) => {
                    out.push('.');
                    out.push_str(k);
                }
                None => out.push_str("[]"),
            }
        }
        out
    }

    fn types(&self) -> Vec<String> {
        match &self.schema["type"] {
            Value::String(t) => vec![t.clone()],
            Value::Array(ts) => ts
                .iter()
                .filter_map(|t| t.as_str().map(String::from))
                .collect(),
            _ => Vec::new(),
        }
    }

    fn is(&self, ty: &str) -> bool {
        self.types().iter().any(|t| t == ty)
    }
}

fn resolve(schema: &Value, components: &BTreeMap<String, Value>) -> (Value, bool) {
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.rsplit('/').next().unwrap();
        return resolve(&components[name], components);
    }
    if let Some(items) = schema["oneOf"].as_array() {
        let non_null: Vec<&Value> = items.iter().filter(|i| i["type"] != "null").collect();
        assert_eq!(non_null.len(), 1, "unexpected oneOf: {schema}");
        let (inner, _) = resolve(non_null[0], components);
        return (inner, non_null.len() < items.len());
    }
    let nullable = schema["type"]
        .as_array()
        .is_some_and(|ts| ts.iter().any(|t| t == "null"));
    (schema.clone(), nullable)
}

fn properties(
    schema: &Value,
    components: &BTreeMap<String, Value>,
    prefix: &[Option<String>],
    out: &mut Vec<Property>,
) {
    let required: BTreeSet<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    let Some(props) = schema["properties"].as_object() else {
        return;
    };
    for (key, sub) in props {
        let mut path = prefix.to_vec();
        path.push(Some(key.clone()));
        let (resolved, nullable) = resolve(sub, components);
        let p = Property {
            path: path.clone(),
            schema: resolved.clone(),
            nullable,
            required: required.contains(key.as_str()),
        };
        out.push(p.clone());
        if p.is("array") {
            let (items, _) = resolve(&resolved["items"], components);
            let mut item_path = path.clone();
            item_path.push(None);
            properties(&items, components, &item_path, out);
        } else {
            properties(&resolved, components, &path, out);
        }
    }
}

fn body_properties<T: ToSchema>() -> Vec<Property> {
    let (schema, components) = components::<T>();
    let mut out = Vec::new();
    properties(&schema, &components, &[], &mut out);
    out
}

fn lookup<'v>(body: &'v mut Value, path: &[Option<String>]) -> Option<&'v mut Value> {
    let mut v = body;
    for seg in path {
        v = match seg {
            Some(k) => v.as_object_mut()?.get_mut(k)?,
            None => v.as_array_mut()?.get_mut(0)?,
        };
    }
    Some(v)
}

/// `body` with the value at `path` replaced (`None`: removed).
fn with(body: &Value, path: &[Option<String>], value: Option<Value>) -> Value {
    let mut b = body.clone();
    let (last, parent) = path.split_last().unwrap();
    let parent = lookup(&mut b, parent).unwrap();
    let key = last.as_ref().unwrap();
    let obj = parent.as_object_mut().unwrap();
    match value {
        Some(v) => {
            obj.insert(key.clone(), v);
        }
        None => {
            obj.remove(key);
        }
    }
    b
}

/// A character class of the patterns the schemas use (`[^…]`), as a predicate.
fn class_excludes(class: &str) -> impl Fn(char) -> bool {
    let inner = class
        .strip_prefix("[^")
        .and_then(|c| c.strip_suffix(']'))
        .unwrap_or_else(|| panic!("not a negated class: {class}"));
    let mut chars = inner.chars().peekable();
    let mut atoms = Vec::new();
    let next = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>| -> Option<char> {
        let c = chars.next()?;
        if c != '\\' {
            return Some(c);
        }
        let kind = chars.next().unwrap();
        let digits = match kind {
            'x' => 2,
            'u' => 4,
            other => return Some(other),
        };
        let hex: String = (0..digits).map(|_| chars.next().unwrap()).collect();
        Some(char::from_u32(u32::from_str_radix(&hex, 16).unwrap()).unwrap())
    };
    while let Some(lo) = next(&mut chars) {
        if chars.peek() == Some(&'-') {
            chars.next();
            let hi = next(&mut chars).unwrap();
            atoms.push((lo, hi));
        } else {
            atoms.push((lo, lo));
        }
    }
    move |c| atoms.iter().any(|(lo, hi)| (*lo..=*hi).contains(&c))
}

/// Whether `s` matches one of the two pattern shapes the schemas use: `^[^X]*$` and
/// `^[^X]*[^Y][^X]*$` (Y a superset of X: "no X anywhere, and one character not in Y").
fn pattern_matches(pattern: &str, s: &str) -> bool {
    let body = pattern
        .strip_prefix('^')
        .unwrap()
        .strip_suffix('$')
        .unwrap();
    // The classes, each `[^…]` up to its unescaped `]`, with their `*` left out.
    let mut classes = Vec::new();
    let (mut start, mut escaped) = (None, false);
    for (i, c) in body.char_indices() {
        match (c, escaped) {
            ('\\', false) => escaped = true,
            ('[', false) if start.is_none() => start = Some(i),
            (']', false) => {
                classes.push(&body[start.take().unwrap()..=i]);
            }
            _ => escaped = false,
        }
    }
    match classes.as_slice() {
        [x] => {
            let x = class_excludes(x);
            !s.chars().any(x)
        }
        [x, y, x2] => {
            assert_eq!(x, x2, "{pattern}");
            let (x, y) = (class_excludes(x), class_excludes(y));
            !s.chars().any(x) && s.chars().any(|c| !y(c))
        }
        _ => panic!("unexpected pattern shape: {pattern}"),
    }
}

/// Characters worth trying against a pattern: all of Latin-1, the Unicode spaces and
/// separators, and a few ordinary letters beyond.
fn probe_chars() -> Vec<char> {
    (0u32..=0x250)
        .chain(0x1680..=0x1681)
        .chain(0x2000..=0x2030)
        .chain([0x205F, 0x2060, 0x3000, 0x3001, 0xFEFF, 0x1F600])
        .filter_map(char::from_u32)
        .collect()
}

/// A valid string of exactly `len` characters for this property.
fn string_of_len(p: &Property, len: usize) -> String {
    if p.schema["format"] == "email" {
        // A local part of at most 64, then labels of at most 63 ending in `.com`.
        let local = "a".repeat(len.saturating_sub(1 + 4).clamp(1, 64));
        let mut rest = len - local.len() - 1 - 4;
        let mut labels = Vec::new();
        while rest > 0 {
            let mut take = rest.min(63);
            if rest - take == 1 {
                take -= 1;
            }
            labels.push("b".repeat(take));
            rest -= take;
            rest = rest.saturating_sub(1); // the dot
        }
        let domain = if labels.is_empty() {
            "com".to_string()
        } else {
            format!("{}.com", labels.join("."))
        };
        let s = format!("{local}@{domain}");
        assert_eq!(s.chars().count(), len, "{s}");
        return s;
    }
    "a".repeat(len)
}

struct Case<'a> {
    name: &'a str,
    /// Valid bodies that between them hold every property of the schema.
    bases: Vec<Value>,
    parse: &'a dyn Fn(&Value) -> Result<()>,
    props: Vec<Property>,
}

impl Case<'_> {
    fn base_for(&self, p: &Property) -> Value {
        self.bases
            .iter()
            .find(|b| lookup(&mut (*b).clone(), &p.path).is_some())
            .unwrap_or_else(|| panic!("{}: no example body has {}", self.name, p.name()))
            .clone()
    }

    fn expect(&self, p: &Property, body: &Value, accepted: bool, what: &str) {
        let got = (self.parse)(body);
        assert_eq!(
            got.is_ok(),
            accepted,
            "{}: {} {what}: the schema {} it, the parser said {got:?}",
            self.name,
            p.name(),
            if accepted { "accepts" } else { "refuses" },
        );
    }

    fn check(&self, keys_read: &BTreeSet<String>) {
        for base in &self.bases {
            (self.parse)(base)
                .unwrap_or_else(|e| panic!("{}: base body refused: {e:?}", self.name));
        }
        let schema_keys: BTreeSet<String> = self.props.iter().map(Property::name).collect();
        assert_eq!(
            &schema_keys, keys_read,
            "{}: the schema's properties and the parser's fields differ",
            self.name
        );
        for p in &self.props {
            self.check_property(p);
        }
    }

    fn check_property(&self, p: &Property) {
        let base = self.base_for(p);
        let path = &p.path;
        let (accepted_absent, accepted_null) = (
            (self.parse)(&with(&base, path, None)).is_ok(),
            (self.parse)(&with(&base, path, Some(Value::Null))).is_ok(),
        );
        // A create needs `signers` or the legacy `signer_email` (the schema's description
        // says so; neither alone is required).
        let one_of_two = matches!(p.name().as_str(), "signers" | "signer_email");
        if !one_of_two {
            assert_eq!(
                accepted_absent,
                !p.required,
                "{}: {} absent: required in the schema = {}",
                self.name,
                p.name(),
                p.required
            );
        }
        {
            assert_eq!(
                accepted_null || one_of_two,
                p.nullable,
                "{}: {} null: nullable in the schema = {}",
                self.name,
                p.name(),
                p.nullable
            );
        }
        let s = &p.schema;
        let set = |v: Value| with(&base, path, Some(v));
        if p.is("string") {
            self.expect(p, &set(json!(7)), false, "as a number");
            let min = s["minLength"].as_u64().unwrap_or(0) as usize;
            if let Some(max) = s["maxLength"].as_u64() {
                let max = max as usize;
                self.expect(p, &set(json!(string_of_len(p, max))), true, "at maxLength");
                self.expect(
                    p,
                    &set(json!(string_of_len(p, max + 1))),
                    false,
                    "past maxLength",
                );
            }
            if min > 0 {
                self.expect(p, &set(json!("")), false, "below minLength");
            }
            if let Some(pattern) = s["pattern"].as_str() {
                for c in probe_chars() {
                    for v in [format!("a{c}a"), c.to_string()] {
                        let ok = pattern_matches(pattern, &v);
                        self.expect(p, &set(json!(v)), ok, &format!("= {v:?}"));
                    }
                }
            }
            if s["format"] == "date-time" {
                self.expect(p, &set(json!("")), false, "empty");
                self.expect(p, &set(json!("2026-06-01")), false, "a date");
                self.expect(
                    p,
                    &set(json!("2026-06-01T10:00:00+02:00")),
                    true,
                    "RFC 3339",
                );
            }
        }
        if let Some(values) = s["enum"].as_array() {
            for v in values {
                self.expect(p, &set(v.clone()), true, &format!("= {v}"));
                let other = format!("{}x", v.as_str().unwrap().to_uppercase());
                self.expect(p, &set(json!(other)), false, &format!("= {other:?}"));
            }
        }
        if p.is("integer") || p.is("number") {
            self.expect(p, &set(json!("1")), false, "as a string");
            if p.is("integer") {
                self.expect(p, &set(json!(1.5)), false, "fractional");
            }
            let step = if p.is("integer") { 1.0 } else { 0.5 };
            if let Some(min) = s["minimum"].as_f64() {
                self.expect(p, &set(json!(min)), true, "at minimum");
                self.expect(p, &set(json!(min - step)), false, "below minimum");
            }
            if let Some(max) = s["maximum"].as_f64() {
                self.expect(p, &set(json!(max)), true, "at maximum");
                self.expect(p, &set(json!(max + step)), false, "past maximum");
            }
        }
        if p.is("object") && s["properties"].is_null() {
            self.expect(p, &set(json!([])), false, "as an array");
            self.expect(
                p,
                &set(json!({"any": [1, "two"]})),
                true,
                "with any members",
            );
        }
        if p.is("array") {
            self.expect(p, &set(json!("x")), false, "as a string");
            let item = lookup(&mut base.clone(), path).unwrap()[0].clone();
            if let Some(max) = s["maxItems"].as_u64() {
                let items = vec![item.clone(); max as usize];
                self.expect(p, &set(json!(items)), true, "at maxItems");
                let items = vec![item.clone(); max as usize + 1];
                self.expect(p, &set(json!(items)), false, "past maxItems");
            }
            if s["minItems"].as_u64() == Some(1) {
                self.expect(p, &set(json!([])), false, "below minItems");
            }
        }
    }
}

fn obj(v: Value) -> Vec<u8> {
    serde_json::to_vec(&v).unwrap()
}

fn create_bases() -> Vec<Value> {
    let document = json!({ "filename": "contract.pdf", "content_base64": pdf_b64() });
    vec![
        json!({
            "title": "Order Agreement #1234",
            "message": "Please review\nand sign.",
            "locale": "fi",
            "signing_order": "sequential",
            "expires_at": "2026-06-01T00:00:00Z",
            "metadata": { "deal_id": "D-42" },
            "reminders": { "first_after_days": 2, "every_days": 4, "max": 3 },
            "signers": [{
                "email": "buyer@example.com",
                "name": "Anna Buyer",
                "locale": "de",
                "signature_position": { "page": 1, "x": 72, "y": 600.5 }
            }],
            "document": document,
        }),
        json!({
            "title": "Legacy",
            "delivery": "email",
            "signer_email": "buyer@example.com",
            "signer_name": "Anna Buyer",
            "document": document,
        }),
    ]
}

#[test]
fn create_body_and_its_schema_accept_the_same_fields() {
    let parse = |v: &Value| create_request(&obj(v.clone()), now()).map(drop);
    let bases = create_bases();
    let mut read = BTreeSet::new();
    for b in &bases {
        read.extend(keys_read(|| {
            parse(b).unwrap();
        }));
    }
    Case {
        name: "create",
        bases,
        parse: &parse,
        props: body_properties::<CreateSignatureRequest>(),
    }
    .check(&read);
}

#[test]
fn cancel_body_and_its_schema_accept_the_same_fields() {
    let parse = |v: &Value| cancel_reason(&obj(v.clone())).map(drop);
    let base = json!({ "reason": "Sent to the wrong recipient" });
    let read = keys_read(|| parse(&base).unwrap());
    Case {
        name: "cancel",
        bases: vec![base],
        parse: &parse,
        props: body_properties::<CancelBody>(),
    }
    .check(&read);
    // The body itself is optional and nullable, as `request_body(Option<CancelBody>)` says.
    assert_eq!(cancel_reason(b""), Ok(None));
    assert_eq!(cancel_reason(b"null"), Ok(None));
}

#[test]
fn resend_body_and_its_schema_accept_the_same_fields() {
    let parse = |v: &Value| resend_locale(&obj(v.clone())).map(drop);
    let base = json!({ "locale": "fi" });
    let read = keys_read(|| parse(&base).unwrap());
    Case {
        name: "resend",
        bases: vec![base],
        parse: &parse,
        props: body_properties::<ResendBody>(),
    }
    .check(&read);
    assert_eq!(resend_locale(b""), Ok(None));
    assert_eq!(resend_locale(b"null"), Ok(None));
}

#[test]
fn the_schemas_enums_are_the_domain_enums() {
    let (_, components) = components::<CreateSignatureRequest>();
    let values = |name: &str| -> Vec<String> {
        components[name]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    let spelled = |all: &[&str]| all.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        values("Locale"),
        spelled(&Locale::ALL.iter().map(|l| l.as_str()).collect::<Vec<_>>())
    );
    assert_eq!(
        values("Delivery"),
        spelled(&Delivery::ALL.iter().map(|l| l.as_str()).collect::<Vec<_>>())
    );
    assert_eq!(
        values("SigningOrder"),
        spelled(
            &SigningOrder::ALL
                .iter()
                .map(|l| l.as_str())
                .collect::<Vec<_>>()
        )
    );
}

/// Whether `body` satisfies one `anyOf` alternative of the create body's rules: an object
/// whose listed `properties` (when present) have the listed type or enum, and whose
/// `required` keys are present. Enough for the shapes those rules use.
fn satisfies(alt: &Value, body: &Value) -> bool {
    let type_ok = |s: &Value, v: &Value| -> bool {
        let types: Vec<&str> = match &s["type"] {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(|t| t.as_str()).collect(),
            _ => vec![],
        };
        let kind = match v {
            Value::Null => "null",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
            Value::Bool(_) => "boolean",
            Value::Number(_) => "number",
        };
        (types.is_empty() || types.contains(&kind))
            && s["enum"].as_array().is_none_or(|e| e.contains(v))
            && match (&s["items"], v) {
                (items @ Value::Object(_), Value::Array(vs)) => {
                    vs.iter().all(|v| satisfies(items, v))
                }
                _ => true,
            }
    };
    let required_ok = alt["required"]
        .as_array()
        .is_none_or(|r| r.iter().all(|k| body.get(k.as_str().unwrap()).is_some()));
    let props_ok = alt["properties"].as_object().is_none_or(|props| {
        props
            .iter()
            .all(|(k, s)| body.get(k).is_none_or(|v| type_ok(s, v)))
    });
    required_ok && props_ok
}

#[test]
fn the_create_bodys_cross_field_rules_are_the_parsers() {
    let schema = serde_json::to_value(CreateSignatureRequestBody::schema()).unwrap();
    let rules: Vec<&Vec<Value>> = schema["allOf"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["anyOf"].as_array())
        .collect();
    assert_eq!(rules.len(), 2);
    let schema_accepts = |body: &Value| {
        rules
            .iter()
            .all(|any| any.iter().any(|a| satisfies(a, body)))
    };
    let [full, legacy] = <[Value; 2]>::try_from(create_bases()).unwrap();
    let no_email = |delivery: Value| {
        let mut b = with(
            &full,
            &[Some("signers".into()), None, Some("email".into())],
            None,
        );
        b["delivery"] = delivery;
        b
    };
    let bodies = [
        full.clone(),
        legacy.clone(),
        with(&full, &[Some("signers".into())], None),
        with(&full, &[Some("signers".into())], Some(Value::Null)),
        with(&legacy, &[Some("signer_email".into())], None),
        with(&legacy, &[Some("signer_email".into())], Some(Value::Null)),
        with(&legacy, &[Some("signers".into())], Some(Value::Null)),
        with(
            &full,
            &[Some("signer_email".into())],
            Some(json!("x@example.com")),
        ),
        no_email(json!("email")),
        no_email(json!("api")),
        no_email(Value::Null),
        with(
            &no_email(json!("email")),
            &[Some("signers".into()), None, Some("email".into())],
            Some(Value::Null),
        ),
    ];
    for body in bodies {
        let parsed = create_request(&obj(body.clone()), now());
        assert_eq!(schema_accepts(&body), parsed.is_ok(), "{body}: {parsed:?}");
    }
}

#[test]
fn the_documented_create_example_parses() {
    let r = create_request(&obj(super::super::schema::create_example()), now()).unwrap();
    assert!(r.document.content.starts_with(b"%PDF-1.4"));
}
