//! An enum's names, declared once.
//!
//! `names!(Severity { Critical => "critical", … })` gives `ALL` (in the
//! order listed), `as_str` (an exhaustive match: a variant left out does
//! not compile), `parse` and `Display`. serde's and clap's derives name the
//! variants by the same case convention; `tests/architecture.rs` checks every
//! named enum's serde (or clap) names against `as_str`, so they cannot drift.

macro_rules! names {
    ($ty:ident { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            /// Every variant, in the order its names were declared.
            pub const ALL: [$ty; [$($name),+].len()] = [$($ty::$variant),+];

            /// The name in reports, snapshots, configuration and flags.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $name),+
                }
            }

            pub fn parse(s: &str) -> Option<$ty> {
                match s {
                    $($name => Some($ty::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use names;
