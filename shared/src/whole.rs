//! Optional whole numbers as JSON Schema counts them: an integer, or a number without a
//! fraction (`90.0`), both of which the schema's `"type": "integer"` allows. Used with
//! `#[serde(default, with = "crate::whole")]`; the range is checked by the server, naming
//! the field.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub fn serialize<S: Serializer, T: Serialize>(value: &Option<T>, serializer: S) -> Result<S::Ok, S::Error> {
    value.serialize(serializer)
}

pub fn deserialize<'de, D: Deserializer<'de>, T: TryFrom<u64>>(deserializer: D) -> Result<Option<T>, D::Error> {
    let Some(number) = Option::<serde_json::Number>::deserialize(deserializer)? else { return Ok(None) };
    let whole = match (number.as_u64(), number.as_f64()) {
        (Some(n), _) => Some(n),
        // Below 2^53 every whole f64 is exact; above it nothing this crate takes fits anyway.
        (None, Some(f)) if f.fract() == 0.0 && (0.0..=9_007_199_254_740_992.0).contains(&f) => Some(f as u64),
        _ => None,
    };
    whole.and_then(|n| T::try_from(n).ok()).map(Some).ok_or_else(|| D::Error::custom("must be a whole number in range"))
}

#[cfg(test)]
mod tests {
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(default, with = "super")]
        n: Option<u32>,
    }

    fn read(json: &str) -> Result<Option<u32>, serde_json::Error> {
        serde_json::from_str::<Probe>(json).map(|p| p.n)
    }

    #[test]
    fn whole_numbers_are_taken_written_either_way_and_anything_else_is_refused() {
        assert_eq!(read(r#"{"n": 90}"#).ok(), Some(Some(90)));
        assert_eq!(read(r#"{"n": 90.0}"#).ok(), Some(Some(90)));
        assert_eq!(read(r#"{"n": null}"#).ok(), Some(None));
        assert_eq!(read("{}").ok(), Some(None));
        for refused in [r#"{"n": 1.5}"#, r#"{"n": -1}"#, r#"{"n": -1.0}"#, r#"{"n": 4294967296}"#, r#"{"n": 1e300}"#, r#"{"n": "9"}"#] {
            assert!(read(refused).is_err(), "{refused}");
        }
    }
}
