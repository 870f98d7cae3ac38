//! Translations: one Fluent bundle per locale (`locales/{en,fi,fr,de}/signeur.ftl`), shared
//! by the emails (`mail`) and the signer pages (`signeur-http`). A missing key is an error,
//! never silently empty text; a test in `mail` checks that every locale has every key.

use std::borrow::Cow;
use std::collections::HashMap;

use fluent_templates::fluent_bundle::FluentValue;
use fluent_templates::{LanguageIdentifier, Loader};
use minijinja::value::Kwargs;
use minijinja::{State, Value};

use signeur_core::Locale;

fluent_templates::static_loader! {
    pub static LOCALES = {
        locales: "./locales",
        fallback_language: "en",
        customise: |bundle| bundle.set_use_isolating(false),
    };
}

fn language(locale: Locale) -> LanguageIdentifier {
    match locale {
        Locale::En => fluent_templates::langid!("en"),
        Locale::Fi => fluent_templates::langid!("fi"),
        Locale::Fr => fluent_templates::langid!("fr"),
        Locale::De => fluent_templates::langid!("de"),
    }
}

/// Keys the signing pages (`signeur-http`) use; every locale has each (tested).
pub const PAGE_KEYS: &[&str] = &[
    "page-title",
    "page-from",
    "lang-switch",
    "gate-heading",
    "gate-help",
    "gate-label",
    "gate-submit",
    "gate-wrong",
    "locked-heading",
    "locked-body",
    "document-heading",
    "document-pages",
    "document-download",
    "sign-heading",
    "sign-name",
    "sign-representing",
    "sign-entity",
    "sign-role",
    "sign-entity-id",
    "sign-draw",
    "sign-clear",
    "sign-consent",
    "sign-submit",
    "decline-open",
    "decline-heading",
    "decline-help",
    "decline-reason",
    "decline-submit",
    "decline-back",
    "signed-heading",
    "signed-body",
    "signed-waiting",
    "signed-download",
    "signed-unlock",
    "gone-heading",
    "gone-expired",
    "gone-cancelled",
    "gone-declined",
    "gone-invalidated",
    "turn-heading",
    "turn-body",
    "notfound-heading",
    "notfound-body",
    "ratelimit-heading",
    "ratelimit-body",
    "error-heading",
    "csrf-failed",
    "error-missing",
    "error-invalid",
    "gone-rotated",
    "session-cancel",
    "document-page",
    "document-more-pages",
    "page-footer",
];

/// One translated string; a missing key is an error (never silently empty text).
pub fn translate(locale: Locale, key: &str, args: &[(&str, String)]) -> Result<String, String> {
    let args: HashMap<Cow<'static, str>, FluentValue> = args
        .iter()
        .map(|(k, v)| (Cow::Owned(k.to_string()), FluentValue::from(v.clone())))
        .collect();
    LOCALES
        .try_lookup_with_args(&language(locale), key, &args)
        .ok_or_else(|| format!("no translation '{key}' for {locale}"))
}

/// The templates' `t(key, name=value…)` function: translates into the template's `lang`.
pub fn t(state: &State, key: &str, kwargs: Kwargs) -> Result<String, minijinja::Error> {
    let locale = state
        .lookup("lang")
        .and_then(|v| v.as_str().and_then(Locale::parse))
        .unwrap_or(Locale::En);
    let mut args: HashMap<Cow<'static, str>, FluentValue> = HashMap::new();
    for name in kwargs.args() {
        let v: Value = kwargs.get(name)?;
        // Numbers stay numbers, so Fluent picks the plural form ("1 page", "2 pages").
        let fv = match v.as_i64() {
            Some(n) if v.kind() == minijinja::value::ValueKind::Number => FluentValue::from(n),
            _ => FluentValue::from(v.to_string()),
        };
        args.insert(Cow::Owned(name.to_string()), fv);
    }
    LOCALES
        .try_lookup_with_args(&language(locale), key, &args)
        .ok_or_else(|| {
            minijinja::Error::new(
                minijinja::ErrorKind::UndefinedError,
                format!("no translation '{key}' for {locale}"),
            )
        })
}
