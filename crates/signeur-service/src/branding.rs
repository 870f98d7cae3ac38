//! An organization's branding (`settings.branding`): a name, a colour and a logo, shown in
//! its signers' emails and pages.
//!
//! The logo is a PNG (its signature and header are read) or an SVG (well-formed enough to
//! have an `<svg>` root element), at most [`MAX_LOGO_BYTES`] decoded. An SVG can carry
//! scripts, so it is never inlined into HTML: pages show it as the `src` of an `<img>` (a
//! `data:` URI), where a browser runs no script in it.

use base64::Engine as _;
use serde_json::Value;

use crate::{Result, ServiceError};

/// The most a logo may weigh, decoded.
pub const MAX_LOGO_BYTES: usize = 200 * 1024;
/// The longest brand name.
pub const MAX_NAME_CHARS: usize = 100;
/// The largest PNG logo, in pixels either way.
pub const MAX_LOGO_PIXELS: u32 = 4096;

/// The organization's branding as stored and shown.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Branding {
    pub name: Option<String>,
    /// `#rrggbb`, lower case.
    pub color: Option<String>,
    /// The logo's bytes in standard base64.
    pub logo_base64: Option<String>,
}

impl Branding {
    /// The logo's media type: `image/png` or `image/svg+xml` (None: no logo).
    pub fn logo_media_type(&self) -> Option<&'static str> {
        let b64 = self.logo_base64.as_deref()?;
        let bytes = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
        Some(if bytes.starts_with(PNG_SIGNATURE) {
            "image/png"
        } else {
            "image/svg+xml"
        })
    }

    /// The logo as a `data:` URI for an `<img src>` (None: no logo).
    pub fn logo_data_uri(&self) -> Option<String> {
        let media = self.logo_media_type()?;
        Some(format!(
            "data:{media};base64,{}",
            self.logo_base64.as_deref()?
        ))
    }
}

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

fn field_error(code: &'static str, field: &str, what: &str) -> ServiceError {
    ServiceError::invalid_field(code, field, format!("Field '{field}' {what}."))
}

/// Parses `branding` of a settings `PATCH`: an object `{name, color, logo_base64}` (each
/// optional or null), or null (no branding).
pub(crate) fn parse(v: &Value) -> Result<Option<Branding>> {
    let m = match v {
        Value::Null => return Ok(None),
        Value::Object(m) => m,
        _ => {
            return Err(field_error(
                "invalid_field",
                "branding",
                "must be an object {name, color, logo_base64} or null",
            ));
        }
    };
    let mut keys: Vec<&String> = m.keys().collect();
    keys.sort();
    if let Some(k) = keys
        .into_iter()
        .find(|k| !matches!(k.as_str(), "name" | "color" | "logo_base64"))
    {
        return Err(field_error(
            "invalid_field",
            &format!("branding.{k}"),
            "is not a field of branding (name, color, logo_base64)",
        ));
    }
    let string = |key: &str| -> Result<Option<&str>> {
        match m.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(field_error(
                "invalid_field",
                &format!("branding.{key}"),
                "must be a string or null",
            )),
        }
    };
    let name = match string("name")?.map(str::trim) {
        None | Some("") => None,
        Some(n) => {
            if n.chars().count() > MAX_NAME_CHARS {
                return Err(field_error(
                    "invalid_field",
                    "branding.name",
                    &format!("must be at most {MAX_NAME_CHARS} characters"),
                ));
            }
            if n.chars().any(char::is_control) {
                return Err(field_error(
                    "invalid_field",
                    "branding.name",
                    "must not contain control characters",
                ));
            }
            Some(n.to_string())
        }
    };
    let color = match string("color")? {
        None => None,
        Some(c) => {
            let hex = c
                .strip_prefix('#')
                .filter(|h| h.len() == 6 && h.bytes().all(|b| b.is_ascii_hexdigit()));
            if hex.is_none() {
                return Err(field_error(
                    "invalid_field",
                    "branding.color",
                    "must be a colour '#rrggbb' (six hexadecimal digits)",
                ));
            }
            Some(c.to_ascii_lowercase())
        }
    };
    let logo_base64 = match string("logo_base64")? {
        None => None,
        Some(b64) => Some(checked_logo(b64)?),
    };
    Ok(Some(Branding {
        name,
        color,
        logo_base64,
    }))
}

/// Decodes and checks a logo; returns it re-encoded in standard base64.
fn checked_logo(b64: &str) -> Result<String> {
    const FIELD: &str = "branding.logo_base64";
    // Base64 of MAX_LOGO_BYTES is about 4/3 as long: refuse far longer input undecoded.
    if b64.len() > MAX_LOGO_BYTES / 3 * 4 + 8 {
        return Err(too_large());
    }
    let compact: String = b64.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|_| field_error("invalid_base64", FIELD, "is not valid base64"))?;
    if bytes.len() > MAX_LOGO_BYTES {
        return Err(too_large());
    }
    if bytes.starts_with(PNG_SIGNATURE) {
        check_png(&bytes)?;
    } else if !is_svg(&bytes) {
        return Err(field_error(
            "invalid_logo",
            FIELD,
            "must be a PNG or an SVG image",
        ));
    }
    Ok(base64::engine::general_purpose::STANDARD.encode(&bytes))
}

fn too_large() -> ServiceError {
    field_error(
        "logo_too_large",
        "branding.logo_base64",
        &format!("must be at most {} KB decoded", MAX_LOGO_BYTES / 1024),
    )
}

fn check_png(bytes: &[u8]) -> Result<()> {
    const FIELD: &str = "branding.logo_base64";
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let reader = decoder
        .read_info()
        .map_err(|_| field_error("invalid_logo", FIELD, "is not a readable PNG image"))?;
    let info = reader.info();
    if info.width == 0
        || info.height == 0
        || info.width > MAX_LOGO_PIXELS
        || info.height > MAX_LOGO_PIXELS
    {
        return Err(field_error(
            "invalid_logo",
            FIELD,
            &format!("must be a PNG of at most {MAX_LOGO_PIXELS}×{MAX_LOGO_PIXELS} pixels"),
        ));
    }
    Ok(())
}

/// UTF-8 text whose first element (after an XML declaration, comments, processing
/// instructions and a doctype) is `<svg`, and which closes an `</svg>`.
fn is_svg(bytes: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return false;
    };
    let mut rest = text.trim_start_matches('\u{feff}').trim_start();
    loop {
        if let Some(r) = rest.strip_prefix("<?") {
            let Some(end) = r.find("?>") else {
                return false;
            };
            rest = r[end + 2..].trim_start();
        } else if let Some(r) = rest.strip_prefix("<!--") {
            let Some(end) = r.find("-->") else {
                return false;
            };
            rest = r[end + 3..].trim_start();
        } else if let Some(r) = rest.strip_prefix("<!DOCTYPE") {
            let Some(end) = r.find('>') else {
                return false;
            };
            rest = r[end + 1..].trim_start();
        } else {
            break;
        }
    }
    let Some(r) = rest.strip_prefix("<svg") else {
        return false;
    };
    r.starts_with(|c: char| c.is_ascii_whitespace() || c == '>' || c == '/')
        && text.trim_end().ends_with('>')
        && (text.contains("</svg>") || r.split('>').next().is_some_and(|t| t.ends_with('/')))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn png(w: u32, h: u32) -> Vec<u8> {
        let mut out = Vec::new();
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(png::ColorType::Grayscale);
        let mut writer = enc.write_header().unwrap();
        writer
            .write_image_data(&vec![0u8; (w * h) as usize])
            .unwrap();
        drop(writer);
        out
    }

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    fn err(v: Value) -> (String, String) {
        let e = parse(&v).unwrap_err();
        (e.code().to_string(), e.to_string())
    }

    #[test]
    fn accepts_png_and_svg_logos() {
        let b =
            parse(&json!({"name": " Acme ", "color": "#AABBCC", "logo_base64": b64(&png(2, 3))}))
                .unwrap()
                .unwrap();
        assert_eq!(b.name.as_deref(), Some("Acme"));
        assert_eq!(b.color.as_deref(), Some("#aabbcc"));
        assert_eq!(b.logo_media_type(), Some("image/png"));
        let svg = br#"<?xml version="1.0"?><!-- logo --><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>"#;
        let b = parse(&json!({"logo_base64": b64(svg)})).unwrap().unwrap();
        assert_eq!(b.logo_media_type(), Some("image/svg+xml"));
        assert!(
            b.logo_data_uri()
                .unwrap()
                .starts_with("data:image/svg+xml;base64,")
        );
        assert_eq!(parse(&Value::Null).unwrap(), None);
    }

    #[test]
    fn refusals_name_the_field() {
        let (code, msg) = err(json!({"color": "red"}));
        assert_eq!(code, "invalid_field");
        assert!(msg.contains("branding.color"), "{msg}");
        let (code, msg) = err(json!({"name": "x".repeat(101)}));
        assert_eq!(code, "invalid_field");
        assert!(msg.contains("branding.name"), "{msg}");
        let (code, msg) = err(json!({"logo_base64": "not base64!"}));
        assert_eq!(code, "invalid_base64");
        assert!(msg.contains("branding.logo_base64"), "{msg}");
        let (code, _) = err(json!({"logo_base64": b64(b"GIF89a....")}));
        assert_eq!(code, "invalid_logo");
        let (code, _) = err(json!({"logo_base64": b64(b"<html><svg></svg></html>")}));
        assert_eq!(code, "invalid_logo");
        let mut broken = png(2, 2);
        broken.truncate(20);
        let (code, _) = err(json!({"logo_base64": b64(&broken)}));
        assert_eq!(code, "invalid_logo");
        let mut big = b"<svg>".to_vec();
        big.resize(MAX_LOGO_BYTES + 1 - 6, b' ');
        big.extend_from_slice(b"</svg>");
        assert_eq!(big.len(), MAX_LOGO_BYTES + 1);
        let (code, msg) = err(json!({"logo_base64": b64(&big)}));
        assert_eq!(code, "logo_too_large");
        assert!(msg.contains("branding.logo_base64"), "{msg}");
        big.truncate(MAX_LOGO_BYTES - 6);
        big.extend_from_slice(b"</svg>");
        assert!(parse(&json!({"logo_base64": b64(&big)})).is_ok());
        let (code, msg) = err(json!({"colour": "#000000"}));
        assert_eq!(code, "invalid_field");
        assert!(msg.contains("branding.colour"), "{msg}");
        let (code, _) = err(json!("Acme"));
        assert_eq!(code, "invalid_field");
    }
}
