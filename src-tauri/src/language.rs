//! The language the window's web engine reports to the page as `navigator.language`.
//!
//! WebKitGTK derives it from the process's `LC_CTYPE` locale: "C" and "POSIX" become "en-US",
//! anything else has `_` turned into `-` and is cut at the first `.`. So "C.UTF-8" (Debian's
//! default where no locale is configured: containers, CI, minimal installs) becomes "C", and
//! "sr_RS@latin" stays "sr-RS@latin", neither of which is a BCP 47 tag. Scripts that pass it to
//! `Intl` then throw `RangeError: invalid language tag`; uPlot does exactly that while its module
//! is evaluated, which stops the UI's entry module before it mounts anything.

/// The tag WebKitGTK 2.x makes of `locale`, reproduced so that the app only steps in where it is wrong.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn webkit_tag(locale: &str) -> String {
    if locale.is_empty() || locale.eq_ignore_ascii_case("C") || locale.eq_ignore_ascii_case("POSIX") {
        return "en-US".into();
    }
    let dashed = locale.replace('_', "-");
    match dashed.find('.') {
        Some(dot) => dashed[..dot].to_string(),
        None => dashed,
    }
}

/// The tag `locale` (`language[_territory][.codeset][@modifier]`) stands for: only language and
/// territory name it, and the C locale is WebKit's own stand-in for it, "en-US".
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn tag(locale: &str) -> String {
    let name = locale.split(['.', '@']).next().unwrap_or_default();
    if name.is_empty() || name.eq_ignore_ascii_case("C") || name.eq_ignore_ascii_case("POSIX") {
        return "en-US".into();
    }
    name.replace('_', "-")
}

/// The language to give the web engine for `locale`, or `None` where its own choice is right.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn correction(locale: &str) -> Option<String> {
    let wanted = tag(locale);
    (wanted != webkit_tag(locale)).then_some(wanted)
}

/// Tells the main window's web engine the language of this process's locale where it would derive
/// an invalid one. Runs in the app's setup, on the main thread before its event loop has served the
/// page to the engine, so the page's first script already sees the new value.
/// Elsewhere than Linux the engines take the language from the system's settings, not a locale name.
pub fn correct_window_language(app: &tauri::App) -> tauri::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use tauri::Manager as _;
        use webkit2gtk::{WebContextExt as _, WebViewExt as _};
        let (Some(window), Some(language)) = (app.get_webview_window("main"), correction(&ctype_locale())) else {
            return Ok(());
        };
        window.with_webview(move |webview| {
            if let Some(context) = webview.inner().context() {
                context.set_preferred_languages(&[language.as_str()]);
            }
        })?;
    }
    #[cfg(not(target_os = "linux"))]
    let _ = app;
    Ok(())
}

/// `LC_CTYPE` as this process set it up: GTK has run `setlocale(LC_ALL, "")` by the time the app's
/// setup runs, and the web engine's own processes, started from this one's environment, see the same.
#[cfg(target_os = "linux")]
fn ctype_locale() -> String {
    // SAFETY: a null locale only queries; the returned string is copied before anything else can
    // call setlocale, and the app never changes its locale after GTK set it.
    unsafe {
        let current = libc::setlocale(libc::LC_CTYPE, std::ptr::null());
        if current.is_null() {
            return String::new();
        }
        std::ffi::CStr::from_ptr(current).to_string_lossy().into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::correction;

    #[test]
    fn the_c_locale_with_a_codeset_gets_the_tag_webkit_uses_for_the_plain_c_locale() {
        assert_eq!(correction("C.UTF-8").as_deref(), Some("en-US"));
        assert_eq!(correction("C.utf8").as_deref(), Some("en-US"));
        assert_eq!(correction("POSIX.UTF-8").as_deref(), Some("en-US"));
    }

    #[test]
    fn a_modifier_without_a_codeset_is_dropped() {
        assert_eq!(correction("sr_RS@latin").as_deref(), Some("sr-RS"));
        assert_eq!(correction("C@euro").as_deref(), Some("en-US"));
    }

    #[test]
    fn locales_webkit_already_turns_into_tags_are_left_to_it() {
        for locale in ["C", "POSIX", "", "en_US.UTF-8", "de_DE.UTF-8@euro", "pt_BR", "fr"] {
            assert_eq!(correction(locale), None, "{locale}");
        }
    }
}
