use std::path::PathBuf;

/// The bundled SmolLM2 model: `WHETSTONE_DEFAULT_MODEL`, else the cache folder `scripts/setup.sh` fills.
pub fn bundled_model() -> PathBuf {
    let path = match std::env::var_os("WHETSTONE_DEFAULT_MODEL") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => {
            let cache = std::env::var_os("XDG_CACHE_HOME")
                .filter(|p| !p.is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache"));
            cache.join("whetstone/models/SmolLM2-135M-Instruct.Q4_1.gguf")
        }
    };
    assert!(
        path.is_file(),
        "the bundled model {} is missing; run scripts/setup.sh to download it (or set WHETSTONE_DEFAULT_MODEL)",
        path.display()
    );
    path
}
