//! The few X.509 fields the daemon and `doctor` read themselves: a certificate's issuer and
//! validity, a CRL's issuer, `thisUpdate` and `nextUpdate` (RFC 5280 §4.1, §5.1). rustls and
//! webpki do the verification; this only answers "which CA, and until when".

/// One DER element: (tag, contents, the bytes after it).
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// The whole element (tag and length included) and the bytes after it.
fn whole(input: &[u8]) -> Option<(&[u8], &[u8])> {
    let (_, _, rest) = tlv(input)?;
    Some((&input[..input.len() - rest.len()], rest))
}

const SEQUENCE: u8 = 0x30;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// A UTCTime or GeneralizedTime in seconds since the epoch (only the `Z` forms RFC 5280
/// allows).
fn time(tag: u8, v: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(v).ok()?;
    let s = s.strip_suffix('Z')?;
    let (year, rest) = match tag {
        UTC_TIME if s.len() == 12 => {
            let yy: i64 = s[..2].parse().ok()?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &s[2..])
        }
        GENERALIZED_TIME if s.len() == 14 => (s[..4].parse().ok()?, &s[4..]),
        _ => return None,
    };
    if !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = |i: usize| rest[i..i + 2].parse::<i64>().ok();
    let (mo, d, h, mi, se) = (n(0)?, n(2)?, n(4)?, n(6)?, n(8)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    Some(
        craton_store::clock::days_from_civil(year, mo as u32, d as u32) * 86_400
            + h * 3600
            + mi * 60
            + se,
    )
}

fn is_time(tag: u8) -> bool {
    tag == UTC_TIME || tag == GENERALIZED_TIME
}

/// The to-be-signed part of a certificate or CRL.
fn tbs(der: &[u8]) -> Option<&[u8]> {
    let (tag, outer, _) = tlv(der)?;
    if tag != SEQUENCE {
        return None;
    }
    let (tag, tbs, _) = tlv(outer)?;
    (tag == SEQUENCE).then_some(tbs)
}

/// What the daemon needs of a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// The issuer's Name, as DER (compared byte for byte with CRL issuers).
    pub issuer: Vec<u8>,
    /// The subject's Name, as DER.
    pub subject: Vec<u8>,
    /// notBefore, seconds since the epoch.
    pub not_before: i64,
    /// notAfter, seconds since the epoch.
    pub not_after: i64,
}

/// Reads a certificate's issuer, subject and validity.
pub fn certificate(der: &[u8]) -> Option<CertInfo> {
    let mut rest = tbs(der)?;
    // [0] EXPLICIT version, optional.
    if rest.first() == Some(&0xa0) {
        rest = tlv(rest)?.2;
    }
    let (_serial, _, rest) = tlv(rest)?;
    let (_sig_alg, _, rest) = tlv(rest)?;
    let (issuer, rest) = whole(rest)?;
    let (tag, validity, rest) = tlv(rest)?;
    if tag != SEQUENCE {
        return None;
    }
    let (t1, nb, after) = tlv(validity)?;
    let (t2, na, _) = tlv(after)?;
    let (subject, _) = whole(rest)?;
    if !is_time(t1) || !is_time(t2) {
        return None;
    }
    Some(CertInfo {
        issuer: issuer.to_vec(),
        subject: subject.to_vec(),
        not_before: time(t1, nb)?,
        not_after: time(t2, na)?,
    })
}

/// What the daemon needs of a CRL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlInfo {
    /// The issuer's Name, as DER.
    pub issuer: Vec<u8>,
    /// thisUpdate, seconds since the epoch.
    pub this_update: i64,
    /// nextUpdate, seconds since the epoch (a CRL without one never counts as fresh).
    pub next_update: Option<i64>,
}

/// Reads a CRL's issuer and update times.
pub fn crl(der: &[u8]) -> Option<CrlInfo> {
    let mut rest = tbs(der)?;
    // version INTEGER, optional (v2).
    if rest.first() == Some(&0x02) {
        rest = tlv(rest)?.2;
    }
    let (_sig_alg, _, rest) = tlv(rest)?;
    let (issuer, rest) = whole(rest)?;
    let (t, this, rest) = tlv(rest)?;
    if !is_time(t) {
        return None;
    }
    let next_update = match tlv(rest) {
        Some((t, next, _)) if is_time(t) => Some(time(t, next)?),
        _ => None,
    };
    Some(CrlInfo {
        issuer: issuer.to_vec(),
        this_update: time(t, this)?,
        next_update,
    })
}

/// Seconds since the epoch, now.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_convert_to_the_epoch() {
        assert_eq!(time(UTC_TIME, b"700101000000Z"), Some(0));
        assert_eq!(
            time(GENERALIZED_TIME, b"20261127000000Z"),
            Some(1_795_737_600)
        );
        assert_eq!(time(UTC_TIME, b"491231235959Z"), Some(2_524_607_999));
        // Local times and junk are refused rather than guessed.
        assert_eq!(time(UTC_TIME, b"261127000000+0100"), None);
        assert_eq!(time(UTC_TIME, b"26112700000aZ"), None);
        assert_eq!(time(GENERALIZED_TIME, b"20261327000000Z"), None);
    }

    #[test]
    fn truncated_elements_are_refused() {
        assert_eq!(tlv(&[0x30, 0x05, 1, 2]), None);
        assert_eq!(tlv(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
        assert_eq!(certificate(&[0x30, 0x00]), None);
        assert_eq!(crl(b"not der"), None);
    }
}
