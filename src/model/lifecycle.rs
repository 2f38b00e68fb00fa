//! Dates, and what dbaudit compares them with: the engine lifecycle
//! catalogue shipped in `data/engine-lifecycle.json` (regenerated with
//! `scripts/gen-engine-lifecycle.py`), CA and server certificate expiry.
//! "Days left" always counts from the snapshot's `collected_at`, never from
//! the clock, so evaluating a snapshot again gives the same findings.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::Deserialize;

use crate::snapshot::{DbInstance, Region};

/// Seconds since the epoch of an RFC 3339 time or a `YYYY-MM-DD` date
/// (midnight UTC).
pub fn epoch(s: &str) -> Option<i64> {
    use aws_smithy_types::DateTime;
    use aws_smithy_types::date_time::Format;
    DateTime::from_str(s, Format::DateTime)
        .or_else(|_| DateTime::from_str(&format!("{s}T00:00:00Z"), Format::DateTime))
        .ok()
        .map(|d| d.secs())
}

/// Whole days from `now` to `then` (negative once `then` has passed).
pub fn days_until(now: i64, then: i64) -> i64 {
    (then - now).div_euclid(86_400)
}

/// One major version's support dates.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MajorLifecycle {
    /// Last day of standard support: after it the cluster is enrolled in
    /// paid RDS Extended Support (or upgraded, when enrolment is disabled).
    pub standard_support_ends: String,
    /// Last day of RDS Extended Support: after it AWS upgrades the major
    /// version itself.
    #[serde(default)]
    pub extended_support_ends: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Catalogue {
    #[allow(dead_code)]
    source: String,
    engines: BTreeMap<String, BTreeMap<String, MajorLifecycle>>,
}

fn catalogue() -> &'static Catalogue {
    static CATALOGUE: OnceLock<Catalogue> = OnceLock::new();
    CATALOGUE.get_or_init(|| {
        serde_json::from_str(include_str!("../../data/engine-lifecycle.json"))
            .expect("data/engine-lifecycle.json is valid (tested)")
    })
}

/// The lifecycle of `engine` at `version`'s major version, if catalogued.
pub fn major_lifecycle(engine: &str, version: &str) -> Option<&'static MajorLifecycle> {
    let major = super::parity::engine_major(version);
    catalogue().engines.get(engine)?.get(&major)
}

/// The engines the catalogue covers.
pub fn catalogued_engines() -> impl Iterator<Item = &'static str> {
    catalogue().engines.keys().map(String::as_str)
}

/// The CAs AWS publishes for RDS, with when each stops being valid: the
/// fallback when neither the instance's `CertificateDetails` nor the
/// region's `DescribeCertificates` answer says (moto has neither). The G1
/// CAs' dates are only needed to the year (decades away); `rds-ca-2019`'s
/// to the day (it expired on 2024-08-22).
const PUBLISHED_CAS: &[(&str, &str)] = &[
    ("rds-ca-2019", "2024-08-22T17:08:50Z"),
    ("rds-ca-rsa2048-g1", "2061-05-20T00:00:00Z"),
    ("rds-ca-rsa4096-g1", "2121-05-20T00:00:00Z"),
    ("rds-ca-ecc384-g1", "2121-05-20T00:00:00Z"),
];

/// The CAs under which RDS rotates each instance's server certificate
/// itself before it expires (the G1 generation); under any other the
/// certificate must be rotated by hand.
pub const ROTATING_CAS: &[&str] = &["rds-ca-rsa2048-g1", "rds-ca-rsa4096-g1", "rds-ca-ecc384-g1"];

/// Whether RDS rotates the server certificates of instances on `ca`:
/// `None` when the CA is neither one AWS publishes nor in the region's
/// list (moto's placeholder `rds-ca-default`, for one): unknown.
pub fn ca_rotates(region: &Region, ca: &str) -> Option<bool> {
    let known = PUBLISHED_CAS.iter().any(|(id, _)| *id == ca)
        || region.certificates.iter().flatten().any(|c| c.id == ca);
    known.then(|| ROTATING_CAS.contains(&ca))
}

/// Whether AWS publishes `ca`'s expiry (so no CA listing is needed for it).
pub fn is_published_ca(ca: Option<&str>) -> bool {
    ca.is_some_and(|ca| PUBLISHED_CAS.iter().any(|(id, _)| *id == ca))
}

/// When an instance's TLS server certificate stops being valid: its own
/// `CertificateDetails.ValidTill` where the answer has it, else its CA's
/// `ValidTill` from the region's `DescribeCertificates`, else the CA's
/// published expiry. `Err` says why it is unknown.
pub fn certificate_expiry(region: &Region, i: &DbInstance) -> Result<String, String> {
    if let Some(t) = &i.certificate_valid_till {
        return Ok(t.clone());
    }
    let Some(ca) = &i.ca_certificate_identifier else {
        return Err("the instance names no CA certificate".into());
    };
    let listed = region
        .certificates
        .iter()
        .flatten()
        .find(|c| &c.id == ca)
        .and_then(|c| c.valid_till.clone());
    let published = || {
        PUBLISHED_CAS
            .iter()
            .find(|(id, _)| id == ca)
            .map(|(_, t)| t.to_string())
    };
    listed
        .or_else(published)
        .ok_or_else(|| match &region.certificates {
            None => format!(
                "the instance has no CertificateDetails, `{ca}` is not a CA AWS publishes, and \
             the region's CA certificates (DescribeCertificates) were not collected"
            ),
            Some(_) => format!(
                "CA `{ca}` is neither among the region's CA certificates (DescribeCertificates) \
             nor a CA AWS publishes"
            ),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_days() {
        let now = epoch("2026-11-30T07:00:00Z").unwrap();
        assert_eq!(days_until(now, epoch("2026-12-30").unwrap()), 29);
        assert_eq!(days_until(now, epoch("2026-11-30T07:00:00Z").unwrap()), 0);
        assert_eq!(days_until(now, epoch("2026-11-29").unwrap()), -2);
        assert!(epoch("next tuesday").is_none());
    }

    #[test]
    fn certificate_expiry_prefers_the_instance_then_the_region_then_the_published_ca() {
        let mut region = Region::default();
        let mut i = DbInstance {
            ca_certificate_identifier: Some("rds-ca-2019".into()),
            ..DbInstance::default()
        };
        assert_eq!(
            certificate_expiry(&region, &i).unwrap(),
            "2024-08-22T17:08:50Z"
        );
        region.certificates = Some(vec![crate::snapshot::CaCertificate {
            id: "rds-ca-2019".into(),
            valid_till: Some("2024-08-22T00:00:00Z".into()),
            customer_override: false,
        }]);
        assert_eq!(
            certificate_expiry(&region, &i).unwrap(),
            "2024-08-22T00:00:00Z"
        );
        i.certificate_valid_till = Some("2024-01-01T00:00:00Z".into());
        assert_eq!(
            certificate_expiry(&region, &i).unwrap(),
            "2024-01-01T00:00:00Z"
        );
        // moto's placeholder CA: unknown, never a guess.
        let moto = DbInstance {
            ca_certificate_identifier: Some("rds-ca-default".into()),
            ..DbInstance::default()
        };
        region.certificates = None;
        let why = certificate_expiry(&region, &moto).unwrap_err();
        assert!(why.contains("DescribeCertificates"), "{why}");
    }

    #[test]
    fn the_catalogue_loads_and_knows_aurora_postgresql() {
        let l = major_lifecycle("aurora-postgresql", "13.9").unwrap();
        assert_eq!(l.standard_support_ends, "2026-02-28");
        assert!(major_lifecycle("aurora-postgresql", "99.1").is_none());
        assert!(major_lifecycle("db2", "13.9").is_none());
        for e in catalogued_engines() {
            for l in catalogue().engines[e].values() {
                assert!(epoch(&l.standard_support_ends).is_some());
            }
        }
    }
}
