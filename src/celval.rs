//! Direct conversion of facts into the rule engine's values.
//!
//! `cel::to_value` followed by `Context::add_variable_from_value` copies a
//! resource twice (serde into `cel::Value`, then a deep clone into the
//! engine's `Val` objects): about 60 µs per cluster, which dominated
//! evaluation. Building the engine's values directly, and only for the fields
//! the loaded rules read, is several times cheaper (docs/performance.md).

use std::collections::{BTreeMap, HashMap};

use cel::common::types::{CelBool, CelDouble, CelInt, CelList, CelMap, CelMapKey, CelString};
use cel::common::value::Val;

pub type BoxVal = Box<dyn Val + 'static>;

/// A fact as an engine value; `None` when the fact is absent (unknown).
pub trait ToVal {
    fn to_val(&self) -> Option<BoxVal>;
}

impl ToVal for bool {
    fn to_val(&self) -> Option<BoxVal> {
        Some(Box::new(CelBool::from(*self)))
    }
}

impl ToVal for i64 {
    fn to_val(&self) -> Option<BoxVal> {
        Some(Box::new(CelInt::from(*self)))
    }
}

impl ToVal for f64 {
    fn to_val(&self) -> Option<BoxVal> {
        Some(Box::new(CelDouble::from(*self)))
    }
}

impl ToVal for String {
    fn to_val(&self) -> Option<BoxVal> {
        Some(Box::new(CelString::from(self.clone())))
    }
}

impl<T: ToVal> ToVal for Option<T> {
    fn to_val(&self) -> Option<BoxVal> {
        self.as_ref().and_then(ToVal::to_val)
    }
}

impl<T: ToVal> ToVal for Vec<T> {
    fn to_val(&self) -> Option<BoxVal> {
        let items: Vec<BoxVal> = self.iter().filter_map(ToVal::to_val).collect();
        Some(Box::new(CelList::from(items)))
    }
}

impl<T: ToVal> ToVal for BTreeMap<String, T> {
    fn to_val(&self) -> Option<BoxVal> {
        let map: HashMap<CelMapKey<'static>, BoxVal> = self
            .iter()
            .filter_map(|(k, v)| Some((CelMapKey::from(k.clone()), v.to_val()?)))
            .collect();
        Some(Box::new(CelMap::from(map)))
    }
}

/// A map value from (name, value) pairs; absent values are left out. The
/// names are borrowed by the map's keys, not copied: one map per resource
/// and per nested fact, a copy of every name each time was a tenth of an
/// organization's evaluation.
pub fn map_of(pairs: impl Iterator<Item = (&'static str, Option<BoxVal>)>) -> BoxVal {
    let map: HashMap<CelMapKey<'static>, BoxVal> = pairs
        .filter_map(|(k, v)| Some((CelMapKey::from(k), v?)))
        .collect();
    Box::new(CelMap::from(map))
}

/// `name` as a `&'static str`, for [`map_of`]: the fact names that rules
/// read are few (bounded by the rules' text), so each is leaked once and
/// found again after.
pub fn intern(name: &str) -> &'static str {
    static NAMES: std::sync::OnceLock<std::sync::Mutex<std::collections::HashSet<&'static str>>> =
        std::sync::OnceLock::new();
    let mut names = NAMES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(&known) = names.get(name) {
        return known;
    }
    let leaked: &'static str = Box::leak(name.to_string().into_boxed_str());
    names.insert(leaked);
    leaked
}

/// Implements [`ToVal`] for a struct as a map of its named fields.
macro_rules! to_val_struct {
    ($ty:ty { $($f:ident),* $(,)? }) => {
        impl $crate::celval::ToVal for $ty {
            fn to_val(&self) -> Option<$crate::celval::BoxVal> {
                Some($crate::celval::map_of(
                    [$((stringify!($f), $crate::celval::ToVal::to_val(&self.$f))),*].into_iter(),
                ))
            }
        }
    };
}
pub(crate) use to_val_struct;
/// Converts a CEL value to JSON (map keys sorted, for determinism).
pub fn cel_to_json(v: &cel::Value) -> serde_json::Value {
    match v {
        cel::Value::Null => serde_json::Value::Null,
        cel::Value::Bool(b) => serde_json::Value::Bool(*b),
        cel::Value::Int(i) => serde_json::Value::from(*i),
        cel::Value::UInt(u) => serde_json::Value::from(*u),
        cel::Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(serde_json::Value::Number)
            .unwrap_or(serde_json::Value::Null),
        cel::Value::String(s) => serde_json::Value::String(s.to_string()),
        cel::Value::List(items) => {
            serde_json::Value::Array(items.iter().map(cel_to_json).collect())
        }
        cel::Value::Map(m) => {
            let mut entries: Vec<(String, serde_json::Value)> = m
                .map
                .iter()
                .map(|(k, v)| {
                    let key = match k {
                        cel::objects::Key::String(s) => s.to_string(),
                        cel::objects::Key::Int(i) => i.to_string(),
                        cel::objects::Key::Uint(u) => u.to_string(),
                        cel::objects::Key::Bool(b) => b.to_string(),
                    };
                    (key, cel_to_json(v))
                })
                .collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            serde_json::Value::Object(entries.into_iter().collect())
        }
        other => serde_json::Value::String(format!("{other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A name is leaked once: asked again, the same `&'static str` comes
    /// back; a map's keys borrow the names and read back as strings.
    #[test]
    fn names_are_interned_once_and_maps_borrow_them() {
        let a = intern(&String::from("engine_version"));
        let b = intern(&["engine", "_version"].concat());
        assert_eq!(a, "engine_version");
        assert!(std::ptr::eq(a, b));
        assert!(!std::ptr::eq(intern("engine"), a));
        let map = map_of([(a, true.to_val()), ("absent", None)].into_iter());
        let mut ctx = cel::Context::default();
        ctx.add_variable_as_val("r", map);
        let program = cel::Program::compile("r.engine_version && !has(r.absent)").unwrap();
        assert_eq!(program.execute(&ctx).unwrap(), cel::Value::Bool(true));
    }
}
