//! Earlier texts of migrations that were edited after they first shipped. An installation that
//! applied one of them holds its checksum in `_sqlx_migrations`, which sqlx would refuse as a
//! changed migration (`VersionMismatch`). These are accepted and the stored checksum is updated
//! to the current text's; migration 0027 brings such a schema up to what the current texts
//! create. Every other mismatch still fails. The texts themselves are kept in
//! `tests/migrations/earlier_texts/`, where a test checks them against this list.
//!
//! Migrations are append-only now (`migrations.sha384`), so this list does not grow.

/// (version, SHA-384 of an earlier text, the commit that text shipped in).
pub(crate) const EARLIER_TEXTS: &[(i64, &str, &str)] = &[
    (
        10,
        "13b8dd89b745a7b56cb0cabf718e2be3d6d1fe4a5ee1582976f973a62dded731abe5a2ecbfc2f310ae07669968054aaf",
        "4531a55",
    ),
    (
        14,
        "7cfaa0431021f21d166bda8e6e854c1026a664e6e9b41cb2ff74f267e11213e8a99db8f1c90f8d33a70d585cc2fe95d6",
        "18c6c0c",
    ),
    (
        14,
        "5a71bd91052366545168cb179305b2b589adf7372f9a421935da485be5bddb558f5a78dc6a3e450cc41965f415d2dd62",
        "7dc0d2b",
    ),
    (
        16,
        "13c87e28996704c2cbf075660fa086baf2a94135803cbe2f8c077dab7ce821edafa7f8bc3bf47db0174d852b710d1926",
        "449713c",
    ),
    (
        22,
        "9f6b6bd3d9b75d52b06f78a3e8798795a4d8c20d247205e21710ad690d960246ea1ed8126cb43229fd3b5475a1f47df8",
        "5580183",
    ),
];

/// Whether `checksum` is an earlier text of migration `version`.
pub(crate) fn is_earlier_text(version: i64, checksum: &[u8]) -> bool {
    EARLIER_TEXTS.iter().any(|(v, hex, _)| *v == version && hex_eq(hex, checksum))
}

/// The earlier texts as (version, checksum bytes, commit), for tests and diagnostics.
pub fn earlier_texts() -> impl Iterator<Item = (i64, Vec<u8>, &'static str)> {
    EARLIER_TEXTS.iter().map(|(v, hex, commit)| (*v, decode_hex(hex), *commit))
}

fn hex_eq(hex: &str, bytes: &[u8]) -> bool {
    decode_hex(hex) == bytes
}

fn decode_hex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex digits in EARLIER_TEXTS"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_checksum_is_a_sha384() {
        for (version, sum, _) in earlier_texts() {
            assert_eq!(sum.len(), 48, "migration {version}");
        }
        assert!(is_earlier_text(10, &earlier_texts().next().expect("one").1));
        assert!(!is_earlier_text(11, &earlier_texts().next().expect("one").1));
    }
}
